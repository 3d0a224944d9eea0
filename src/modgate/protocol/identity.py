"""Who sent a request, as a plain value: a modgate token or an OIDC subject.

The server turns credentials (Basic or Bearer) into an ``Identity`` once per
token and caches it; everything after that (grants, audit, error bodies) works
on this value and never sees a secret. ``str(identity)`` is what logs and the
audit log show: ``token:<name>`` or ``<issuer>:<subject>``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from modgate.protocol.patterns import PatternList

Claims = tuple[tuple[str, tuple[str, ...]], ...]
"""Claim name -> its values as strings (a list claim such as ``groups`` has several)."""

NO_PATTERNS = PatternList(())


class IdentityKind(enum.Enum):
    TOKEN = "token"  # noqa: S105 (a kind, not a secret)
    OIDC = "oidc"


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated client.

    For a token, ``read_all`` says it was created without ``--read`` (it may
    read every module) and ``read`` holds its ``--read`` patterns otherwise.
    For an OIDC identity both are unset: only the configured grants count.
    """

    kind: IdentityKind
    name: str
    """The token's name, or the OIDC ``sub`` claim."""
    issuer: str = ""
    """The configured name of the issuer that signed an OIDC token ("" for tokens)."""
    claims: Claims = ()
    read_all: bool = False
    read: PatternList = NO_PATTERNS

    def __str__(self) -> str:
        if self.kind is IdentityKind.TOKEN:
            return f"token:{self.name}"
        return f"{self.issuer}:{self.name}"

    def claim(self, name: str) -> tuple[str, ...]:
        """The values of claim ``name`` (empty when absent)."""
        for key, values in self.claims:
            if key == name:
                return values
        return ()


def token_identity(name: str, read: PatternList | None) -> Identity:
    """A modgate token's identity; ``read`` None means created without ``--read``."""
    if read is None:
        return Identity(IdentityKind.TOKEN, name, read_all=True)
    return Identity(IdentityKind.TOKEN, name, read=read)


def flatten_claims(payload: dict[str, object], *, max_values: int = 64) -> Claims:
    """A JWT payload as ``Claims``: nested objects joined with ``/``.

    ``{"kubernetes.io": {"namespace": "ci"}}`` gives ``kubernetes.io/namespace``
    = ``("ci",)``; strings, numbers and booleans become strings; lists keep
    their scalar members. At most ``max_values`` values are kept per claim.
    """
    out: list[tuple[str, tuple[str, ...]]] = []

    def scalar(value: object) -> str | None:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        return None

    def walk(prefix: str, value: object, depth: int) -> None:
        if isinstance(value, dict):
            if depth >= 4:
                return
            for key, inner in value.items():
                walk(f"{prefix}/{key}" if prefix else str(key), inner, depth + 1)
            return
        if isinstance(value, list):
            items = [s for s in (scalar(v) for v in value[:max_values]) if s is not None]
            out.append((prefix, tuple(items)))
            return
        single = scalar(value)
        if single is not None:
            out.append((prefix, (single,)))

    walk("", payload, 0)
    return tuple(sorted(out))
