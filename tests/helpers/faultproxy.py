"""A fault-injecting HTTP proxy on 127.0.0.1 for chaos tests, between modgate and an upstream.

Each request is forwarded to the upstream (one connection per request), the
whole answer is read, and then a :class:`Fault` chosen by ``plan`` decides
what the client gets:

- ``NONE``: the answer as it is (with ``Connection: close``);
- ``RESET``: the connection is reset (RST) before anything is sent;
- ``RESET_BODY``: the headers with the true ``Content-Length``, half the
  body, then a reset;
- ``STATUS_503``: ``503 Service Unavailable`` instead of the answer;
- ``TRUNCATE``: the headers with the true ``Content-Length``, half the body,
  then the connection is closed;
- ``TRUNCATE_UNFRAMED``: the headers without ``Content-Length`` (the body
  ends when the connection closes), half the body, then close: to the
  client this looks like a complete, shorter body;
- ``FLIP``: a zip's first file-data byte inverted (same length, same headers);
- ``STALL``: the headers, then nothing until the client gives up;
- ``SLOW``: the headers, then one byte per second (``slow_interval``).

``plan(n, path)`` gets the request's number (from 0) and path and returns
the fault; :meth:`FaultProxy.burst` and :meth:`FaultProxy.always` build the
common plans. ``log`` records ``(path, fault)`` per request.
"""

from __future__ import annotations

import enum
import socket
import struct
import threading
from collections.abc import Callable
from contextlib import suppress

LOOPBACK = "127.0.0.1"
IO_TIMEOUT = 30.0
STALL_POLL = 0.05


def accept_loop(
    listener: socket.socket, closing: threading.Event, handle: Callable[[socket.socket], None]
) -> None:
    """Accept connections until ``closing`` is set (the listener has a timeout) or the
    listener is closed; each one is handled in a daemon thread."""
    while not closing.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


class Fault(enum.Enum):
    NONE = "none"
    RESET = "reset"
    RESET_BODY = "reset-body"
    STATUS_503 = "503"
    TRUNCATE = "truncate"
    TRUNCATE_UNFRAMED = "truncate-unframed"
    FLIP = "flip"
    STALL = "stall"
    SLOW = "slow"


Plan = Callable[[int, str], Fault]


def flip_zip_data(body: bytes) -> bytes:
    """``body`` with the first data byte of its first zip entry inverted (if it is a zip)."""
    if len(body) < 30 or body[:4] != b"PK\x03\x04":
        return body
    name_len, extra_len = struct.unpack_from("<HH", body, 26)
    at = 30 + name_len + extra_len
    if at >= len(body):
        return body
    return body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]


class FaultProxy:
    """Forwards to ``upstream`` (``host:port``) and injects faults per ``plan``."""

    def __init__(self, upstream: str, plan: Plan | None = None) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.plan: Plan = plan or (lambda n, path: Fault.NONE)
        self.slow_interval = 1.0
        self.log: list[tuple[str, Fault]] = []
        self._count = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(STALL_POLL * 4)
        self.url = f"http://{LOOPBACK}:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    # ---- plans ---------------------------------------------------------------------------

    @staticmethod
    def always(fault: Fault, suffix: str = "") -> Plan:
        """``fault`` for every request whose path ends with ``suffix``."""
        return lambda n, path: fault if path.endswith(suffix) else Fault.NONE

    @staticmethod
    def burst(fault: Fault, count: int, suffix: str = "") -> Plan:
        """``fault`` for the first ``count`` requests of each path ending with ``suffix``."""
        seen: dict[str, int] = {}
        lock = threading.Lock()

        def plan(n: int, path: str) -> Fault:
            if not path.endswith(suffix):
                return Fault.NONE
            with lock:
                seen[path] = seen.get(path, 0) + 1
                return fault if seen[path] <= count else Fault.NONE

        return plan

    # ---- serving -------------------------------------------------------------------------

    def _accept(self) -> None:
        accept_loop(self._listener, self._closing, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(IO_TIMEOUT)
        try:
            head = _read_head(conn)
            if head is None:
                return
            path = head.split(b" ", 2)[1].decode("latin-1")
            with self._lock:
                n = self._count
                self._count += 1
            fault = self.plan(n, path)
            self.log.append((path, fault))
            if fault is Fault.RESET:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if fault is Fault.STATUS_503:
                body = b"upstream overloaded (injected)\n"
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                return
            status, headers, body = self._forward(head)
            self._answer(conn, fault, status, headers, body)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                conn.close()

    def _forward(self, head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
        lines = head.split(b"\r\n")
        kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith(b"connection:")]
        request = b"\r\n".join([lines[0], *kept, b"Connection: close", b"", b""])
        with socket.create_connection(self.upstream, timeout=IO_TIMEOUT) as up:
            up.sendall(request)
            data = bytearray()
            while chunk := up.recv(65536):
                data += chunk
        raw_head, _, body = bytes(data).partition(b"\r\n\r\n")
        status, *header_lines = raw_head.split(b"\r\n")
        headers = [tuple(h.split(b":", 1)) for h in header_lines if b":" in h]
        return status, [(k.strip(), v.strip()) for k, v in headers], body

    def _answer(
        self, conn: socket.socket, fault: Fault, status: bytes, headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:  # fmt: skip
        kept = [
            (k, v) for k, v in headers
            if k.lower() not in (b"content-length", b"connection", b"transfer-encoding")
        ]  # fmt: skip
        if fault is Fault.FLIP:
            body = flip_zip_data(body)
        framed = fault is not Fault.TRUNCATE_UNFRAMED
        out = [status, *(k + b": " + v for k, v in kept)]
        if framed:
            out.append(f"Content-Length: {len(body)}".encode())
        out.append(b"Connection: close")
        conn.sendall(b"\r\n".join([*out, b"", b""]))
        if fault in (Fault.TRUNCATE, Fault.TRUNCATE_UNFRAMED, Fault.RESET_BODY):
            conn.sendall(body[: len(body) // 2])
            if fault is Fault.RESET_BODY:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if fault is Fault.STALL:
            while not self._closing.wait(STALL_POLL):
                if _peer_closed(conn):
                    return
            return
        if fault is Fault.SLOW:
            for i in range(len(body)):
                conn.sendall(body[i : i + 1])
                if self._closing.wait(self.slow_interval) or _peer_closed(conn):
                    return
            return
        conn.sendall(body)

    def close(self) -> None:
        self._closing.set()
        with suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)


def _read_head(conn: socket.socket) -> bytes | None:
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return bytes(data.partition(b"\r\n\r\n")[0])


def _peer_closed(conn: socket.socket) -> bool:
    """Whether the client closed its side (a read would return EOF or fail)."""
    try:
        conn.setblocking(False)
        try:
            return conn.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        finally:
            conn.setblocking(True)
            conn.settimeout(IO_TIMEOUT)
    except OSError:
        return True
