"""``modgate import`` fills a store from a module cache or a tree of zips, verifying everything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.goenv import describe, go_env, json_stream, module_cache, run_go
from helpers.modules import (
    BuiltVersion,
    SampleProject,
    download_problems,
    make_zip,
    stored_problems,
)
from helpers.servers import ModgateFactory, run_modgate


def filled_module_cache(workdir: Path, sample: SampleProject, gocache: Path) -> Path:
    """A module cache's ``cache/download`` made by ``go mod download`` of the sample."""
    workdir.mkdir(parents=True)
    env = go_env(workdir, goproxy=sample.proxy_root.as_uri(), gocache=gocache)
    run_go(["mod", "download", *sample.download_args()], workdir, env)
    return module_cache(env)


def snapshot(store: Path) -> dict[str, tuple[int, int, int]]:
    """Every file outside ``_modgate`` with its size, mtime and inode: a rewrite changes it."""
    found = {}
    for item in store.rglob("*"):
        relative = item.relative_to(store)
        if item.is_file() and relative.parts[0] != "_modgate":
            stat = item.stat()
            found[relative.as_posix()] = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    return found


def names(built: BuiltVersion) -> tuple[str, str]:
    """The two ways a report can name a version's zip: ``path@version`` or its store path."""
    return str(built.mv), built.url_path("zip").lstrip("/")


@pytest.mark.go
def test_import_module_cache_and_serve_it_offline(
    tmp_path: Path, sample: SampleProject, gocache: Path, modgate: ModgateFactory
) -> None:
    source = filled_module_cache(tmp_path / "cache", sample, gocache)
    store = tmp_path / "store"

    first = run_modgate("import", "--store", str(store), str(source))
    assert first.returncode == 0, f"first import\n{describe(first)}"
    problems = [p for built in sample.versions for p in stored_problems(store, built)]
    assert not problems, "after the first import:\n" + "\n".join(problems)
    imported = snapshot(store)

    second = run_modgate("import", "--store", str(store), str(source))
    assert second.returncode == 0, f"second import\n{describe(second)}"
    assert snapshot(store) == imported, "the second import rewrote or added files in the store"

    server = modgate("--upstream", "off", store=store)
    workdir = tmp_path / "download"
    workdir.mkdir()
    env = go_env(workdir, goproxy=server.url, gocache=gocache)
    proc = run_go(["mod", "download", "-json", *sample.download_args()], workdir, env)
    problems = download_problems(json_stream(proc.stdout), sample.versions)
    assert not problems, "served from the imported store:\n" + "\n".join(problems)


def truncate_zip(source: Path, built: BuiltVersion) -> None:
    """Cut the cached zip in half: no longer a readable zip archive."""
    (source / built.url_path("zip").lstrip("/")).write_bytes(built.zip[: len(built.zip) // 2])


def replace_zip(source: Path, built: BuiltVersion) -> None:
    """A valid zip whose content no longer matches the h1 recorded in ``.ziphash``."""
    changed = make_zip(built.mv, {"go.mod": built.mod, "changed.go": b"package changed\n"})
    (source / built.url_path("zip").lstrip("/")).write_bytes(changed)


def replace_mod(source: Path, built: BuiltVersion) -> None:
    """A ``.mod`` that differs from the go.mod inside the zip."""
    (source / built.url_path("mod").lstrip("/")).write_bytes(built.mod + b"// changed\n")


CORRUPTIONS = {
    "truncated-zip": truncate_zip,
    "zip-differs-from-ziphash": replace_zip,
    "mod-differs-from-zip-go-mod": replace_mod,
}


@pytest.mark.go
@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_import_refuses_corrupted_artifacts(
    corrupt: Callable[[Path, BuiltVersion], None],
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
) -> None:
    source = filled_module_cache(tmp_path / "cache", sample, gocache)
    bad = sample.version("example.com/Upper/kit", "v1.0.0")
    corrupt(source, bad)
    store = tmp_path / "store"

    proc = run_modgate("import", "--store", str(store), str(source))

    assert proc.returncode == 1, f"a refused artifact must give exit code 1\n{describe(proc)}"
    assert any(name in proc.stdout for name in names(bad)), (
        f"the summary on stdout does not name {bad.mv}\n{describe(proc)}"
    )
    corrupted = sorted(
        kind
        for kind in ("zip", "mod")
        if (source / bad.url_path(kind).lstrip("/")).read_bytes()
        == _stored(store, bad, kind)
        != getattr(bad, kind)
    )
    assert not corrupted, f"corrupted {corrupted} of {bad.mv} entered the store\n{describe(proc)}"
    good = [built for built in sample.versions if built is not bad]
    problems = [p for built in good for p in stored_problems(store, built)]
    assert not problems, "intact versions should still be imported:\n" + "\n".join(problems)


def _stored(store: Path, built: BuiltVersion, kind: str) -> bytes | None:
    path = store / built.url_path(kind).lstrip("/")
    return path.read_bytes() if path.is_file() else None


def test_import_tree_of_zip_files(tmp_path: Path, sample: SampleProject) -> None:
    tree = tmp_path / "zips"
    for index, built in enumerate(sample.versions):
        folder = tree / f"batch{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{built.mv.path.replace('/', '_')}@{built.mv.version}.zip"
        (folder / name).write_bytes(built.zip)
    store = tmp_path / "store"

    proc = run_modgate("import", "--store", str(store), str(tree))

    assert proc.returncode == 0, f"importing a tree of zips\n{describe(proc)}"
    problems = [p for built in sample.versions for p in stored_problems(store, built)]
    assert not problems, "after importing the zips:\n" + "\n".join(problems)
