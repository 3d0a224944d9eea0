"""The contract every Store implementation runs.

A backend's test module subclasses :class:`StoreContract` and overrides
``make_store(tmp_path)``; every test here then runs against that backend::

    class TestMyStore(StoreContract):
        def make_store(self, tmp_path: Path) -> Store:
            return MyStore(tmp_path / "store")

``make_store`` must return a store over the same data when called again with
the same ``tmp_path`` (in this process or another): the multi-process tests
open one store per process. The subclass must live at module level of an
importable test module, because child processes are started with ``spawn``.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from modgate.protocol.errors import ModgateError
from modgate.protocol.module import ModuleVersion
from modgate.store.base import Kind, Store

MV = ModuleVersion("example.com/mod", "v1.0.0")
CHILD_TIMEOUT = 30.0
"""Seconds a child process may take; a hang fails the test instead of blocking it."""
LOCK_PROBE = 0.3
"""Seconds a blocked locker is given to (wrongly) get the lock."""
WRITERS = 4
ARTIFACT_SIZE = 1 << 20

HOSTILE_MODULES = [
    "",
    ".",
    "..",
    "../evil.com",
    "example.com/../../evil",
    "example.com/x/..",
    "example.com//x",
    "example.com/./x",
    "/abs.com/x",
    "example.com/x/",
    "_modgate/meta",
    "Example.com/x",
    "example.com/x\x00y",
    "example.com\\..\\..\\evil",
    "example.com/x/@v",
]
HOSTILE_VERSIONS = ["", ".", "..", "../../evil", "v1.0.0/../../x", "a/b", "v1.0.0\x00", "v1!0"]
HOSTILE_META = ["", "/abs", "../x", "a/../../x", "a//b", "./a", "a/.", "a\x00b", "a/"]

SPAWN = multiprocessing.get_context("spawn")


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for directories)."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def _hold_lock(
    contract: StoreContract, tmp_path: Path, name: str, ready: Any, got: Any, release: Any
) -> None:
    store = contract.make_store(tmp_path)
    ready.set()
    with store.lock(name):
        got.set()
        release.wait(CHILD_TIMEOUT)


def _write_artifact(
    contract: StoreContract, tmp_path: Path, index: int, start: Any, via_file: bool
) -> None:
    store = contract.make_store(tmp_path)
    data = bytes([index]) * ARTIFACT_SIZE
    start.wait(CHILD_TIMEOUT)
    if via_file:
        with store.temp_file() as tmp:
            tmp.write_bytes(data)
            store.put_file(MV, Kind.ZIP, tmp)
    else:
        store.put(MV, Kind.ZIP, data)


def _join(procs: list[Any]) -> None:
    for proc in procs:
        proc.join(CHILD_TIMEOUT)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join()
    codes = [proc.exitcode for proc in procs]
    assert codes == [0] * len(procs), f"child exit codes {codes}, want all 0"


class StoreContract:
    def make_store(self, tmp_path: Path) -> Store:
        raise NotImplementedError("a backend's test class overrides make_store")

    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return self.make_store(tmp_path)

    # -- artifacts --------------------------------------------------------

    @pytest.mark.parametrize("kind", list(Kind))
    def test_round_trip(self, store: Store, kind: Kind) -> None:
        data = f"content of {kind.value}\n".encode()
        assert store.get(MV, kind) is None, "fresh store already had the artifact"
        assert store.size(MV, kind) is None
        assert store.local_path(MV, kind) is None
        store.put(MV, kind, data)
        assert store.get(MV, kind) == data
        assert store.size(MV, kind) == len(data)
        path = store.local_path(MV, kind)
        if path is not None:
            assert path.read_bytes() == data, f"local_path {path} holds other bytes"
        others = [k for k in Kind if k is not kind]
        assert [store.get(MV, k) for k in others] == [None] * len(others)

    @pytest.mark.parametrize("kind", list(Kind))
    def test_artifacts_are_immutable(self, store: Store, kind: Kind) -> None:
        store.put(MV, kind, b"first")
        store.put(MV, kind, b"second, different")
        with store.temp_file() as tmp:
            tmp.write_bytes(b"third, from a file")
            store.put_file(MV, kind, tmp)
        assert store.get(MV, kind) == b"first", "a stored artifact was replaced"

    def test_put_file_and_temp_cleanup(self, store: Store) -> None:
        with store.temp_file() as tmp:
            tmp.write_bytes(b"zip bytes")
            store.put_file(MV, Kind.ZIP, tmp)
        assert not tmp.exists(), f"temp file {tmp} left behind after put_file"
        assert store.get(MV, Kind.ZIP) == b"zip bytes"
        with store.temp_file() as unused:
            unused.write_bytes(b"never stored")
        assert not unused.exists(), f"unused temp file {unused} left behind"
        with pytest.raises(RuntimeError), store.temp_file() as failed:
            failed.write_bytes(b"half")
            raise RuntimeError("writer failed")
        assert not failed.exists(), f"temp file {failed} left behind after an error"

    def test_case_encoded_paths_are_distinct(self, store: Store) -> None:
        upper = ModuleVersion("github.com/Azure/x", "v1.0.0-RC1")
        lower = ModuleVersion("github.com/azure/x", "v1.0.0-rc1")
        store.put(upper, Kind.MOD, b"upper")
        store.put(lower, Kind.MOD, b"lower")
        assert (store.get(upper, Kind.MOD), store.get(lower, Kind.MOD)) == (b"upper", b"lower")
        assert store.versions("github.com/Azure/x") == ["v1.0.0-RC1"]

    def test_versions_and_modules(self, store: Store) -> None:
        assert store.versions("example.com/mod") == []
        for mv in (MV, ModuleVersion("example.com/mod", "v1.1.0")):
            store.put(mv, Kind.MOD, b"module example.com/mod\n")
        store.put(ModuleVersion("example.com/mod", "v2.0.0"), Kind.INFO, b"{}")  # no .mod
        store.put(ModuleVersion("example.com/mod/v2", "v2.0.0"), Kind.MOD, b"x")
        store.put_list("example.com/only-list", b"v1.0.0\n")
        assert sorted(store.versions("example.com/mod")) == ["v1.0.0", "v1.1.0"]
        assert sorted(store.modules()) == ["example.com/mod", "example.com/mod/v2"]

    # -- list and meta ------------------------------------------------------

    def test_list_is_replaced_with_a_timestamp(self, store: Store) -> None:
        assert store.get_list("example.com/mod") is None
        before = time.time()
        store.put_list("example.com/mod", b"v1.0.0\n")
        first = store.get_list("example.com/mod")
        assert first is not None and first.data == b"v1.0.0\n"
        assert before - 2 <= first.written <= time.time() + 2, f"written={first.written}"
        store.put_list("example.com/mod", b"v1.0.0\nv1.1.0\n")
        second = store.get_list("example.com/mod")
        assert second is not None and second.data == b"v1.0.0\nv1.1.0\n"
        assert second.written >= first.written

    def test_meta_is_replaced_and_names_nest(self, store: Store) -> None:
        names = ["readyz", "latest/golang.org/x/tools", "latest/golang.org/x/tools/gopls"]
        for name in names:
            assert store.get_meta(name) is None
            store.put_meta(name, f"one {name}".encode())
        for name in names:
            store.put_meta(name, f"two {name}".encode())
        got = {name: store.get_meta(name) for name in names}
        assert {n: s.data if s else None for n, s in got.items()} == {
            n: f"two {n}".encode() for n in names
        }
        assert all(s is not None and abs(s.written - time.time()) < 5 for s in got.values())

    # -- hostile names ------------------------------------------------------

    def test_hostile_names_raise_and_write_nothing(self, store: Store, tmp_path: Path) -> None:
        victim = tmp_path / "evil"
        before = _tree(tmp_path)
        accepted: list[str] = []

        def refuse(what: str, call: Any, *args: Any) -> None:
            try:
                call(*args)
            except ModgateError:
                return
            accepted.append(what)

        for module in HOSTILE_MODULES:
            mv = ModuleVersion(module, "v1.0.0")
            refuse(f"put {module!r}", store.put, mv, Kind.MOD, b"pwned")
            refuse(f"get {module!r}", store.get, mv, Kind.MOD)
            refuse(f"size {module!r}", store.size, mv, Kind.MOD)
            refuse(f"put_list {module!r}", store.put_list, module, b"pwned")
            refuse(f"get_list {module!r}", store.get_list, module)
            refuse(f"versions {module!r}", store.versions, module)
        for version in HOSTILE_VERSIONS:
            mv = ModuleVersion("example.com/mod", version)
            refuse(f"put version {version!r}", store.put, mv, Kind.ZIP, b"pwned")
            refuse(f"local_path version {version!r}", store.local_path, mv, Kind.ZIP)
        for name in HOSTILE_META:
            refuse(f"put_meta {name!r}", store.put_meta, name, b"pwned")
            refuse(f"get_meta {name!r}", store.get_meta, name)
        assert accepted == [], f"accepted hostile names: {accepted}"
        assert not victim.exists(), f"{victim} was written through a hostile name"
        assert _tree(tmp_path) == before, "a refused call still changed files"

    # -- locks and concurrency ----------------------------------------------

    def test_lock_is_exclusive_across_threads(self, store: Store) -> None:
        got = threading.Event()

        def other() -> None:
            with store.lock("key"):
                got.set()

        with store.lock("key"):
            thread = threading.Thread(target=other, daemon=True)
            thread.start()
            assert not got.wait(LOCK_PROBE), "a second thread got a held lock"
            with store.lock("another key"):
                pass  # other names do not block
        assert got.wait(CHILD_TIMEOUT), "the waiting thread never got the released lock"
        thread.join(CHILD_TIMEOUT)

    def test_try_lock_takes_only_a_free_lock(self, store: Store) -> None:
        release = store.try_lock("key")
        assert release is not None, "a free lock was not taken"
        assert store.try_lock("key") is None, "a held lock was taken again"
        other = store.try_lock("another key")
        assert other is not None, "other names do not block"
        other()
        got = threading.Event()

        def waiter() -> None:
            with store.lock("key"):
                got.set()

        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        assert not got.wait(LOCK_PROBE), "lock() got a lock try_lock holds"
        release()
        assert got.wait(CHILD_TIMEOUT), "the released lock was never handed on"
        thread.join(CHILD_TIMEOUT)
        again = store.try_lock("key")
        assert again is not None, "the lock stayed held after its holder left"
        again()

    def test_lock_is_exclusive_across_processes(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        ready, got, release = SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
        args = (self, tmp_path, "key", ready, got, release)
        proc = SPAWN.Process(target=_hold_lock, args=args)
        with store.lock("key"):
            proc.start()
            assert ready.wait(CHILD_TIMEOUT), "the child process did not start"
            assert not got.wait(LOCK_PROBE), "another process got a held lock"
        assert got.wait(CHILD_TIMEOUT), "the other process never got the released lock"
        release.set()
        _join([proc])
        ready2, got2, release2 = SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
        args = (self, tmp_path, "key", ready2, got2, release2)
        holder = SPAWN.Process(target=_hold_lock, args=args)
        holder.start()
        try:
            assert got2.wait(CHILD_TIMEOUT), "the child never got the free lock"
            acquired = threading.Event()

            def take() -> None:
                with store.lock("key"):
                    acquired.set()

            thread = threading.Thread(target=take, daemon=True)
            thread.start()
            assert not acquired.wait(LOCK_PROBE), "got a lock another process holds"
        finally:
            release2.set()
            _join([holder])
        assert acquired.wait(CHILD_TIMEOUT)
        thread.join(CHILD_TIMEOUT)

    @pytest.mark.parametrize("via_file", [False, True], ids=["put", "put_file"])
    def test_concurrent_writers_leave_one_complete_artifact(
        self, tmp_path: Path, via_file: bool
    ) -> None:
        store = self.make_store(tmp_path)
        start = SPAWN.Barrier(WRITERS)
        procs = [
            SPAWN.Process(target=_write_artifact, args=(self, tmp_path, i, start, via_file))
            for i in range(WRITERS)
        ]
        for proc in procs:
            proc.start()
        _join(procs)
        data = store.get(MV, Kind.ZIP)
        assert data is not None, "no writer's artifact was stored"
        assert len(data) == ARTIFACT_SIZE, f"stored {len(data)} bytes, want {ARTIFACT_SIZE}"
        assert data == bytes([data[0]]) * ARTIFACT_SIZE, "the artifact mixes several writers"
        assert data[0] in range(WRITERS)
