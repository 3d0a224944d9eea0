"""Artifacts found on disk for ``modgate import``.

Two shapes are recognised under each root, in one walk:
- a module cache (``GOMODCACHE/cache/download``, or a modgate store): files
  ``<escaped module>/@v/<escaped version>.mod|.info|.zip``; a version with
  only a .mod (the go command downloads only go.mod for most of the graph)
  is imported as such;
- loose module zips anywhere else: the module and version are read from the
  zip's entry prefix ``<module>@<version>/``.
Everything found is only a candidate: the importer verifies each through
the same path as upstream fetches.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modgate.protocol.errors import InvalidRequestError
from modgate.protocol.escape import unescape_path, unescape_version
from modgate.protocol.module import ModuleVersion, check

STATE_DIR = "_modgate"
CACHE_EXTENSIONS = (".mod", ".info", ".zip", ".ziphash")


@dataclass(frozen=True, slots=True)
class Candidate:
    mv: ModuleVersion
    mod: Path | None
    info: Path | None
    zip: Path | None
    ziphash: Path | None = None
    """The h1 the go command recorded for the zip, when the cache has one."""


@dataclass(frozen=True, slots=True)
class Unusable:
    path: Path
    reason: str


def discover(root: Path) -> Iterator[Candidate | Unusable]:
    """Yield every module version under ``root`` (sorted, so runs are repeatable)."""
    if not root.is_dir():
        yield Unusable(root, "not a directory")
        return
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not (here == root and d == STATE_DIR))
        if here.name == "@v":
            yield from _cache_versions(root, here, filenames)
            dirnames[:] = []
            continue
        for name in sorted(filenames):
            if name.endswith(".zip"):
                yield _loose_zip(here / name)


def _cache_versions(root: Path, vdir: Path, filenames: list[str]) -> Iterator[Candidate | Unusable]:
    try:
        module = unescape_path(vdir.parent.relative_to(root).as_posix())
    except InvalidRequestError as exc:
        yield Unusable(vdir, f"not a module cache directory: {exc.reason}")
        return
    by_version: dict[str, dict[str, Path]] = {}
    for name in filenames:
        stem, dot, ext = name.rpartition(".")
        ext = dot + ext
        if ext in CACHE_EXTENSIONS:
            by_version.setdefault(stem, {})[ext] = vdir / name
    for escaped in sorted(by_version):
        files = by_version[escaped]
        try:
            version = unescape_version(escaped)
            check(module, version)
        except InvalidRequestError as exc:
            yield Unusable(vdir / escaped, f"not a valid module version: {exc.reason}")
            continue
        if ".mod" not in files and ".zip" not in files:
            continue  # an .info alone (a query answer) carries nothing to import
        yield Candidate(
            ModuleVersion(module, version),
            files.get(".mod"),
            files.get(".info"),
            files.get(".zip"),
            files.get(".ziphash"),
        )


def _loose_zip(path: Path) -> Candidate | Unusable:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        return Unusable(path, f"not a readable zip: {exc}")
    first = names[0] if names else ""
    module, at, rest = first.partition("@")
    if not at or "/" not in rest:
        return Unusable(path, "not a module zip: entries lack the <module>@<version>/ prefix")
    version = rest.split("/", 1)[0]
    try:
        check(module, version)
    except InvalidRequestError as exc:
        return Unusable(path, f"not a module zip: {exc}")
    return Candidate(ModuleVersion(module, version), None, None, path)
