"""Building a module zip from a git tree, as the go command does after ``git archive``.

:func:`module_files` gathers what the go command's coderepo Zip gathers (the
module's directory at the commit, plus the repository's root LICENSE for a
module in a subdirectory without one); :func:`write_zip` applies the x/mod
zip rules (:func:`modgate.formats.modzip.filter_module_files`) and writes the
zip. Entries are deflated in parallel (zlib releases the GIL) and written by
hand: sorted ``<path>@<version>/<name>`` entries, no directory entries, a
fixed time, regular file modes. Compression and layout do not enter the h1
hash, only names and contents do.
"""

from __future__ import annotations

import struct
import threading
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

from modgate.formats.modzip import ModuleFile, SourceFile, filter_module_files, root_go_version
from modgate.formats.zipentry import InflateMemo
from modgate.formats.ziprules import GO_MOD, check_module
from modgate.protocol.errors import UpstreamError
from modgate.protocol.module import ModuleVersion
from modgate.protocol.pseudo import is_pseudo_version
from modgate.sources.gittree import TreeCache, TreeFile, plain_tree
from modgate.sources.modrepo import LICENSE, ModuleLookupError, ModuleRepo

COMPRESSLEVEL = 1
"""ISA-L's level 1: about 2.7x quicker than zlib's level 1 for zips of the same size."""
DEFLATE_THREADS = 2
PARALLEL_MIN_BYTES = 1 << 20
"""Files below this size are deflated in line: in threads, small ones cost more than they save."""
MAX_PLAIN_ENTRIES = 0xFFFF
"""More entries need zip64 records; such zips are written with :mod:`zipfile`."""

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_LOCAL_SIG, _CENTRAL_SIG, _END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
_VERSION = 20
_MADE_BY_UNIX = (3 << 8) | _VERSION
_UTF8_FLAG = 0x800
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_DOS_TIME = 0
_REGULAR_ATTR = 0o100644 << 16
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
CACHE_BYTES = 64 << 20
"""Compressed zip entries kept for later versions, keyed by git blob id (oldest dropped first)."""
READ_CHUNK = 256
"""Uncached blobs read (and held in memory) at a time."""


