"""A test OIDC issuer on 127.0.0.1: signing keys, a discovery document and a JWKS.

``TestIssuer()`` starts an HTTP server that serves
``/.well-known/openid-configuration`` and ``/jwks``; ``issuer.token(...)``
signs a JWT (RS256) with the current key, and ``rotate()`` adds a new key
that only a refetch of the key set reveals. ``jwks_hits`` counts key-set
requests. Tokens look like a Kubernetes projected service-account token by
default (``sub`` ``system:serviceaccount:<ns>:<name>`` and the
``kubernetes.io`` claim).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LOOPBACK = "127.0.0.1"
AUDIENCE = "modgate-test"


class TestIssuer:
    __test__ = False

    def __init__(self) -> None:
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.published: list[str] = []
        """Key ids the JWKS currently lists."""
        self.jwks_hits = 0
        self.discovery_hits = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    issuer.discovery_hits += 1
                    body = json.dumps({"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"})
                elif self.path == "/jwks":
                    issuer.jwks_hits += 1
                    body = json.dumps({"keys": issuer.jwks()})
                else:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self.rotate(publish=True)

    def rotate(self, *, publish: bool = True) -> str:
        kid = f"key-{len(self._keys) + 1}"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._keys.append((kid, key))
        if publish:
            self.published.append(kid)
        return kid

    def jwks(self) -> list[dict[str, Any]]:
        keys = []
        for kid, key in self._keys:
            if kid in self.published:
                jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
                jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
                keys.append(jwk)
        return keys

    def token(
        self,
        *,
        namespace: str = "build",
        account: str = "builder",
        audience: str | list[str] = AUDIENCE,
        lifetime: float = 600,
        issuer: str | None = None,
        extra: dict[str, Any] | None = None,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer or self.url,
            "sub": f"system:serviceaccount:{namespace}:{account}",
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": int(now + lifetime),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": account, "uid": "0000-test"},
            },
        }
        payload.update(extra or {})
        use_kid, use_key = self._keys[-1]
        if kid is not None:
            use_kid, use_key = next((k, v) for k, v in self._keys if k == kid)
        return jwt.encode(payload, key or use_key, algorithm="RS256", headers={"kid": use_kid})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
