"""FilesystemStore: the store contract, plus its layout and failure modes."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from contract.store_contract import StoreContract
from helpers.goenv import go_env, module_cache, run_go
from modgate.protocol.errors import StoreError
from modgate.protocol.module import ModuleVersion
from modgate.store import filesystem
from modgate.store.base import Kind, Store
from modgate.store.filesystem import FilesystemStore

MV = ModuleVersion("github.com/Azure/x", "v1.0.0-RC1")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class TestFilesystemStoreContract(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        return FilesystemStore(tmp_path / "store")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> FilesystemStore:
    return FilesystemStore(root)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- layout -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "rel"),
    [
        (Kind.INFO, "github.com/!azure/x/@v/v1.0.0-!r!c1.info"),
        (Kind.MOD, "github.com/!azure/x/@v/v1.0.0-!r!c1.mod"),
        (Kind.ZIP, "github.com/!azure/x/@v/v1.0.0-!r!c1.zip"),
        (Kind.ZIPHASH, "github.com/!azure/x/@v/v1.0.0-!r!c1.ziphash"),
    ],
)
def test_layout_matches_the_go_download_cache(
    store: FilesystemStore, root: Path, kind: Kind, rel: str
) -> None:
    store.put(MV, kind, b"data")
    assert (root / rel).read_bytes() == b"data"
    assert store.local_path(MV, kind) == root.resolve() / rel
    assert [f for f in _files(root) if not f.startswith("_modgate")] == [rel]


def test_list_and_meta_layout(store: FilesystemStore, root: Path) -> None:
    store.put_list("github.com/Azure/x", b"v1.0.0\n")
    store.put_meta("latest/github.com/!azure/x", b"{}")
    assert (root / "github.com/!azure/x/@v/list").read_bytes() == b"v1.0.0\n"
    assert (root / "_modgate/meta/latest/github.com/!azure/x/@meta").read_bytes() == b"{}"
    assert _files(root / "_modgate/tmp") == [], "temp files left after writes"


@pytest.mark.parametrize("name", ["@meta", "a/@x", "latest/@v"])
def test_meta_names_may_not_start_an_element_with_at(store: FilesystemStore, name: str) -> None:
    with pytest.raises(StoreError, match="invalid meta name"):
        store.put_meta(name, b"x")


def test_lock_files_are_named_by_sha256_and_removed_on_release(
    store: FilesystemStore, root: Path
) -> None:
    digest = hashlib.sha256(b"zip:example.com/m@v1.0.0").hexdigest()
    with store.lock("zip:example.com/m@v1.0.0"):
        assert _files(root / "_modgate/locks") == [f"{digest}.lock"]
    assert _files(root / "_modgate/locks") == [], "the lock file outlived its lock"
    release = store.try_lock("zip:example.com/m@v1.0.0")
    assert release is not None
    assert _files(root / "_modgate/locks") == [f"{digest}.lock"]
    release()
    assert _files(root / "_modgate/locks") == [], "try_lock's file outlived its lock"


def test_unheld_lock_files_are_swept_at_open(store: FilesystemStore, root: Path) -> None:
    locks = root / "_modgate/locks"
    for i in range(5):
        (locks / f"{i:064x}.lock").write_bytes(b"")  # left by a crash or an older modgate
    with store.lock("held"):
        assert len(_files(locks)) == 6
        FilesystemStore(root)
        assert len(_files(locks)) == 1, "a held lock file was swept, or unheld ones kept"
    assert _files(locks) == []


def test_serves_an_existing_cache_and_ignores_junk(root: Path) -> None:
    vdir = root / "golang.org/x/text/@v"
    vdir.mkdir(parents=True)
    for name, data in {
        "v0.14.0.mod": b"module golang.org/x/text\n",
        "v0.14.0.info": b"{}",
        "v0.14.0.lock": b"",
        "v0.15.0.mod590956869.tmp": b"partial",
        "v0.15.0.partial": b"",
        "V9.mod": b"bare upper case is not an escaped version",
        "list": b"v0.14.0\n",
    }.items():
        (vdir / name).write_bytes(data)
    (root / "sumdb/sum.golang.org/lookup").mkdir(parents=True)
    (root / "sumdb/sum.golang.org/lookup/golang.org!x!text@v0.14.0").write_bytes(b"x")
    (root / "Bad.example/@v").mkdir(parents=True)
    (root / "Bad.example/@v/v1.0.0.mod").write_bytes(b"invalid escaped path")
    store = FilesystemStore(root)
    text = ModuleVersion("golang.org/x/text", "v0.14.0")
    assert store.get(text, Kind.MOD) == b"module golang.org/x/text\n"
    assert store.versions("golang.org/x/text") == ["v0.14.0"]
    assert list(store.modules()) == ["golang.org/x/text"]
    listed = store.get_list("golang.org/x/text")
    assert listed is not None and listed.data == b"v0.14.0\n"


# -- defence in depth -------------------------------------------------------------------------


def test_symlinked_directory_escaping_root_is_refused(tmp_path: Path, root: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "evil.com").symlink_to(outside, target_is_directory=True)
    store = FilesystemStore(root)
    mv = ModuleVersion("evil.com/x", "v1.0.0")
    with pytest.raises(StoreError, match="outside the store"):
        store.put(mv, Kind.MOD, b"pwned")
    with pytest.raises(StoreError, match="outside the store"):
        store.get(mv, Kind.MOD)
    assert list(outside.rglob("*")) == [], "wrote through a symlink outside the store"


def test_symlinked_artifact_is_refused(tmp_path: Path, store: FilesystemStore, root: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    vdir = root / "example.com/m/@v"
    vdir.mkdir(parents=True)
    (vdir / "v1.0.0.mod").symlink_to(secret)
    mv = ModuleVersion("example.com/m", "v1.0.0")
    with pytest.raises(StoreError, match="symbolic link"):
        store.get(mv, Kind.MOD)
    with pytest.raises(StoreError, match="not a regular file"):
        store.size(mv, Kind.MOD)


def test_symlink_inside_root_is_followed(root: Path) -> None:
    (root / "real").mkdir(parents=True)
    (root / "example.com").symlink_to(root / "real", target_is_directory=True)
    store = FilesystemStore(root)
    mv = ModuleVersion("example.com/m", "v1.0.0")
    store.put(mv, Kind.MOD, b"ok")
    assert store.get(mv, Kind.MOD) == b"ok"


# -- failures are StoreErrors, never "not found" --------------------------------------------


def test_directory_in_place_of_an_artifact_is_an_error(store: FilesystemStore, root: Path) -> None:
    (root / "example.com/m/@v/v1.0.0.zip").mkdir(parents=True)
    mv = ModuleVersion("example.com/m", "v1.0.0")
    for call in (store.get, store.size, store.local_path):
        with pytest.raises(StoreError, match="not a regular file"):
            call(mv, Kind.ZIP)


def test_root_that_is_a_file_fails_with_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(StoreError) as info:
        FilesystemStore(blocker / "store")
    assert str(blocker / "store") in str(info.value)


@pytest.mark.skipif(IS_ROOT, reason="root bypasses file permissions")
def test_permission_denied_is_not_not_found(store: FilesystemStore, root: Path) -> None:
    mv = ModuleVersion("example.com/m", "v1.0.0")
    store.put(mv, Kind.MOD, b"x")
    vdir = root / "example.com/m/@v"
    vdir.chmod(0)
    try:
        with pytest.raises(StoreError, match="Permission denied") as info:
            store.get(mv, Kind.MOD)
        assert "v1.0.0.mod" in str(info.value)
    finally:
        vdir.chmod(0o755)


@pytest.mark.parametrize(
    ("err", "reason"),
    [(errno.EACCES, "Permission denied"), (errno.EIO, "Input/output error")],
)
def test_os_errors_on_read_keep_path_and_reason(
    store: FilesystemStore, monkeypatch: pytest.MonkeyPatch, err: int, reason: str
) -> None:
    mv = ModuleVersion("example.com/m", "v1.0.0")
    store.put(mv, Kind.MOD, b"x")
    real_open = os.open

    def failing_open(path: object, flags: int, *args: object) -> int:
        if str(path).endswith("v1.0.0.mod"):
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", failing_open)
    with pytest.raises(StoreError) as info:
        store.get(mv, Kind.MOD)
    assert reason in str(info.value) and "example.com/m/@v/v1.0.0.mod" in str(info.value)


def test_disk_full_on_write_is_a_store_error(
    store: FilesystemStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    mv = ModuleVersion("example.com/m", "v1.0.0")
    with pytest.raises(StoreError, match="No space left on device"):
        store.put(mv, Kind.ZIP, b"zip")
    monkeypatch.undo()
    assert store.get(mv, Kind.ZIP) is None
    assert _files(root / "_modgate/tmp") == [], "a failed write left its temp file"


# -- crash safety -----------------------------------------------------------------------------


def test_stale_temp_files_are_swept_at_open_while_another_holder_writes(root: Path) -> None:
    other = FilesystemStore(root)  # another process with the store open, maybe writing
    tmp = root / "_modgate/tmp"
    stale, fresh = tmp / "dead.tmp", tmp / "live.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"partial")
    old = time.time() - filesystem.STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    FilesystemStore(root)
    assert (stale.exists(), fresh.exists()) == (False, True)
    del other


def test_every_temp_file_goes_at_open_when_nobody_else_holds_the_store(root: Path) -> None:
    FilesystemStore(root)  # opened and gone, like a process that crashed mid-write
    tmp = root / "_modgate/tmp"
    left = [tmp / f"crash{i}.tmp" for i in range(3)]
    for path in left:
        path.write_bytes(b"partial")
    FilesystemStore(root)
    assert [p.name for p in left if p.exists()] == [], "a crash's temp files survived the start"


def test_the_store_is_held_by_a_child_process_until_it_dies(root: Path) -> None:
    # a separate process holds the store: a fresh temp file is its own, and stays
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from modgate.store.filesystem import "
            "FilesystemStore; s = FilesystemStore(sys.argv[1]); print('open', flush=True); "
            "time.sleep(60)",
            str(root),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        fresh = root / "_modgate/tmp/writing.tmp"
        fresh.write_bytes(b"partial")
        FilesystemStore(root)
        assert fresh.exists(), "a temp file of a live process was removed"
    finally:
        holder.kill()
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()
    FilesystemStore(root)
    assert not fresh.exists(), "the dead holder's temp file was kept"


def test_temp_sweep_is_capped(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = FilesystemStore(root)  # the cap applies while another process holds the store
    tmp = root / "_modgate/tmp"
    old = time.time() - filesystem.STALE_TEMP_SECONDS - 60
    for i in range(20):
        path = tmp / f"{i}.tmp"
        path.write_bytes(b"")
        os.utime(path, (old, old))
    monkeypatch.setattr(filesystem, "TEMP_SWEEP_LIMIT", 5)
    FilesystemStore(root)
    assert len(_files(tmp)) == 15
    del other


def test_partial_temp_file_is_never_served(store: FilesystemStore, root: Path) -> None:
    mv = ModuleVersion("example.com/m", "v1.0.0")
    with store.temp_file() as tmp:
        tmp.write_bytes(b"half a zi")
        assert store.get(mv, Kind.ZIP) is None
        assert store.local_path(mv, Kind.ZIP) is None


def test_racing_threads_leave_one_artifact_and_no_temp_files(
    store: FilesystemStore, root: Path
) -> None:
    mv = ModuleVersion("example.com/m", "v1.0.0")
    start = threading.Barrier(8)

    def write(i: int) -> None:
        start.wait()
        store.put(mv, Kind.ZIP, bytes([i]) * 100_000)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = store.get(mv, Kind.ZIP)
    assert data is not None and data == bytes([data[0]]) * 100_000
    assert _files(root / "_modgate/tmp") == [], "a losing writer left its temp file"


def test_put_file_copies_a_file_from_elsewhere(tmp_path: Path, store: FilesystemStore) -> None:
    src = tmp_path / "import.zip"
    src.write_bytes(b"zip")
    mv = ModuleVersion("example.com/m", "v1.0.0")
    store.put_file(mv, Kind.ZIP, src)
    assert store.get(mv, Kind.ZIP) == b"zip"
    assert src.read_bytes() == b"zip", "put_file consumed a file outside the store"


# -- interoperability with the go command -----------------------------------------------------


def _module_zip(mv: ModuleVersion, files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"{mv.path}@{mv.version}/{name}", data)
    return out.getvalue()


@pytest.mark.go
def test_go_command_reads_the_store_and_the_store_reads_its_cache(
    tmp_path: Path, store: FilesystemStore, root: Path
) -> None:
    mv = ModuleVersion("example.com/Hello", "v1.0.0")
    mod = b"module example.com/Hello\n\ngo 1.21\n"
    store.put(mv, Kind.INFO, b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}')
    store.put(mv, Kind.MOD, mod)
    store.put(mv, Kind.ZIP, _module_zip(mv, {"go.mod": mod, "hello.go": b"package hello\n"}))
    store.put_list(mv.path, b"v1.0.0\n")
    env = go_env(tmp_path, goproxy=root.resolve().as_uri())
    work = tmp_path / "work"
    work.mkdir()
    proc = run_go(["mod", "download", "-json", f"{mv.path}@latest"], work, env)
    result = json.loads(proc.stdout)
    assert (result.get("Version"), result.get("Error")) == ("v1.0.0", None), proc.stdout
    assert Path(result["Dir"], "hello.go").read_bytes() == b"package hello\n"

    cache = FilesystemStore(module_cache(env))
    assert cache.get(mv, Kind.MOD) == mod
    assert cache.versions(mv.path) == ["v1.0.0"]
    assert list(cache.modules()) == [mv.path]
    assert cache.get(mv, Kind.ZIP) == store.get(mv, Kind.ZIP)


def test_a_put_returns_only_after_every_new_directory_is_synced(
    store: FilesystemStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    mv = ModuleVersion("example.com/org/repo", "v1.0.0")
    store.put(mv, Kind.MOD, b"module example.com/org/repo\n")
    monkeypatch.undo()
    made = ["example.com", "example.com/org", "example.com/org/repo", "example.com/org/repo/@v"]
    parents = {str(root / d).rsplit("/", 1)[0] for d in made}
    temp = [p for p in synced if "/_modgate/tmp/" in p]
    assert len(temp) == 1 and synced[0] == temp[0], f"the temp file is synced first: {synced}"
    assert synced[1] == str(root / "example.com/org/repo/@v"), f"then its directory: {synced}"
    assert parents <= set(synced[2:]), f"the new directories' parents were not synced: {synced}"
    assert len(synced) == 2 + len(parents), f"each directory once: {synced}"


def test_put_many_stores_every_item_and_syncs_shared_directories_once(
    store: FilesystemStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_link = os.fsync, os.link

    def recording_fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def recording_link(src: str | Path, dst: str | Path) -> None:
        events.append(("link", str(dst)))
        real_link(src, dst)

    a, b = (
        ModuleVersion("example.com/org/a", "v1.0.0"),
        ModuleVersion("example.com/org/b", "v1.0.0"),
    )
    store.put(b, Kind.MOD, b"module example.com/org/b\n")  # already stored: kept as it is
    items = [
        (a, Kind.MOD, b"module example.com/org/a\n"),
        (a, Kind.INFO, b'{"Version":"v1.0.0"}\n'),
        (b, Kind.MOD, b"module other\n"),
        (b, Kind.INFO, b'{"Version":"v1.0.0"}\n'),
    ]
    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "link", recording_link)
    errors = store.put_many(items)
    monkeypatch.undo()
    assert errors == [None] * 4
    assert store.get(a, Kind.MOD) == items[0][2] and store.get(a, Kind.INFO) == items[1][2]
    assert store.get(b, Kind.MOD) == b"module example.com/org/b\n", "a stored artifact changed"
    assert store.get(b, Kind.INFO) == items[3][2]
    assert not list((root / "_modgate" / "tmp").iterdir()), "temp files were left"
    links = [i for i, (op, _) in enumerate(events) if op == "link"]
    temps = [i for i, (op, p) in enumerate(events) if op == "fsync" and "/_modgate/tmp/" in p]
    assert len(links) == 3 and len(temps) == 3, events
    assert all(t < lk for t, lk in zip(temps, links, strict=True)), (
        f"a link before its fsync: {events}"
    )
    for final in ("example.com/org/a/@v", "example.com/org/b/@v"):
        synced = [i for i, e in enumerate(events) if e == ("fsync", str(root / final))]
        assert len(synced) == 1, f"{final} synced {len(synced)} times: {events}"
        assert synced[0] > max(links), f"{final} synced before its links: {events}"


def test_put_many_reports_errors_per_item(
    tmp_path: Path, store: FilesystemStore, root: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "evil.com").symlink_to(outside, target_is_directory=True)
    good = ModuleVersion("example.com/good", "v1.0.0")
    bad = ModuleVersion("evil.com/x", "v1.0.0")
    errors = store.put_many([(bad, Kind.MOD, b"module evil.com/x\n"),
                             (good, Kind.MOD, b"module example.com/good\n")])  # fmt: skip
    assert isinstance(errors[0], StoreError) and "outside the store" in str(errors[0]), errors
    assert errors[1] is None
    assert store.get(good, Kind.MOD) == b"module example.com/good\n"
    assert list(outside.rglob("*")) == [], "wrote through a symlink outside the store"