class EntryCache:
    """Deflated blobs by git blob id: (CRC-32, size, deflated data); a blob id names its content."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[int, int, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, oid: str) -> tuple[int, int, bytes] | None:
        with self._lock:
            entry = self._entries.get(oid)
            if entry is not None:
                self._entries.move_to_end(oid)
            return entry

    def size(self, oid: str) -> int | None:
        """The content size of blob ``oid`` if it is cached (without marking it used)."""
        with self._lock:
            entry = self._entries.get(oid)
        return entry[1] if entry is not None else None

    def put(self, oid: str, entry: tuple[int, int, bytes]) -> None:
        if len(entry[2]) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(oid, None)
            if old is not None:
                self._bytes -= len(old[2])
            self._entries[oid] = entry
            self._bytes += len(entry[2])
            while self._bytes > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped[2])


def module_files(repo: ModuleRepo, version: str) -> list[SourceFile]:
    """The files of a module version before the zip rules, as the go command gathers them."""
    if is_pseudo_version(version):
        repo.stat(version)
    try:
        rev, subdir, _ = repo.find_dir(version)
    except ModuleLookupError as exc:
        raise ModuleLookupError(
            f"{repo.path}@{version}: {exc}", missing_revision=exc.missing_revision
        ) from None
    files = repo.code.archive(rev, subdir)
    if files is None:
        raise ModuleLookupError(f"{repo.path}@{version}: no files at revision {rev}")
    if subdir and not any(f.name == LICENSE for f in files):
        license_text = repo.code.read_file(rev, LICENSE)
        if license_text is not None:
            files.append(SourceFile(LICENSE, license_text))
    return files


def build_zip(
    repo: ModuleRepo,
    mv: ModuleVersion,
    dest: Path,
    max_size: int,
    cache: EntryCache,
    *,
    trees: TreeCache | None = None,
    memo: InflateMemo | None = None,
) -> None:
    """Write the zip of ``mv`` to ``dest``, reusing the entries of blobs zipped before.

    Same bytes as :func:`module_files` then :func:`write_zip`; trees that
    ``git archive`` might convert take exactly that way.
    """
    check_module(mv)
    if is_pseudo_version(mv.version):
        repo.stat(mv.version)
    try:
        rev, subdir, _ = repo.find_dir(mv.version)
        commit = repo.code.stat(rev).name
    except ModuleLookupError as exc:
        raise ModuleLookupError(
            f"{repo.path}@{mv.version}: {exc}", missing_revision=exc.missing_revision
        ) from None
    tree = plain_tree(repo.code, commit, subdir, trees, cache.size)
    if tree is None:
        write_zip(mv, module_files(repo, mv.version), dest, max_size)
        return
    go_mod = next((f for f in tree if f.name == GO_MOD and f.is_regular), None)
    go_mod_data = _read_blob(repo, go_mod.oid) if go_mod is not None else b""
    go_version = root_go_version([SourceFile(GO_MOD, go_mod_data)]) if go_mod else None
    kept, _ = filter_module_files(mv, tree, go_version)
    if len(kept) > MAX_PLAIN_ENTRIES:
        write_zip(mv, module_files(repo, mv.version), dest, max_size)
        return
    kept.sort(key=lambda f: f.name)
    entries = _entries(repo, kept, cache, memo)
    with dest.open("wb") as out:
        _write_entries(out, f"{mv.path}@{mv.version}/", kept, entries, mv=mv, max_size=max_size)
    size = dest.stat().st_size
    if size > max_size:
        raise _too_large(mv, size, max_size)


def _read_blob(repo: ModuleRepo, oid: str) -> bytes:
    obj = repo.code.mirror.read_object(oid)
    if obj is None or obj.type != "blob":
        raise UpstreamError(repo.path, f"blob {oid} vanished from the mirror; retry the request")
    return obj.data


def _read_blobs(repo: ModuleRepo, oids: list[str]) -> list[bytes]:
    objects = repo.code.mirror.read_objects(oids)
    for oid, obj in zip(oids, objects, strict=True):
        if obj is None or obj.type != "blob":
            raise UpstreamError(
                repo.path, f"blob {oid} vanished from the mirror; retry the request"
            )
    return [obj.data for obj in objects if obj is not None]


def _entries(
    repo: ModuleRepo, kept: list[TreeFile], cache: EntryCache, memo: InflateMemo | None
) -> list[tuple[int, int, bytes]]:
    """(CRC-32, size, deflated data) of each kept file, deflating only blobs not cached.

    Uncached blobs are read through the mirror's cat-file process a chunk at a
    time, so memory holds one chunk of contents. ``memo`` learns what each new
    deflate stream inflates to, so checking the zip does not inflate it again.
    """
    found = {f.oid: e for f in kept if (e := cache.get(f.oid)) is not None}
    missing = list({f.oid: f for f in kept if f.oid not in found})
    for start in range(0, len(missing), READ_CHUNK):
        oids = missing[start : start + READ_CHUNK]
        blobs = _read_blobs(repo, oids)
        for oid, blob, (crc, deflated) in zip(oids, blobs, _compressed_data(blobs), strict=True):
            entry = (crc, len(blob), deflated)
            cache.put(oid, entry)
            found[oid] = entry
            if memo is not None:
                memo.learn(deflated, blob, crc)
    return [found[f.oid] for f in kept]


def write_zip(mv: ModuleVersion, files: list[SourceFile], dest: Path, max_size: int) -> None:
    """Write the module zip of ``files`` to ``dest`` (raises InvalidZipError, UpstreamError)."""
    check_module(mv)
    kept, _ = filter_module_files(mv, files, root_go_version(files))
    kept.sort(key=lambda f: f.name)
    prefix = f"{mv.path}@{mv.version}/"
    with dest.open("wb") as out:
        if len(kept) > MAX_PLAIN_ENTRIES:
            _write_with_zipfile(out, prefix, kept)
        else:
            _write_plain(out, prefix, kept, mv, max_size)
    size = dest.stat().st_size
    if size > max_size:
        raise _too_large(mv, size, max_size)


def _too_large(mv: ModuleVersion, size: int, max_size: int) -> UpstreamError:
    return UpstreamError(
        str(mv),
        f"module zip is {size} bytes or more, over the limit of {max_size}; it cannot be served",
    )


def _deflate(data: bytes) -> tuple[int, bytes]:
    compressor = isal_zlib.compressobj(COMPRESSLEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    return zlib.crc32(data), compressor.compress(data) + compressor.flush()


def _compressed_data(blobs: list[bytes]) -> Iterator[tuple[int, bytes]]:
    if sum(len(b) >= PARALLEL_MIN_BYTES for b in blobs) < DEFLATE_THREADS:
        yield from map(_deflate, blobs)
        return
    with ThreadPoolExecutor(DEFLATE_THREADS, thread_name_prefix="modgate-deflate") as pool:
        yield from pool.map(_deflate, blobs)


def _write_plain(
    out: BinaryIO, prefix: str, files: list[SourceFile], mv: ModuleVersion, max_size: int
) -> None:
    blobs = [f.data for f in files]
    entries = (
        (crc, len(b), data) for b, (crc, data) in zip(blobs, _compressed_data(blobs), strict=True)
    )
    _write_entries(out, prefix, files, entries, mv=mv, max_size=max_size)


def _write_entries(
    out: BinaryIO,
    prefix: str,
    files: Iterable[ModuleFile],
    entries: Iterable[tuple[int, int, bytes]],
    *,
    mv: ModuleVersion,
    max_size: int,
) -> None:
    """Write sorted ``files`` with their (CRC-32, size, deflated data) ``entries``."""
    central: list[bytes] = []
    offset = 0
    count = 0
    for f, (crc, size, data) in zip(files, entries, strict=True):
        count += 1
        name = (prefix + f.name).encode("utf-8")
        flags = 0 if name.isascii() else _UTF8_FLAG
        header = _LOCAL.pack(
            _LOCAL_SIG,
            _VERSION,
            flags,
            zipfile.ZIP_DEFLATED,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            len(data),
            size,
            len(name),
            0,
        )
        out.write(header + name)
        out.write(data)
        central.append(
            _CENTRAL.pack(
                _CENTRAL_SIG,
                _MADE_BY_UNIX,
                _VERSION,
                flags,
                zipfile.ZIP_DEFLATED,
                _DOS_TIME,
                _DOS_DATE,
                crc,
                len(data),
                size,
                len(name),
                0,
                0,
                0,
                0,
                _REGULAR_ATTR,
                offset,
            )
            + name
        )
        offset += len(header) + len(name) + len(data)
        if offset > max_size:
            raise _too_large(mv, offset, max_size)
    directory = b"".join(central)
    out.write(directory)
    out.write(_END.pack(_END_SIG, 0, 0, count, count, len(directory), offset, 0))


def _write_with_zipfile(out: BinaryIO, prefix: str, files: Iterable[SourceFile]) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESSLEVEL) as zf:
        for f in files:
            info = zipfile.ZipInfo(prefix + f.name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = _REGULAR_ATTR
            zf.writestr(info, f.data, compresslevel=COMPRESSLEVEL)
