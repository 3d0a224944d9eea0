"""Local servers for the end-to-end tests: modgate itself, plus small HTTP and store tools.

``start_modgate`` runs ``python -m modgate serve`` on an ephemeral port and
waits for its ``listening`` line; the static upstream lives in
:mod:`helpers.staticproxy`.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from helpers.staticproxy import LOOPBACK, StaticProxy

START_TIMEOUT = 30.0
"""Seconds modgate may take to print its ``listening`` line."""
STOP_TIMEOUT = 15.0
"""Seconds modgate may take to exit after SIGTERM."""
HTTP_TIMEOUT = 30.0
"""Seconds a test's own HTTP request may take."""


# --------------------------------------------------------------------------- HTTP client


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def __str__(self) -> str:
        shown = self.body[:300]
        return f"HTTP {self.status} ({self.content_type or 'no content type'}) body={shown!r}"


def http_get(base_url: str, path: str, *, timeout: float = HTTP_TIMEOUT) -> Response:
    """Send ``GET path`` exactly as given (no normalisation) and read the whole answer."""
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or LOOPBACK, parts.port, timeout=timeout)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        answer = conn.getresponse()
        body = answer.read()
        headers = {name.lower(): value for name, value in answer.getheaders()}
        return Response(answer.status, headers, body)
    finally:
        conn.close()


def metric_values(text: str, name: str) -> dict[str, float]:
    """Every sample of ``name`` in a Prometheus text page, keyed by its label text."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        series, _, value = line.rpartition(" ")
        base, brace, labels = series.partition("{")
        if base == name:
            values[brace + labels] = float(value)
    return values


def metric_total(text: str, name: str) -> float:
    """The sum of ``name`` over all its label sets (0 when absent)."""
    return sum(metric_values(text, name).values())


# --------------------------------------------------------------------------- modgate process


@dataclass
class ModgateHandle:
    """A running ``modgate serve``: its URL, process, and the stderr lines read so far."""

    url: str
    proc: subprocess.Popen[bytes]
    argv: list[str]
    store: Path
    stderr_lines: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def get(self, path: str, *, timeout: float = HTTP_TIMEOUT) -> Response:
        return http_get(self.url, path, timeout=timeout)

    def metrics(self) -> str:
        answer = self.get("/metrics")
        assert answer.status == 200, f"/metrics answered {answer}"
        return answer.body.decode()

    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        """Until ``text`` shows in stderr (read by a thread, so a line logged just
        now may not be there yet); fail naming the text after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr_text():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no log line containing {text!r} within {timeout} s; stderr:\n"
                    f"{self.stderr_text()[-2000:]}"
                )
            time.sleep(0.02)

    def stop(self) -> int:
        """SIGTERM, wait for the exit, and return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(
                    f"modgate did not exit within {STOP_TIMEOUT} s of SIGTERM\n"
                    f"stderr:\n{self.stderr_text()}"
                )
        self._join()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the process (no cleanup on its side) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
        self._join()

    def _join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=STOP_TIMEOUT)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def modgate_argv(command: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "modgate", command, *args]


DEAD_PROXY = "http://127.0.0.1:9"


def modgate_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's (already cleaned) environment plus ``env``."""
    merged = dict(os.environ)
    merged.setdefault("PYTHONUNBUFFERED", "1")
    # anything a modgate process would send beyond loopback goes to a dead local proxy
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        merged.setdefault(name, DEAD_PROXY)
    for name in ("NO_PROXY", "no_proxy"):
        merged.setdefault(name, "127.0.0.1,localhost,::1")
    if env:
        merged.update(env)
    return merged


