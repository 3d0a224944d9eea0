"""Local servers that make the go command fail in every way the diagnose corpus needs.

Everything listens on 127.0.0.1 inside the generator's own network namespace,
so fixed ports are safe and nothing can reach another host:

- ``ModuleProxy``: one HTTP server whose first path element picks a behaviour
  (``/ok/`` serves the module tree, ``/s404/`` answers 404, ``/prompts/``
  answers checksum-database lookups with the body proxy.golang.org gives for
  private modules, ``/hang/`` never answers, ...);
- ``TlsProxy``: the same tree over TLS with a given certificate;
- ``NxDns``: a DNS server that answers every question with NXDOMAIN, so a
  name lookup fails with the real ``no such host`` error;
- ``AuthRequired``: answers everything with 401 (git smart HTTP) or 407
  (an HTTP proxy that wants credentials, also for CONNECT).
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

LOOPBACK = "127.0.0.1"
HANG_SECONDS = 3600.0
"""How long a hung request waits (the server is closed long before)."""

PROMPTS_BODY = (
    "not found: {module}: invalid version: git ls-remote -q --end-of-options "
    "https://{host}/{rest} in /tmp/gopath/pkg/mod/cache/vcs/"
    "4b2f7c1e0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c: exit status 128:\n"
    "\tfatal: could not read Username for 'https://{host}': terminal prompts disabled\n"
)
STATUS_BODIES = {
    404: "not found: {module}: no matching versions\n",
    410: "not found: {module}: unknown revision\n",
    500: "internal error: upstream storage unavailable\n",
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>\n",
    403: "forbidden: {module} is blocked by the repository policy\n",
    401: "unauthorized: authentication required\n",
}
HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Network login</title></head>\n"
    "<body><p>Please sign in to use the guest network.</p></body></html>\n"
)


def _module_of(path: str) -> str:
    """``example.com/foo@v1.0.0`` from ``/example.com/foo/@v/v1.0.0.mod`` (best effort)."""
    module, _, rest = path.strip("/").partition("/@v/")
    version = rest.rsplit(".", 1)[0] if rest else ""
    return f"{module}@{version}" if version else module


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _send(
        self,
        status: int,
        body: str,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _serve_file(self, rel: str) -> None:
        target = (self.server.root / rel.lstrip("/")).resolve()
        if self.server.root not in target.parents or not target.is_file():
            self._send(404, f"not found: {_module_of(rel)}\n")
            return
        data = target.read_bytes()
        self.send_response(200)
        kind = {".info": "application/json", ".zip": "application/zip"}.get(target.suffix)
        self.send_header("Content-Type", kind or "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _hang(self) -> None:
        self.server.closing.wait(HANG_SECONDS)
        self.close_connection = True

    def do_GET(self) -> None:
        mode, _, rest = self.path.lstrip("/").partition("/")
        rest = "/" + rest
        module = _module_of(rest)
        sumdb = rest.startswith("/sumdb/")
        if mode == "hang" or (mode == "hangzip" and rest.endswith(".zip")):
            self._hang()
        elif mode.startswith("s") and mode[1:].isdigit():
            status = int(mode[1:])
            headers = {"WWW-Authenticate": 'Basic realm="modules"'} if status == 401 else {}
            self._send(status, STATUS_BODIES[status].format(module=module), headers=headers)
        elif mode in ("prompts", "prompts410") and sumdb:
            self._sumdb_prompts(rest, 410 if mode == "prompts410" else 404)
        elif mode == "modprompts" and rest.startswith("/corp."):
            host, _, tail = module.partition("/")
            self._send(404, PROMPTS_BODY.format(module=module, host=host, rest=tail.split("@")[0]))
        elif mode == "html" and rest.endswith((".mod", ".zip")):
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
        elif sumdb:
            self._send(404, "not found\n")
        else:
            self._serve_file(rest)

    do_HEAD = do_GET

    def _sumdb_prompts(self, rest: str, status: int) -> None:
        if rest.endswith("/supported"):
            self._send(200, "")
            return
        if "/lookup/" not in rest:
            self._send(404, "not found\n")
            return
        module = rest.split("/lookup/", 1)[1]
        path = module.split("@", 1)[0]
        host, _, tail = path.partition("/")
        self._send(status, PROMPTS_BODY.format(module=module, host=host, rest=tail))


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, root: Path) -> None:
        super().__init__((LOOPBACK, port), _ProxyHandler)
        self.root = root.resolve()
        self.closing = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        """Failed handshakes and dropped clients are the point of these servers: stay quiet."""


class Server:
    """A server running in a daemon thread until ``close``."""

    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self.httpd = httpd
        self.thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def close(self) -> None:
        closing = getattr(self.httpd, "closing", None)
        if closing is not None:
            closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def module_proxy(port: int, root: Path) -> Server:
    """The mode-switching proxy over the GOPROXY tree at ``root``."""
    return Server(_ProxyServer(port, root))


def tls_proxy(port: int, root: Path, cert: Path, key: Path) -> Server:
    """The proxy over TLS with ``cert``; clients that do not trust it fail the handshake."""
    httpd = _ProxyServer(port, root)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(
        httpd.socket, server_side=True, do_handshake_on_connect=False
    )
    return Server(httpd)


class _AuthHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status: ClassVar[int] = 401

    def log_message(self, format: str, *args: object) -> None:
        return

    def _refuse(self) -> None:
        if self.status == 407:
            self.send_response(407, "Proxy Authentication Required")
            self.send_header("Proxy-Authenticate", 'Basic realm="corporate proxy"')
        else:
            self.send_response(401, "Unauthorized")
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
        body = b"authentication required\n"
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = do_CONNECT = _refuse


class _Auth401(_AuthHandler):
    status = 401


class _Auth407(_AuthHandler):
    status = 407


def auth_required(port: int, status: int) -> Server:
    """Answer every request (also CONNECT) with 401 or 407."""
    handler = _Auth407 if status == 407 else _Auth401
    httpd = ThreadingHTTPServer((LOOPBACK, port), handler)
    httpd.daemon_threads = True
    return Server(httpd)


DNS_PORT = 53
_NXDOMAIN_FLAGS = 0x8183  # response, recursion desired and available, rcode 3
_DNS_HEADER = struct.Struct("!HHHHHH")


_QTYPE_QCLASS = 4


def _question_end(message: bytes, offset: int) -> int:
    """The offset just after the first question (its name's labels, type and class)."""
    while offset < len(message) and message[offset] != 0:
        offset += message[offset] + 1
    return offset + 1 + _QTYPE_QCLASS


class NxDns:
    """A UDP DNS server on 127.0.0.1:53 that says no name exists."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, DNS_PORT))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if len(query) < _DNS_HEADER.size:
                continue
            ident, _flags, qdcount, _an, _ns, _ar = _DNS_HEADER.unpack_from(query)
            if qdcount != 1:
                continue
            end = _question_end(query, _DNS_HEADER.size)
            if end > len(query):
                continue
            header = _DNS_HEADER.pack(ident, _NXDOMAIN_FLAGS, 1, 0, 0, 0)
            self.sock.sendto(header + query[_DNS_HEADER.size : end], peer)

    def close(self) -> None:
        self.sock.close()
