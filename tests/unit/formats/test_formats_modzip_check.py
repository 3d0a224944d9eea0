"""check_zip: every rule that makes the go command (or modgate) refuse a module zip."""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence

import pytest

from modgate.formats import modzip
from modgate.formats.dirhash import hash1, hash_zip
from modgate.formats.modzip import CheckedZip, InvalidZipError, Problem, check_zip, read_go_mod
from modgate.formats.zipentry import ReadProblem, ZipReadError, read_directory, read_entry
from modgate.protocol.errors import InvalidModuleError
from modgate.protocol.module import ModuleVersion

MV = ModuleVersion("example.com/m", "v1.0.0")
P = "example.com/m@v1.0.0/"
GO_MOD = b"module example.com/m\n\ngo 1.21\n"

# Offsets of fields in a central directory record and a local file header.
CD_SIGNATURE, LOCAL_SIGNATURE = b"PK\x01\x02", b"PK\x03\x04"
CD_FIELDS = {"flags": (8, "<H"), "crc": (16, "<L"), "usize": (24, "<L"), "extattr": (38, "<L")}
LOCAL_FIELDS = {"flags": (6, "<H"), "crc": (14, "<L"), "usize": (22, "<L")}

Entry = tuple[str, bytes] | zipfile.ZipInfo
# A size limit for tests that lower one: big enough that the zip of a file
# of zeros that size stays below it.
SMALL_LIMIT = 1000


