"""modgate's own tokens: the file that keeps their hashes, and the server's lookup table.

A token is ``mgt_`` and 43 characters of URL-safe base64 (256 random bits),
printed once by ``modgate token create``. The file keeps one JSON object per
line with the token's name, the SHA-256 of the token, its ``--read`` patterns,
and when it was created, expires and was revoked; never the token itself.

A fast hash is enough here: slow password hashes exist to protect guessable
passwords, and a 256-bit random token cannot be guessed from its hash. It
also lets the server find a token by its hash in one dictionary lookup, so
checking a token takes the same time whatever it is compared with.

The file is written whole to a temporary file, synced and renamed over the
old one (mode 0600), under an exclusive lock on ``FILE.lock``, so concurrent
``token`` commands never lose each other's changes and a running server
never reads half a file. A file that group or others may write is refused: who
can add a line can add a token.
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from modgate.protocol.patterns import PatternList, parse_patterns

TOKEN_PREFIX = "mgt_"  # noqa: S105 (the public prefix of every token)
TOKEN_BYTES = 32
HASH_PREFIX = "sha256:"
FILE_MODE = 0o600
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TOKEN_RE = re.compile(r"mgt_[A-Za-z0-9_-]{43}")
FORBIDDEN_BITS = stat.S_IWGRP | stat.S_IWOTH
MAX_FILE_BYTES = 16 << 20


class TokenFileError(ValueError):
    """A token file that cannot be used; the message names the file and what to do."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def looks_like_token(secret: str) -> bool:
    return TOKEN_RE.fullmatch(secret) is not None


def hash_token(secret: str) -> str:
    return HASH_PREFIX + hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def format_time(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def parse_time(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


@dataclass(frozen=True, slots=True)
class TokenRecord:
    name: str
    hash: str
    read: PatternList | None
    """None: created without --read (reads every module)."""
    created: float
    expires: float | None = None
    revoked: float | None = None

    def status(self, now: float) -> str:
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "active"

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "hash": self.hash,
                "read": None if self.read is None else str(self.read),
                "created": format_time(self.created),
                "expires": None if self.expires is None else format_time(self.expires),
                "revoked": None if self.revoked is None else format_time(self.revoked),
            },
            separators=(",", ":"),
        )


def _record(line: str, where: str) -> TokenRecord:
    try:
        data = json.loads(line)
        name, digest = data["name"], data["hash"]
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ValueError(f"bad name {name!r}")
        if not isinstance(digest, str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise ValueError("bad hash")
        read = data.get("read")
        return TokenRecord(
            name=name,
            hash=digest,
            read=None if read is None else parse_patterns(str(read)),
            created=parse_time(data["created"]),
            expires=None if data.get("expires") is None else parse_time(data["expires"]),
            revoked=None if data.get("revoked") is None else parse_time(data["revoked"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenFileError(
            f"{where}: not a token record ({exc}); restore the file from a backup or "
            "remove the line"
        ) from None


class TokenFile:
    """The token file at ``path`` (it need not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[TokenRecord]:
        """Every record; an absent file has none. TokenFileError for a bad file."""
        try:
            with self.path.open("rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                if mode & FORBIDDEN_BITS:
                    raise TokenFileError(
                        f"token file {str(self.path)!r} may be written by group or others "
                        f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {self.path}"
                    )
                data = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TokenFileError(
                f"cannot read token file {str(self.path)!r}: {exc.strerror}"
            ) from exc
        if len(data) > MAX_FILE_BYTES:
            raise TokenFileError(f"token file {str(self.path)!r} is larger than 16 MiB")
        records = []
        for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if raw.strip():
                records.append(_record(raw, f"{self.path}:{number}"))
        return records

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise TokenFileError(
                f"cannot lock token file {str(self.path)!r} ({lock_path}): {exc.strerror}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, records: list[TokenRecord]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        text = "".join(r.to_json() + "\n" for r in records).encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)
                os.write(fd, text)
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise TokenFileError(
                f"cannot write token file {str(self.path)!r}: {exc.strerror}"
            ) from exc

    def create(
        self, name: str, read: PatternList | None, expires: float | None, now: float
    ) -> tuple[str, TokenRecord]:
        """Add a token; returns the secret (to print once) and its record."""
        if not NAME_RE.fullmatch(name):
            raise TokenFileError(
                f"token name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        with self._locked():
            records = self.load()
            for old in records:
                if old.name == name and old.status(now) == "active":
                    raise TokenFileError(
                        f"token {name!r} already exists in {self.path}; revoke it first "
                        f"(modgate token revoke --tokens {self.path} {name}) or pick another name"
                    )
            secret = new_token()
            record = TokenRecord(name, hash_token(secret), read, now, expires)
            records.append(record)
            self._write(records)
        return secret, record

    def revoke(self, name: str, now: float) -> int:
        """Mark every active token called ``name`` revoked; returns how many."""
        with self._locked():
            records = self.load()
            count = 0
            for i, old in enumerate(records):
                if old.name == name and old.revoked is None:
                    records[i] = replace(old, revoked=now)
                    count += 1
            if count:
                self._write(records)
        return count


@dataclass(frozen=True, slots=True)
class TokenLookup:
    record: TokenRecord | None
    problem: str = ""
    """Why a token is refused ("" when accepted)."""
    reason: str = ""
    """The refusal as a metric label: unknown_token, revoked, expired."""


class TokenTable:
    """The server's view of a token file: records by hash."""

    def __init__(self, records: list[TokenRecord]) -> None:
        self.by_hash = {r.hash: r for r in records}

    def lookup(self, secret: str, now: float) -> TokenLookup:
        record = self.by_hash.get(hash_token(secret))
        if record is None:
            return TokenLookup(None, "the token is not known to this modgate", "unknown_token")
        status = record.status(now)
        if status == "revoked":
            return TokenLookup(None, f"token {record.name} was revoked", "revoked")
        if status == "expired":
            assert record.expires is not None
            when = format_time(record.expires)
            return TokenLookup(None, f"token {record.name} expired at {when}", "expired")
        return TokenLookup(record)


DURATION_RE = re.compile(r"(\d+)([smhdw])")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``90d``, ``12h``, ``1h30m``, ``2w``: seconds; ValueError otherwise."""
    value = text.strip()
    pos = 0
    total = 0
    for m in DURATION_RE.finditer(value):
        if m.start() != pos:
            break
        total += int(m.group(1)) * DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not value or pos != len(value) or total <= 0:
        raise ValueError(
            f"duration {text!r}: use a positive number with a unit s, m, h, d or w, "
            "such as 90d, 12h or 1h30m"
        )
    return float(total)
