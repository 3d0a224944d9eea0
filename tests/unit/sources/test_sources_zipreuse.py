"""build_zip (tree listing plus cached entries) against module_files + write_zip (git archive)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modgate.protocol.module import ModuleVersion
from modgate.sources.gitrepo import GitRepo
from modgate.sources.gittree import plain_tree
from modgate.sources.modrepo import ModuleRepo
from modgate.sources.zipbuild import EntryCache, build_zip, module_files, write_zip

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from helpers.gitfixtures import RepoBuilder, gomod
from helpers.mirrors import mirrored

URL = "https://example.com/zipreuse"
MOD = "example.com/zipreuse"
MAX = 1 << 30


@pytest.fixture
def code(tmp_path: Path) -> Iterator[GitRepo]:
    r = RepoBuilder(tmp_path / "src")
    r.write(
        {
            "go.mod": gomod(MOD),
            "LICENSE": "root license\n",
            "a.go": "package a\n",
            "vendor/modules.txt": "# x\n",
            "vendor/x/x.go": "package x\n",
            "inner/go.mod": gomod(MOD + "/inner"),
            "inner/in.go": "package inner\n",
            "big.txt": os.urandom(300_000).hex(),
            "crlf.txt": "one\r\ntwo\r\n",
        }
    )
    r.symlink("link.go", "a.go")
    r.commit("c1")
    r.tag("v1.0.0")
    r.tag("inner/v1.0.0")
    r.write({"a.go": "package a // v1.1.0\n", "inner/in.go": "package inner // 1.1\n"})
    r.commit("c2")
    r.tag("v1.1.0")
    r.tag("inner/v1.1.0")
    r.write({".gitattributes": "*.txt text eol=crlf\n"})
    r.commit("c3")
    r.tag("v1.2.0")
    repo = mirrored(tmp_path, r.path, URL)
    yield repo
    repo.mirror.close()


CASES = [  # (module path, versions in order)
    (MOD, ("v1.0.0", "v1.1.0", "v1.0.0")),
    (MOD + "/inner", ("v1.0.0", "v1.1.0")),
    (MOD, ("v1.2.0",)),
]


@pytest.mark.parametrize(("path", "versions"), CASES)
def test_same_bytes_as_git_archive(
    code: GitRepo, tmp_path: Path, path: str, versions: tuple[str, ...]
) -> None:
    cache = EntryCache()
    repo = ModuleRepo(code, MOD, "", path)
    for version in versions:
        mv = ModuleVersion(path, version)
        want, got = tmp_path / "want.zip", tmp_path / "got.zip"
        write_zip(mv, module_files(repo, version), want, MAX)
        build_zip(repo, mv, got, MAX, cache)
        assert got.read_bytes() == want.read_bytes(), f"{mv}: zip differs from git archive's"


def test_attributes_fall_back_to_git_archive(code: GitRepo) -> None:
    listed = plain_tree(code, code.stat("v1.1.0").name, "")
    assert listed is not None and "link.go" in {f.name for f in listed}
    assert plain_tree(code, code.stat("v1.2.0").name, "") is None, "gitattributes ignored"


def test_second_version_reuses_entries(code: GitRepo, tmp_path: Path) -> None:
    cache = EntryCache()
    repo = ModuleRepo(code, MOD, "", MOD)
    build_zip(repo, ModuleVersion(MOD, "v1.0.0"), tmp_path / "1.zip", MAX, cache)
    filled = len(cache._entries)
    build_zip(repo, ModuleVersion(MOD, "v1.1.0"), tmp_path / "2.zip", MAX, cache)
    assert len(cache._entries) == filled + 1, "only the changed a.go should be deflated again"


def test_cache_drops_oldest_beyond_its_size() -> None:
    cache = EntryCache(max_bytes=10)
    cache.put("a", (0, 6, b"123456"))
    cache.put("b", (0, 6, b"123456"))
    assert cache.get("a") is None and cache.get("b") is not None
