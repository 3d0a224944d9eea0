"""From an ``Authorization`` header to an identity, once per token.

A header is looked up by its SHA-256 in a bounded cache; a miss parses it,
checks a modgate token against the token table or verifies a JWT, and keeps
the outcome until the token expires (a JWT: ``exp`` plus the clock skew), a
reload changes the tokens or the configuration (``generation``), or the
entry is evicted. Refusals are remembered for a few seconds, except when the
fault was modgate's (an identity provider's keys could not be fetched).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from modgate.protocol.identity import Identity, token_identity
from modgate.server.auth.credentials import CredentialError, SecretKind, parse_authorization
from modgate.server.auth.oidc import OidcVerifier, TokenRejected
from modgate.server.auth.tokens import TokenTable

CACHE_ENTRIES = 10_000
REFUSAL_TTL = 5.0
NEVER = math.inf


@dataclass(frozen=True, slots=True)
class Resolved:
    identity: Identity | None
    """None: no credentials were sent (or they were refused: see ``problem``)."""
    expires: float = NEVER
    """Monotonic time after which this outcome must be resolved again."""
    problem: str = ""
    """Why the credentials were refused (safe to show: no secret)."""
    reason: str = ""
    """Metric label of the refusal: malformed, unknown_token, revoked, expired, ..."""
    server_fault: bool = False

    @property
    def refused(self) -> bool:
        return bool(self.problem)


ANONYMOUS = Resolved(None)


class Resolver:
    def __init__(self, tokens: TokenTable, verifier: OidcVerifier | None) -> None:
        self.tokens = tokens
        self.verifier = verifier
        self.generation = 0
        self._cache: OrderedDict[bytes, tuple[int, Resolved]] = OrderedDict()

    def replace(
        self,
        tokens: TokenTable | None = None,
        verifier: OidcVerifier | None = None,
        *,
        verifier_changed: bool = False,
    ) -> None:
        """Swap in a new token table and/or verifier; every cached outcome is dropped."""
        if tokens is not None:
            self.tokens = tokens
        if verifier_changed:
            self.verifier = verifier
        self.generation += 1
        self._cache.clear()

    def cached(self, header: bytes | None, now: float) -> Resolved | None:
        if header is None:
            return ANONYMOUS
        key = hashlib.sha256(header).digest()
        found = self._cache.get(key)
        if found is None:
            return None
        generation, resolved = found
        if generation != self.generation or now >= resolved.expires:
            del self._cache[key]
            return None
        return resolved

    async def resolve(self, header: bytes | None) -> Resolved:
        now = time.monotonic()
        found = self.cached(header, now)
        if found is not None:
            return found
        assert header is not None
        generation = self.generation
        resolved = await self._resolve(header, now)
        if not resolved.server_fault and generation == self.generation:
            self._cache[hashlib.sha256(header).digest()] = (generation, resolved)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return resolved

    async def _resolve(self, header: bytes, now: float) -> Resolved:
        refused_until = now + REFUSAL_TTL
        try:
            credential = parse_authorization(header)
        except CredentialError as exc:
            return Resolved(None, refused_until, str(exc), "malformed")
        if credential.kind is SecretKind.TOKEN:
            wall = time.time()
            found = self.tokens.lookup(credential.secret, wall)
            record = found.record
            if record is None:
                return Resolved(None, refused_until, found.problem, found.reason)
            expires = NEVER if record.expires is None else now + (record.expires - wall)
            return Resolved(token_identity(record.name, record.read), expires)
        if self.verifier is None or not self.verifier.issuers:
            return Resolved(
                None,
                refused_until,
                "this modgate accepts no JWTs (no [[auth.issuers]] configured); "
                "use a modgate token",
                "wrong_issuer",
            )
        try:
            verified = await self.verifier.verify(credential.secret)
        except TokenRejected as exc:
            return Resolved(
                None, refused_until, exc.message, exc.reason, server_fault=exc.server_fault
            )
        return Resolved(verified.identity, now + (verified.expires - time.time()))
