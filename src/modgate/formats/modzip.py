"""Module zips: the checks that make the go command refuse one, and creation.

After golang.org/x/mod/zip (``CheckZip``, ``Create``) and cmd/go's modfetch.
Every entry is ``<path>@<version>/<file>`` with the file path clean and valid
(``check_file_path``); no two paths are equal under Go's simple case folding;
no path is both a file and a directory; a go.mod may appear only at the root
and only as ``go.mod``; the root go.mod and LICENSE are at most 16 MiB; the
zip and its uncompressed content are at most 500 MiB each.

Reading goes further than ``CheckZip``, because the go command also refuses
a zip whose content it cannot extract: sizes are counted while decompressing
(a header never vouches for itself, so a zip bomb stops at its declared
size), and a size or CRC-32 mismatch, an unsupported compression method, an
encrypted entry or damaged deflate data make the zip invalid. modgate also
refuses symlink and device entries, which the go command would silently
extract as regular files. Directory entries are tolerated as x/mod tolerates
them (they take part in the collision checks and the hash) but never written.
The rules shared with creation live in :mod:`modgate.formats.ziprules`.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO, Protocol, TypeVar

from modgate.formats.dirhash import EMPTY_SHA256, hash1, zip_entry_name
from modgate.formats.gomod import GO_VERSION_RE, GoModError, parse_gomod
from modgate.formats.zipentry import (
    InflateMemo,
    ReadProblem,
    ZipReadError,
    read_directory,
    read_entry,
)
from modgate.formats.ziprules import (
    GO_MOD,
    LICENSE,
    Collisions,
    FileProblem,
    InvalidZipError,
    Problem,
    check_module,
    is_go_mod_name,
    name_problem,
    shape_problem,
)
from modgate.protocol.module import ModuleVersion

__all__ = [
    "MAX_GO_MOD",
    "MAX_LICENSE",
    "MAX_ZIP_FILE",
    "CheckedZip",
    "FileProblem",
    "InvalidZipError",
    "ModuleFile",
    "Problem",
    "SourceFile",
    "check_zip",
    "filter_module_files",
    "is_vendored",
    "read_go_mod",
    "root_go_version",
]

MAX_ZIP_FILE = 500 << 20
MAX_GO_MOD = 16 << 20
MAX_LICENSE = 16 << 20

REGULAR_FILE_MODE = 0o100644
HG_ARCHIVAL = ".hg_archival.txt"
VENDOR_MODULES_TXT = "vendor/modules.txt"
_VENDOR_RULE_CHANGE = (1, 24)  # go lines from 1.24 on use the corrected vendor rule
_ENCRYPTED_FLAGS = 0x1 | 0x40  # traditional and strong encryption
_UNIX_CREATOR = 3
_UNIX_CREATORS = (_UNIX_CREATOR, 19)  # Unix and macOS keep the Unix mode in the high bits


@dataclass(frozen=True, slots=True)
class CheckedZip:
    files: tuple[str, ...]  # file names without the prefix, sorted
    h1: str
    go_mod: bytes | None  # the root go.mod, if any
    size: int  # total uncompressed size


@dataclass(frozen=True, slots=True)
class SourceFile:
    name: str  # slash-separated, relative to the module root
    data: bytes
    mode: int = REGULAR_FILE_MODE  # Unix mode bits; stat.S_IFLNK marks a symlink

    @property
    def is_regular(self) -> bool:
        return stat.S_IFMT(self.mode) in (0, stat.S_IFREG)

    @property
    def size(self) -> int:
        return len(self.data)


class ModuleFile(Protocol):
    """What the zip rules need of a file: its name, mode and size (not its content)."""

    @property
    def name(self) -> str: ...
    @property
    def mode(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def is_regular(self) -> bool: ...


F = TypeVar("F", bound=ModuleFile)


def _entry_type_problem(info: zipfile.ZipInfo, name: str) -> FileProblem | None:
    if info.flag_bits & _ENCRYPTED_FLAGS:
        return FileProblem(name, Problem.ENCRYPTED)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        detail = f"unsupported compression method {info.compress_type}"
        return FileProblem(name, Problem.COMPRESSION, detail)
    if info.create_system in _UNIX_CREATORS:
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            return FileProblem(name, Problem.SYMLINK)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            return FileProblem(name, Problem.IRREGULAR)
    if info.filename.endswith("/") and info.file_size:
        return FileProblem(name, Problem.DIR_DATA)
    return None


def _entry_problem(name: str, is_dir: bool, collisions: Collisions) -> FileProblem | None:
    """x/mod CheckZip's rules for one name (prefix removed, directory slash stripped)."""
    problem = shape_problem(name) or name_problem(name) or collisions.check(name, is_dir)
    if problem is not None or is_dir:
        return problem
    base = name.rpartition("/")[2]
    if is_go_mod_name(base):
        if base != name:
            return FileProblem(name, Problem.GO_MOD_NOT_ROOT)
        if name != GO_MOD:
            return FileProblem(name, Problem.GO_MOD_CASE)
    return None


