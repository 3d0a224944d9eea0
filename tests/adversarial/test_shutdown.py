"""SIGTERM with a hung remote: modgate exits within the grace period plus a few seconds.

A git remote or an upstream proxy that accepts a request and never answers
would otherwise hold the process until ``--git-timeout`` (300 s) or
``--upstream-timeout``. Bound: exit within ``--shutdown-grace`` + 5 s, the
hung git processes stopped, and nothing left under a final name in the store.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from adversarial.conftest import file_count
from helpers.servers import ModgateFactory, ModgateHandle, http_get

GRACE = 1.0
EXIT_SLACK = 5.0
"""Seconds beyond the grace period modgate may take to exit."""
WAIT_FOR_REQUEST = 15.0
ZIP_PATH = "/example.com/hung/@v/v1.0.0.zip"
GOMOD = b"module example.com/hung\n"


@dataclass
class StallingServer:
    """An HTTP server on loopback that reads each request and then answers nothing.

    With ``mod`` set, ``.mod`` requests are answered with it; ``.zip``
    requests get a header promising a large body and the first bytes of it.
    """

    mod: bytes | None = None
    sock: socket.socket = field(default_factory=socket.socket)
    requests: list[bytes] = field(default_factory=list)
    conns: list[socket.socket] = field(default_factory=list)
    closed_by_peer: int = 0
    got_request: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        try:
            while True:  # requests on a kept-alive connection, until one stalls
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                target = head.split(b" ", 2)[1]
                self.requests.append(target)
                if self.mod is None or not target.endswith(b".mod"):
                    break
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.mod))
                conn.sendall(self.mod)
            if target.endswith(b".zip"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nPK\x03\x04")
            self.got_request.set()
            while conn.recv(65536):  # stall until the other side goes away
                pass
            self.closed_by_peer += 1
        except OSError:
            self.closed_by_peer += 1

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def stalling() -> Iterator[type[StallingServer]]:
    started: list[StallingServer] = []

    def make(mod: bytes | None = None) -> StallingServer:
        server = StallingServer(mod=mod)
        server.start()
        started.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in started:
        server.close()


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc/<pid>/task/*/children, recursively)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        proc = Path("/proc") / str(pending.pop())
        try:
            for task in (proc / "task").iterdir():
                for child in (task / "children").read_text().split():
                    found.append(int(child))
                    pending.append(int(child))
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _request_in_background(server: ModgateHandle, path: str) -> threading.Thread:
    def ask() -> None:
        with contextlib.suppress(OSError):  # the connection is dropped at shutdown
            http_get(server.url, path, timeout=60)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    return thread


def _stop_and_time(server: ModgateHandle) -> float:
    start = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.wait(timeout=GRACE + EXIT_SLACK + 10)
    except Exception:
        server.kill()
        raise
    return time.monotonic() - start


def _final_files(store: Path) -> list[str]:
    """Files outside modgate's own state folder: artifacts under their final names."""
    out = []
    for root, dirs, files in os.walk(store):
        if Path(root) == store:
            dirs[:] = [d for d in dirs if d != "_modgate"]
        out += [str(Path(root, f).relative_to(store)) for f in files]
    return out


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_a_hung_git_fetch_within_the_grace(
    modgate: ModgateFactory, stalling: type[StallingServer], workers: str
) -> None:
    remote = stalling()
    server = modgate(
        "--workers", workers,
        "--upstream", "direct",
        "--git-rewrite", f"example.com/hung={remote.url}/repo.git",
        "--shutdown-grace", str(GRACE),
        "--access-log", "off",
    )  # fmt: skip
    _request_in_background(server, "/example.com/hung/@v/list")
    assert remote.got_request.wait(WAIT_FOR_REQUEST), (
        f"git never reached the hung remote; modgate said:\n{server.stderr_text()}"
    )
    git = [pid for pid in _children(server.proc.pid) if _alive(pid)]
    assert git, "no git process is running for the hung fetch"
    elapsed = _stop_and_time(server)
    assert server.proc.returncode == 0, f"exit code {server.proc.returncode}"
    assert elapsed <= GRACE + EXIT_SLACK, (
        f"modgate took {elapsed:.1f} s to exit after SIGTERM (grace {GRACE} s, hung git fetch)"
    )
    still = [pid for pid in git if _alive(pid)]
    assert still == [], f"git processes {still} outlived modgate"
    deadline = time.monotonic() + 5
    while remote.closed_by_peer == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert remote.closed_by_peer >= 1, "the hung connection to the remote was never closed"
    git_dir = server.store / "_modgate" / "git"
    left = sorted(p.name for p in git_dir.iterdir()) if git_dir.exists() else []
    assert left == [], f"a half-made mirror or a lock file was left: {left}"
    assert "stopped" in server.stderr_text(), "the shutdown did not say what it stopped"


def test_sigterm_stops_a_hung_upstream_download_and_stores_no_part_of_it(
    modgate: ModgateFactory, stalling: type[StallingServer]
) -> None:
    upstream = stalling(mod=GOMOD)
    server = modgate(
        "--upstream", upstream.url,
        "--shutdown-grace", str(GRACE),
        "--upstream-retries", "0",
        "--access-log", "off",
    )  # fmt: skip
    _request_in_background(server, ZIP_PATH)
    assert upstream.got_request.wait(WAIT_FOR_REQUEST), (
        f"the zip was never asked for; modgate said:\n{server.stderr_text()}"
    )
    time.sleep(0.2)  # the first bytes of the zip are in the temp file now
    elapsed = _stop_and_time(server)
    assert server.proc.returncode == 0
    assert elapsed <= GRACE + EXIT_SLACK, (
        f"modgate took {elapsed:.1f} s to exit after SIGTERM (grace {GRACE} s, hung upstream)"
    )
    final = _final_files(server.store)
    assert not any(name.endswith(".zip") for name in final), f"a partial zip was stored: {final}"
    assert file_count(server.store / "_modgate" / "tmp") == 0, "the partial zip's temp file stayed"
