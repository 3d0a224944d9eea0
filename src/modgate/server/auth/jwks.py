"""An OIDC issuer's signing keys (JWKS): discovered or configured, cached, refreshed.

The key set is fetched on first use from ``jwks-url`` or, without one, from
the ``jwks_uri`` of ``<issuer>/.well-known/openid-configuration``. It is
kept for ``KEYS_MAX_AGE`` seconds; a token signed with a key id the set does
not hold triggers a refetch (keys rotate), but at most once per
``refresh_interval`` seconds per issuer, so a stream of tokens with made-up
key ids cannot make modgate hammer the identity provider. Concurrent
refetches share one request. Key sets must come over https (plain http only
from a loopback address, for tests and sidecars), within 1 MiB and the
client's timeouts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from urllib.parse import urlsplit

import httpx
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError

log = logging.getLogger("modgate.auth")

KEYS_MAX_AGE = 3600.0
MAX_DOCUMENT = 1 << 20
DISCOVERY_PATH = "/.well-known/openid-configuration"


class JwksError(Exception):
    """The keys could not be had; the message names the issuer and the URL, no secrets."""


def check_fetch_url(url: str, what: str) -> None:
    """https, or http to a loopback address only; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback:
            return
    raise ValueError(f"{what} {url!r} must be an https:// URL (http:// only on loopback)")


class KeySet:
    """The cached keys of one issuer."""

    def __init__(
        self,
        issuer: str,
        jwks_url: str | None,
        client: httpx.AsyncClient,
        refresh_interval: float,
    ) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self._client = client
        self._refresh_interval = refresh_interval
        self._keys: dict[str, PyJWK] = {}
        self._fetched = -1e18  # monotonic time of the last fetch attempt
        self._loaded = -1e18  # monotonic time of the last successful fetch
        self._inflight: asyncio.Future[None] | None = None
        self._last_error = f"issuer {issuer}: no keys fetched yet"
        self.fetches = 0

    async def key(self, kid: str | None) -> PyJWK:
        """The key for ``kid`` (a token without kid: the only key of the set)."""
        now = time.monotonic()
        found = self._find(kid)
        if found is not None and now - self._loaded < KEYS_MAX_AGE:
            return found
        if now - self._fetched >= self._refresh_interval:
            try:
                await self._refresh()
            except JwksError as exc:
                log.warning("%s", exc, extra={"event": "jwks_failed", "issuer": self.issuer})
                if found is None:
                    raise
                return found  # the old keys stay in use
            found = self._find(kid)
        elif not self._keys:
            # the last fetch failed a moment ago: no new attempt before the interval
            raise JwksError(self._last_error)
        if found is None:
            raise LookupError(kid)
        return found

    def _find(self, kid: str | None) -> PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
            return
        loop = asyncio.get_running_loop()
        self._inflight = loop.create_future()
        self._fetched = time.monotonic()
        try:
            self._keys = await self._fetch()
            self._loaded = time.monotonic()
            self._inflight.set_result(None)
        except JwksError as exc:
            self._last_error = str(exc)
            self._inflight.set_exception(exc)
            self._inflight.exception()  # retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight = None

    async def _get_json(self, url: str, what: str) -> object:
        self.fetches += 1
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code != httpx.codes.OK:
                    raise JwksError(
                        f"issuer {self.issuer}: {what} {url} answered {response.status_code}"
                    )
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT:
                        raise JwksError(f"issuer {self.issuer}: {what} {url} is over 1 MiB")
        except httpx.HTTPError as exc:
            raise JwksError(
                f"issuer {self.issuer}: cannot fetch {what} {url}: {type(exc).__name__}"
            ) from None
        try:
            return json.loads(body)
        except ValueError:
            raise JwksError(f"issuer {self.issuer}: {what} {url} is not JSON") from None

    async def _fetch(self) -> dict[str, PyJWK]:
        url = self.jwks_url
        if url is None:
            discovery = self.issuer.rstrip("/") + DISCOVERY_PATH
            document = await self._get_json(discovery, "discovery document")
            found = document.get("jwks_uri") if isinstance(document, dict) else None
            if not isinstance(found, str):
                raise JwksError(f"issuer {self.issuer}: {discovery} names no jwks_uri")
            try:
                check_fetch_url(found, "jwks_uri")
            except ValueError as exc:
                raise JwksError(f"issuer {self.issuer}: {exc}") from None
            url = found
        data = await self._get_json(url, "key set")
        if not isinstance(data, dict):
            raise JwksError(f"issuer {self.issuer}: key set {url} is not a JSON object")
        try:
            keyset = PyJWKSet.from_dict(data)
        except (PyJWKSetError, PyJWKError) as exc:
            raise JwksError(
                f"issuer {self.issuer}: key set {url} has no usable key ({exc})"
            ) from None
        keys: dict[str, PyJWK] = {}
        for index, jwk in enumerate(keyset.keys):
            if jwk.public_key_use in (None, "sig"):
                keys[jwk.key_id or f"#{index}"] = jwk
        if not keys:
            raise JwksError(f"issuer {self.issuer}: key set {url} has no signing key")
        log.info(
            "fetched the signing keys of an issuer",
            extra={"event": "jwks_fetched", "issuer": self.issuer, "url": url, "keys": len(keys)},
        )
        return keys
