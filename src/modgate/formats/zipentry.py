"""Reading one zip entry's content without trusting what the archive declares.

Python's zipfile stops reading at an entry's declared size, so content longer
than its header says goes unnoticed, and it reads names and sizes we must
check first. This reader follows the go command's archive/zip instead: it
finds the data through the local header, inflates it chunk by chunk, counts
the bytes it actually produces, and refuses an entry whose content is longer
or shorter than declared, whose CRC-32 differs, whose deflate stream is
damaged or truncated, or whose compression method is neither store nor
deflate. Memory use is bounded by the chunk size, whatever the entry holds,
except for small entries (up to :data:`WHOLE_MAX` bytes either way), which
are read and inflated in one step, by ISA-L (about twice as fast as zlib on
source files; asked for at most one byte more than declared, it stops there
however far the stream would inflate).

An :class:`InflateMemo` remembers what deflate streams inflated to, keyed by
the SHA-256 of the compressed bytes. Inflating is deterministic, so a stream
seen before (the unchanged files of the next version of a module) needs
hashing, not inflating: about an eighth of the work. A hit still has to
match the entry's declared size and CRC-32, or the entry is read in full.
"""

from __future__ import annotations

import enum
import hashlib
import struct
import threading
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO, cast

from isal import isal_zlib

_CHUNK = 1 << 16
WHOLE_MAX = 1 << 20
"""Entries up to this size (compressed and declared) are read and inflated in one step."""
_INFLATE_ERRORS: tuple[type[Exception], ...] = (
    zlib.error,
    cast("type[Exception]", isal_zlib.error),
)
MEMO_ENTRIES = 40_000
"""Deflate streams an :class:`InflateMemo` remembers by default (about 8 MB)."""
_MEMO_VALUE = struct.Struct("<QI")
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_LOCAL_HEADER_MAGIC = b"PK\x03\x04"
_SUPPORTED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class ReadProblem(enum.Enum):
    CORRUPT = "damaged zip data"
    SIZE_MISMATCH = "uncompressed size does not match the declared size"
    CRC = "CRC-32 mismatch"
    OVER_BUDGET = "content exceeds the size limit"


class ZipReadError(ValueError):
    """A zip, or one of its entries, cannot be read as the go command would read it."""

    def __init__(self, problem: ReadProblem, detail: str = "") -> None:
        super().__init__(detail or problem.value)
        self.problem = problem
        self.detail = detail or problem.value


@dataclass(frozen=True, slots=True)
class EntryContent:
    size: int  # bytes actually produced
    sha256: str  # lowercase hex digest of the content
    data: bytes | None  # the content itself, when asked for


class _Sink:
    def __init__(self, declared: int, budget: int | None, keep: bool) -> None:
        self.declared = declared
        self.budget = budget
        self.size = 0
        self.crc = 0
        self.sha = hashlib.sha256()
        self.kept: bytearray | None = bytearray() if keep else None

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.declared:
            detail = f"content exceeds its declared {self.declared} bytes"
            raise ZipReadError(ReadProblem.SIZE_MISMATCH, detail)
        if self.budget is not None and self.size > self.budget:
            raise ZipReadError(ReadProblem.OVER_BUDGET)
        self.crc = zlib.crc32(chunk, self.crc)
        self.sha.update(chunk)
        if self.kept is not None:
            self.kept += chunk


class InflateMemo:
    """What deflate streams inflated to: SHA-256 of the compressed bytes -> (size, CRC-32, SHA-256).

    Bounded by entry count, the oldest dropped first; safe to share between
    threads. It holds digests only, never content: about 200 bytes an entry.
    """

    def __init__(self, max_entries: int = MEMO_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: dict[bytes, bytes] = {}  # key -> packed size, CRC-32 and digest
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> tuple[int, int, str] | None:
        found = self._entries.get(key)
        if found is None:
            return None
        size, crc = _MEMO_VALUE.unpack_from(found)
        return size, crc, found[_MEMO_VALUE.size :].hex()

    def learn(self, compressed: bytes, content: bytes, crc: int) -> None:
        """Remember that ``compressed`` (made by a trusted deflater) inflates to ``content``."""
        if len(compressed) <= WHOLE_MAX and len(content) <= WHOLE_MAX:
            key = hashlib.sha256(compressed).digest()
            self._put(key, len(content), crc, hashlib.sha256(content).digest())

    def put(self, key: bytes, value: tuple[int, int, str]) -> None:
        size, crc, digest = value
        self._put(key, size, crc, bytes.fromhex(digest))

    def _put(self, key: bytes, size: int, crc: int, digest: bytes) -> None:
        packed = _MEMO_VALUE.pack(size, crc) + digest
        with self._lock:
            self._entries[key] = packed
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]


def _data_start(f: BinaryIO, zip_size: int, info: zipfile.ZipInfo) -> int:
    # zipfile adjusts offsets by the bytes it believes precede the archive: a
    # damaged directory can make them negative or point past the end
    if not 0 <= info.header_offset <= zip_size - _LOCAL_HEADER.size:
        raise ZipReadError(ReadProblem.CORRUPT, "a local file header offset is out of range")
    f.seek(info.header_offset)
    header = f.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_HEADER_MAGIC:
        raise ZipReadError(ReadProblem.CORRUPT, "missing local file header")
    *_, name_len, extra_len = _LOCAL_HEADER.unpack(header)
    start: int = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    if start + info.compress_size > zip_size:
        raise ZipReadError(ReadProblem.CORRUPT, "entry data runs past the end of the zip")
    return start


