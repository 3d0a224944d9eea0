"""Backing up and restoring a filesystem store without breaking the private checksum log.

A backup is a tar archive (gzip-compressed when its name ends in ``.gz``)
of the store: artifacts, list files, and modgate's state under
``_modgate/meta`` (TTL records, the private checksum logs). Temp files and
locks are left out, and so are git mirrors unless asked for (they are
re-created on demand). The first member, ``modgate-backup.json``, names the
store format and, for each private log, its verifier key and tree head.

The log must stay consistent. Its tree head (``sumdb/<name>/tree``) is the
commit point: pages and index entries beyond its size are ignored. So each
log's tree head is read *first* and that text is what the archive holds,
while the pages read afterwards can only be as long or longer; the restored
log is then exactly the tree the backup names.

A restore must never move a log backwards. A client that once saw tree N
keeps it in ``$GOPATH/pkg/sumdb/<name>/latest`` and fails every later
lookup against a smaller or different tree (``SECURITY ERROR``, "downloaded
inconsistent tile"). So a restore refuses, unless forced, when the target
store's log is ahead of the backup's, has another key, or has the same size
with another root (a fork). Artifacts of canonical versions are immutable:
one that exists with other bytes is a conflict, never overwritten.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modgate.formats.tlog import TlogError, Tree, parse_tree
from modgate.protocol.errors import StoreError
from modgate.store.filesystem import STATE_DIR, FilesystemStore
from modgate.store.format import FORMAT_VERSION

MANIFEST = "modgate-backup.json"
BACKUP_KIND = "modgate-store-backup"
META_DIR = "meta"
GIT_DIR = "git"
SKIPPED_STATE = ("tmp", "locks")
"""State folders never backed up: they only hold what a running process uses."""
SUMDB_META = "sumdb"
META_FILE = "@meta"
IMMUTABLE_SUFFIXES = (".info", ".mod", ".zip", ".ziphash")
CHUNK = 1 << 20

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class LogState:
    """A private log as a backup or a store holds it."""

    name: str
    verifier: str
    tree: Tree | None


@dataclass(slots=True)
class RestoreReport:
    written: int = 0
    unchanged: int = 0
    conflicts: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)
    """What --force let through, for the operator to act on."""


def _meta_path(name: str) -> str:
    """The store-relative path of a meta entry (see ``store.filesystem``)."""
    return f"{STATE_DIR}/{META_DIR}/{name}/{META_FILE}"


def read_logs(store: FilesystemStore) -> dict[str, LogState]:
    """The private logs in ``store`` with their verifier keys and tree heads."""
    folder = store.root / STATE_DIR / META_DIR / SUMDB_META
    logs: dict[str, LogState] = {}
    if not folder.is_dir():
        return logs
    for entry in sorted(folder.iterdir()):
        name = entry.name
        verifier = store.get_meta(f"{SUMDB_META}/{name}/verifier")
        if verifier is None:
            continue
        tree_text = store.get_meta(f"{SUMDB_META}/{name}/tree")
        logs[name] = LogState(
            name,
            verifier.data.decode("utf-8", "replace").strip(),
            _tree(tree_text.data if tree_text else None, name),
        )
    return logs


def _tree(text: bytes | None, name: str) -> Tree | None:
    if text is None:
        return None
    try:
        return parse_tree(text)
    except TlogError as exc:
        raise BackupError(f"private log {name}: unreadable tree head: {exc}") from exc


def _tree_json(tree: Tree | None) -> dict[str, Any] | None:
    return None if tree is None else {"size": tree.n, "hash": tree.hash.hex()}


def _tree_from_json(data: Any) -> Tree | None:
    if data is None:
        return None
    return Tree(int(data["size"]), bytes.fromhex(str(data["hash"])))


def _walk(root: Path, include_git: bool) -> Iterator[Path]:
    """Regular files under ``root`` to back up, in a stable order."""
    skipped = {root / STATE_DIR / name for name in SKIPPED_STATE}
    if not include_git:
        skipped.add(root / STATE_DIR / GIT_DIR)
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        dirs[:] = sorted(d for d in dirs if here / d not in skipped)
        for name in sorted(files):
            path = here / name
            if path.is_file() and not path.is_symlink():
                yield path


def backup(
    store: FilesystemStore,
    out: Path,
    *,
    include_git: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write a backup of ``store`` to ``out`` (atomically); returns the manifest."""
    logs = read_logs(store)  # tree heads first: the pages read later are at least as long
    tree_heads = {
        _meta_path(f"{SUMDB_META}/{log.name}/tree"): store.get_meta(f"{SUMDB_META}/{log.name}/tree")
        for log in logs.values()
    }
    manifest: dict[str, Any] = {
        "kind": BACKUP_KIND,
        "format": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "logs": {
            log.name: {"verifier": log.verifier, "tree": _tree_json(log.tree)}
            for log in logs.values()
        },
        "git": include_git,
    }
    partial = out.with_name(f".{out.name}.partial")
    files = 0
    try:
        with _open_for_writing(partial, compress=out.name.endswith(".gz")) as archive:
            _add_bytes(archive, MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
            for path in _walk(store.root, include_git):
                relative = path.relative_to(store.root).as_posix()
                captured = tree_heads.get(relative)
                if captured is not None:
                    _add_bytes(archive, relative, captured.data)
                else:
                    archive.add(path, arcname=relative, recursive=False)
                files += 1
                if progress is not None:
                    progress(relative)
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        partial.replace(out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot write the backup {str(out)!r}: {exc.strerror or exc}") from exc
    manifest["files"] = files
    return manifest


def _open_for_writing(path: Path, *, compress: bool) -> tarfile.TarFile:
    if compress:
        return tarfile.open(path, "w:gz")
    return tarfile.open(path, "w")


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def read_manifest(archive: tarfile.TarFile) -> dict[str, Any]:
    member = archive.next()
    if member is None or member.name != MANIFEST or not member.isfile():
        raise BackupError(f"not a modgate backup: its first member is not {MANIFEST}")
    f = archive.extractfile(member)
    assert f is not None
    try:
        manifest = json.loads(f.read())
    except ValueError as exc:
        raise BackupError(f"not a modgate backup: unreadable {MANIFEST}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("kind") != BACKUP_KIND:
        raise BackupError("not a modgate backup: wrong kind in its manifest")
    if int(manifest.get("format", 0)) > FORMAT_VERSION:
        raise BackupError(
            f"the backup is of store format {manifest['format']}, newer than this modgate "
            f"supports ({FORMAT_VERSION}); restore it with a newer modgate"
        )
    return manifest


def check_logs(
    manifest: dict[str, Any], current: dict[str, LogState], force: bool, report: RestoreReport
) -> None:
    """Refuse (unless ``force``) a restore that would move a private log backwards."""
    for name, saved in manifest.get("logs", {}).items():
        have = current.get(name)
        if have is None or have.tree is None:
            continue
        ours = _tree_from_json(saved.get("tree"))
        problem = None
        if saved.get("verifier") != have.verifier:
            problem = (
                f"private log {name}: the store's log is signed with {have.verifier}, "
                f"the backup's with {saved.get('verifier')}"
            )
        elif ours is None or have.tree.n > ours.n:
            size = 0 if ours is None else ours.n
            problem = (
                f"private log {name}: the store's log has {have.tree.n} records, the "
                f"backup's only {size}; restoring it would move the log backwards"
            )
        elif have.tree.n == ours.n and have.tree.hash != ours.hash:
            problem = (
                f"private log {name}: the store and the backup hold different trees "
                f"of size {ours.n}"
            )
        if problem is None:
            continue
        advice = (
            "every client that saw the newer tree will then fail with 'SECURITY ERROR' "
            "(downloaded inconsistent tile) until it removes $GOPATH/pkg/sumdb/"
            f"{name}/ (go env GOPATH)"
        )
        if not force:
            raise BackupError(f"{problem}; refusing to restore (--force to do it anyway: {advice})")
        report.forced.append(f"{problem}: {advice}")


def _safe_name(name: str) -> str:
    normal = posixpath.normpath(name)
    if (
        normal.startswith(("/", "../"))
        or normal in {".", ".."}
        or "\\" in normal
        or "\x00" in normal
    ):
        raise BackupError(f"refusing archive member {name!r}: it points outside the store")
    first = normal.split("/", 1)[0]
    if first == STATE_DIR and normal.split("/")[1:2] in (["tmp"], ["locks"]):
        raise BackupError(
            f"refusing archive member {name!r}: temp files and locks are not restored"
        )
    return normal


def restore(
    store: FilesystemStore,
    source: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore the backup at ``source`` into ``store`` (stopped: no modgate serving it)."""
    report = RestoreReport()
    try:
        with tarfile.open(source, "r:*") as archive:
            manifest = read_manifest(archive)
            check_logs(manifest, read_logs(store), force, report)
            for member in archive:
                if member.name == MANIFEST:
                    continue
                _restore_member(store, archive, member, report)
                if progress is not None:
                    progress(member.name)
    except (tarfile.TarError, EOFError) as exc:
        raise BackupError(f"cannot read the backup {str(source)!r}: {exc}") from exc
    except OSError as exc:
        raise BackupError(f"cannot restore {str(source)!r}: {exc.strerror or exc}") from exc
    return report


def _restore_member(
    store: FilesystemStore, archive: tarfile.TarFile, member: tarfile.TarInfo, report: RestoreReport
) -> None:
    if member.isdir():
        return
    if not member.isfile():
        raise BackupError(f"refusing archive member {member.name!r}: not a regular file")
    relative = _safe_name(member.name)
    final = store.root / relative
    f = archive.extractfile(member)
    assert f is not None
    data = f.read()
    if final.is_symlink() or (final.exists() and not final.is_file()):
        raise BackupError(f"refusing to restore {relative}: the store has a non-file there")
    if final.is_file():
        same = final.read_bytes() == data
        if same:
            report.unchanged += 1
            return
        if relative.endswith(IMMUTABLE_SUFFIXES) and not relative.startswith(STATE_DIR + "/"):
            report.conflicts.append(relative)
            return
    final.parent.mkdir(parents=True, exist_ok=True)
    if not Path(os.path.realpath(final.parent)).is_relative_to(store.root):
        raise BackupError(f"refusing archive member {member.name!r}: it points outside the store")
    try:
        with store.temp_file() as tmp:
            tmp.write_bytes(data)
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            tmp.replace(final)
    except StoreError as exc:
        raise BackupError(str(exc)) from exc
    report.written += 1
