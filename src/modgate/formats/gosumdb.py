"""GOSUMDB read the way the go command reads it (modfetch/sumdb.go ``dbDial``).

``GOSUMDB`` is ``off``, a known name (``sum.golang.org``, or the alias
``sum.golang.google.cn``), a verifier key ``<name>+<hash>+<key>``, or one of
those followed by a space and the URL to reach the database at; a bare
``host[/path]`` URL gets ``https://``. A ``+`` before the URL
(``sum.golang.org+https://mirror``) makes the key unreadable: ``invalid
GOSUMDB: malformed verifier id``. Keys are checked by :func:`note.parse_verifier`;
its typed errors are turned into the go command's words here.

This is the one place that knows sum.golang.org's key: the checksum-database
proxy, ``modgate verify`` and doctor all take it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from modgate.formats.note import (
    NoteError,
    Verifier,
    VerifierAlgorithmError,
    VerifierHashError,
    parse_verifier,
)

OFF = "off"
SUM_GOLANG_ORG = "sum.golang.org"
SUM_GOLANG_ORG_KEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
KNOWN_KEYS = {SUM_GOLANG_ORG: SUM_GOLANG_ORG_KEY}
"""Databases the go command knows the key of: a bare name is enough for them."""
ALIASES = {"sum.golang.google.cn": "sum.golang.org https://sum.golang.google.cn"}
_MAX_FIELDS = 2


class GoSumDBError(ValueError):
    """A GOSUMDB value the go command refuses; the message is the go command's."""


@dataclass(frozen=True, slots=True)
class SumDB:
    name: str
    key: str
    verifier: Verifier
    url: str | None
    """The explicit URL, or None: then proxies are asked first, then ``https://<name>``."""


def _verifier(key: str) -> Verifier:
    try:
        return parse_verifier(key)
    except VerifierHashError:
        raise GoSumDBError("invalid GOSUMDB: invalid verifier hash") from None
    except VerifierAlgorithmError:
        raise GoSumDBError("invalid GOSUMDB: unknown verifier algorithm") from None
    except NoteError:
        raise GoSumDBError("invalid GOSUMDB: malformed verifier id") from None


def parse_gosumdb(value: str) -> SumDB | None:
    """None for ``off``; GoSumDBError for what the go command refuses."""
    value = ALIASES.get(value, value)
    if value == OFF:
        return None
    fields = value.split()
    if not fields:
        raise GoSumDBError("missing GOSUMDB")
    if len(fields) > _MAX_FIELDS:
        raise GoSumDBError("invalid GOSUMDB: too many fields (the value is 'key [url]')")
    key = KNOWN_KEYS.get(fields[0], fields[0])
    verifier = _verifier(key)
    name = verifier.name
    direct = urlsplit("https://" + name)
    if name.endswith("/") or direct.query or direct.fragment or not direct.hostname:
        raise GoSumDBError(f"invalid sumdb name (must be host[/path]): {name}")
    url = fields[1] if len(fields) == _MAX_FIELDS else None
    if url is not None and "://" not in url:
        url = "https://" + url  # what the go command does with a bare host[/path]
    return SumDB(name, key, verifier, url)
