"""Local servers for ``doctor --env`` tests, all on 127.0.0.1 with ephemeral ports.

- ``ok``: answers 200 to everything (a proxy that has the module, a checksum
  database whose ``/supported`` and ``/latest`` exist);
- ``notfound``: 404 to everything; ``forbidden``: 403 to everything;
- ``hung``: accepts the connection, reads the request and never answers;
- ``selfsigned``: the ``ok`` server over TLS with a certificate made by the
  openssl command line tool for 127.0.0.1 (``cert`` is its PEM file);
- ``mismatch``: the same over TLS with a certificate for ``wrong.example``
  only (``mismatch_cert`` is its PEM file);
- ``refused``: a port with nothing listening.

:func:`placeholders` also gives ``tmp`` (a writable directory), ``file`` (a
regular file, so ``{file}/x`` can never be created) and ``nogit`` (an empty
directory to use as PATH).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
CERT_DAYS = "2"
OPENSSL_TIMEOUT = 60.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


def _handler(status: int, closing: threading.Event | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            if closing is not None:
                closing.wait()
                self.close_connection = True
                return
            body = b"v1.0.0\n" if status == 200 else f"forced {status}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def make_certificate(
    directory: Path, name: str = "localhost", alt_names: str = "IP:127.0.0.1,DNS:localhost"
) -> tuple[Path, Path]:
    """A self-signed certificate (EC key) made with the openssl CLI: (cert, key) PEM files."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    cert, key = directory / f"{name}.cert.pem", directory / f"{name}.key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", CERT_DAYS, "-keyout", str(key), "-out", str(cert),
         "-subj", f"/CN={name}", "-addext", f"subjectAltName={alt_names}"],
        check=True, capture_output=True, timeout=OPENSSL_TIMEOUT,
    )  # fmt: skip
    return cert, key


def _tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def dead_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def serving(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Start every server; yield the placeholder values; stop them all."""
    closing = threading.Event()
    servers: list[_Server] = []

    def start(status: int, *, hang: bool = False, tls: ssl.SSLContext | None = None) -> str:
        server = _Server((LOOPBACK, 0), _handler(status, closing if hang else None))
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        servers.append(server)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        scheme = "https" if tls is not None else "http"
        return f"{scheme}://{LOOPBACK}:{server.server_address[1]}"

    cert, key = make_certificate(tmp_path)
    wrong_cert, wrong_key = make_certificate(tmp_path, "wrong.example", "DNS:wrong.example")
    regular = tmp_path / "a-file"
    regular.write_text("not a directory\n")
    nogit = tmp_path / "nogit"
    nogit.mkdir()
    values = {
        "ok": start(200),
        "notfound": start(404),
        "forbidden": start(403),
        "hung": start(200, hang=True),
        "selfsigned": start(200, tls=_tls(cert, key)),
        "mismatch": start(200, tls=_tls(wrong_cert, wrong_key)),
        "mismatch_cert": str(wrong_cert),
        "refused": f"http://{LOOPBACK}:{dead_port()}",
        "cert": str(cert),
        "tmp": str(tmp_path),
        "file": str(regular),
        "nogit": str(nogit),
    }
    try:
        yield values
    finally:
        closing.set()
        for server in servers:
            server.shutdown()
            server.server_close()


def fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template
