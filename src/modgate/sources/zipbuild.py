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
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from modgate.formats.modzip import SourceFile, filter_module_files, root_go_version
from modgate.formats.ziprules import check_module
from modgate.protocol.errors import UpstreamError
from modgate.protocol.module import ModuleVersion
from modgate.protocol.pseudo import is_pseudo_version
from modgate.sources.modrepo import LICENSE, ModuleLookupError, ModuleRepo

COMPRESSLEVEL = 1
"""Fast deflate: about 2x quicker than level 6 for about 15% larger zips of source code."""
DEFLATE_THREADS = 2
PARALLEL_MIN_BYTES = 1 << 20
"""Below this much content, compressing in threads costs more than it saves."""
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
    compressor = zlib.compressobj(COMPRESSLEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return zlib.crc32(data), compressor.compress(data) + compressor.flush()


def _compressed(files: list[SourceFile]) -> Iterator[tuple[int, bytes]]:
    if sum(len(f.data) for f in files) < PARALLEL_MIN_BYTES:
        yield from map(_deflate, (f.data for f in files))
        return
    with ThreadPoolExecutor(DEFLATE_THREADS, thread_name_prefix="modgate-deflate") as pool:
        yield from pool.map(_deflate, (f.data for f in files))


def _write_plain(
    out: BinaryIO, prefix: str, files: list[SourceFile], mv: ModuleVersion, max_size: int
) -> None:
    central: list[bytes] = []
    offset = 0
    for f, (crc, data) in zip(files, _compressed(files), strict=True):
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
            len(f.data),
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
                len(f.data),
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
    out.write(_END.pack(_END_SIG, 0, 0, len(files), len(files), len(directory), offset, 0))


def _write_with_zipfile(out: BinaryIO, prefix: str, files: Iterable[SourceFile]) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESSLEVEL) as zf:
        for f in files:
            info = zipfile.ZipInfo(prefix + f.name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = _REGULAR_ATTR
            zf.writestr(info, f.data, compresslevel=COMPRESSLEVEL)
