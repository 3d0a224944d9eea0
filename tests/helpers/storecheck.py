"""Re-verify every artifact in a modgate store against the bytes that were published.

Used after chaos: whatever faults the upstream injected and however often
modgate was killed, every file under a final name must be complete and
correct. The check is independent of modgate's code: zips are read with
:mod:`zipfile` (which checks each entry's CRC-32) and hashed with the test
suite's own h1, and compared with what the test published.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from helpers.modules import BuiltVersion, zip_h1
from modgate.protocol.escape import escape_path, escape_version

STATE_DIR = "_modgate"
ARTIFACT_SUFFIXES = (".info", ".mod", ".zip", ".ziphash")


def store_problems(store: Path, published: Iterable[BuiltVersion]) -> list[str]:
    """Every stored file that is unknown, incomplete or differs from the published bytes."""
    known = {f"{escape_path(b.mv.path)}/@v/{escape_version(b.mv.version)}": b for b in published}
    problems: list[str] = []
    if not store.exists():
        return problems
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        rel = path.relative_to(store).as_posix()
        if rel.startswith(STATE_DIR + "/"):
            continue
        if rel.endswith("/@v/list"):
            continue
        stem, dot, suffix = rel.rpartition(".")
        built = known.get(stem)
        if not dot or f".{suffix}" not in ARTIFACT_SUFFIXES or built is None:
            problems.append(f"{rel}: a file that is no artifact of a published version")
            continue
        problems.extend(_artifact_problems(path, rel, f".{suffix}", built))
    return problems


def _artifact_problems(path: Path, rel: str, suffix: str, built: BuiltVersion) -> list[str]:
    data = path.read_bytes()
    if suffix == ".mod" and data != built.mod:
        return [f"{rel}: stored .mod differs from the published one ({len(data)} bytes)"]
    if suffix == ".info":
        try:
            version = json.loads(data)["Version"]
        except (ValueError, KeyError, TypeError):
            return [f"{rel}: stored .info is not the JSON of a version: {data[:80]!r}"]
        if version != built.mv.version:
            return [f"{rel}: stored .info names {version}, not {built.mv.version}"]
    if suffix == ".ziphash" and data.decode(errors="replace").strip() != built.h1:
        return [f"{rel}: stored .ziphash {data[:60]!r} != published h1 {built.h1}"]
    if suffix == ".zip":
        try:
            h1 = zip_h1(data)
        except Exception as exc:  # a corrupt zip: BadZipFile, zlib.error, CRC mismatch
            return [f"{rel}: stored zip cannot be read ({type(exc).__name__}: {exc})"]
        if h1 != built.h1:
            return [f"{rel}: stored zip hashes to {h1}, published {built.h1}"]
        for companion in (".mod", ".ziphash"):
            if not path.with_suffix(companion).is_file():
                return [f"{rel}: a stored zip without its {companion}"]
    return []