def build(entries: Sequence[Entry], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``(name, data)`` pairs or prepared ZipInfos (given the data b"x")."""
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names on purpose
        with zipfile.ZipFile(out, "w", method) as archive:
            for entry in entries:
                if isinstance(entry, zipfile.ZipInfo):
                    archive.writestr(entry, b"" if entry.filename.endswith("/") else b"x")
                else:
                    archive.writestr(entry[0], entry[1])
    return out.getvalue()


def patch(data: bytes, field: str, value: int, *, index: int = 0, local: bool = True) -> bytes:
    """Set ``field`` of the ``index``-th entry in the central directory (and local header)."""
    buf = bytearray(data)
    targets = [(CD_SIGNATURE, CD_FIELDS)]
    if local and field in LOCAL_FIELDS:
        targets.append((LOCAL_SIGNATURE, LOCAL_FIELDS))
    for signature, fields in targets:
        at = -1
        for _ in range(index + 1):
            at = buf.index(signature, at + 1)
        offset, fmt = fields[field]
        struct.pack_into(fmt, buf, at + offset, value)
    return bytes(buf)


def replace_name(data: bytes, old: str, new: bytes) -> bytes:
    """Swap an entry name for raw bytes of the same length (both headers)."""
    assert len(old.encode()) == len(new)
    return data.replace(old.encode(), new)


def info(name: str, mode: int) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name)
    zi.create_system = 3
    zi.external_attr = mode << 16
    return zi


def run_check(data: bytes, mv: ModuleVersion = MV) -> CheckedZip:
    return check_zip(mv, io.BytesIO(data), len(data))


def problems_of(data: bytes, mv: ModuleVersion = MV) -> list[Problem]:
    with pytest.raises(InvalidZipError) as caught:
        run_check(data, mv)
    return [p.problem for p in caught.value.problems]


def deflate_bomb(declared: int) -> bytes:
    """An entry declaring ``declared`` bytes whose deflate data expands to 64 MiB."""
    content = bytes(64 << 20)
    data = build([(P + "bomb.txt", content)])
    return patch(data, "usize", declared)


INVALID: list[tuple[str, Callable[[], bytes], Problem]] = [
    ("no-prefix", lambda: build([("other.com/m@v1.0.0/a.go", b"x")]), Problem.NO_PREFIX),
    ("wrong-version", lambda: build([("example.com/m@v1.0.1/a.go", b"x")]), Problem.NO_PREFIX),
    ("no-slash", lambda: build([("example.com/m@v1.0.0a.go", b"x")]), Problem.NO_PREFIX),
    ("dot-dot", lambda: build([(P + "a/../b.go", b"x")]), Problem.NOT_CLEAN),
    ("dot", lambda: build([(P + "./a.go", b"x")]), Problem.NOT_CLEAN),
    ("double-slash", lambda: build([(P + "a//b.go", b"x")]), Problem.NOT_CLEAN),
    ("absolute", lambda: build([(P + "/a.go", b"x")]), Problem.NOT_RELATIVE),
    ("bad-char", lambda: build([(P + "bad:name.txt", b"x")]), Problem.BAD_PATH),
    ("reserved", lambda: build([(P + "sub/con.txt", b"x")]), Problem.BAD_PATH),
    (
        "not-utf8",
        lambda: replace_name(build([(P + "bad_X.go", b"x")]), "bad_X", b"bad_\xff"),
        Problem.BAD_PATH,
    ),
    (
        "case-collision",
        lambda: build([(P + "m.go", b"1"), (P + "M.GO", b"2")]),
        Problem.CASE_COLLISION,
    ),
    (
        "dir-case-collision",
        lambda: build([(P + "a/x.go", b"1"), (P + "A/y.go", b"2")]),
        Problem.CASE_COLLISION,
    ),
    ("duplicate", lambda: build([(P + "a.go", b"1"), (P + "a.go", b"2")]), Problem.DUPLICATE),
    (
        "file-and-dir",
        lambda: build([(P + "a.go", b"1"), (P + "a.go/b.go", b"2")]),
        Problem.FILE_AND_DIR,
    ),
    (
        "file-and-dir-entry",
        lambda: build([(P + "d", b"1"), info(P + "d/", stat.S_IFDIR | 0o755)]),
        Problem.FILE_AND_DIR,
    ),
    (
        "sub-go-mod",
        lambda: build([(P + "go.mod", GO_MOD), (P + "x/go.mod", GO_MOD)]),
        Problem.GO_MOD_NOT_ROOT,
    ),
    ("sub-go-mod-upper", lambda: build([(P + "x/GO.MOD", GO_MOD)]), Problem.GO_MOD_NOT_ROOT),
    ("root-go-mod-case", lambda: build([(P + "GO.MOD", GO_MOD)]), Problem.GO_MOD_CASE),
    ("symlink", lambda: build([info(P + "link", stat.S_IFLNK | 0o777)]), Problem.SYMLINK),
    ("fifo", lambda: build([info(P + "pipe", stat.S_IFIFO | 0o644)]), Problem.IRREGULAR),
    (
        "dir-with-data",
        lambda: patch(build([info(P + "d/", stat.S_IFDIR)]), "usize", 3),
        Problem.DIR_DATA,
    ),
    ("encrypted", lambda: patch(build([(P + "a.go", b"x")]), "flags", 1), Problem.ENCRYPTED),
    (
        "bzip2",
        lambda: build([(P + "a.go", b"x")], zipfile.ZIP_BZIP2),
        Problem.COMPRESSION,
    ),
    ("crc", lambda: patch(build([(P + "a.go", b"hello")]), "crc", 12345), Problem.CRC),
    (
        "declared-larger",
        lambda: patch(build([(P + "a.go", b"hello")]), "usize", 6),
        Problem.SIZE_MISMATCH,
    ),
    (
        "declared-smaller",
        lambda: patch(build([(P + "a.go", b"hello")]), "usize", 4),
        Problem.SIZE_MISMATCH,
    ),
    (
        "stored-declared-smaller",
        lambda: patch(build([(P + "a.go", b"hello")], zipfile.ZIP_STORED), "usize", 4),
        Problem.SIZE_MISMATCH,
    ),
    ("zip-bomb", lambda: deflate_bomb(1024), Problem.SIZE_MISMATCH),
    (
        "damaged-deflate",
        lambda: build([(P + "a.go", b"hello world")]).replace(
            zlib.compress(b"hello world")[2:-4], bytes(len(zlib.compress(b"hello world")[2:-4]))
        ),
        Problem.CORRUPT,
    ),
    ("truncated", lambda: build([(P + "a.go", b"hello")])[:-30], Problem.CORRUPT),
    ("garbage", lambda: b"this is not a zip file at all", Problem.CORRUPT),
    ("empty-file", lambda: b"", Problem.CORRUPT),
]


@pytest.mark.parametrize(
    ("builder", "want"), [(b, w) for _, b, w in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_zip(builder: Callable[[], bytes], want: Problem) -> None:
    got = problems_of(builder())
    assert want in got, f"expected {want.name}, check_zip found {[p.name for p in got]}"


def test_invalid_zip_error_names_module_and_remedy() -> None:
    with pytest.raises(InvalidModuleError) as caught:
        run_check(build([(P + "m.go", b"1"), (P + "M.GO", b"2")]))
    text = str(caught.value)
    assert text.startswith("example.com/m@v1.0.0: "), f"subject missing in {text!r}"
    assert "'m.go' and 'M.GO'" in text, f"colliding names missing in {text!r}"
    assert "publisher" in text, f"no advice in {text!r}"


def test_every_problem_is_reported() -> None:
    data = build([(P + "bad:1", b""), (P + "x/go.mod", b""), ("elsewhere/a", b"")])
    got = problems_of(data)
    want = [Problem.BAD_PATH, Problem.GO_MOD_NOT_ROOT, Problem.NO_PREFIX]
    assert got == want, f"problems {[p.name for p in got]}, expected {[p.name for p in want]}"


@pytest.mark.parametrize(
    ("mv", "why"),
    [
        (ModuleVersion("example.com/m", "v1.0"), "non-canonical version"),
        (ModuleVersion("example.com/m/v2", "v1.0.0"), "major version mismatch"),
        (ModuleVersion("Example.com/m", "v1.0.0"), "bad module path"),
    ],
)
def test_module_version_must_be_valid(mv: ModuleVersion, why: str) -> None:
    data = build([(f"{mv.path}@{mv.version}/a.go", b"x")])
    with pytest.raises(InvalidModuleError):
        run_check(data, mv)


def test_zip_size_limit_is_checked_first() -> None:
    data = build([(P + "a.go", b"x")])
    with pytest.raises(InvalidZipError) as caught:
        check_zip(MV, io.BytesIO(data), modzip.MAX_ZIP_FILE + 1)
    assert [p.problem for p in caught.value.problems] == [Problem.ZIP_SIZE]


def test_zip_size_must_match_the_stream() -> None:
    data = build([(P + "a.go", b"x")])
    with pytest.raises(InvalidZipError) as caught:
        check_zip(MV, io.BytesIO(data), len(data) + 1)
    assert [p.problem for p in caught.value.problems] == [Problem.CORRUPT]


@pytest.mark.parametrize(
    ("limit", "name", "size", "want"),
    [
        ("MAX_GO_MOD", "go.mod", SMALL_LIMIT + 1, Problem.GO_MOD_SIZE),
        ("MAX_LICENSE", "LICENSE", SMALL_LIMIT + 1, Problem.LICENSE_SIZE),
        ("MAX_ZIP_FILE", "big.bin", SMALL_LIMIT + 1, Problem.TOTAL_SIZE),
    ],
)
def test_size_limits(
    monkeypatch: pytest.MonkeyPatch, limit: str, name: str, size: int, want: Problem
) -> None:
    monkeypatch.setattr(modzip, limit, SMALL_LIMIT)
    at_limit = build([(P + name, bytes(SMALL_LIMIT))])
    assert run_check(at_limit).size == SMALL_LIMIT, f"{name} of exactly {limit} bytes was refused"
    got = problems_of(build([(P + name, bytes(size))]))
    assert want in got, f"expected {want.name} over {limit}, found {[p.name for p in got]}"


def test_total_size_counts_every_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modzip, "MAX_ZIP_FILE", SMALL_LIMIT)
    data = build([(P + f"f{i}", bytes(SMALL_LIMIT // 3)) for i in range(4)])
    assert Problem.TOTAL_SIZE in problems_of(data)


def test_valid_zip_result() -> None:
    entries = [
        (P + "go.mod", GO_MOD),
        (P + "b.go", b"package m\n"),
        (P + "a/ü.txt", "ünïcode".encode()),
        (P + "LICENSE", b"license"),
    ]
    data = build(entries)
    got = run_check(data)
    assert got.files == ("LICENSE", "a/ü.txt", "b.go", "go.mod"), f"files {got.files}"
    assert got.go_mod == GO_MOD, f"go.mod bytes {got.go_mod!r}"
    assert got.size == sum(len(d) for _, d in entries), f"size {got.size}"
    assert got.h1 == hash1(entries) == hash_zip(io.BytesIO(data)), f"h1 {got.h1}"


def test_without_go_mod() -> None:
    got = run_check(build([(P + "a.go", b"package a\n")], zipfile.ZIP_STORED))
    assert got.go_mod is None and got.files == ("a.go",)


def test_empty_zip_is_valid() -> None:
    got = run_check(build([]))
    assert got.files == () and got.size == 0 and got.h1 == hash1([])


def test_directory_entries_are_tolerated_and_hashed() -> None:
    entries: list[Entry] = [
        info(P, stat.S_IFDIR | 0o755),
        info(P + "d/", stat.S_IFDIR | 0o755),
        (P + "d/x.go", b"x"),
        (P + "d/e/y.go", b"y"),
    ]
    data = build(entries)
    got = run_check(data)
    want = hash1([(P, b""), (P + "d/", b""), (P + "d/x.go", b"x"), (P + "d/e/y.go", b"y")])
    assert got.files == ("d/e/y.go", "d/x.go"), f"files {got.files}"
    assert got.h1 == want == hash_zip(io.BytesIO(data)), "directory entries hashed unlike HashZip"


def test_utf8_name_without_the_utf8_flag_is_read_as_utf8() -> None:
    # The go command takes name bytes as they are; Python would decode cp437.
    data = replace_name(build([(P + "ab.go", b"x")]), "ab.go", "ü.go".encode())
    got = run_check(data)
    assert got.files == ("ü.go",), f"files {got.files}"
    assert got.h1 == hash1([(P + "ü.go", b"x")])


def test_incompatible_version() -> None:
    mv = ModuleVersion("example.com/m", "v2.0.0+incompatible")
    got = run_check(build([(f"{mv}/a.go", b"x")]), mv)
    assert got.files == ("a.go",)


def test_zip_bomb_stops_at_its_declared_size() -> None:
    with pytest.raises(InvalidZipError) as caught:
        run_check(deflate_bomb(1024))
    (problem,) = caught.value.problems
    # Raised while inflating, as soon as the output passed the declared size.
    assert "exceeds its declared 1024 bytes" in problem.detail, f"detail {problem.detail!r}"


def test_read_entry_budget_stops_inflation() -> None:
    data = build([(P + "big.bin", bytes(1 << 20))])
    f = io.BytesIO(data)
    (entry,) = read_directory(f)
    with pytest.raises(ZipReadError) as caught:
        read_entry(f, len(data), entry, budget=1000)
    assert caught.value.problem is ReadProblem.OVER_BUDGET
    content = read_entry(f, len(data), entry, keep=True)
    assert content.size == 1 << 20 and content.data == bytes(1 << 20)


def test_read_go_mod() -> None:
    data = build([(P + "a.go", b"x"), (P + "go.mod", GO_MOD), (P + "sub/go.mod", b"other")])
    assert read_go_mod(MV, io.BytesIO(data)) == GO_MOD
    assert read_go_mod(MV, io.BytesIO(build([(P + "a.go", b"x")]))) is None
    other = ModuleVersion("example.com/m", "v1.0.1")
    assert read_go_mod(other, io.BytesIO(data)) is None, "go.mod of another version was read"


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"garbage", Problem.CORRUPT),
        (patch(build([(P + "go.mod", GO_MOD)]), "crc", 1), Problem.CRC),
        (build([(P + "go.mod", bytes(SMALL_LIMIT + 1))]), Problem.GO_MOD_SIZE),
    ],
    ids=["garbage", "crc", "too-large"],
)
def test_read_go_mod_refuses(monkeypatch: pytest.MonkeyPatch, data: bytes, want: Problem) -> None:
    monkeypatch.setattr(modzip, "MAX_GO_MOD", SMALL_LIMIT)
    with pytest.raises(InvalidZipError) as caught:
        read_go_mod(MV, io.BytesIO(data))
    got = [p.problem for p in caught.value.problems]
    assert got == [want], f"expected {want.name}, found {[p.name for p in got]}"
