"""A smart-HTTP git server on 127.0.0.1 (``git http-backend``) that can die during a fetch.

``cut_full_fetches_at`` makes every fetch that asks for whole history (no
``deepen 1`` line in the request: a full clone, or ``--unshallow``) send its
headers and that many bytes of the pack, then drop the connection, as a
server process killed mid-fetch would.
Depth-1 fetches, which are what the go command makes for one version, are
served whole. ``stall_full_fetches`` delays the answer to those fetches
instead, like a history too large to send within the client's timeout.
``full_fetches`` counts the fetches that asked for whole history.
``rtt`` delays every answer, so both sides pay a round trip per HTTP request
as they would against a real hosting site.
"""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_DEPTH_ONE = re.compile(rb"000cdeepen 1|000ddeepen 1\n")
"""The pkt-line of a depth-1 request (protocol v2 ends it without a newline)."""


class GitHTTPServer:
    def __init__(self, repos: Path, rtt: float = 0.0) -> None:
        backend = subprocess.run(
            ["git", "--exec-path"], capture_output=True, text=True, check=True
        ).stdout.strip()
        self.cut_full_fetches_at: int | None = None
        self.stall_full_fetches = 0.0
        """Seconds to wait before answering a full fetch (to run past --git-timeout)."""
        self.full_fetches = 0
        self.cut = 0
        self.rtt = rtt
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                self._cgi(b"")

            def do_POST(self) -> None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = bytearray()
                    while (size := int(self.rfile.readline().strip() or b"0", 16)) > 0:
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                else:
                    body = bytearray(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self._cgi(bytes(body))

            def _cgi(self, body: bytes) -> None:
                path, _, query = self.path.partition("?")
                env = {
                    "PATH": os.environ["PATH"],
                    "GIT_PROJECT_ROOT": str(repos),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "GIT_CONFIG_GLOBAL": os.devnull,
                    "GIT_CONFIG_NOSYSTEM": "1",
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "REMOTE_ADDR": "127.0.0.1",
                }
                out = subprocess.run(
                    [f"{backend}/git-http-backend"],
                    input=body,
                    env=env,
                    capture_output=True,
                    check=False,
                ).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                cut = None
                plain = body
                if self.headers.get("Content-Encoding", "") == "gzip":
                    plain = gzip.decompress(body)
                fetch = self.command == "POST" and (b"command=fetch" in plain or b"want " in plain)
                if fetch and not _DEPTH_ONE.search(plain):
                    server.full_fetches += 1
                    cut = server.cut_full_fetches_at
                    time.sleep(server.stall_full_fetches)
                time.sleep(server.rtt)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if cut is not None and cut < len(payload):
                    server.cut += 1
                    self.wfile.write(payload[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.close()
                    return
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