def _read_chunk(f: BinaryIO, remaining: int) -> bytes:
    chunk = f.read(min(_CHUNK, remaining))
    if not chunk:
        raise ZipReadError(ReadProblem.CORRUPT, "zip is truncated")
    return chunk


def _inflate(f: BinaryIO, remaining: int, sink: _Sink) -> None:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        while not inflater.eof:
            data = inflater.unconsumed_tail
            if not data and remaining > 0:
                data = _read_chunk(f, remaining)
                remaining -= len(data)
            out = inflater.decompress(data, _CHUNK)
            if not out and not data:
                raise ZipReadError(ReadProblem.CORRUPT, "deflate data is truncated")
            sink.write(out)
    except zlib.error as exc:
        raise ZipReadError(ReadProblem.CORRUPT, f"deflate data is damaged ({exc})") from None


def read_entry(
    f: BinaryIO,
    zip_size: int,
    info: zipfile.ZipInfo,
    *,
    budget: int | None = None,
    keep: bool = False,
    memo: InflateMemo | None = None,
) -> EntryContent:
    """Stream one entry of the zip in ``f`` (``zip_size`` bytes) through SHA-256.

    ``budget`` caps the bytes produced (a zip bomb stops there); ``keep``
    returns the content too; ``memo`` skips inflating a deflate stream seen
    before. Raises :class:`ZipReadError`.
    """
    if info.compress_type not in _SUPPORTED_METHODS:
        detail = f"unsupported compression method {info.compress_type}"
        raise ZipReadError(ReadProblem.CORRUPT, detail)
    f.seek(_data_start(f, zip_size, info))
    if (
        info.compress_type == zipfile.ZIP_DEFLATED
        and info.compress_size <= WHOLE_MAX
        and info.file_size <= WHOLE_MAX
    ):
        return _read_small_deflated(f, info, budget, keep, memo)
    sink = _Sink(info.file_size, budget, keep)
    if info.compress_type == zipfile.ZIP_STORED:
        remaining = info.compress_size
        while remaining > 0:
            chunk = _read_chunk(f, remaining)
            remaining -= len(chunk)
            sink.write(chunk)
    else:
        _inflate(f, info.compress_size, sink)
    _check_totals(info, sink.size, sink.crc)
    data = bytes(sink.kept) if sink.kept is not None else None
    return EntryContent(sink.size, sink.sha.hexdigest(), data)


def _check_totals(info: zipfile.ZipInfo, size: int, crc: int) -> None:
    if size != info.file_size:
        detail = f"content is {size} bytes, declared {info.file_size}"
        raise ZipReadError(ReadProblem.SIZE_MISMATCH, detail)
    if crc != info.CRC:
        raise ZipReadError(ReadProblem.CRC)


def _read_small_deflated(
    f: BinaryIO,
    info: zipfile.ZipInfo,
    budget: int | None,
    keep: bool,
    memo: InflateMemo | None,
) -> EntryContent:
    """:func:`read_entry` for a deflated entry small enough to hold in memory twice."""
    compressed = f.read(info.compress_size)
    if len(compressed) != info.compress_size:
        raise ZipReadError(ReadProblem.CORRUPT, "zip is truncated")
    key = hashlib.sha256(compressed).digest() if memo is not None and not keep else None
    if key is not None and memo is not None:
        known = memo.get(key)
        if known is not None and known[:2] == (info.file_size, info.CRC):
            if budget is not None and known[0] > budget:
                raise ZipReadError(ReadProblem.OVER_BUDGET)
            return EntryContent(known[0], known[2], None)
    inflater = isal_zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        # One byte more than declared: enough to see that the content is too long.
        out = inflater.decompress(compressed, info.file_size + 1)
    except _INFLATE_ERRORS as exc:
        raise ZipReadError(ReadProblem.CORRUPT, f"deflate data is damaged ({exc})") from None
    if len(out) > info.file_size:
        detail = f"content exceeds its declared {info.file_size} bytes"
        raise ZipReadError(ReadProblem.SIZE_MISMATCH, detail)
    if budget is not None and len(out) > budget:
        raise ZipReadError(ReadProblem.OVER_BUDGET)
    if not inflater.eof:
        raise ZipReadError(ReadProblem.CORRUPT, "deflate data is truncated")
    crc = isal_zlib.crc32(out)
    _check_totals(info, len(out), crc)
    digest = hashlib.sha256(out).hexdigest()
    if key is not None and memo is not None:
        memo.put(key, (len(out), crc, digest))
    return EntryContent(len(out), digest, out if keep else None)


def read_directory(f: BinaryIO) -> list[zipfile.ZipInfo]:
    """The central directory of the zip in ``f``; raises :class:`ZipReadError`."""
    try:
        with zipfile.ZipFile(f) as archive:
            return archive.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,  # a "version needed to extract" beyond what zipfile reads
        ValueError,
        EOFError,
        OSError,
    ) as exc:
        raise ZipReadError(ReadProblem.CORRUPT, f"not a readable zip archive ({exc})") from None
