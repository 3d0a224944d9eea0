"""The ``h1:`` directory hash of go.sum and the checksum database.

After golang.org/x/mod/sumdb/dirhash. ``Hash1`` summarises a file tree the
way ``sha256sum $(find . -type f | sort) | sha256sum`` would: one line per
file, ``<hex sha256 of content>  <name>\\n`` (two spaces), the lines in
bytewise order of the names, and the result is ``"h1:"`` followed by the
standard base64 of the SHA-256 of those lines. Only names and contents count:
compression, timestamps, permissions and zip layout never change the hash.

Names are hashed as their UTF-8 bytes. A name read from a zip that is not
valid UTF-8 is carried as a ``str`` with ``surrogateescape`` code points, so
the original bytes go into the summary unchanged, as the go command would
hash them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable
from typing import BinaryIO

from modgate.formats.zipentry import ReadProblem, ZipReadError, read_directory, read_entry

H1_PREFIX = "h1:"
GO_MOD_NAME = "go.mod"
_READ_CHUNK = 1 << 16
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_UTF8_FLAG = 0x800
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # digest of an empty file or a directory


class HashInputError(ValueError):
    """The files cannot be hashed (a name with a newline, a malformed digest)."""


def _name_bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def hash1(entries: Iterable[tuple[str, bytes | str]]) -> str:
    """``h1:`` hash of ``(name, content)`` pairs.

    Each content is either the file's bytes or the lowercase hex SHA-256 of
    them (so callers that stream content can hash it themselves). Raises
    :class:`HashInputError` for a name containing a newline.
    """
    lines: list[tuple[bytes, str]] = []
    for name, content in entries:
        raw = _name_bytes(name)
        if b"\n" in raw:
            raise HashInputError(f"cannot hash file name {name!r}: names with newlines are invalid")
        if isinstance(content, str):
            if _HEX_DIGEST.fullmatch(content) is None:
                raise HashInputError(f"digest for {name!r} is not 64 lowercase hex digits")
            digest = content
        else:
            digest = hashlib.sha256(content).hexdigest()
        lines.append((raw, digest))
    lines.sort(key=lambda line: line[0])
    summary = hashlib.sha256()
    for raw, digest in lines:
        summary.update(digest.encode("ascii") + b"  " + raw + b"\n")
    return H1_PREFIX + base64.b64encode(summary.digest()).decode("ascii")


def hash_gomod(data: bytes) -> str:
    """The ``/go.mod`` hash of go.sum: :func:`hash1` over the single file ``go.mod``."""
    return hash1([(GO_MOD_NAME, data)])


def zip_entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as the go command sees it: its raw bytes, as UTF-8.

    Python decodes names without the UTF-8 flag as cp437; the go command
    takes the bytes as they are. Undecodable bytes become surrogate escapes.
    """
    name = info.orig_filename
    if name.isascii():
        return name  # the same in UTF-8 and cp437
    raw = _name_bytes(name) if info.flag_bits & _UTF8_FLAG else name.encode("cp437")
    return raw.decode("utf-8", "surrogateescape")


def hash_zip(fileobj: BinaryIO) -> str:
    """``h1:`` hash of every entry of the zip in ``fileobj`` (seekable), full names included.

    Like dirhash.HashZip: directory entries count too (as empty files), each
    entry's content is streamed through SHA-256 without being held in memory,
    and a name listed twice is hashed twice with the content of its last
    entry. It reads entries as the go command does (sizes and CRC-32 are
    verified) but does not check the module zip rules: that is
    :func:`modgate.formats.modzip.check_zip`. Raises :class:`ZipReadError`.
    """
    zip_size = fileobj.seek(0, io.SEEK_END)
    names: list[str] = []
    digests: dict[str, str] = {}
    for info in read_directory(fileobj):
        name = zip_entry_name(info)
        if name.endswith("/"):
            if info.file_size:
                raise ZipReadError(ReadProblem.CORRUPT, f"directory entry {name!r} has content")
            digest = EMPTY_SHA256
        else:
            digest = read_entry(fileobj, zip_size, info).sha256
        names.append(name)
        digests[name] = digest
    return hash1((name, digests[name]) for name in names)