def _total_size_problem() -> FileProblem:
    return FileProblem(
        "", Problem.TOTAL_SIZE, f"total uncompressed size too large (max is {MAX_ZIP_FILE} bytes)"
    )


def _size_problem(name: str, size: int) -> FileProblem | None:
    if name == GO_MOD and size > MAX_GO_MOD:
        return FileProblem(
            name, Problem.GO_MOD_SIZE, f"go.mod file too large ({size} bytes; max is {MAX_GO_MOD})"
        )
    if name == LICENSE and size > MAX_LICENSE:
        return FileProblem(
            name,
            Problem.LICENSE_SIZE,
            f"LICENSE file too large ({size} bytes; max is {MAX_LICENSE})",
        )
    return None


def _check_names(
    mv: ModuleVersion, infos: list[zipfile.ZipInfo], names: list[str]
) -> list[FileProblem]:
    """Every rule that names and declared sizes decide, over the whole zip."""
    prefix = f"{mv.path}@{mv.version}/"
    problems: list[FileProblem] = []
    collisions = Collisions()
    declared = 0
    for info, full in zip(infos, names, strict=True):
        if not full.startswith(prefix):
            detail = f"path does not have prefix {prefix!r}"
            problems.append(FileProblem(full, Problem.NO_PREFIX, detail))
            continue
        name = full[len(prefix) :]
        problem = _entry_type_problem(info, full)
        if problem is None and name:
            problem = _entry_problem(name.removesuffix("/"), name.endswith("/"), collisions)
        if problem is None and name and not name.endswith("/"):
            if declared <= MAX_ZIP_FILE < declared + info.file_size:
                problems.append(_total_size_problem())
            declared += info.file_size
            problem = _size_problem(name, info.file_size)
        if problem is not None:
            problems.append(problem)
    return problems


def check_zip(
    mv: ModuleVersion, f: BinaryIO, zip_size: int, *, memo: InflateMemo | None = None
) -> CheckedZip:
    """Check the module zip in ``f`` (seekable, ``zip_size`` bytes) and hash it in one pass.

    Raises :class:`InvalidZipError` (an InvalidModuleError) naming ``mv``.
    ``h1`` is dirhash.HashZip's: full entry names, directory entries included.
    ``memo`` remembers deflate streams across calls (see :class:`InflateMemo`).
    """
    check_module(mv)
    if zip_size > MAX_ZIP_FILE:
        detail = f"module zip file is too large ({zip_size} bytes; limit is {MAX_ZIP_FILE} bytes)"
        raise InvalidZipError(mv, [FileProblem("", Problem.ZIP_SIZE, detail)])
    actual = f.seek(0, io.SEEK_END)
    if actual != zip_size:
        detail = (
            f"zip is {actual} bytes, expected {zip_size}: the transfer was cut short or changed"
        )
        raise InvalidZipError(mv, [FileProblem("", Problem.CORRUPT, detail)])
    try:
        infos = read_directory(f)
    except ZipReadError as exc:
        raise InvalidZipError(mv, [FileProblem("", Problem.CORRUPT, exc.detail)]) from None
    names = [zip_entry_name(info) for info in infos]
    problems = _check_names(mv, infos, names)
    if problems:
        raise InvalidZipError(mv, problems)
    prefix_len = len(mv.path) + len(mv.version) + 2
    entries: list[tuple[str, bytes | str]] = []
    files: list[str] = []
    go_mod: bytes | None = None
    total = 0
    for info, full in sorted(zip(infos, names, strict=True), key=lambda e: e[0].header_offset):
        name = full[prefix_len:]
        if full.endswith("/"):
            entries.append((full, EMPTY_SHA256))
            continue
        try:
            content = read_entry(
                f, zip_size, info, budget=MAX_ZIP_FILE - total, keep=name == GO_MOD, memo=memo
            )
        except ZipReadError as exc:
            problem = FileProblem(full, Problem.of_read(exc.problem), exc.detail)
            raise InvalidZipError(mv, [problem]) from None
        total += content.size
        files.append(name)
        entries.append((full, content.sha256))
        if content.data is not None:
            go_mod = content.data
    return CheckedZip(tuple(sorted(files)), hash1(entries), go_mod, total)


