"""The formats layer against the real go command: same hashes, same verdicts, same zips.

Modules are served to ``go mod download`` from a ``file://`` GOPROXY tree, or
from a local git repository reached through a git ``insteadOf`` rewrite (all
other git protocols and every HTTP proxy point nowhere, so nothing leaves
the machine).
"""

from __future__ import annotations

import io
import stat
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpers.goenv import go_env, json_stream, module_cache, run_go
from helpers.modules import production_zip
from modgate.formats.casefold import fold_key
from modgate.formats.dirhash import hash_gomod, hash_zip
from modgate.formats.gomod import synthesize_gomod
from modgate.formats.info import parse_info, parse_time, render_info
from modgate.formats.modzip import (
    InvalidZipError,
    Problem,
    SourceFile,
    check_zip,
    filter_module_files,
    root_go_version,
)
from modgate.protocol.module import ModuleVersion

pytestmark = pytest.mark.go

TIME = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
NOWHERE = "http://127.0.0.1:9"  # any HTTP the go command tries fails on loopback
CASED_LIMIT = 0x20000


def serve(root: Path, mv: ModuleVersion, zip_bytes: bytes, mod: bytes | None = None) -> None:
    """Write ``mv`` into the GOPROXY tree at ``root`` (paths here need no escaping)."""
    vdir = root / mv.path / "@v"
    vdir.mkdir(parents=True, exist_ok=True)
    (vdir / "list").write_text(f"{mv.version}\n")
    (vdir / f"{mv.version}.info").write_bytes(render_info(mv.version, TIME))
    (vdir / f"{mv.version}.mod").write_bytes(mod or synthesize_gomod(mv.path))
    (vdir / f"{mv.version}.zip").write_bytes(zip_bytes)


def download(tmp_path: Path, proxy: Path, *mvs: ModuleVersion) -> dict[str, dict[str, object]]:
    env = go_env(tmp_path, goproxy=proxy.as_uri(), extra={"HTTPS_PROXY": NOWHERE})
    proc = run_go(["mod", "download", "-json", *map(str, mvs)], tmp_path, env, check=False)
    return {f"{o['Path']}@{o['Version']}": o for o in json_stream(proc.stdout)}


