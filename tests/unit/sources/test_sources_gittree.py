"""Tree listings read from tree objects agree with ``git ls-tree -r -l``; cat-file pipelining."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modgate.sources.git_catfile import CatFile
from modgate.sources.git_cmd import GitRunner
from modgate.sources.git_mirror import Mirror
from modgate.sources.gitrepo import GitRepo
from modgate.sources.gittree import TreeCache, _list, _parse_tree, plain_tree

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from helpers.gitfixtures import RepoBuilder, git, gomod
from helpers.mirrors import count_reads, mirrored

URL = "https://example.com/gittree"
MOD = "example.com/gittree"


@pytest.fixture
def source(tmp_path: Path) -> RepoBuilder:
    r = RepoBuilder(tmp_path / "src")
    r.write(
        {
            "go.mod": gomod(MOD),
            "a.go": "package a\n",
            "b-c/d e.go": "package d\n",
            "b-c/z/ü.go": "package z\n",
            "b.go": "package b\n",
            "b/x.go": "package x\n",
            "run.sh": "#!/bin/sh\n",
            "empty.txt": "",
        }
    )
    (r.path / "run.sh").chmod(0o755)
    r.symlink("link.go", "a.go")
    r.commit("c1")
    r.gitlink("vendored-sub", r.commits["c1"])
    r.commit("c2")
    r.tag("v1.0.0")
    return r


@pytest.fixture
def code(tmp_path: Path, source: RepoBuilder) -> Iterator[GitRepo]:
    repo = mirrored(tmp_path, source.path, URL)
    yield repo
    repo.mirror.close()


def ls_tree(git_dir: Path, rev: str) -> list[tuple[int, str, int, bytes]]:
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "-z", "-l", "--full-tree", rev],
        check=True,
        capture_output=True,
    ).stdout
    listed = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, oid, size = meta.split()
        if kind == b"blob":
            listed.append((int(mode, 8), oid.decode(), int(size), path))
    return listed


def test_listing_equals_git_ls_tree(code: GitRepo) -> None:
    commit = code.stat("v1.0.0").name
    got = _list(code, commit, TreeCache())
    want = [(mode, oid, path) for mode, oid, _, path in ls_tree(code.mirror.dir, commit)]
    assert got == want, f"tree objects listed\n{got}\nls-tree listed\n{want}"
    assert any(mode == stat.S_IFREG | 0o755 for mode, *_ in got), "the executable was lost"
    assert not any(p == b"vendored-sub" for *_, p in got), "a submodule was listed as a file"


def test_second_listing_reads_only_changed_trees(code: GitRepo, source: RepoBuilder) -> None:
    trees = TreeCache()
    _list(code, code.stat("v1.0.0").name, trees)
    source.write({"b-c/z/new.go": "package z\n"})
    source.commit("c3")
    source.tag("v1.1.0")
    git(code.mirror.dir, "fetch", "-q", str(source.path), "+refs/tags/*:refs/tags/*")
    reads = count_reads(code)
    commit = git(code.mirror.dir, "rev-parse", "v1.1.0^{commit}")
    want = [(mode, oid, path) for mode, oid, _, path in ls_tree(code.mirror.dir, commit)]
    assert _list(code, commit, trees) == want
    # the root tree, b-c and b-c/z changed; b/ did not
    assert len(reads) == 3, f"tree reads {reads}"


@pytest.mark.parametrize("known", [False, True], ids=["asked", "known"])
def test_sizes_are_those_of_git_ls_tree(code: GitRepo, known: bool) -> None:
    commit = code.stat("v1.0.0").name
    want = {path.decode(): size for _, _, size, path in ls_tree(code.mirror.dir, commit)}
    by_oid = {oid: size for _, oid, size, _ in ls_tree(code.mirror.dir, commit)}
    asked: list[list[str]] = []
    real = code.mirror.object_sizes

    def counting(names: list[str]) -> list[int | None]:
        asked.append(names)
        return real(names)

    code.mirror.object_sizes = counting  # type: ignore[method-assign]
    files = plain_tree(code, commit, "", TreeCache(), by_oid.get if known else None)
    assert files is not None
    assert {f.name: f.size for f in files} == want
    if known:
        assert asked == [[]], f"sizes asked although known: {asked}"


@pytest.mark.parametrize("where", [".gitattributes", "deep/er/.gitattributes"])
def test_any_gitattributes_file_means_no_listing(
    tmp_path: Path, source: RepoBuilder, where: str
) -> None:
    source.write({where: "*.go ident\n"})
    source.commit("c3")
    source.tag("v1.1.0")
    code = mirrored(tmp_path, source.path, URL)
    try:
        assert _list(code, code.stat("v1.1.0").name, TreeCache()) is None
    finally:
        code.mirror.close()


@pytest.mark.parametrize(
    "data",
    [b"100644 a", b"100644 a\0" + b"x" * 19, b"1x0644 a\0" + b"x" * 20, b"100644"],
)
def test_malformed_tree_objects_are_refused(data: bytes) -> None:
    assert _parse_tree(data, 20) is None


def test_tree_cache_is_bounded_by_entries() -> None:
    cache = TreeCache(max_entries=3)
    cache.put("a", [(0o100644, b"x", "1"), (0o100644, b"y", "2")])
    cache.put("b", [(0o100644, b"z", "3"), (0o100644, b"w", "4")])
    assert cache.get("a") is None and cache.get("b") is not None


def test_pipelined_reads_keep_order_with_missing_and_invalid_names(code: GitRepo) -> None:
    commit = code.stat("v1.0.0").name
    blobs = [oid for _, oid, _, _ in ls_tree(code.mirror.dir, commit)]
    names = blobs * 100 + ["0" * 40, "bad\nname", ""] + blobs
    got = code.mirror.read_objects(names)
    singly = [code.mirror.read_object(n) for n in names]
    assert got == singly
    assert sum(o is None for o in got) == 3


def test_pipelined_sizes_keep_order_with_missing_and_invalid_names(code: GitRepo) -> None:
    commit = code.stat("v1.0.0").name
    blobs = [(oid, size) for _, oid, size, _ in ls_tree(code.mirror.dir, commit)]
    names = [oid for oid, _ in blobs] * 300 + ["0" * 40, "bad\nname", ""]
    check = CatFile(code.mirror.runner, code.mirror.dir, check=True)
    try:
        got = check.sizes(names)
    finally:
        check.close()
    want = [size for _, size in blobs] * 300 + [None, None, None]
    assert got == want


@pytest.mark.parametrize("value", ["true", "false", "input"])
def test_operator_autocrlf_does_not_change_the_zip(
    tmp_path: Path, source: RepoBuilder, value: str
) -> None:
    # The go command runs git archive with core.autocrlf=input, and so does modgate:
    # the operator's setting cannot convert line endings.
    source.write({"crlf.txt": "one\r\ntwo\r\n", "lf.txt": "one\ntwo\n"})
    source.commit("c3")
    source.tag("v1.1.0")
    gitconfig = tmp_path / "operator.gitconfig"
    gitconfig.write_text(f"[core]\n\tautocrlf = {value}\n", encoding="utf-8")
    code = mirrored(tmp_path, source.path, URL)
    runner = GitRunner(dict(os.environ) | {"GIT_CONFIG_GLOBAL": str(gitconfig)})
    repo = GitRepo(Mirror(code.mirror.dir.parent, URL, runner), URL)
    try:
        commit = repo.stat("v1.1.0").name
        listed = plain_tree(repo, commit, "")
        assert listed is not None
        archived = {f.name: f.data for f in repo.archive(commit, "") or []}
        for f in listed:
            blob = repo.mirror.read_object(f.oid)
            assert blob is not None and archived.get(f.name, blob.data) == blob.data, (
                f"git archive changed {f.name} with core.autocrlf={value}"
            )
    finally:
        repo.mirror.close()
        code.mirror.close()


def test_a_subdirectory_reads_only_its_own_trees(tmp_path: Path, source: RepoBuilder) -> None:
    source.write(
        {
            "LICENSE": "root license\n",
            "other/.gitattributes": "*.go ident\n",  # applies to other/ only
            "other/deep/x.go": "package x\n",
            "mod/sub/go.mod": gomod(MOD + "/mod/sub"),
            "mod/sub/s.go": "package sub\n",
            "mod/sub/in/i.go": "package in\n",
        }
    )
    source.commit("c3")
    source.tag("mod/sub/v1.0.0")
    code = mirrored(tmp_path, source.path, URL)
    try:
        commit = code.stat("mod/sub/v1.0.0").name
        reads = count_reads(code)
        got = _list(code, commit, TreeCache(), "mod/sub")
        everything = ls_tree(code.mirror.dir, commit)
        want = [(m, o, p) for m, o, _, p in everything if p == b"LICENSE"] + [
            (m, o, p) for m, o, _, p in everything if p.startswith(b"mod/sub/")
        ]
        assert got == want
        # root, mod, mod/sub, mod/sub/in: nothing of other/ or b-c/
        assert len(reads) == 4, f"tree reads {reads}"
        assert _list(code, commit, TreeCache(), "mod/missing") is None
        assert _list(code, commit, TreeCache(), "a.go") is None, "a file is no directory"
    finally:
        code.mirror.close()


def test_gitattributes_on_the_way_down_count(tmp_path: Path, source: RepoBuilder) -> None:
    source.write({"mod/.gitattributes": "* -text\n", "mod/sub/s.go": "package sub\n"})
    source.commit("c3")
    source.tag("mod/sub/v1.0.0")
    code = mirrored(tmp_path, source.path, URL)
    try:
        commit = code.stat("mod/sub/v1.0.0").name
        assert _list(code, commit, TreeCache(), "mod/sub") is None
    finally:
        code.mirror.close()
