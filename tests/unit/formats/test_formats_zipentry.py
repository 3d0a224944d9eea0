"""read_entry's two ways of reading (one step, streamed) and the inflation memo."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from isal import isal_zlib

from modgate.formats import zipentry
from modgate.formats.modzip import check_zip
from modgate.formats.zipentry import (
    InflateMemo,
    ReadProblem,
    ZipReadError,
    read_directory,
    read_entry,
)
from modgate.protocol.module import ModuleVersion

MV = ModuleVersion("example.com/m", "v1.0.0")
P = "example.com/m@v1.0.0/"
TEXT = b"package m\n\n// some text that deflates well\n" * 50


def one_entry(data: bytes, name: str = P + "a.go") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


def set_field(data: bytes, local_offset: int, central_offset: int, fmt: str, value: int) -> bytes:
    buf = bytearray(data)
    struct.pack_into(fmt, buf, buf.index(b"PK\x03\x04") + local_offset, value)
    struct.pack_into(fmt, buf, buf.index(b"PK\x01\x02") + central_offset, value)
    return bytes(buf)


def with_crc(data: bytes, crc: int) -> bytes:
    return set_field(data, 14, 16, "<L", crc)


def with_size(data: bytes, size: int) -> bytes:
    return set_field(data, 22, 24, "<L", size)


def read(data: bytes, **kwargs: object) -> zipentry.EntryContent:
    f = io.BytesIO(data)
    (info,) = read_directory(f)
    return read_entry(f, len(data), info, **kwargs)  # type: ignore[arg-type]


def problem(data: bytes, **kwargs: object) -> ReadProblem | None:
    try:
        read(data, **kwargs)
    except ZipReadError as exc:
        return exc.problem
    return None


@pytest.fixture(params=["one-step", "streamed"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "streamed":
        monkeypatch.setattr(zipentry, "WHOLE_MAX", -1)
    return str(request.param)


BROKEN: list[tuple[str, Callable[[], bytes], ReadProblem]] = [
    (
        "declared-smaller",
        lambda: with_size(one_entry(TEXT), len(TEXT) - 1),
        ReadProblem.SIZE_MISMATCH,
    ),
    (
        "declared-larger",
        lambda: with_size(one_entry(TEXT), len(TEXT) + 1),
        ReadProblem.SIZE_MISMATCH,
    ),
    ("crc", lambda: with_crc(one_entry(TEXT), zlib.crc32(TEXT) ^ 1), ReadProblem.CRC),
    (
        "damaged-deflate",
        lambda: one_entry(TEXT).replace(zlib.compress(TEXT)[2:12], b"\xff" * 10),
        ReadProblem.CORRUPT,
    ),
    (
        "truncated-deflate",
        # The deflate stream cut in half, the sizes kept consistent with the cut.
        lambda: _cut_stream(one_entry(bytes(range(256)) * 64)),
        ReadProblem.CORRUPT,
    ),
]


def _cut_stream(data: bytes) -> bytes:
    f = io.BytesIO(data)
    (info,) = read_directory(f)
    half = info.compress_size // 2
    buf = bytearray(data)
    start = info.header_offset + 30 + len(info.filename)
    del buf[start + half : start + info.compress_size]
    out = bytes(buf)
    out = set_field(out, 18, 20, "<L", half)
    # The central directory moved back by the bytes cut: fix the end record.
    end = out.rindex(b"PK\x05\x06")
    cd_offset = struct.unpack_from("<L", out, end + 16)[0] - (info.compress_size - half)
    return out[: end + 16] + struct.pack("<L", cd_offset) + out[end + 20 :]


@pytest.mark.parametrize(
    ("builder", "want"), [(b, w) for _, b, w in BROKEN], ids=[c[0] for c in BROKEN]
)
def test_both_ways_refuse_the_same_damage(
    way: str, builder: Callable[[], bytes], want: ReadProblem
) -> None:
    got = problem(builder())
    assert got is want, f"{way}: expected {want.name}, got {got}"


def test_both_ways_stop_a_bomb_at_its_declared_size(way: str) -> None:
    bomb = with_size(one_entry(bytes(8 << 20)), 4096)
    with pytest.raises(ZipReadError) as caught:
        read(bomb)
    assert caught.value.problem is ReadProblem.SIZE_MISMATCH, way
    assert "exceeds its declared 4096 bytes" in caught.value.detail, caught.value.detail


def test_both_ways_respect_the_budget(way: str) -> None:
    assert problem(one_entry(TEXT), budget=len(TEXT) - 1) is ReadProblem.OVER_BUDGET, way
    got = read(one_entry(TEXT), budget=len(TEXT), keep=True)
    assert got.data == TEXT and got.size == len(TEXT), way


def test_memo_answers_a_stream_seen_before_without_inflating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memo = InflateMemo()
    first = read(one_entry(TEXT), memo=memo)
    assert len(memo) == 1
    # Same compressed bytes under another name: the memo answers, zlib is not used.
    monkeypatch.setattr(zipentry.zlib, "decompressobj", _no_inflating)
    again = read(one_entry(TEXT, P + "b.go"), memo=memo)
    assert again == first
    assert again.sha256 == hashlib.sha256(TEXT).hexdigest()


def _no_inflating(*args: object) -> object:
    raise AssertionError("inflated a stream the memo knows")


@pytest.mark.parametrize(
    ("tamper", "want"),
    [
        (lambda d: with_crc(d, zlib.crc32(TEXT) ^ 1), ReadProblem.CRC),
        (lambda d: with_size(d, len(TEXT) + 7), ReadProblem.SIZE_MISMATCH),
    ],
    ids=["crc", "size"],
)
def test_memo_hit_must_match_the_declared_crc_and_size(
    tamper: Callable[[bytes], bytes], want: ReadProblem
) -> None:
    memo = InflateMemo()
    read(one_entry(TEXT), memo=memo)
    assert problem(tamper(one_entry(TEXT)), memo=memo) is want


def test_memo_hit_respects_the_budget() -> None:
    memo = InflateMemo()
    read(one_entry(TEXT), memo=memo)
    assert problem(one_entry(TEXT), memo=memo, budget=10) is ReadProblem.OVER_BUDGET


def test_memo_is_bounded_and_drops_the_oldest() -> None:
    memo = InflateMemo(max_entries=2)
    for i in range(3):
        read(one_entry(TEXT + bytes([i])), memo=memo)
    assert len(memo) == 2
    inflated: list[int] = []
    real = isal_zlib.decompressobj  # small entries are inflated by ISA-L

    def counting(*args: int) -> object:
        inflated.append(1)
        return real(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(isal_zlib, "decompressobj", counting)
        read(one_entry(TEXT + bytes([2])), memo=memo)
        assert inflated == [], "the newest stream was forgotten"
        read(one_entry(TEXT + bytes([0])), memo=memo)
        assert inflated == [1], "the oldest stream was kept beyond the bound"


def test_damaged_stream_is_not_remembered() -> None:
    memo = InflateMemo()
    assert problem(with_crc(one_entry(TEXT), 1), memo=memo) is ReadProblem.CRC
    assert len(memo) == 0


files = st.dictionaries(
    st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,2}\.go", fullmatch=True),
    st.one_of(st.binary(max_size=300), st.sampled_from([TEXT, TEXT[:100], b""])),
    min_size=1,
    max_size=8,
)


@given(first=files, second=files)
def test_check_zip_with_a_memo_agrees_with_check_zip_without(
    first: dict[str, bytes], second: dict[str, bytes]
) -> None:
    memo = InflateMemo()
    for content in (first, second, first):
        names = sorted(content)
        if any(b.startswith(a + "/") or a.startswith(b + "/") for a in names for b in names):
            continue  # a file that is also a directory: refused either way
        data = _zip_of(content)
        plain = check_zip(MV, io.BytesIO(data), len(data))
        memoised = check_zip(MV, io.BytesIO(data), len(data), memo=memo)
        assert memoised == plain, f"{content}: {memoised} != {plain}"


def _zip_of(content: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in content.items():
            archive.writestr(P + name, data)
    return out.getvalue()
