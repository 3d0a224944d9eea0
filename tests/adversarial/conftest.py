"""Shared tools of the standing adversarial suite (``tests/adversarial/``).

Every scenario here plays a hostile client against a real ``modgate serve``
on 127.0.0.1 and states the bound it must stay within (time, requests,
bytes, files, processes). The suite is part of the normal test command; each
test is bounded in count and time, and nothing leaves loopback: the network
guard of ``tests/conftest.py`` applies here too, and every modgate process
started through the ``modgate`` fixture sends anything beyond loopback to a
dead local proxy.

Helpers:

- :func:`raw_exchange` sends raw bytes on one connection and reads what
  comes back until the server closes or a time limit passes;
- :func:`process_stats` reads a process's RSS, open files, threads and
  children from ``/proc``;
- :func:`file_count` counts the files below a directory;
- the ``recording_listener`` fixture records every connection made to it:
  as the proxy of a modgate process it proves that nothing went out;
- the ``recording_upstream`` fixture starts a :class:`StaticProxy` over an
  empty (or given) root that records every path it is asked for, to prove
  that something was never forwarded.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.staticproxy import LOOPBACK, StaticProxy
from modgate.metrics import Metrics

READ_CHUNK = 65536


class HealthOnly:
    """The least a server needs to answer /healthz."""

    list_max_age = 60

    def __init__(self) -> None:
        self.metrics = Metrics()

    async def ready(self) -> tuple[bool, str]:
        return True, "ok"

    async def aclose(self) -> None:
        return None


def address_of(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``http://host:port`` URL."""
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or LOOPBACK, parts.port or 80


def raw_exchange(url: str, data: bytes, *, timeout: float = 5.0, half_close: bool = False) -> bytes:
    """Send ``data`` as is on a new connection to ``url``; return everything read back.

    Reading stops when the server closes the connection or ``timeout``
    seconds after the send (whichever comes first); ``half_close`` shuts
    down the sending side after the data, as a client that has nothing
    more to say.
    """
    deadline = time.monotonic() + timeout
    received = bytearray()
    with socket.create_connection(address_of(url), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(READ_CHUNK)
            except TimeoutError:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return bytes(received)


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split the bytes of pipelined HTTP/1.1 answers: ``(status, headers, body)`` each.

    Bodies are delimited by Content-Length (modgate sends no chunked
    answers); an incomplete last answer is dropped.
    """
    out = []
    rest = raw
    while rest.startswith(b"HTTP/1."):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0][9:12])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if len(rest) < length:
            break
        out.append((status, headers, rest[:length]))
        rest = rest[length:]
    return out


def status_lines(raw: bytes) -> list[int]:
    """The status codes of the complete answers in ``raw``, in order."""
    return [status for status, _, _ in responses(raw)]


@dataclass(frozen=True)
class ProcessStats:
    rss_bytes: int
    open_files: int
    threads: int
    children: int


def process_stats(pid: int) -> ProcessStats:
    """RSS, open file descriptors, threads and direct children of ``pid`` (Linux /proc)."""
    proc = Path("/proc") / str(pid)
    rss = 0
    threads = 0
    for line in (proc / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    open_files = len(os.listdir(proc / "fd"))
    children = 0
    for task in (proc / "task").iterdir():
        children_file = task / "children"
        if children_file.exists():
            children += len(children_file.read_text().split())
    return ProcessStats(rss, open_files, threads, children)


def file_count(root: Path) -> int:
    """Files (not directories) below ``root``; 0 when it does not exist."""
    if not root.exists():
        return 0
    return sum(len(files) for _, _, files in os.walk(root))


class RecordingListener:
    """A loopback TCP listener that records the first line of every connection and closes it.

    Set as ``HTTP_PROXY``/``HTTPS_PROXY`` (with an empty ``NO_PROXY``) of a
    modgate process, it sees every outbound request that process makes, by
    httpx or by git: ``lines`` then proves that nothing left.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._server = socket.create_server((LOOPBACK, 0))
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2.0)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0]
                except OSError:
                    first = b"(nothing read)"
                with self._lock:
                    self.lines.append(first.decode("latin-1"))

    def close(self) -> None:
        self._closing.set()
        self._server.close()
        self._thread.join(timeout=5)

    def proxy_env(self) -> dict[str, str]:
        """Environment that sends every outbound request of a child process here."""
        env = {
            name: self.url
            for name in (
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "http_proxy",
                "https_proxy",
                "ALL_PROXY",
                "all_proxy",
            )
        }
        env.update({"NO_PROXY": "", "no_proxy": ""})
        return env


@pytest.fixture
def recording_listener() -> Iterator[RecordingListener]:
    """A :class:`RecordingListener`, closed on teardown."""
    listener = RecordingListener()
    yield listener
    listener.close()


RecordingUpstreamFactory = Callable[..., StaticProxy]


@pytest.fixture
def recording_upstream(tmp_path: Path) -> Iterator[RecordingUpstreamFactory]:
    """Start recording upstreams: ``recording_upstream(root=None)`` -> :class:`StaticProxy`.

    Without ``root`` it serves an empty directory (every request answers
    404) and records each decoded path in ``.requests``. Closed on teardown.
    """
    started: list[StaticProxy] = []

    def start(root: Path | None = None) -> StaticProxy:
        if root is None:
            root = tmp_path / f"upstream{len(started)}"
            root.mkdir()
        proxy = StaticProxy(root)
        started.append(proxy)
        return proxy

    yield start
    for proxy in reversed(started):
        proxy.close()