def start_modgate(
    tmp_path: Path, *args: str, env: Mapping[str, str] | None = None
) -> ModgateHandle:
    """Start ``modgate serve`` with ``args`` and wait until it listens.

    ``--listen 127.0.0.1:0`` is added unless ``args`` name a listen address, and
    ``--store <tmp_path>/store`` unless ``args`` or ``env`` name a store. The
    caller stops the handle (the ``modgate`` fixture does it on teardown).
    """
    extra: list[str] = []
    environ = env or {}
    if "--listen" not in args and "MODGATE_LISTEN" not in environ:
        extra += ["--listen", f"{LOOPBACK}:0"]
    if "--store" in args:
        store = Path(args[args.index("--store") + 1])
    elif "MODGATE_STORE" in environ:
        store = Path(environ["MODGATE_STORE"])
    else:
        store = tmp_path / "store"
        extra += ["--store", str(store)]
    argv = modgate_argv("serve", *extra, *args)
    environ = dict(environ)
    if "--sumdb" not in args:
        # modgate verifies public modules against sum.golang.org by default; tests never
        # reach it, so verification is off unless the test configures a local database
        environ.setdefault("MODGATE_VERIFY_SUMDB", "off")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=modgate_env(environ),
    )
    handle = ModgateHandle(url="", proc=proc, argv=argv, store=store)
    lines: queue.Queue[str | None] = queue.Queue()
    handle._threads = [
        threading.Thread(
            target=_drain, args=(proc.stderr, handle.stderr_lines, lines), daemon=True
        ),
        threading.Thread(target=_drain, args=(proc.stdout, [], None), daemon=True),
    ]
    for thread in handle._threads:
        thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.01))
        except queue.Empty:
            handle.kill()
            pytest.fail(
                f"modgate printed no listening line within {START_TIMEOUT} s\n"
                f"command: {' '.join(argv)}\nstderr:\n{handle.stderr_text()}"
            )
        if line is None:
            code = proc.wait(timeout=STOP_TIMEOUT)
            handle._join()
            pytest.fail(
                f"modgate exited with {code} before listening\n"
                f"command: {' '.join(argv)}\nstderr:\n{handle.stderr_text()}"
            )
        url = _listening_url(line)
        if url is not None:
            handle.url = url
            return handle


def _listening_url(line: str) -> str | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if isinstance(event, dict) and event.get("event") == "listening":
        url = event.get("url")
        return url if isinstance(url, str) else None
    return None


def _drain(pipe: IO[bytes], sink: list[str], lines: queue.Queue[str | None] | None) -> None:
    """Read a pipe to its end so the child never blocks on a full pipe."""
    for raw in iter(pipe.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        sink.append(line)
        if lines is not None:
            lines.put(line)
    if lines is not None:
        lines.put(None)


def run_modgate(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run a short-lived modgate command (``import``, a failing ``serve``) to its end.

    Like ``start_modgate``, verification against sum.golang.org (which tests never
    reach) is off unless the test sets ``MODGATE_VERIFY_SUMDB`` or ``--sumdb``.
    """
    environ = dict(env or {})
    if "--sumdb" not in args:
        environ.setdefault("MODGATE_VERIFY_SUMDB", "off")
    return subprocess.run(
        modgate_argv(*args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=modgate_env(environ),
        timeout=timeout,
        check=False,
    )


# --------------------------------------------------------------------------- misc

StaticProxyFactory = Callable[[Path], StaticProxy]
"""The ``static_proxy`` fixture: start a :class:`StaticProxy` over a root."""
ModgateFactory = Callable[..., ModgateHandle]
"""The ``modgate`` fixture: ``modgate(*serve_args, env=None, store=None)``."""


def dead_port() -> int:
    """A loopback port with nothing listening (bound briefly, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``condition()`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def store_listing(store: Path, *, exclude: Sequence[str] = ("_modgate",)) -> dict[str, int]:
    """Every file under ``store`` (relative path -> size), without modgate's own folders."""
    listing: dict[str, int] = {}
    if not store.exists():
        return listing
    for item in sorted(store.rglob("*")):
        relative = item.relative_to(store)
        if relative.parts[0] in exclude or not item.is_file():
            continue
        listing[relative.as_posix()] = item.stat().st_size
    return listing
