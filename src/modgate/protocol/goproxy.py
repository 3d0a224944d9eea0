"""GOPROXY-syntax proxy lists, read exactly as the go command reads them.

``https://a.example,https://b.example|direct``: entries are separated by
``,`` or ``|`` and trimmed; empty entries are skipped. The separator *after*
an entry decides when the next one is tried: after ``,`` only when the entry
answered 404 or 410, after ``|`` after any error (timeouts included).
``direct`` and ``off`` end the list; the go command ignores whatever follows
them, and so do we, but we report those entries in ``ignored`` so that the
caller can warn. A token containing ``.``, ``:`` or ``/`` but not ``:/``,
and not an absolute path, is a host and gets ``https://`` in front. Only
https, http and file URLs are accepted. The go command's internal
``noproxy`` entry is not something a user can write, so it is rejected.

Two deliberate differences make bad configuration fail at startup rather
than at the first request: URLs with whitespace, control characters, a query
or a fragment, http(s) URLs without a host, and file URLs that are not an
absolute path are rejected. Entry URLs keep their credentials for use;
``redacted()``, ``repr()`` and every message hide them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# unicode.IsSpace, which strings.TrimSpace uses.
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_SEPARATORS = ",|"
_FALL_THROUGH_ON_ANY_ERROR = "|"
_FALL_THROUGH_ON_NOT_FOUND = ","
_HOST_HINT_CHARS = ".:/"
DIRECT = "direct"
OFF = "off"
ALLOWED_SCHEMES = ("https", "http", "file")
REDACTED = "xxxxx"
_USERINFO_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")


class EntryKind(enum.Enum):
    URL = "url"
    DIRECT = "direct"
    OFF = "off"


def redact_url(url: str) -> str:
    """``url`` with its whole userinfo hidden: ``user:pass@`` becomes ``xxxxx@``.

    The go command keeps the user name, but a user name alone is often an
    access token (``https://TOKEN@host``), so modgate hides all of it.
    """
    m = _USERINFO_RE.match(url)
    if m is None:
        return url
    return f"{m.group(1)}{REDACTED}@{url[m.end() :]}"


@dataclass(frozen=True, slots=True, repr=False)
class ProxyEntry:
    """One entry of a proxy list. ``url`` is set for URL entries only."""

    kind: EntryKind
    url: str | None
    fall_through_on_any_error: bool
    """True when ``|`` follows the entry: any error moves on to the next entry."""

    def redacted(self) -> str:
        """The URL without credentials, or ``direct`` / ``off``."""
        if self.url is None:
            return self.kind.value
        return redact_url(self.url)

    def __repr__(self) -> str:
        return (
            f"ProxyEntry(kind={self.kind}, url={self.redacted()!r}, "
            f"fall_through_on_any_error={self.fall_through_on_any_error})"
        )


@dataclass(frozen=True, slots=True)
class ProxyList:
    entries: tuple[ProxyEntry, ...]
    ignored: tuple[str, ...]
    """Entries after ``direct``/``off`` that have no effect (redacted), for warnings."""

    def render(self) -> str:
        """A GOPROXY string (with credentials) that parses back to ``entries``."""
        parts: list[str] = []
        for entry in self.entries:
            parts.append(entry.url if entry.url is not None else entry.kind.value)
            parts.append(
                _FALL_THROUGH_ON_ANY_ERROR
                if entry.fall_through_on_any_error
                else _FALL_THROUGH_ON_NOT_FOUND
            )
        return "".join(parts).rstrip(_FALL_THROUGH_ON_NOT_FOUND)

    def __str__(self) -> str:
        """The chain without credentials, each entry followed by its own separator."""
        parts: list[str] = []
        for entry in self.entries:
            parts.append(entry.redacted())
            parts.append(
                _FALL_THROUGH_ON_ANY_ERROR
                if entry.fall_through_on_any_error
                else _FALL_THROUGH_ON_NOT_FOUND
            )
        return "".join(parts[:-1])


def _split(value: str) -> list[tuple[str, bool]]:
    """Trimmed, non-empty tokens with "is followed by ``|``"."""
    tokens: list[tuple[str, bool]] = []
    rest = value
    while rest:
        cut = min((i for i in (rest.find(s) for s in _SEPARATORS) if i >= 0), default=-1)
        if cut >= 0:
            token, any_error, rest = rest[:cut], rest[cut] == "|", rest[cut + 1 :]
        else:
            token, any_error, rest = rest, False, ""
        token = token.strip(_GO_SPACE)
        if token:
            tokens.append((token, any_error))
    return tokens


def _bad(token: str, why: str) -> ValueError:
    return ValueError(f"GOPROXY entry {redact_url(token)!r}: {why}")


def _url(token: str) -> str:
    if (
        any(c in token for c in _HOST_HINT_CHARS)
        and ":/" not in token
        and not token.startswith("/")
    ):
        token = "https://" + token
    if any(c.isspace() or not c.isprintable() for c in token):
        raise _bad(token, "holds whitespace or a control character")
    try:
        parts = urlsplit(token)
        _ = parts.port  # raises for a malformed port
    except ValueError as err:
        raise _bad(token, f"not a valid URL ({err})") from None
    scheme = parts.scheme.lower()
    if scheme == "":
        if token.startswith("/"):
            raise _bad(token, f"a local directory needs a file URL: file://{token}")
        raise _bad(token, "not a URL, 'direct' or 'off' (did you mean https://...?)")
    if scheme not in ALLOWED_SCHEMES:
        raise _bad(token, f"invalid proxy URL scheme {scheme!r} (must be https, http or file)")
    if parts.query or parts.fragment or "?" in token or "#" in token:
        raise _bad(token, "a proxy URL takes no query or fragment")
    if scheme == "file":
        if parts.netloc or not parts.path.startswith("/"):
            raise _bad(token, "a file URL must name an absolute directory: file:///path")
    elif not parts.hostname:
        raise _bad(token, "the URL has no host")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def parse_goproxy(value: str) -> ProxyList:
    """Parse a GOPROXY-syntax list; ValueError echoing the bad (redacted) entry."""
    if value == "":
        raise ValueError("GOPROXY list is empty")
    entries: list[ProxyEntry] = []
    tokens = _split(value)
    for index, (token, any_error) in enumerate(tokens):
        if token in (DIRECT, OFF):
            kind = EntryKind.DIRECT if token == DIRECT else EntryKind.OFF
            entries.append(ProxyEntry(kind, None, False))
            ignored = tuple(redact_url(t) for t, _ in tokens[index + 1 :])
            return ProxyList(tuple(entries), ignored)
        entries.append(ProxyEntry(EntryKind.URL, _url(token), any_error))
    if not entries:
        raise ValueError(f"GOPROXY list {value!r} contains no entries")
    return ProxyList(tuple(entries), ())