def raw_zip(mv: ModuleVersion, entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(f"{mv}/{name}", data)
    return out.getvalue()


def test_go_reports_the_hashes_we_compute(tmp_path: Path) -> None:
    mv = ModuleVersion("example.com/m", "v1.0.0")
    gomod = b"module example.com/m\n\ngo 1.21\n"
    files = [
        SourceFile("go.mod", gomod),
        SourceFile("m.go", b"package m\n"),
        SourceFile("LICENSE", b"license\n"),
        SourceFile("ünï/ß.txt", b"hi"),
        SourceFile("a b/(x) [y] {z}.txt", b"odd names"),
        SourceFile("vendor/x/y.go", b"omitted"),
    ]
    data = production_zip(mv, files)
    checked = check_zip(mv, io.BytesIO(data), len(data))
    serve(tmp_path / "proxy", mv, data, gomod)
    result = download(tmp_path, tmp_path / "proxy", mv)[str(mv)]
    assert "Error" not in result, f"go refused the zip: {result['Error']}"
    assert result["Sum"] == checked.h1 == hash_zip(io.BytesIO(data)), (
        f"go Sum {result['Sum']}, check_zip {checked.h1}"
    )
    assert result["GoModSum"] == hash_gomod(gomod), f"go GoModSum {result['GoModSum']}"
    extracted = Path(str(result["Dir"]))
    on_disk = sorted(
        p.relative_to(extracted).as_posix() for p in extracted.rglob("*") if p.is_file()
    )
    assert tuple(on_disk) == checked.files, f"go extracted {on_disk}, check_zip saw {checked.files}"


BAD: list[tuple[str, list[tuple[str, bytes]], Problem]] = [
    ("collision", [("m.go", b"1"), ("M.go", b"2")], Problem.CASE_COLLISION),
    ("kelvin", [("k.go", b"1"), ("\u212a.go", b"2")], Problem.CASE_COLLISION),
    ("subgomod", [("go.mod", b"module x\n"), ("x/go.mod", b"module y\n")], Problem.GO_MOD_NOT_ROOT),
    ("rootcase", [("GO.MOD", b"module x\n")], Problem.GO_MOD_CASE),
    ("filedir", [("d", b"1"), ("d/x.go", b"2")], Problem.FILE_AND_DIR),
    ("unclean", [("a/../b.go", b"1")], Problem.NOT_CLEAN),
    ("badchar", [("bad:name.go", b"1")], Problem.BAD_PATH),
]


def test_go_refuses_what_check_zip_refuses(tmp_path: Path) -> None:
    proxy = tmp_path / "proxy"
    mvs = []
    for name, entries, want in BAD:
        mv = ModuleVersion(f"example.com/{name}", "v1.0.0")
        data = raw_zip(mv, entries)
        with pytest.raises(InvalidZipError) as caught:
            check_zip(mv, io.BytesIO(data), len(data))
        got = [p.problem for p in caught.value.problems]
        assert want in got, f"{name}: expected {want.name}, check_zip found {got}"
        serve(proxy, mv, data)
        mvs.append(mv)
    results = download(tmp_path, proxy, *mvs)
    accepted = [key for key, result in results.items() if "Error" not in result]
    assert accepted == [], f"go accepted zips that check_zip refuses: {accepted}"


def test_go_accepts_directory_entries_and_hashes_them(tmp_path: Path) -> None:
    mv = ModuleVersion("example.com/dirs", "v1.0.0")
    data = raw_zip(mv, [("", b""), ("d/", b""), ("d/x.go", b"package d\n")])
    checked = check_zip(mv, io.BytesIO(data), len(data))
    serve(tmp_path / "proxy", mv, data)
    result = download(tmp_path, tmp_path / "proxy", mv)[str(mv)]
    assert result.get("Sum") == checked.h1, f"go: {result}, check_zip h1 {checked.h1}"


# The same tree committed twice: once with a go 1.21 line, once with go 1.24,
# where the vendor rule changes.
GIT_TREE: dict[str, tuple[bytes, int]] = {
    "m.go": (b"package m\n", 0o100644),
    "run.sh": (b"#!/bin/sh\n", 0o100755),
    "LICENSE": (b"license\n", 0o100644),
    "vendor/modules.txt": (b"# vendored\n", 0o100644),
    "vendor/top.go": (b"package vendor\n", 0o100644),
    "vendor/example.com/x/x.go": (b"package x\n", 0o100644),
    "pkg/vendor/vendor.go": (b"package vendor\n", 0o100644),
    "pkg/vendor/foo/foo.go": (b"package foo\n", 0o100644),
    "sub/vendor/sub.txt": (b"sub\n", 0o100644),
    "nested/go.mod": (b"module example.com/m.git/nested\n", 0o100644),
    "nested/n.go": (b"package nested\n", 0o100644),
    "CAPS/GO.MOD": (b"MODULE X\n", 0o100644),
    "CAPS/c.go": (b"package caps\n", 0o100644),
    ".hg_archival.txt": (b"repo: x\n", 0o100644),
    "docs/.hg_archival.txt": (b"kept\n", 0o100644),
    "link.go": (b"m.go", stat.S_IFLNK | 0o777),
    "ünï/ß.txt": (b"unicode\n", 0o100644),
}
GIT_VERSIONS = {"v1.0.0": "1.21", "v1.1.0": "1.24"}


def git(repo: Path, *args: str) -> None:
    ident = ["-c", "user.name=modgate", "-c", "user.email=modgate@example.com"]
    subprocess.run(["git", *ident, *args], cwd=repo, check=True, capture_output=True)


def make_repo(repo: Path) -> dict[str, list[SourceFile]]:
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    trees = {}
    for version, go in GIT_VERSIONS.items():
        tree = {**GIT_TREE, "go.mod": (f"module example.com/m.git\n\ngo {go}\n".encode(), 0o100644)}
        for name, (data, mode) in tree.items():
            path = repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(mode):
                path.unlink(missing_ok=True)
                path.symlink_to(data.decode())
            else:
                path.write_bytes(data)
                path.chmod(mode & 0o777)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", version)
        git(repo, "tag", version)
        trees[version] = [SourceFile(name, data, mode) for name, (data, mode) in tree.items()]
    return trees


def test_go_builds_the_same_zip_from_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    trees = make_repo(repo)
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(
        f'[url "{repo.as_uri()}"]\n\tinsteadOf = https://example.com/m\n'
        "[protocol]\n\tallow = never\n"
        '[protocol "file"]\n\tallow = always\n'
    )
    extra = {
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_SSH_COMMAND": "false",
        "HTTPS_PROXY": NOWHERE,
        "HTTP_PROXY": NOWHERE,
        "ALL_PROXY": NOWHERE,
    }
    env = go_env(tmp_path, goproxy="direct", goprivate="example.com", extra=extra)
    mvs = [ModuleVersion("example.com/m.git", v) for v in GIT_VERSIONS]
    proc = run_go(["mod", "download", "-json", *map(str, mvs)], tmp_path, env)
    results = {f"{o['Path']}@{o['Version']}": o for o in json_stream(proc.stdout)}
    for mv in mvs:
        result = results[str(mv)]
        files = trees[mv.version]
        kept, _ = filter_module_files(mv, files, root_go_version(files))
        ours = production_zip(mv, files)
        go_zip = Path(str(result["Zip"])).read_bytes()
        with zipfile.ZipFile(io.BytesIO(go_zip)) as archive:
            go_names = sorted(archive.namelist())
        our_names = sorted(f"{mv}/{f.name}" for f in kept)
        assert our_names == go_names, f"{mv}: we keep\n{our_names}\ngo keeps\n{go_names}"
        checked = check_zip(mv, io.BytesIO(ours), len(ours))
        assert checked.h1 == result["Sum"], f"{mv}: our h1 {checked.h1}, go {result['Sum']}"
        go_info = (module_cache(env) / mv.path / "@v" / f"{mv.version}.info").read_bytes()
        info = parse_info(go_info, str(mv))
        assert info.time is not None
        rendered = render_info(info.version, parse_time(info.time), info.origin)
        assert rendered == go_info, f"render_info gave\n{rendered!r}\ngo wrote\n{go_info!r}"


FOLD_PROGRAM = """package main

import "unicode"

// Prints "rune fold" for every rune the zip collision check folds to
// another rune: the smallest member of its case orbit, A-Z lowered.
func main() {
	for r := rune(0); r < %d; r++ {
		f := r
		for {
			prev := f
			f = unicode.SimpleFold(prev)
			if f <= prev {
				break
			}
		}
		if 'A' <= f && f <= 'Z' {
			f += 'a' - 'A'
		}
		if f != r {
			println(r, f)
		}
	}
}
"""


def test_fold_key_matches_go_for_every_cased_rune(tmp_path: Path, gocache: Path) -> None:
    (tmp_path / "fold.go").write_text(FOLD_PROGRAM % CASED_LIMIT)
    env = go_env(tmp_path, goproxy="off", gocache=gocache)
    proc = run_go(["run", "fold.go"], tmp_path, env)
    go = {int(a): int(b) for a, b in (line.split() for line in proc.stderr.splitlines())}
    differ = [
        (hex(cp), fold_key(chr(cp)), chr(go.get(cp, cp)))
        for cp in range(CASED_LIMIT)
        if fold_key(chr(cp)) != chr(go.get(cp, cp))
    ]
    assert differ == [], f"{len(differ)} runes fold differently from go, e.g. {differ[:10]}"
