"""Building the access gate from ``AuthSettings``, and reloading it.

Two reload hooks are offered to SIGHUP: the tokens file, and the whole
authentication configuration (issuers, grants, anonymous, contact) read again
through a loader the composition root passes in. Either builds everything
new first and swaps it in only when all of it is valid. The tokens file is
also watched: a change of its size, time or inode (``modgate token create``
or ``revoke`` rewrites it) is picked up within ``WATCH_INTERVAL`` seconds,
so a revoked token stops working without a signal.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx

from modgate.protocol.grants import AccessPolicy
from modgate.protocol.patterns import PatternList
from modgate.server.auth.audit import AuditLog
from modgate.server.auth.gate import AccessGate
from modgate.server.auth.oidc import IssuerConfig, OidcVerifier
from modgate.server.auth.ratelimit import FailureLimiter
from modgate.server.auth.resolver import Resolver
from modgate.server.auth.settings import AuthSettings
from modgate.server.auth.tokens import TokenFile, TokenFileError, TokenTable

log = logging.getLogger("modgate.auth")

WATCH_INTERVAL = 2.0
JWKS_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def _client(issuers: tuple[IssuerConfig, ...]) -> httpx.AsyncClient:
    context = ssl.create_default_context()
    for issuer in issuers:
        if issuer.ca_bundle is not None:
            context.load_verify_locations(cafile=str(issuer.ca_bundle))
    return httpx.AsyncClient(verify=context, timeout=JWKS_TIMEOUT, follow_redirects=False)


def load_tokens(path: Path | None, *, must_exist: bool = True) -> TokenTable:
    if path is None:
        return TokenTable([])
    if must_exist and not path.exists():
        raise TokenFileError(
            f"token file {str(path)!r} does not exist; create a token with "
            f"'modgate token create --tokens {path} --name NAME'"
        )
    return TokenTable(TokenFile(path).load())


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Access:
    """The gate plus what rebuilds it: what ``cli/serve.py`` holds and hands to the server."""

    def __init__(
        self,
        settings: AuthSettings,
        private: PatternList,
        *,
        private_logs: frozenset[str] = frozenset(),
        load_settings: Callable[[], AuthSettings] | None = None,
    ) -> None:
        self.settings = settings
        self.private = private
        self._load_settings = load_settings
        tokens = load_tokens(settings.tokens)
        self._tokens_state = _file_state(settings.tokens) if settings.tokens else None
        self._client = _client(settings.issuers) if settings.issuers else None
        verifier = (
            OidcVerifier(settings.issuers, self._client) if self._client is not None else None
        )
        policy = AccessPolicy(private, settings.grants, settings.anonymous)
        self.gate = AccessGate(
            policy,
            Resolver(tokens, verifier),
            AuditLog.open(settings.audit_log),
            FailureLimiter(settings.failed_auth_limit),
            contact=settings.contact,
            private_logs=private_logs,
        )
        self._watch: asyncio.TimerHandle | None = None
        self._flush: asyncio.TimerHandle | None = None
        self._old_clients: list[httpx.AsyncClient] = []

    # ---- reload hooks ----------------------------------------------------------------

    def reload_tokens(self) -> None:
        path = self.settings.tokens
        if path is None:
            return
        table = load_tokens(path)
        self._tokens_state = _file_state(path)
        self.gate.replace_credentials(tokens=table)

    def reload_config(self) -> None:
        if self._load_settings is None:
            return
        new = self._load_settings()
        tokens = load_tokens(new.tokens) if new.tokens != self.settings.tokens else None
        if new.issuers != self.settings.issuers:
            client = _client(new.issuers) if new.issuers else None
            verifier = OidcVerifier(new.issuers, client) if client is not None else None
            if self._client is not None:
                self._old_clients.append(self._client)
            self._client = client
            self.gate.replace_credentials(tokens, verifier, verifier_changed=True)
        elif tokens is not None:
            self.gate.replace_credentials(tokens)
        policy = AccessPolicy(self.private, new.grants, new.anonymous)
        self.gate.replace_policy(policy, new.contact)
        self.gate.limiter.limit = new.failed_auth_limit
        self.settings = new
        self._tokens_state = _file_state(new.tokens) if new.tokens else None

    # ---- running ---------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start watching the tokens file and flushing the audit log (in the serving loop)."""
        self._flush = loop.call_later(1.0, self._flush_tick, loop)
        if self.settings.tokens is not None:
            self._watch = loop.call_later(WATCH_INTERVAL, self._watch_tick, loop)

    def _flush_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.gate.audit.flush()
        self._flush = loop.call_later(1.0, self._flush_tick, loop)

    def _watch_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        path = self.settings.tokens
        if path is not None and _file_state(path) != self._tokens_state:
            try:
                self.reload_tokens()
                log.info(
                    "reloaded the tokens file", extra={"event": "reloaded", "what": "tokens file"}
                )
            except TokenFileError as exc:
                self._tokens_state = _file_state(path)
                log.error(
                    "tokens file changed but cannot be used: %s; the previous tokens stay in use",
                    exc,
                    extra={"event": "reload_refused"},
                )
        self._watch = loop.call_later(WATCH_INTERVAL, self._watch_tick, loop)

    async def aclose(self) -> None:
        for timer in (self._watch, self._flush):
            if timer is not None:
                timer.cancel()
        self.gate.close()
        for client in [*self._old_clients, self._client]:
            if client is not None:
                await client.aclose()
