"""The ``Authorization`` header: Basic (what a .netrc line sends) or Bearer.

For Basic the user name is ignored and the password is the secret, so a
``.netrc`` line may say ``login anything``. The secret is a modgate token
(``mgt_...``) or a JWT (three base64url parts); anything else is refused
without being looked at further.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass

from modgate.server.auth.tokens import looks_like_token

MAX_SECRET = 16 * 1024
JWT_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class SecretKind(enum.Enum):
    TOKEN = "token"  # noqa: S105 (a kind, not a secret)
    JWT = "jwt"


class CredentialError(ValueError):
    """Credentials that cannot be read; the message never contains them."""


@dataclass(frozen=True, slots=True)
class Credential:
    kind: SecretKind
    secret: str

    def __repr__(self) -> str:  # never print the secret, even in a traceback
        return f"Credential({self.kind.value}, <redacted>)"


def parse_authorization(value: bytes) -> Credential:
    scheme, _, rest = value.strip().partition(b" ")
    rest = rest.strip()
    lowered = scheme.lower()
    if len(rest) > MAX_SECRET:
        raise CredentialError("the Authorization header is too long")
    if lowered == b"basic":
        try:
            decoded = base64.b64decode(rest, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialError("the Basic credentials are not base64 of user:password") from None
        _, colon, secret = decoded.partition(":")
        if not colon or not secret:
            raise CredentialError(
                "the Basic credentials have no password; put the token in the password "
                "(netrc: machine HOST:PORT login token password TOKEN)"
            )
    elif lowered == b"bearer":
        secret = rest.decode("ascii", "replace")
    else:
        raise CredentialError("use Authorization: Basic (netrc) or Bearer (GOAUTH)")
    if looks_like_token(secret):
        return Credential(SecretKind.TOKEN, secret)
    if JWT_RE.fullmatch(secret):
        return Credential(SecretKind.JWT, secret)
    raise CredentialError("the credentials are neither a modgate token (mgt_...) nor a JWT")
