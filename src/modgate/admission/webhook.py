"""The HTTPS server of ``modgate admission``.

The API server POSTs an AdmissionReview to ``/validate`` and waits for the
answer (``timeoutSeconds`` of the webhook configuration, 10 s by default), so
each request is answered in its own thread; admission traffic is a few
requests a second at most, and a review is a doctor scan of one manifest.
``/healthz`` answers GET for the Deployment's probes. The certificate pair is
reloaded on SIGHUP (cert-manager rotates it in place) without a restart.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modgate.admission.review import Policy, ReviewError, review
from modgate.server.tls import TlsCertificate

log = logging.getLogger("modgate.admission")

VALIDATE_PATH = "/validate"
HEALTH_PATH = "/healthz"
MAX_BODY = 8 << 20
"""Larger than any object etcd accepts (1.5 MiB by default) wrapped in a review."""
READ_TIMEOUT = 10.0


class AdmissionServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], policy: Policy, tls: TlsCertificate | None
    ) -> None:
        self.policy = policy
        self.tls = tls
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)
        if tls is not None:
            self.socket = tls.server_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A failed handshake or a client gone mid-request: nothing to answer.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def reload(self) -> None:
        """Read the certificate pair again; a bad pair is logged and the old one kept."""
        if self.tls is None:
            return
        try:
            self.tls.reload()
        except ValueError as exc:
            log.error("certificate reload refused, keeping the old pair: %s", exc)
        else:
            log.info("certificate reloaded; valid until %s", self.tls.not_after.isoformat())


class _Handler(BaseHTTPRequestHandler):
    server: AdmissionServer
    protocol_version = "HTTP/1.1"
    server_version = "modgate-admission"
    sys_version = ""
    timeout = READ_TIMEOUT

    def setup(self) -> None:
        super().setup()
        do_handshake = getattr(self.connection, "do_handshake", None)
        if do_handshake is not None:
            do_handshake()

    def do_GET(self) -> None:
        if self.path == HEALTH_PATH:
            self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found; POST reviews to /validate\n")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != VALIDATE_PATH:
            self._send(HTTPStatus.NOT_FOUND, b"not found; POST reviews to /validate\n")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send(HTTPStatus.LENGTH_REQUIRED, b"a Content-Length is required\n")
            return
        if not 0 < length <= MAX_BODY:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"the review is too large\n")
            return
        body = self.rfile.read(length)
        try:
            answer = review(json.loads(body), self.server.policy)
        except (ValueError, ReviewError) as exc:
            # json.JSONDecodeError is a ValueError; ReviewError explains the shape.
            self._send(HTTPStatus.BAD_REQUEST, f"bad AdmissionReview: {exc}\n".encode())
            return
        response: dict[str, Any] = answer["response"]
        log.info(
            "review %s: %s%s",
            response["uid"],
            "allowed" if response["allowed"] else "denied",
            f", {len(response.get('warnings', []))} warnings" if "warnings" in response else "",
        )
        self._send(HTTPStatus.OK, json.dumps(answer).encode(), "application/json")

    def _send(
        self, status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


def serve_forever_in_thread(server: AdmissionServer) -> threading.Thread:
    """Run ``server`` in a daemon thread (tests, embedding); stop it with ``shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