def read_go_mod(mv: ModuleVersion, f: BinaryIO) -> bytes | None:
    """The root go.mod of the module zip in ``f`` (seekable), or None if it has none.

    Reads that one entry only (at most MAX_GO_MOD bytes); it does not check the
    rest of the zip, which is :func:`check_zip`'s job. Raises
    :class:`InvalidZipError` for an unreadable zip or go.mod.
    """
    zip_size = f.seek(0, io.SEEK_END)
    wanted = f"{mv.path}@{mv.version}/{GO_MOD}"
    try:
        for info in read_directory(f):
            if zip_entry_name(info) != wanted:
                continue
            too_large = _size_problem(GO_MOD, info.file_size)
            if too_large is not None:
                raise InvalidZipError(mv, [too_large])
            return read_entry(f, zip_size, info, budget=MAX_GO_MOD, keep=True).data
    except ZipReadError as exc:
        problem = Problem.GO_MOD_SIZE if exc.problem is ReadProblem.OVER_BUDGET else None
        raise InvalidZipError(
            mv, [FileProblem(wanted, problem or Problem.of_read(exc.problem), exc.detail)]
        ) from None
    return None


# Creating zips (x/mod zip.Create with the omissions of its checkFiles).


def _new_vendor_rule(go_version: str | None) -> bool:
    """Whether the go line is a valid Go version of language 1.24 or later."""
    m = GO_VERSION_RE.fullmatch(go_version or "")
    if m is None or (m.group(3) and m.group(5)):
        return False  # go/version rejects a prerelease of a patch release
    return (int(m.group(1)), int(m.group(2))) >= _VENDOR_RULE_CHANGE


def is_vendored(name: str, go_version: str | None) -> bool:
    """Whether ``name`` lies in a vendored package (x/mod isVendoredPackage).

    Before go 1.24 (or without a go line) ``vendor/modules.txt`` stays, and a
    historic offset bug measures nested ``/vendor/`` from the start of the
    name, so ``pkg/vendor/vendor.go`` is dropped. The go command keeps that
    bug for old go lines so that existing module hashes do not change.
    """
    new_rule = _new_vendor_rule(go_version)
    if new_rule and name == VENDOR_MODULES_TXT:
        return True
    if name.startswith("vendor/"):
        start = len("vendor/")
    elif (j := name.find("/vendor/")) >= 0:
        start = j + len("/vendor/") if new_rule else len("/vendor/")
    else:
        return False
    return "/" in name[start:]


def root_go_version(files: Iterable[SourceFile]) -> str | None:
    """The go line of the root go.mod among ``files``, None if absent or unparsable."""
    version = None
    for f in files:
        if f.name == GO_MOD and f.is_regular:
            try:
                version = parse_gomod(f.data).go
            except GoModError:
                version = None
    return version


def _omission(f: ModuleFile, go_version: str | None, go_mod_dirs: set[str]) -> str | None:
    if is_vendored(f.name, go_version):
        return "file is in vendor directory"
    parent = f.name.rpartition("/")[0]
    while parent:
        if parent in go_mod_dirs:
            return "file is in another module"
        parent = parent.rpartition("/")[0]
    if f.name == HG_ARCHIVAL:
        return "file is inserted by 'hg archive' and is always omitted"
    return None


def filter_module_files(
    mv: ModuleVersion, files: Iterable[F], go_version: str | None
) -> tuple[list[F], list[tuple[str, str]]]:
    """Split ``files`` into those a module zip keeps and those it omits (with why).

    ``go_version`` is the root go.mod's go line (see :func:`root_go_version`).
    Raises :class:`InvalidZipError` when a file makes the module invalid.
    """
    files = list(files)
    go_mod_dirs = {
        f.name.rpartition("/")[0]
        for f in files
        if "/" in f.name and is_go_mod_name(f.name.rpartition("/")[2]) and f.is_regular
    }
    kept: list[F] = []
    omitted: list[tuple[str, str]] = []
    problems: list[FileProblem] = []
    reported: set[str] = set()  # as x/mod: the first verdict on a path stands
    collisions = Collisions()
    budget, too_large = MAX_ZIP_FILE, False
    for f in files:
        name = f.name
        if name in reported:
            continue
        problem = shape_problem(name)
        why = _omission(f, go_version, go_mod_dirs) if problem is None else None
        if problem is None and why is None:
            problem = name_problem(name)
            if problem is None and is_go_mod_name(name) and name != GO_MOD:
                problem = FileProblem(name, Problem.GO_MOD_CASE)
            is_dir = stat.S_IFMT(f.mode) == stat.S_IFDIR
            problem = problem or collisions.check(name, is_dir)
        if problem is None and why is None and not f.is_regular:
            why = "file is a symbolic link" if stat.S_ISLNK(f.mode) else "not a regular file"
        if problem is None and why is None:
            size = f.size
            if size <= budget:
                budget -= size
            elif not too_large:
                too_large = True
                problems.append(_total_size_problem())
            problem = _size_problem(name, size)
        if problem is not None:
            problems.append(problem)
        elif why is not None:
            omitted.append((name, why))
        else:
            kept.append(f)
            continue
        reported.add(name)
    if problems:
        raise InvalidZipError(mv, problems)
    return kept, omitted
