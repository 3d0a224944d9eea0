"""May this identity read this module? A pure decision over grants and GOPRIVATE patterns.

The same function answers the GOPROXY routes, the checksum-database lookups
(a private module's lookup is as secret as its zip), the server's hot path
(through cached verdicts) and ``modgate auth check``. The rules:

- A module that matches no ``--private`` pattern is public: every
  authenticated identity may read it; anonymous clients only when the
  operator allows it (``anonymous = "public"``).
- A private module needs credentials (401 without), and then one of: a token
  created without ``--read``; a token whose ``--read`` patterns match; a
  grant of the configuration that applies to the identity and whose ``read``
  patterns match. Anything else is denied (403).

The decision looks at the module path and the patterns only, never at the
store: a denied identity learns nothing about whether a module exists.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modgate.protocol.identity import Identity, IdentityKind
from modgate.protocol.patterns import PatternList, parse_patterns

GRANT_KEYS = frozenset(("name", "tokens", "issuer", "subject", "claims", "read"))
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_GLOB = 512


class Anonymous(enum.Enum):
    """What clients without credentials may read once authentication is on."""

    NONE = "none"
    PUBLIC = "public"


class Outcome(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"
    """Authenticated, but not granted this module: 403."""
    CHALLENGE = "challenge"
    """No credentials, and the module needs some: 401."""


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    private: bool
    rule: str
    """Short name of what decided (for the audit log and metrics-free explanations)."""
    why: str
    """One sentence explaining the decision."""

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW


def _glob_regex(glob: str) -> re.Pattern[str]:
    """``*`` matches any run of characters; everything else is literal."""
    return re.compile(".*".join(re.escape(part) for part in glob.split("*")), re.DOTALL)


@dataclass(frozen=True, slots=True)
class ValueGlob:
    text: str
    regex: re.Pattern[str]

    def matches(self, value: str) -> bool:
        return self.regex.fullmatch(value) is not None


def value_glob(text: str) -> ValueGlob:
    return ValueGlob(text, _glob_regex(text))


@dataclass(frozen=True, slots=True)
class Grant:
    """A rule: who (token names, or issuer + subject + claims) may read which modules."""

    name: str
    read: PatternList
    tokens: tuple[str, ...] = ()
    issuer: str | None = None
    subject: ValueGlob | None = None
    claims: tuple[tuple[str, tuple[ValueGlob, ...]], ...] = ()

    def applies_to(self, identity: Identity) -> bool:
        if identity.kind is IdentityKind.TOKEN:
            return identity.name in self.tokens
        if self.tokens:
            return False
        if self.issuer is not None and identity.issuer != self.issuer:
            return False
        if self.subject is not None and not self.subject.matches(identity.name):
            return False
        for claim, globs in self.claims:
            values = identity.claim(claim)
            if not any(g.matches(v) for g in globs for v in values):
                return False
        return True

    def describe(self) -> str:
        who: list[str] = []
        if self.tokens:
            who.append("tokens " + ", ".join(self.tokens))
        if self.issuer is not None:
            who.append(f"issuer {self.issuer}")
        if self.subject is not None:
            who.append(f"subject {self.subject.text}")
        for claim, globs in self.claims:
            who.append(f"claim {claim}=" + "|".join(g.text for g in globs))
        return f"grant {self.name!r} ({'; '.join(who)}) reads {self.read}"


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    private: PatternList
    grants: tuple[Grant, ...] = ()
    anonymous: Anonymous = Anonymous.NONE

    def is_private(self, module: str) -> bool:
        return self.private.matches(module)

    def decide(self, identity: Identity | None, module: str) -> Decision:
        """Whether ``identity`` (None: no credentials) may read ``module``."""
        pattern = self.private.first_match(module)
        if pattern is None:
            if identity is not None:
                return Decision(
                    Outcome.ALLOW,
                    False,
                    "public",
                    f"{module} is public (no private pattern matches it)",
                )
            if self.anonymous is Anonymous.PUBLIC:
                return Decision(
                    Outcome.ALLOW,
                    False,
                    "anonymous-public",
                    f"{module} is public and anonymous reads of public modules are allowed",
                )
            return Decision(
                Outcome.CHALLENGE,
                False,
                "anonymous-none",
                "anonymous reads are off: every request needs credentials",
            )
        private = f"{module} is private (pattern {pattern})"
        if identity is None:
            return Decision(
                Outcome.CHALLENGE,
                True,
                "anonymous-private",
                f"{private} and no credentials were sent",
            )
        if identity.kind is IdentityKind.TOKEN:
            if identity.read_all:
                return Decision(
                    Outcome.ALLOW,
                    True,
                    "token-unrestricted",
                    f"{private}; token {identity.name} was created without "
                    "--read, so it reads every module",
                )
            own = identity.read.first_match(module)
            if own is not None:
                return Decision(
                    Outcome.ALLOW,
                    True,
                    f"token-read:{own}",
                    f"{private}; token {identity.name} was created with "
                    f"--read {identity.read}, which matches",
                )
        for grant in self.grants:
            if grant.applies_to(identity) and grant.read.matches(module):
                return Decision(
                    Outcome.ALLOW, True, f"grant:{grant.name}", f"{private}; {grant.describe()}"
                )
        applying = [g.name for g in self.grants if g.applies_to(identity)]
        held = ", ".join(applying) if applying else "none"
        limit = ""
        if identity.kind is IdentityKind.TOKEN:
            limit = f"; its --read is {identity.read or 'empty'}"
        return Decision(
            Outcome.DENY,
            True,
            "no-grant",
            f"{private}; no grant lets {identity} read it (grants that apply to it: {held}{limit})",
        )

    def reads_everything(self, identity: Identity) -> bool:
        """Whether ``identity`` may read every private module (for data tiles of a log)."""
        if identity.kind is IdentityKind.TOKEN and identity.read_all:
            return True
        return any(g.applies_to(identity) and "*" in g.read.patterns for g in self.grants)


class GrantError(ValueError):
    """A grant of the configuration that cannot be used; the message names it."""


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items: Sequence[object] = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise GrantError(f"{where} must be a string or a list of strings, not {value!r}")
    out = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise GrantError(f"{where} holds {item!r}; use non-empty strings")
        if len(item) > MAX_GLOB:
            raise GrantError(f"{where} holds a value longer than {MAX_GLOB} characters")
        out.append(item.strip())
    return tuple(out)


def parse_grant(table: Mapping[str, object], index: int) -> Grant:
    """One ``[[auth.grants]]`` table; GrantError names the grant and the bad key."""
    raw_name = table.get("name", f"#{index + 1}")
    label = f"grant {raw_name!r}"
    if not isinstance(raw_name, str) or not _NAME.fullmatch(raw_name):
        raise GrantError(f"{label}: name must be 1-64 letters, digits, '.', '_' or '-'")
    unknown = sorted(set(table) - GRANT_KEYS)
    if unknown:
        raise GrantError(
            f"{label}: unknown key {unknown[0]!r}; known: {', '.join(sorted(GRANT_KEYS))}"
        )
    if "read" not in table:
        raise GrantError(f"{label}: 'read' (GOPRIVATE patterns it may read) is required")
    try:
        read = parse_patterns(",".join(_strings(table["read"], f"{label}: read")))
    except ValueError as exc:
        raise GrantError(f"{label}: read: {exc}") from None
    if not read.patterns:
        raise GrantError(f"{label}: read lists no pattern")
    tokens = _strings(table["tokens"], f"{label}: tokens") if "tokens" in table else ()
    issuer = _strings(table["issuer"], f"{label}: issuer")[0] if "issuer" in table else None
    subject = None
    if "subject" in table:
        subject = value_glob(_strings(table["subject"], f"{label}: subject")[0])
    claims: list[tuple[str, tuple[ValueGlob, ...]]] = []
    raw_claims = table.get("claims", {})
    if not isinstance(raw_claims, dict):
        raise GrantError(f'{label}: claims must be a table such as {{ groups = "team-a" }}')
    for claim, wanted in raw_claims.items():
        globs = tuple(value_glob(v) for v in _strings(wanted, f"{label}: claims.{claim}"))
        claims.append((str(claim), globs))
    if tokens and (issuer is not None or subject is not None or claims):
        raise GrantError(
            f"{label}: a grant names either tokens or an OIDC identity "
            "(issuer, subject, claims), not both; split it in two"
        )
    if not tokens and issuer is None and subject is None and not claims:
        raise GrantError(
            f"{label}: says nobody it applies to; give tokens, or issuer/subject/claims"
        )
    return Grant(raw_name, read, tokens, issuer, subject, tuple(claims))


def parse_grants(tables: object) -> tuple[Grant, ...]:
    if not isinstance(tables, list):
        raise GrantError("[[auth.grants]] must be an array of tables")
    grants = []
    names: set[str] = set()
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            raise GrantError(f"grant #{index + 1} must be a table")
        grant = parse_grant(table, index)
        if grant.name in names:
            raise GrantError(f"grant {grant.name!r} is defined twice; names must be unique")
        names.add(grant.name)
        grants.append(grant)
    return tuple(grants)
