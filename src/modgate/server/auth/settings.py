"""Authentication settings: ``--tokens``, ``--anonymous``, ``--audit-log`` and ``[auth]``.

Authentication is on when a tokens file is given or the TOML configuration
has an ``[auth]`` table. Everything is validated here, once; a bad value
stops modgate at start (or refuses a SIGHUP reload) with the value echoed.

    [auth]
    tokens = "/etc/modgate/tokens"
    anonymous = "none"            # or "public"
    contact = "#go-platform on chat"
    audit-log = "/var/log/modgate/audit.jsonl"
    failed-auth-limit = 30        # failed authentications per client address per minute

    [[auth.issuers]]
    name = "github"
    issuer = "https://token.actions.githubusercontent.com"
    audience = "https://modgate.corp.example.com"

    [[auth.grants]]
    name = "app-ci"
    issuer = "github"
    claims = { repository_owner = "corp" }
    read = ["corp.example.com/*"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from modgate.protocol.grants import Anonymous, Grant, GrantError, parse_grants
from modgate.server.auth.jwks import check_fetch_url
from modgate.server.auth.oidc import (
    ALLOWED_ALGORITHMS,
    DEFAULT_ALGORITHMS,
    DEFAULT_CLOCK_SKEW,
    DEFAULT_REFRESH_INTERVAL,
    IssuerConfig,
)

AUTH_KEYS = frozenset(
    ("tokens", "anonymous", "contact", "audit-log", "failed-auth-limit", "issuers", "grants")
)
ISSUER_KEYS = frozenset(
    (
        "name",
        "issuer",
        "audience",
        "jwks-url",
        "algorithms",
        "clock-skew",
        "refresh-interval",
        "ca-bundle",
    )
)
DEFAULT_CONTACT = "the operator of this modgate"
DEFAULT_FAILED_AUTH_LIMIT = 30
MAX_CONTACT = 200
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class AuthConfigError(ValueError):
    """A bad authentication setting; the message names it and echoes the value."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    tokens: Path | None
    issuers: tuple[IssuerConfig, ...] = ()
    grants: tuple[Grant, ...] = ()
    anonymous: Anonymous = Anonymous.NONE
    contact: str = DEFAULT_CONTACT
    """Whom a denied client should ask for access (shown in 403 bodies)."""
    audit_log: str = "-"
    """Path of the audit log, '-' for stderr, 'off' for none."""
    failed_auth_limit: int = DEFAULT_FAILED_AUTH_LIMIT
    """Failed authentications per client address per minute (0: no limit)."""


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise AuthConfigError(f"{where} must be a string, not {value!r}")
    return value.strip()


def _number(value: object, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AuthConfigError(f"{where} must be a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise AuthConfigError(f"{where} must be a number, not {value!r}") from None
    if not low <= number <= high:
        raise AuthConfigError(f"{where} = {value!r} must be between {low:g} and {high:g}")
    return number


def _issuer(table: object, index: int) -> IssuerConfig:
    if not isinstance(table, dict):
        raise AuthConfigError(f"issuer #{index + 1} must be a table")
    name = table.get("name")
    where = f"[[auth.issuers]] {name!r}" if name is not None else f"issuer #{index + 1}"
    unknown = sorted(set(table) - ISSUER_KEYS)
    if unknown:
        raise AuthConfigError(
            f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(ISSUER_KEYS))}"
        )
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AuthConfigError(f"{where}: name (letters, digits, '.', '_', '-') is required")
    if "issuer" not in table or "audience" not in table:
        raise AuthConfigError(f"{where}: 'issuer' and 'audience' are required")
    issuer = _str(table["issuer"], f"{where}: issuer")
    try:
        check_fetch_url(issuer, "issuer")
    except ValueError as exc:
        raise AuthConfigError(f"{where}: {exc}") from None
    raw_aud = table["audience"]
    audiences = (raw_aud,) if isinstance(raw_aud, str) else raw_aud
    if (
        not isinstance(audiences, list | tuple)
        or not audiences
        or not all(isinstance(a, str) and a for a in audiences)
    ):
        raise AuthConfigError(f"{where}: audience must be a string or a list of strings")
    jwks_url = None
    if "jwks-url" in table:
        jwks_url = _str(table["jwks-url"], f"{where}: jwks-url")
        try:
            check_fetch_url(jwks_url, "jwks-url")
        except ValueError as exc:
            raise AuthConfigError(f"{where}: {exc}") from None
    algorithms = DEFAULT_ALGORITHMS
    if "algorithms" in table:
        raw = table["algorithms"]
        if not isinstance(raw, list) or not raw:
            raise AuthConfigError(f'{where}: algorithms must be a list such as ["RS256"]')
        bad = [a for a in raw if a not in ALLOWED_ALGORITHMS]
        if bad:
            raise AuthConfigError(
                f"{where}: algorithm {bad[0]!r} is not accepted; use some of "
                f"{', '.join(sorted(ALLOWED_ALGORITHMS))}"
            )
        algorithms = tuple(raw)
    ca_bundle = None
    if "ca-bundle" in table:
        ca_bundle = Path(_str(table["ca-bundle"], f"{where}: ca-bundle")).expanduser()
        if not ca_bundle.is_file():
            raise AuthConfigError(f"{where}: ca-bundle {str(ca_bundle)!r}: no such file")
    return IssuerConfig(
        name=name,
        issuer=issuer,
        audiences=tuple(audiences),
        jwks_url=jwks_url,
        algorithms=algorithms,
        clock_skew=_number(
            table.get("clock-skew", DEFAULT_CLOCK_SKEW), f"{where}: clock-skew", 0, 600
        ),
        refresh_interval=_number(
            table.get("refresh-interval", DEFAULT_REFRESH_INTERVAL),
            f"{where}: refresh-interval",
            0,
            86400,
        ),
        ca_bundle=ca_bundle,
    )


