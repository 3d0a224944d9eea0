"""Signed notes and keys: known answers from the go command, and x/mod as a live oracle."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.sumdb_oracle import SumdbOracle, start_oracle
from modgate.formats import note
from modgate.formats.note import (
    InvalidSignatureError,
    NoteError,
    UnverifiedNoteError,
    open_note,
    parse_signer,
    parse_verifier,
    sign_note,
    signer_from_seed,
)

# The go command's built-in key for sum.golang.org (cmd/go/internal/modfetch).
SUM_GOLANG_ORG = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"

# Computed by x/mod's note.GenerateKey and note.Sign (go1.27.3) from the seed 00 01 .. 1f.
KAT_NAME = "example.com/sumdb"
KAT_SEED = bytes(range(32))
KAT_SIGNER = "PRIVATE+KEY+example.com/sumdb+f46aaf35+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
KAT_VERIFIER = "example.com/sumdb+f46aaf35+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
KAT_TEXT = "go.sum database tree\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
KAT_NOTE = (
    KAT_TEXT + "\n— example.com/sumdb 9GqvNd4lhO6/Sdibd+FCzJChwlabrphegybB8hUxDBhgCnwyC4Rvi"
    "+yW4WLQx+nHfInIyVH+n9Zp0ceP/ZDxClrQlAc=\n"
).encode()


@pytest.fixture(scope="module")
def oracle(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SumdbOracle]:
    cache = request.config.cache
    assert cache is not None
    yield from start_oracle(tmp_path_factory.mktemp("note-oracle"), cache.mkdir("go-build"))


# ---- known answers --------------------------------------------------------------------


def test_public_sum_golang_org_key_parses() -> None:
    v = parse_verifier(SUM_GOLANG_ORG)
    assert (v.name, f"{v.hash:08x}") == ("sum.golang.org", "033de0ae"), f"parsed {v!r}"
    assert str(v) == SUM_GOLANG_ORG, "the key does not print back as it was written"


def test_known_answer_keys_and_signature() -> None:
    signer = signer_from_seed(KAT_NAME, KAT_SEED)
    assert signer.signer_key() == KAT_SIGNER, "signer key differs from the go command's"
    assert str(signer.verifier()) == KAT_VERIFIER, "verifier key differs from the go command's"
    assert parse_signer(KAT_SIGNER) == signer
    assert sign_note(KAT_TEXT, [signer]) == KAT_NOTE, "Ed25519 note signature differs"
    opened = open_note(KAT_NOTE, [parse_verifier(KAT_VERIFIER)])
    assert opened.text == KAT_TEXT
    assert [(s.name, s.hash) for s in opened.sigs] == [(KAT_NAME, 0xF46AAF35)]


def test_signer_never_shows_its_secret() -> None:
    signer = parse_signer(KAT_SIGNER)
    secret = KAT_SIGNER.rsplit("+", 1)[1]
    for shown in (repr(signer), str(signer)):
        assert secret not in shown and KAT_SEED.hex() not in shown, f"secret leaked: {shown}"
    with pytest.raises(NoteError) as caught:
        parse_signer(KAT_SIGNER[:-4] + "AAA=")
    assert secret[:-4] not in str(caught.value), "a bad signer key is echoed in the error"


# ---- opening notes: what fails and how -------------------------------------------------

_GOOD = KAT_NOTE
_OTHER = signer_from_seed("other", bytes(32))

NOTE_CASES = [
    ("good", _GOOD, ""),
    ("text changed", _GOOD.replace(b"\n3\n", b"\n4\n"), "invalid"),
    ("signature changed", _GOOD.replace(b"ClrQ", b"ClrR"), "invalid"),
    ("key hash changed", _GOOD.replace(b"9Gqv", b"9Gqw"), "unverified"),
    ("only unknown signer", sign_note(KAT_TEXT, [_OTHER]), "unverified"),
    ("unknown plus known", sign_note(KAT_TEXT, [_OTHER, parse_signer(KAT_SIGNER)]), ""),
    ("no blank line", KAT_TEXT.encode(), "malformed"),
    ("no final newline", _GOOD[:-1], "malformed"),
    ("tab in text", _GOOD.replace(b"tree\n", b"tree\t\n"), "malformed"),
    ("bad utf-8", _GOOD.replace(b"tree", b"tr\xffe"), "malformed"),
    ("no dash", _GOOD.replace("— ".encode(), b"- "), "malformed"),
    ("short signature", KAT_TEXT.encode() + "\n— example.com/sumdb AAAA\n".encode(), "malformed"),
    ("bad base64", KAT_TEXT.encode() + "\n— example.com/sumdb ***\n".encode(), "malformed"),
    ("duplicate signature", _GOOD + _GOOD[len(KAT_TEXT) + 1 :], ""),
]


@pytest.mark.parametrize(("case", "message", "kind"), NOTE_CASES, ids=[c[0] for c in NOTE_CASES])
def test_open_note_cases(case: str, message: bytes, kind: str) -> None:
    known = [parse_verifier(KAT_VERIFIER)]
    expected: type[NoteError] | None = {
        "": None,
        "invalid": InvalidSignatureError,
        "unverified": UnverifiedNoteError,
        "malformed": NoteError,
    }[kind]
    if expected is None:
        assert open_note(message, known).text == KAT_TEXT
        return
    with pytest.raises(expected) as caught:
        open_note(message, known)
    if kind == "malformed":
        assert not isinstance(caught.value, InvalidSignatureError | UnverifiedNoteError)


def _kind(message: bytes, known: list[note.Verifier]) -> tuple[str, str, list[str]]:
    try:
        opened = open_note(message, known)
    except InvalidSignatureError:
        return "invalid", "", []
    except UnverifiedNoteError:
        return "unverified", "", []
    except NoteError:
        return "malformed", "", []
    return "", opened.text, [f"{s.name}+{s.hash:08x}" for s in opened.sigs]


@pytest.mark.go
@pytest.mark.parametrize(("case", "message", "kind"), NOTE_CASES, ids=[c[0] for c in NOTE_CASES])
def test_open_note_agrees_with_xmod(
    oracle: SumdbOracle, case: str, message: bytes, kind: str
) -> None:
    want = oracle.ask("open", KAT_VERIFIER, message.decode("utf-8", "surrogateescape"))
    if b"\xff" in message:
        return  # JSON cannot carry the invalid byte to the oracle; covered above
    got = _kind(message, [parse_verifier(KAT_VERIFIER)])
    assert got == (want["Kind"], want["S"], want["List"] or []), (
        f"{case}: modgate {got}, x/mod {want}"
    )


# ---- keys: differential against x/mod ----------------------------------------------------

KEY_NAMES = ["a", "sum.golang.org", "modgate.corp.example.com", "名前", "x" * 80]


@pytest.mark.go
@pytest.mark.parametrize("name", KEY_NAMES)
def test_keygen_agrees_with_xmod(oracle: SumdbOracle, name: str) -> None:
    for seed in (bytes(32), bytes(range(32)), bytes([0xFF] * 32)):
        want = oracle.ask("keygen", name, seed.hex())
        signer = signer_from_seed(name, seed)
        got = (signer.signer_key(), str(signer.verifier()))
        assert got == (want["S"], want["S2"]), f"{name} seed {seed.hex()}: {got} != {want}"


def _mutations(key: str) -> list[str]:
    name_end = key.index("+")
    return [
        key,
        key.upper(),
        key + "A",
        key[:-1],
        key.replace("+", " ", 1),
        "a b" + key[name_end:],
        "a+b" + key[name_end:],
        key[: name_end + 1] + key[name_end + 1 : name_end + 9].upper() + key[name_end + 9 :],
        key[: name_end + 1] + "0" + key[name_end + 2 :],
        key[: name_end + 1] + "1234567" + key[name_end + 9 :],
        key[: name_end + 10] + base64.b64encode(b"\x02" + bytes(32)).decode(),
        key[: name_end + 10] + base64.b64encode(b"\x01" + bytes(31)).decode(),
        key[: name_end + 10],
        "",
        "+++",
    ]


def _verifier_answer(vkey: str) -> tuple[str, bool]:
    try:
        v = parse_verifier(vkey)
    except NoteError:
        return "", False
    return f"{v.name} {v.hash:08x}", True


def _signer_answer(skey: str) -> tuple[str, bool]:
    try:
        s = parse_signer(skey)
    except NoteError:
        return "", False
    return f"{s.name} {s.hash:08x}", True


@pytest.mark.go
def test_key_parsing_agrees_with_xmod(oracle: SumdbOracle) -> None:
    differences = []
    for vkey in [*_mutations(KAT_VERIFIER), *_mutations(SUM_GOLANG_ORG)]:
        want = oracle.ask("verifier", vkey)
        if _verifier_answer(vkey) != (want["S"], not want["Err"]):
            differences.append(f"verifier {vkey!r}: x/mod {want}")
    for skey in _mutations(KAT_SIGNER.removeprefix("PRIVATE+KEY+")):
        for text in ("PRIVATE+KEY+" + skey, "PRIVATE+KEX+" + skey, skey):
            want = oracle.ask("signer", text)
            if _signer_answer(text) != (want["S"], not want["Err"]):
                differences.append(f"signer {text!r}: x/mod {want}")
    assert not differences, "\n".join(differences)


_texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\t\x0b\x0c"),
    max_size=60,
).map(lambda s: s + "\n")


@pytest.mark.go
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_texts, cut=st.integers(min_value=0, max_value=200))
def test_sign_and_open_agree_with_xmod(oracle: SumdbOracle, text: str, cut: int) -> None:
    signer = parse_signer(KAT_SIGNER)
    want = oracle.ask("sign", KAT_SIGNER, text)
    try:
        got = sign_note(text, [signer]).decode()
    except NoteError:
        got = ""
    if want["Err"] or not got:
        # the go command signs texts it cannot open later; modgate refuses them up front
        assert any(c < " " and c != "\n" for c in text), f"sign {text!r}: x/mod {want}"
        return
    assert got == want["S"], f"sign {text!r}: modgate {got!r}, x/mod {want['S']!r}"
    damaged = got[:cut] + got[cut + 1 :]
    answer = oracle.ask("open", KAT_VERIFIER, damaged)
    mine = _kind(damaged.encode(), [parse_verifier(KAT_VERIFIER)])
    assert mine == (answer["Kind"], answer["S"], answer["List"] or []), (
        f"open {damaged!r}: modgate {mine}, x/mod {answer}"
    )
