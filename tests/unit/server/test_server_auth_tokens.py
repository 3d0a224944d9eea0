"""The token file (hashes only, 0600, atomic, locked) and the Authorization header."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.protocol.patterns import parse_patterns
from modgate.server.auth.audit import AuditLog
from modgate.server.auth.credentials import CredentialError, SecretKind, parse_authorization
from modgate.server.auth.tokens import (
    TokenFile,
    TokenFileError,
    TokenTable,
    looks_like_token,
    parse_duration,
)


def test_a_created_token_is_printed_once_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    secret, record = TokenFile(path).create("ci", parse_patterns("corp.example.com"), None, 1e9)
    assert looks_like_token(secret), secret
    text = path.read_text()
    assert secret not in text and secret[4:] not in text, "the token itself must not be stored"
    assert record.hash in text
    assert path.stat().st_mode & 0o777 == 0o600
    found = TokenTable(TokenFile(path).load()).lookup(secret, 1e9 + 1)
    assert found.record is not None and found.record.name == "ci"
    assert str(found.record.read) == "corp.example.com"


def test_two_tokens_differ_and_names_are_unique_among_active_ones(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "tokens")
    first, _ = tokens.create("a", None, None, 1e9)
    second, _ = tokens.create("b", None, None, 1e9)
    assert first != second
    with pytest.raises(TokenFileError, match="already exists"):
        tokens.create("a", None, None, 1e9)
    assert tokens.revoke("a", 1e9) == 1
    tokens.create("a", None, None, 1e9)  # a revoked name may be reused


def test_revoked_expired_and_unknown_tokens_are_refused_with_their_reason(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "tokens")
    revoked, _ = tokens.create("old", None, None, 1000.0)
    expiring, _ = tokens.create("short", None, 2000.0, 1000.0)
    tokens.revoke("old", 1500.0)
    table = TokenTable(tokens.load())
    assert table.lookup(revoked, 1600.0).reason == "revoked"
    assert table.lookup(expiring, 1999.0).record is not None
    late = table.lookup(expiring, 2000.0)
    assert late.record is None and late.reason == "expired", late
    assert "expired at 1970-01-01T00:33:20Z" in late.problem
    unknown = table.lookup("mgt_" + "A" * 43, 1000.0)
    assert unknown.record is None and unknown.reason == "unknown_token"


def test_a_file_others_may_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    TokenFile(path).create("a", None, None, 1e9)
    path.chmod(0o622)
    with pytest.raises(TokenFileError, match="chmod 600"):
        TokenFile(path).load()


def test_a_damaged_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    TokenFile(path).create("a", None, None, 1e9)
    with path.open("a") as f:
        f.write("{not json\n")
    with pytest.raises(TokenFileError, match=r"tokens:2: not a token record"):
        TokenFile(path).load()


def test_concurrent_creates_lose_no_token(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "tokens")
    secrets: list[str] = []

    def create(i: int) -> None:
        secret, _ = TokenFile(tokens.path).create(f"t{i}", None, None, time.time())
        secrets.append(secret)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    table = TokenTable(tokens.load())
    assert sorted(r.name for r in table.by_hash.values()) == sorted(f"t{i}" for i in range(12))
    assert all(table.lookup(s, time.time()).record is not None for s in secrets)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90d", 90 * 86400), ("12h", 43200), ("1h30m", 5400), ("2w", 1209600)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0d", "10", "1y", "h", "1h 30m", "-1d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


TOKEN = "mgt_" + "x" * 43
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


@pytest.mark.parametrize(
    ("header", "kind", "secret"),
    [
        (b"Basic " + base64.b64encode(f"anyone:{TOKEN}".encode()), SecretKind.TOKEN, TOKEN),
        (b"basic " + base64.b64encode(f"token:{JWT}".encode()), SecretKind.JWT, JWT),
        (b"Bearer " + TOKEN.encode(), SecretKind.TOKEN, TOKEN),
        (b"bearer  " + JWT.encode(), SecretKind.JWT, JWT),
    ],
)
def test_basic_and_bearer_carry_tokens_and_jwts(
    header: bytes, kind: SecretKind, secret: str
) -> None:
    credential = parse_authorization(header)
    assert (credential.kind, credential.secret) == (kind, secret)
    assert secret not in repr(credential)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"Basic !!!", "not base64"),
        (b"Basic " + base64.b64encode(b"user-only"), "no password"),
        (b"Basic " + base64.b64encode(b"user:"), "no password"),
        (b"Digest abc", "use Authorization: Basic"),
        (b"Bearer hunter2", "neither a modgate token"),
        (b"Bearer " + b"a" * 20000, "too long"),
    ],
)
def test_unreadable_credentials_are_refused_without_echoing_them(
    header: bytes, message: str
) -> None:
    with pytest.raises(CredentialError, match=message) as caught:
        parse_authorization(header)
    assert "hunter2" not in str(caught.value)


@given(st.binary(max_size=200))
def test_any_header_is_parsed_or_refused_cleanly(header: bytes) -> None:
    with contextlib.suppress(CredentialError):
        parse_authorization(header)


def test_the_audit_log_counts_identical_records_and_reopens_for_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog.open(str(path))
    read = ("token:ci", "corp.example.com/a@v1.0.0", "allow", "grant:ci", 200, "zip", "10.0.0.1")
    deny = ("token:x", "corp.example.com/a@v1.0.0", "deny", "no-grant", 403, "zip", "10.0.0.2")
    for _ in range(5):
        audit.add(read)
    audit.add(deny)
    audit.flush()
    assert path.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["identity"], r["decision"], r["count"]) for r in lines] == [
        ("token:ci", "allow", 5),
        ("token:x", "deny", 1),
    ]
    assert set(lines[0]) == {"time", "event", "identity", "module", "decision", "rule",
                             "status", "route", "remote", "count"}  # fmt: skip
    rotated = tmp_path / "audit.jsonl.1"
    path.rename(rotated)
    audit.add(deny)
    audit.reopen()  # what waited goes to the old file, later records to the new one
    audit.add(read)
    audit.close()
    assert len(rotated.read_text().splitlines()) == 3
    assert [json.loads(line)["identity"] for line in path.read_text().splitlines()] == ["token:ci"]
