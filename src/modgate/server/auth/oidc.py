"""Verifying OIDC ID tokens (JWTs) with PyJWT against the issuer's published keys.

Kubernetes projected service-account tokens, GitHub Actions and GitLab CI ID
tokens and a company identity provider all send a JWT signed with a key in
the issuer's JWKS. The issuer is picked by the token's ``iss`` claim, which
must equal one configured issuer exactly; then the signature (with the
algorithms configured for it, never ``none`` or an HMAC), ``iss``, ``aud``
(one of the configured audiences), ``exp`` and ``nbf``/``iat`` (with the
configured clock skew) are checked by the library. The verified payload
becomes an ``Identity`` named by its ``sub``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

from modgate.protocol.identity import Identity, IdentityKind, flatten_claims
from modgate.server.auth.jwks import JwksError, KeySet

ALLOWED_ALGORITHMS = frozenset(
    ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
)
DEFAULT_ALGORITHMS = ("RS256", "ES256")
DEFAULT_CLOCK_SKEW = 60.0
DEFAULT_REFRESH_INTERVAL = 30.0
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
MAX_SHOWN = 80


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    """One trusted issuer from ``[[auth.issuers]]``."""

    name: str
    """Short name used in grants, logs and identities (``k8s``, ``github``)."""
    issuer: str
    """The exact ``iss`` value."""
    audiences: tuple[str, ...]
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    clock_skew: float = DEFAULT_CLOCK_SKEW
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL
    ca_bundle: Path | None = None


class TokenRejected(Exception):
    """A JWT that is not accepted. ``reason`` is a metric label, ``message`` for the client."""

    def __init__(self, reason: str, message: str, *, server_fault: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.server_fault = server_fault


def _shown(value: object) -> str:
    text = str(value)
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= MAX_SHOWN else clean[:MAX_SHOWN] + "..."


@dataclass(frozen=True, slots=True)
class Verified:
    identity: Identity
    expires: float
    """Wall-clock time after which the token is no longer accepted (exp + skew)."""


class OidcVerifier:
    """Verifies JWTs of the configured issuers."""

    def __init__(self, issuers: tuple[IssuerConfig, ...], client: httpx.AsyncClient) -> None:
        self.issuers = {i.issuer: i for i in issuers}
        self.keysets = {
            i.issuer: KeySet(i.issuer, i.jwks_url, client, i.refresh_interval) for i in issuers
        }

    async def verify(self, token: str) -> Verified:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except InvalidTokenError:
            raise TokenRejected("malformed", "the bearer token is not a well-formed JWT") from None
        iss = unverified.get("iss")
        config = self.issuers.get(iss) if isinstance(iss, str) else None
        if config is None:
            raise TokenRejected(
                "wrong_issuer",
                f"tokens of issuer {_shown(iss)!r} are not accepted here "
                f"(accepted: {', '.join(sorted(self.issuers)) or 'none'})",
            )
        alg = header.get("alg")
        if alg not in config.algorithms:
            raise TokenRejected(
                "bad_signature",
                f"issuer {config.name}: algorithm {_shown(alg)!r} is not accepted "
                f"(accepted: {', '.join(config.algorithms)})",
            )
        kid = header.get("kid")
        try:
            key = await self.keysets[config.issuer].key(kid if isinstance(kid, str) else None)
        except LookupError:
            raise TokenRejected(
                "bad_signature",
                f"issuer {config.name}: the token's key id {_shown(kid)!r} is not in the "
                "issuer's key set",
            ) from None
        except JwksError:
            # what failed (URLs of the identity provider) is logged, not told to the client
            raise TokenRejected(
                "jwks_unavailable",
                f"the signing keys of issuer {config.name} cannot be fetched",
                server_fault=True,
            ) from None
        try:
            payload = jwt.decode(
                token,
                key=key.key,
                algorithms=list(config.algorithms),
                audience=list(config.audiences),
                issuer=config.issuer,
                leeway=config.clock_skew,
                options={"require": REQUIRED_CLAIMS},
            )
        except ExpiredSignatureError:
            raise TokenRejected(
                "expired", f"issuer {config.name}: the token has expired; get a new one"
            ) from None
        except InvalidAudienceError:
            raise TokenRejected(
                "wrong_audience",
                f"issuer {config.name}: the token's audience is not accepted; request the "
                f"token for audience {config.audiences[0]!r}",
            ) from None
        except (ImmatureSignatureError, InvalidIssuedAtError):
            raise TokenRejected(
                "not_yet_valid", f"issuer {config.name}: the token is not valid yet (check clocks)"
            ) from None
        except MissingRequiredClaimError as exc:
            raise TokenRejected(
                "malformed", f"issuer {config.name}: the token has no {exc.claim!r} claim"
            ) from None
        except (InvalidSignatureError, InvalidAlgorithmError, InvalidIssuerError):
            raise TokenRejected(
                "bad_signature", f"issuer {config.name}: the token's signature does not verify"
            ) from None
        except InvalidTokenError:
            raise TokenRejected(
                "malformed", f"issuer {config.name}: the token is not acceptable"
            ) from None
        subject = payload.get("sub")
        if not isinstance(subject, str) or not subject:
            raise TokenRejected("malformed", f"issuer {config.name}: the token has no subject")
        identity = Identity(
            IdentityKind.OIDC, subject, issuer=config.name, claims=flatten_claims(payload)
        )
        exp = payload.get("exp")
        expires = float(exp) + config.clock_skew if isinstance(exp, int | float) else time.time()
        return Verified(identity, expires)
