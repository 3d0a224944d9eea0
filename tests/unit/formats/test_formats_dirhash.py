"""dirhash: h1 of files, of go.mod, and of zips (known answers from the go command)."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.formats.dirhash import HashInputError, hash1, hash_gomod, hash_zip
from modgate.formats.zipentry import ZipReadError

PREFIX = "example.com/m@v1.0.0/"

# Reported as "Sum" / "GoModSum" by `go mod download -json` (go1.27.3) for
# these exact files.
GO_KNOWN_MODULE = [
    (PREFIX + "go.mod", b"module example.com/m\n\ngo 1.21\n"),
    (PREFIX + "m.go", b"package m\n"),
    (PREFIX + "sub/x.go", b"package sub\n"),
    (PREFIX + "vendor/modules.txt", b"x"),
    (PREFIX + "ünï/ß.txt", b"hi"),
]
GO_KNOWN_MODULE_H1 = "h1:hDLQLSRo3NpFdRgOiiFT0NjlfJTC71+V23BrwQGipyo="
GO_KNOWN_GOMOD_H1 = "h1:ONeDgCa5UF/jJRjGzpOKmUiezgFEk4IPFZ96frvroW0="
# The hash of an empty go.mod, a constant in cmd/go (emptyGoModHash).
EMPTY_GOMOD_H1 = "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="
# A zip whose directory entry "d/" go hashes as an empty file.
GO_KNOWN_DIR_ENTRY_ZIP = [
    (PREFIX + "go.mod", b"module example.com/m\n"),
    (PREFIX + "d/", b""),
    (PREFIX + "d/x.go", b"x"),
]
GO_KNOWN_DIR_ENTRY_H1 = "h1:oUvSEPuiCMP+mNAWXyk/2Poo5+S6b7VgaSGvaa/O6kA="


def make_zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("entries", "want"),
    [
        (GO_KNOWN_MODULE, GO_KNOWN_MODULE_H1),
        (list(reversed(GO_KNOWN_MODULE)), GO_KNOWN_MODULE_H1),
        (GO_KNOWN_DIR_ENTRY_ZIP, GO_KNOWN_DIR_ENTRY_H1),
    ],
    ids=["module", "module-any-order", "directory-entry"],
)
def test_hash1_known_answers(entries: list[tuple[str, bytes]], want: str) -> None:
    got = hash1(entries)
    assert got == want, f"hash1 gave {got}, the go command {want}"


@pytest.mark.parametrize(
    ("data", "want"),
    [(b"module example.com/m\n\ngo 1.21\n", GO_KNOWN_GOMOD_H1), (b"", EMPTY_GOMOD_H1)],
    ids=["go.mod", "empty"],
)
def test_hash_gomod_known_answers(data: bytes, want: str) -> None:
    got = hash_gomod(data)
    assert got == want, f"hash_gomod({data!r}) gave {got}, the go command {want}"


def test_hash1_accepts_hex_digests_in_place_of_content() -> None:
    digests = [(name, hashlib.sha256(data).hexdigest()) for name, data in GO_KNOWN_MODULE]
    mixed: list[tuple[str, bytes | str]] = [*digests[:2], *GO_KNOWN_MODULE[2:]]
    assert hash1(digests) == GO_KNOWN_MODULE_H1, "hex digests hashed differently from content"
    assert hash1(mixed) == GO_KNOWN_MODULE_H1, "mixed digests and content hashed differently"


def test_hash1_sorts_names_bytewise() -> None:
    # Code point order and UTF-8 byte order agree; "é" (0xC3..) sorts after "z".
    names = ["z", "é", "a/b", "a.b", "A"]
    forward = hash1((n, b"") for n in names)
    backward = hash1((n, b"") for n in reversed(names))
    assert forward == backward, "hash depends on input order"


@pytest.mark.parametrize(
    "entries",
    [
        [("a\nb", b"")],
        [("a", "not-a-digest")],
        [("a", "A" * 64)],
    ],
    ids=["newline", "short-digest", "uppercase-digest"],
)
def test_hash1_rejects_bad_input(entries: list[tuple[str, bytes | str]]) -> None:
    with pytest.raises(HashInputError):
        hash1(entries)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_hash_zip_matches_go(method: int) -> None:
    for entries, want in (
        (GO_KNOWN_MODULE, GO_KNOWN_MODULE_H1),
        (GO_KNOWN_DIR_ENTRY_ZIP, GO_KNOWN_DIR_ENTRY_H1),
    ):
        got = hash_zip(io.BytesIO(make_zip(entries, method)))
        assert got == want, f"hash_zip gave {got}, the go command {want} for {entries}"


def test_hash_zip_hashes_a_repeated_name_twice_with_its_last_content() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("a", b"first")
        archive.writestr("a", b"last")
    want = hash1([("a", b"last"), ("a", b"last")])
    assert hash_zip(io.BytesIO(out.getvalue())) == want, "duplicate names hashed unlike HashZip"


@pytest.mark.parametrize(
    "damage",
    [
        lambda z: z[: len(z) // 2],
        lambda z: z.replace(b"hello world" * 4, b"HELLO WORLD" * 4),
        lambda z: b"not a zip at all",
    ],
    ids=["truncated", "crc", "garbage"],
)
def test_hash_zip_refuses_damaged_zips(damage: object) -> None:
    data = make_zip([("a.txt", b"hello world" * 4)], zipfile.ZIP_STORED)
    broken = damage(data)  # type: ignore[operator]
    with pytest.raises(ZipReadError):
        hash_zip(io.BytesIO(broken))


@given(
    st.dictionaries(
        # zipfile cuts names at NUL when writing, so NUL cannot be tried here;
        # a name ending in "/" is a directory, which may hold no content.
        st.text(
            st.characters(blacklist_characters="\n\x00", blacklist_categories=["Cs"]), min_size=1
        ).filter(lambda n: not n.endswith("/")),
        st.binary(max_size=64),
        max_size=8,
    )
)
def test_hash_zip_equals_hash1_of_the_entries(files: dict[str, bytes]) -> None:
    entries = sorted(files.items())
    data = make_zip(entries)
    assert hash_zip(io.BytesIO(data)) == hash1(entries), f"zip of {entries} hashed differently"
