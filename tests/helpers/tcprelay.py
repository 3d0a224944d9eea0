"""A TCP relay on 127.0.0.1 that can cut an upload in the middle, for object-store outage tests.

:class:`CutRelay` copies bytes both ways between each client connection and
``127.0.0.1:port`` (an S3 server), unchanged, so request bodies (a PUT of a
zip) pass through, unlike :mod:`helpers.faultproxy`, which forwards request
heads only. Once a connection has sent ``cut_after`` bytes towards the
server, the relay resets it on both sides (RST) and from then on resets every
new connection at once (``refusing``), as a server that stopped does, until
the test sets ``refusing`` back to False. ``cut`` is set when that happened.
"""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress

from helpers.faultproxy import LOOPBACK, accept_loop

CHUNK = 64 * 1024
POLL = 0.2


class CutRelay:
    def __init__(self, port: int, cut_after: int | None = None) -> None:
        self.port = port
        self.cut_after = cut_after
        self.cut = threading.Event()
        self.refusing = False
        self._closing = threading.Event()
        self._listener = socket.create_server((LOOPBACK, 0))
        self._listener.settimeout(POLL)
        self.url = f"http://{LOOPBACK}:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        accept_loop(self._listener, self._closing, self._relay)

    def _relay(self, client: socket.socket) -> None:
        if self.refusing:
            _reset(client)
            return
        try:
            server = socket.create_connection((LOOPBACK, self.port), timeout=POLL * 10)
        except OSError:  # the server is stopped: the client sees its connection reset
            _reset(client)
            return
        server.settimeout(None)
        back = threading.Thread(target=self._pump, args=(server, client, False), daemon=True)
        back.start()
        self._pump(client, server, True)
        back.join(timeout=5)
        for sock in (client, server):
            with suppress(OSError):
                sock.close()

    def _pump(self, src: socket.socket, dst: socket.socket, upload: bool) -> None:
        sent = 0
        try:
            while chunk := src.recv(CHUNK):
                sent += len(chunk)
                limit = self.cut_after
                if upload and limit is not None and sent > limit and not self.cut.is_set():
                    dst.sendall(chunk[: len(chunk) - (sent - limit)])
                    self.refusing = True
                    self.cut.set()
                    _reset(src)
                    _reset(dst)
                    return
                dst.sendall(chunk)
            with suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
        except OSError:
            for sock in (src, dst):
                with suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self._closing.set()
        with suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)


def _reset(sock: socket.socket) -> None:
    """Close with a reset (RST), as a stopped server's connections end."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.close()
