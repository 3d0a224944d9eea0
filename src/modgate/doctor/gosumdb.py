"""GOSUMDB checked the way the go command reads it (modfetch/sumdb.go ``dbDial``).

``GOSUMDB`` is ``off``, a known name (``sum.golang.org``, or the alias
``sum.golang.google.cn``), a verifier key ``<name>+<hash>+<key>``, or one of
those followed by a space and the URL to reach the database at. A ``+``
before the URL (``sum.golang.org+https://mirror``) makes the key unreadable:
``invalid GOSUMDB: malformed verifier id``. A key is checked as
``note.NewVerifier`` does: 8 hex digits that equal the first four bytes of
SHA-256(name, newline, key), and an Ed25519 key (algorithm byte 1, 32 bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

OFF = "off"
KNOWN_KEYS = {
    "sum.golang.org": "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
}
ALIASES = {"sum.golang.google.cn": "sum.golang.org https://sum.golang.google.cn"}
_HASH_HEX_LEN = 8
_ALG_ED25519 = 1
_ED25519_KEY_LEN = 32
_MAX_FIELDS = 2


class GoSumDBError(ValueError):
    """A GOSUMDB value the go command refuses; the message is close to the go command's."""


@dataclass(frozen=True, slots=True)
class SumDB:
    name: str
    key: str
    url: str | None
    """The explicit URL, or None: then proxies are asked first, then ``https://<name>``."""


def _verifier_name(vkey: str) -> str:
    name, _, rest = vkey.partition("+")
    hash16, _, key64 = rest.partition("+")
    try:
        hash_value = int(hash16, 16) if len(hash16) == _HASH_HEX_LEN else -1
        key = base64.b64decode(key64, validate=True)
    except (ValueError, binascii.Error):
        hash_value, key = -1, b""
    name_ok = bool(name) and "+" not in name and not any(c.isspace() for c in name)
    if hash_value < 0 or not name_ok or not key:
        raise GoSumDBError("invalid GOSUMDB: malformed verifier id")
    digest = hashlib.sha256(name.encode() + b"\n" + key).digest()
    if int.from_bytes(digest[:4], "big") != hash_value:
        raise GoSumDBError("invalid GOSUMDB: invalid verifier hash")
    if key[0] != _ALG_ED25519:
        raise GoSumDBError("invalid GOSUMDB: unknown verifier algorithm")
    if len(key) - 1 != _ED25519_KEY_LEN:
        raise GoSumDBError("invalid GOSUMDB: malformed verifier id")
    return name


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
    name = _verifier_name(key)
    direct = urlsplit("https://" + name)
    if name.endswith("/") or direct.query or direct.fragment or not direct.hostname:
        raise GoSumDBError(f"invalid sumdb name (must be host[/path]): {name}")
    url = fields[1] if len(fields) == _MAX_FIELDS else None
    if url is not None and "://" not in url:
        url = "https://" + url  # what the go command does with a bare host[/path]
    return SumDB(name, key, url)
