"""A static upstream proxy for the tests: a GOPROXY-layout directory over HTTP on 127.0.0.1.

It can misbehave on request (status overrides, a delay, a hang, slow
streaming) and records what it was asked, so modgate's fallback,
singleflight, crash-safety and caching rules can be observed from outside.
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"
POLL_INTERVAL = 0.02
"""Seconds between shutdown checks (keeps teardown fast)."""
CLOSE_TIMEOUT = 15.0

_CONTENT_TYPES = {
    ".info": "application/json",
    ".zip": "application/zip",
    ".mod": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Throttle:
    """Stream bodies of at least ``min_size`` bytes in ``chunk`` pieces, sleeping between."""

    chunk: int = 256 * 1024
    pause: float = 0.05
    min_size: int = 1024 * 1024


class StaticProxy:
    """A threaded HTTP server on 127.0.0.1 serving a GOPROXY-layout directory.

    Request paths are percent-decoded and mapped below ``root`` (``!`` stays as
    it is, like the on-disk layout). Knobs, all changeable while it runs:

    - ``statuses[path] = code`` answers ``code`` for that exact decoded path;
      ``status_all = code`` answers ``code`` for every request.
    - ``delay`` seconds before every answer.
    - ``hang`` accepts requests and never answers until the server closes.
    - ``throttle`` streams big bodies slowly (see :class:`Throttle`).

    ``requests`` records every decoded path in arrival order; ``sent`` the
    body bytes written so far per path.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.statuses: dict[str, int] = {}
        self.status_all: int | None = None
        self.delay = 0.0
        self.hang = False
        self.throttle: Throttle | None = None
        self.requests: list[str] = []
        self.sent: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server((LOOPBACK, 0), _handler_for(self))
        self.port = self._server.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> StaticProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=CLOSE_TIMEOUT)

    def count(self, path: str) -> int:
        with self._lock:
            return self.requests.count(path)

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.requests)

    def bytes_sent(self, path: str) -> int:
        with self._lock:
            return self.sent.get(path, 0)

    def _record(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)

    def _add_sent(self, path: str, n: int) -> None:
        with self._lock:
            self.sent[path] = self.sent.get(path, 0) + n

    def _file_for(self, path: str) -> Path | None:
        relative = path.lstrip("/")
        if not relative or "\x00" in relative:
            return None
        candidate = (self.root / relative).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            return None
        return candidate if candidate.is_file() else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that goes away mid-answer (modgate killed on purpose) is expected.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


def _handler_for(proxy: StaticProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            proxy._record(path)
            if proxy.hang:
                proxy._closing.wait()
                self.close_connection = True
                return
            if proxy.delay:
                time.sleep(proxy.delay)
            status = proxy.status_all or proxy.statuses.get(path)
            if status is not None:
                self._send_text(status, f"static proxy: forced {status} for {path}\n")
                return
            file = proxy._file_for(path)
            if file is None:
                self._send_text(404, f"static proxy: {path} not found\n")
                return
            self._send_file(path, file)

        def _send_text(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_file(self, path: str, file: Path) -> None:
            data = file.read_bytes()
            self.send_response(200)
            content_type = _CONTENT_TYPES.get(file.suffix, "text/plain; charset=utf-8")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            throttle = proxy.throttle
            if throttle is None or len(data) < throttle.min_size:
                self.wfile.write(data)
                proxy._add_sent(path, len(data))
                return
            for start in range(0, len(data), throttle.chunk):
                if proxy._closing.is_set():
                    return
                piece = data[start : start + throttle.chunk]
                self.wfile.write(piece)
                self.wfile.flush()
                proxy._add_sent(path, len(piece))
                time.sleep(throttle.pause)

    return Handler
