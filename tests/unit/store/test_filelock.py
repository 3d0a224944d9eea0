"""Lock files removed on release still exclude every other holder (threads and processes)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from modgate.store import filelock
from modgate.store.filesystem import FilesystemStore

PROCESSES = 4
ROUNDS = 150
THREADS = 8


def _bump(counter: Path) -> None:
    """Read, yield the CPU, write: loses updates unless the caller is alone."""
    value = int(counter.read_text() or "0")
    os.sched_yield()
    counter.write_text(str(value + 1))


def test_removed_lock_files_keep_processes_mutually_exclusive(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    store = FilesystemStore(tmp_path / "store")
    children = []
    for _ in range(PROCESSES):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 0
            try:
                for i in range(ROUNDS):
                    if i % 2:
                        with store.lock("shared"):
                            _bump(counter)
                    else:
                        while (release := store.try_lock("shared")) is None:
                            os.sched_yield()
                        _bump(counter)
                        release()
            except BaseException:
                code = 1
            os._exit(code)
        children.append(pid)
    codes = [os.waitpid(pid, 0)[1] for pid in children]
    assert codes == [0] * PROCESSES
    assert int(counter.read_text()) == PROCESSES * ROUNDS, "two holders overlapped"
    assert os.listdir(tmp_path / "store/_modgate/locks") == [], "a lock file was left behind"


def test_threads_waiting_on_a_removed_file_start_over(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    counter = tmp_path / "counter"
    counter.write_text("0")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(ROUNDS):
                with filelock.locked(path):
                    _bump(counter)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert int(counter.read_text()) == THREADS * ROUNDS, "two holders overlapped"
    assert not path.exists()


def test_sweep_leaves_held_locks(tmp_path: Path) -> None:
    held = tmp_path / "held.lock"
    stale = tmp_path / "stale.lock"
    stale.write_bytes(b"")
    (tmp_path / "other.txt").write_bytes(b"")
    fd = filelock.acquire(held)
    assert fd is not None
    try:
        assert filelock.sweep(tmp_path) == 1
        assert sorted(os.listdir(tmp_path)) == ["held.lock", "other.txt"]
        assert filelock.acquire(held, wait=False) is None, "the swept lock lost its holder"
    finally:
        filelock.release(fd, held)
    assert sorted(os.listdir(tmp_path)) == ["other.txt"]
