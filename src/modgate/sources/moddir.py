"""Where a module lives in its repository, and what its go.mod says (after coderepo.go).

A module path ``<root>/<dir>[/vN]`` lives in ``dir`` of the repository
rooted at ``<root>``; a ``/vN`` module may instead live in ``dir/vN``. Its
go.mod must declare a path with the same major suffix; the go command's
rules and error texts for every mismatch are reproduced here.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from modgate.formats.gomod_syntax import parse_string
from modgate.protocol import semver
from modgate.protocol.module import path_major_prefix, split_path_version
from modgate.sources.gitrepo import GitRepo, UnknownRevisionError

GO_MOD = "go.mod"
LICENSE = "LICENSE"


class ModuleLookupError(Exception):
    """A module version cannot be resolved; ``str()`` reads like the go command's error."""

    def __init__(self, message: str, *, missing_revision: bool = False) -> None:
        super().__init__(message)
        self.missing_revision = missing_revision
        """True when the revision is unknown (a fetch might still bring it)."""


def has_path_prefix(s: str, prefix: str) -> bool:
    if len(s) == len(prefix):
        return s == prefix
    if len(s) > len(prefix):
        if prefix and prefix.endswith("/"):
            return s.startswith(prefix)
        return s[len(prefix)] == "/" and s.startswith(prefix)
    return False


def module_path_of(gomod: bytes | None) -> str:
    """The module path a go.mod declares, read leniently ("" if none) (modfile.ModulePath)."""
    if gomod is None:
        return ""
    for raw in gomod.split(b"\n"):
        line = raw.split(b"//", 1)[0].strip()
        if not line.startswith(b"module"):
            continue
        rest = line[len(b"module") :]
        stripped = rest.strip()
        if len(stripped) == len(rest) or not stripped:
            continue
        text = stripped.decode("utf-8", "surrogateescape")
        if text[0] in '"`':
            try:
                return text[1:-1] if text[0] == "`" and text.endswith("`") else parse_string(text)
            except ValueError:
                return ""
        return text
    return ""


def is_major(mpath: str, path_major: str) -> bool:
    if not mpath:
        return False
    _, mpath_major, ok = split_path_version(mpath)
    if not ok:
        return False
    if path_major == "":
        return path_major_prefix(mpath_major) in ("", "v0", "v1")
    if mpath_major == "":
        return False
    return path_major[1:] == mpath_major[1:]


@dataclass(frozen=True, slots=True)
class ModuleLayout:
    """A module path split against its repository (codeRepo's path fields)."""

    path: str
    code_root: str
    code_dir: str
    path_prefix: str
    path_major: str

    def find_dir(self, code: GitRepo, rev: str, version: str) -> tuple[str, bytes | None]:
        """``(dir, go.mod or None)`` of ``version`` at ``rev``; raises ModuleLookupError."""
        file1 = posixpath.join(self.code_dir, GO_MOD)
        try:
            gomod1 = code.read_file(rev, file1)
        except UnknownRevisionError as exc:
            raise ModuleLookupError(str(exc), missing_revision=True) from None
        mpath1 = module_path_of(gomod1)
        found1 = gomod1 is not None and (
            is_major(mpath1, self.path_major)
            or (self.path_major == "" and mpath1.startswith("gopkg.in/"))
        )
        file2 = ""
        if self.path_major and self.code_root != self.path and not self.path_major.startswith("."):
            dir2 = posixpath.join(self.code_dir, self.path_major[1:])
            file2 = posixpath.join(dir2, GO_MOD)
            gomod2 = code.read_file(rev, file2)
            mpath2 = module_path_of(gomod2)
            found2 = gomod2 is not None and is_major(mpath2, self.path_major)
            if found1 and found2:
                raise ModuleLookupError(
                    f"{self.path_prefix}/{file1} and ...{self.path_major}/go.mod both have "
                    f"...{self.path_major} module paths at revision {rev}"
                )
            if found2:
                return dir2, gomod2
            if gomod2 is not None:
                if not mpath2:
                    raise ModuleLookupError(
                        f"{self.code_root}/{file2} is missing module path at revision {rev}"
                    )
                raise ModuleLookupError(
                    f"{self.code_root}/{file2} has non-...{self.path_major} module path "
                    f'"{mpath2}" at revision {rev}'
                )
        if found1:
            return self.code_dir, gomod1
        if gomod1 is not None:
            suffix = f" (and ...{self.path_major}/go.mod does not exist)" if file2 else ""
            if not mpath1:
                raise ModuleLookupError(f"{file1} is missing module path{suffix} at revision {rev}")
            if self.path_major:
                raise ModuleLookupError(
                    f'{file1} has non-...{self.path_major} module path "{mpath1}"{suffix} '
                    f"at revision {rev}"
                )
            if not split_path_version(mpath1)[2]:
                raise ModuleLookupError(
                    f'{file1} has malformed module path "{mpath1}"{suffix} at revision {rev}'
                )
            raise ModuleLookupError(
                f'{file1} has post-{semver.major(version)} module path "{mpath1}"{suffix} '
                f"at revision {rev}"
            )
        if not self.code_dir and (not self.path_major or self.path_major.startswith(".")):
            return "", None
        if file2:
            raise ModuleLookupError(
                f"missing {self.path_prefix}/go.mod and ...{self.path_major}/go.mod "
                f"at revision {rev}"
            )
        raise ModuleLookupError(f"missing {self.path_prefix}/go.mod at revision {rev}")
