"""The module zip rules shared by reading and creating zips (after golang.org/x/mod/zip).

A module zip holds files under ``<path>@<version>/``. Each file path must be
clean, relative and valid (``check_file_path``); no two paths may be equal
under the go command's case folding (:mod:`modgate.formats.casefold`); no path
may be both a file and a directory; a go.mod may appear only at the root and
only spelled ``go.mod``. Every breach is a :class:`FileProblem` whose
:class:`Problem` says which rule, collected into one :class:`InvalidZipError`.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from modgate.formats.casefold import fold_key
from modgate.formats.zipentry import ReadProblem
from modgate.protocol.errors import InvalidModuleError, InvalidRequestError
from modgate.protocol.module import ModuleVersion, check, check_file_path

GO_MOD = "go.mod"
LICENSE = "LICENSE"
_MAX_REPORTED = 5
_FIX = "this version cannot be served; its publisher must release a corrected version"


class Problem(enum.Enum):
    """Why a module zip, or a file meant for one, is invalid."""

    NO_PREFIX = "path does not have the <module>@<version>/ prefix"
    NOT_CLEAN = "file path is not clean"
    NOT_RELATIVE = "file path is not relative"
    BAD_PATH = "invalid file path"
    CASE_COLLISION = "case-insensitive file name collision"
    FILE_AND_DIR = "entry is both a file and a directory"
    DUPLICATE = "multiple entries for file"
    GO_MOD_NOT_ROOT = "go.mod file not in module root directory"
    GO_MOD_CASE = "go.mod files must have lowercase names"
    GO_MOD_SIZE = "go.mod file too large"
    LICENSE_SIZE = "LICENSE file too large"
    TOTAL_SIZE = "total uncompressed size too large"
    ZIP_SIZE = "module zip file is too large"
    SYMLINK = "symbolic links are not allowed"
    IRREGULAR = "not a regular file"
    ENCRYPTED = "encrypted entries are not allowed"
    COMPRESSION = "unsupported compression method"
    DIR_DATA = "directory entry has content"
    SIZE_MISMATCH = "uncompressed size does not match the declared size"
    CRC = "CRC-32 mismatch"
    CORRUPT = "damaged zip data"

    @classmethod
    def of_read(cls, problem: ReadProblem) -> Problem:
        return cls.TOTAL_SIZE if problem is ReadProblem.OVER_BUDGET else cls[problem.name]


@dataclass(frozen=True, slots=True)
class FileProblem:
    name: str
    problem: Problem
    detail: str = ""

    def __str__(self) -> str:
        text = self.detail or self.problem.value
        return f"{self.name}: {text}" if self.name else text


class InvalidZipError(InvalidModuleError):
    """A module zip (or its files) breaks the module zip rules; ``problems`` says which."""

    def __init__(self, mv: ModuleVersion, problems: Iterable[FileProblem]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:_MAX_REPORTED])
        more = len(self.problems) - _MAX_REPORTED
        if more > 0:
            shown += f"; and {more} more"
        super().__init__(str(mv), f"invalid module zip: {shown}; {_FIX}")


class Collisions:
    """Case-fold collisions and paths that are both a file and a directory (x/mod rules)."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, bool]] = {}

    def check(self, path: str, is_dir: bool, entry: str = "") -> FileProblem | None:
        """Record ``path`` and its parent directories; problems are reported for ``entry``."""
        entry = entry or path
        key = fold_key(path)
        other = self.seen.get(key)
        if other is None:
            self.seen[key] = (path, is_dir)
        elif other[0] != path:
            detail = f"case-insensitive file name collision: {other[0]!r} and {path!r}"
            return FileProblem(entry, Problem.CASE_COLLISION, detail)
        elif other[1] != is_dir:
            return FileProblem(
                entry, Problem.FILE_AND_DIR, f"entry {path!r} is both a file and a directory"
            )
        elif not is_dir:
            return FileProblem(entry, Problem.DUPLICATE)
        parent = path.rpartition("/")[0]
        return self.check(parent, True, entry) if parent else None


def clean_path(p: str) -> str:
    """Go's ``path.Clean``."""
    rooted = p.startswith("/")
    out: list[str] = []
    for elem in p.split("/"):
        if elem in ("", "."):
            continue
        if elem != "..":
            out.append(elem)
        elif out and out[-1] != "..":
            out.pop()
        elif not rooted:
            out.append("..")
    text = "/".join(out)
    return ("/" + text) if rooted else (text or ".")


_CACHED_NAME_CHARS = 200
"""Names up to this long have their shape verdict cached (the cache stays small)."""


def shape_problem(name: str) -> FileProblem | None:
    """NOT_CLEAN or NOT_RELATIVE for a path that is not clean and relative."""
    if len(name) <= _CACHED_NAME_CHARS:
        return _cached_shape_problem(name)
    return _shape_problem(name)


def _shape_problem(name: str) -> FileProblem | None:
    if clean_path(name) != name:
        return FileProblem(name, Problem.NOT_CLEAN)
    if name.startswith("/"):
        return FileProblem(name, Problem.NOT_RELATIVE)
    return None


# The files of a module's versions mostly share their names.
_cached_shape_problem = functools.lru_cache(maxsize=8192)(_shape_problem)


def name_problem(name: str) -> FileProblem | None:
    """BAD_PATH for a path that ``check_file_path`` refuses."""
    try:
        check_file_path(name)
    except InvalidRequestError as exc:
        return FileProblem(name, Problem.BAD_PATH, str(exc))
    return None


def is_go_mod_name(base: str) -> bool:
    """Whether a file name is "go.mod" in any case."""
    # strings.EqualFold with "go.mod": only ASCII letters can fold to these.
    return base.isascii() and base.lower() == GO_MOD


def check_module(mv: ModuleVersion) -> None:
    """Raise InvalidModuleError unless ``mv`` is a module version that can have a zip."""
    try:
        check(mv.path, mv.version)
    except InvalidRequestError as exc:
        raise InvalidModuleError(str(mv), f"no module zip can exist for it: {exc}") from None