def parse_anonymous(value: str, where: str) -> Anonymous:
    try:
        return Anonymous(value.strip().lower())
    except ValueError:
        raise AuthConfigError(f"invalid {where} value {value!r}: use public or none") from None


def auth_settings(
    table: dict[str, object] | None,
    *,
    tokens: str | None = None,
    anonymous: str | None = None,
    audit_log: str | None = None,
    where: str = "[auth]",
) -> AuthSettings | None:
    """Settings from the ``[auth]`` table and the flags (which win); None when auth is off."""
    if table is None and not tokens:
        if anonymous:
            raise AuthConfigError(
                f"--anonymous {anonymous} needs authentication: give --tokens FILE or an "
                "[auth] section in the --config file"
            )
        return None
    table = table or {}
    unknown = sorted(set(table) - AUTH_KEYS)
    if unknown:
        raise AuthConfigError(
            f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(AUTH_KEYS))}"
        )
    tokens_text = tokens or (_str(table["tokens"], f"{where} tokens") if "tokens" in table else "")
    anonymous_text = anonymous or _str(table.get("anonymous", "none"), f"{where} anonymous")
    contact = _str(table.get("contact", DEFAULT_CONTACT), f"{where} contact")
    if not contact or len(contact) > MAX_CONTACT or not contact.isprintable():
        raise AuthConfigError(f"{where} contact {contact!r}: use one printable line")
    issuers_raw = table.get("issuers", [])
    if not isinstance(issuers_raw, list):
        raise AuthConfigError(f"{where}: issuers must be an array of tables ([[auth.issuers]])")
    issuers = tuple(_issuer(t, i) for i, t in enumerate(issuers_raw))
    names = [i.name for i in issuers]
    if len(set(names)) != len(names):
        raise AuthConfigError(f"{where}: two issuers share a name; names must be unique")
    if len({i.issuer for i in issuers}) != len(issuers):
        raise AuthConfigError(f"{where}: an issuer URL is configured twice")
    try:
        grants = parse_grants(table.get("grants", []))
    except GrantError as exc:
        raise AuthConfigError(f"{where}: {exc}") from None
    for grant in grants:
        if grant.issuer is not None and grant.issuer not in names:
            raise AuthConfigError(
                f"{where}: grant {grant.name!r} names issuer {grant.issuer!r}, which is not "
                f"configured (issuers: {', '.join(names) or 'none'})"
            )
    limit = int(
        _number(
            table.get("failed-auth-limit", DEFAULT_FAILED_AUTH_LIMIT),
            f"{where} failed-auth-limit",
            0,
            1_000_000,
        )
    )
    audit = audit_log or _str(table.get("audit-log", "-"), f"{where} audit-log")
    return AuthSettings(
        tokens=Path(tokens_text).expanduser() if tokens_text else None,
        issuers=issuers,
        grants=grants,
        anonymous=parse_anonymous(anonymous_text, "--anonymous" if anonymous else where),
        contact=contact,
        audit_log=audit,
        failed_auth_limit=limit,
    )
