"""A checksum database record: the two go.sum lines of one module version.

::

    example.com/mod v1.2.3 h1:<zip hash>
    example.com/mod v1.2.3/go.mod h1:<go.mod hash>

Paths and versions are written unescaped. The go command takes from a
record only the lines that start with ``<path> <version> `` and
``<path> <version>/go.mod ``, and it needs both, so a record modgate writes
has exactly these two lines and one it reads must have them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modgate.protocol.module import ModuleVersion

GO_MOD_SUFFIX = "/go.mod"
_H1 = re.compile(r"h1:[A-Za-z0-9+/]{43}=")


class RecordError(ValueError):
    """A record that does not hold the two hashes of the module version it should."""


@dataclass(frozen=True, slots=True)
class SumRecord:
    mv: ModuleVersion
    zip_hash: str
    gomod_hash: str

    def text(self) -> bytes:
        """The record text: both lines, each ending in a newline."""
        return "".join(gosum_lines(self)).encode("utf-8")


def gosum_lines(record: SumRecord) -> list[str]:
    path, version = record.mv.path, record.mv.version
    return [
        f"{path} {version} {record.zip_hash}\n",
        f"{path} {version}{GO_MOD_SUFFIX} {record.gomod_hash}\n",
    ]


def is_h1(text: str) -> bool:
    """Whether ``text`` is an ``h1:`` hash (base64 of 32 bytes)."""
    return _H1.fullmatch(text) is not None


def parse_sum_record(mv: ModuleVersion, text: bytes) -> SumRecord:
    """The ``h1:`` hashes of ``mv`` in a record, found as the go command finds them.

    Lines for other modules are ignored (the go command ignores them too);
    ``mv``'s zip and go.mod lines must each be present once, with ``h1:`` hashes.
    """
    try:
        lines = text.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise RecordError(f"{mv}: the checksum record is not UTF-8") from None
    zip_prefix = f"{mv.path} {mv.version} "
    mod_prefix = f"{mv.path} {mv.version}{GO_MOD_SUFFIX} "
    found: dict[str, list[str]] = {zip_prefix: [], mod_prefix: []}
    for line in lines:
        for prefix, hashes in found.items():
            if line.startswith(prefix):
                hashes.append(line[len(prefix) :])
    zip_hashes, mod_hashes = found[zip_prefix], found[mod_prefix]
    if len(zip_hashes) != 1 or len(mod_hashes) != 1:
        raise RecordError(
            f"{mv}: the checksum record must hold one zip line and one go.mod line, "
            f"found {len(zip_hashes)} and {len(mod_hashes)}"
        )
    for h in (zip_hashes[0], mod_hashes[0]):
        if not is_h1(h):
            raise RecordError(f"{mv}: the checksum record holds {h!r}, not an h1: hash")
    return SumRecord(mv, zip_hashes[0], mod_hashes[0])
