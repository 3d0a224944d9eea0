"""The filesystem store, laid out exactly like the go command's download cache.

``<root>/<escaped module>/@v/<escaped version>.{info,mod,zip,ziphash}`` and
``<root>/<escaped module>/@v/list`` are what ``GOMODCACHE/cache/download``
holds, so an existing module cache can be served as it is, and a store can
be handed to the go command as ``GOPROXY=file://<root>``.

modgate's own state lives under ``<root>/_modgate/``, which can never be a
module path (the first element of a module path is a lower-case domain):

    _modgate/meta/<name>/@meta   get_meta/put_meta (``@`` never starts a name
                                 element, so ``latest/a.b/x`` and
                                 ``latest/a.b/x/v2`` can both exist)
    _modgate/tmp/                temp files, on the same filesystem as the store
    _modgate/locks/<sha256>.lock one file per lock name while it is held or waited for
                                 (removed on release, see ``filelock``)

Writes are atomic: a temp file is written, flushed and fsynced, then moved
into place and the directory fsynced (then the parents of any directory the
write created), so readers only ever see final names and ``put`` returns only
once the artifact is durable.
Artifacts are installed with a hard link, which fails instead of replacing
an existing file: of several writers (threads or processes) the first wins
and the others' temp files are removed. list and meta are replaced with a
rename. Temp files left by a crash are removed when a store is opened.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import secrets
import stat
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from modgate.protocol.errors import ModgateError, StoreError
from modgate.protocol.escape import escape_path, escape_version, unescape_path, unescape_version
from modgate.protocol.module import ModuleVersion
from modgate.store import filelock, presence
from modgate.store.base import Kind, Stamped
from modgate.store.format import StoreFormatError, ensure_format

if TYPE_CHECKING:
    from modgate.store.base import Store

STATE_DIR = "_modgate"
META_DIR = "meta"
TEMP_DIR = "tmp"
LOCKS_DIR = "locks"
META_FILE = "@meta"
VERSIONS_DIR = "@v"
LIST_FILE = "list"
MOD_SUFFIX = "." + Kind.MOD.value
TEMP_SUFFIX = ".tmp"
STALE_TEMP_SECONDS = 10 * 60
"""A temp file untouched for this long belongs to a writer that died."""
TEMP_SWEEP_LIMIT = 2000
"""Directory entries looked at when a store opens, so that opening stays fast."""
COPY_CHUNK = 1 << 20
FILE_MODE = 0o666  # narrowed by the umask, like files the go command writes
_LINK_UNSUPPORTED = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK})
_DIR_FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.EOPNOTSUPP})
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def artifact_relpath(mv: ModuleVersion, kind: Kind) -> str:
    """``<escaped module>/@v/<escaped version>.<kind>``; raises for an invalid path or version."""
    return f"{escape_path(mv.path)}/{VERSIONS_DIR}/{escape_version(mv.version)}.{kind.value}"


def list_relpath(module: str) -> str:
    return f"{escape_path(module)}/{VERSIONS_DIR}/{LIST_FILE}"


def meta_elements(name: str) -> list[str]:
    """The '/'-separated elements of a meta name; raises StoreError for a name that escapes."""
    elements = name.split("/")
    for element in elements:
        if element in ("", ".", "..") or "\x00" in element or element.startswith("@"):
            reason = (
                f"invalid meta name {name!r}: use relative '/'-separated names without "
                "empty, '.', '..' or '@'-prefixed elements"
            )
            raise StoreError(name, reason)
    return elements


def is_confined(root: Path, path: Path) -> bool:
    """Whether ``path``'s directory, symlinks resolved, is ``root`` (resolved) or below it.

    ``root`` is resolved already, so only the elements below it can be links:
    each is looked at once (an ``lstat``), and only when one is a link (or
    the path is not plainly below ``root``) is the whole path resolved. A
    missing element ends the walk, as nothing below it exists. This is the
    same answer as resolving the path every time, at a sixth of the cost.
    """
    base, parent = os.fspath(root), os.fspath(path.parent)
    if parent == base:
        return True
    if base == os.sep or not parent.startswith(base + os.sep):
        return _resolves_below(root, parent)
    elements = parent[len(base) + 1 :].split(os.sep)  # noqa: PTH206 - strings: the hot path
    if "" in elements or "." in elements or ".." in elements:
        return _resolves_below(root, parent)
    current = base
    for element in elements:
        current = f"{current}{os.sep}{element}"
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return True
        except OSError:
            return _resolves_below(root, parent)
        if stat.S_ISLNK(mode):
            return _resolves_below(root, parent)
    return True


def _resolves_below(root: Path, parent: str) -> bool:
    return Path(os.path.realpath(parent)).is_relative_to(root)


class FilesystemStore:
    """The Store port on a local (or shared POSIX) filesystem under ``root``."""

    def __init__(self, root: Path) -> None:
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
            self.root = Path(root).resolve(strict=True)
            state = self.root / STATE_DIR
            self._meta, self._tmp, self._locks = (
                state / META_DIR,
                state / TEMP_DIR,
                state / LOCKS_DIR,
            )
            for directory in (self._meta, self._tmp, self._locks):
                directory.mkdir(parents=True, exist_ok=True)
            self._tmp = self._tmp.resolve(strict=True)
            self.format = ensure_format(state)
        except OSError as exc:
            raise _failure(str(root), "open the store at", Path(root), exc) from exc
        except StoreFormatError as exc:
            raise StoreError(str(root), str(exc)) from exc
        try:
            self._presence, alone = presence.hold(self.root / STATE_DIR)
            weakref.finalize(self, presence.let_go, self._presence)
        except OSError as exc:
            lock = self.root / STATE_DIR / presence.OPEN_LOCK
            raise _failure(str(root), "hold", lock, exc) from exc
        self._sweep_temp(everything=alone)
        self.sweep_locks()

    # -- artifacts --------------------------------------------------------

    def get(self, mv: ModuleVersion, kind: Kind) -> bytes | None:
        found = self._read(self._artifact(mv, kind), str(mv))
        return None if found is None else found.data

    def local_path(self, mv: ModuleVersion, kind: Kind) -> Path | None:
        path = self._artifact(mv, kind)
        return path if self._regular_size(path, str(mv)) is not None else None

    def size(self, mv: ModuleVersion, kind: Kind) -> int | None:
        return self._regular_size(self._artifact(mv, kind), str(mv))

    def put(self, mv: ModuleVersion, kind: Kind, data: bytes) -> None:
        final = self._artifact(mv, kind)
        if self._regular_size(final, str(mv)) is not None:
            return  # immutable: the first bytes stored stay
        self._install(self._write_temp(data, str(mv)), final, str(mv), replace=False)

    def put_many(self, items: list[tuple[ModuleVersion, Kind, bytes]]) -> list[Exception | None]:
        """``put`` of each item, with the fsyncs they share made once.

        Every temp file is written; then each is fsynced and linked into place
        (on a journaling filesystem the first fsync commits them all and the
        others return at once); then each directory that changed is fsynced
        once, an artifact's own directory before the parents of the ones it
        created. The order per artifact is ``put``'s, so
        a crash leaves at most some of them missing. Errors are per item.
        """
        results: list[Exception | None] = [None] * len(items)
        staged: list[tuple[int, Path, Path, str]] = []
        try:
            for index, (mv, kind, data) in enumerate(items):
                subject = str(mv)
                try:
                    final = self._artifact(mv, kind)
                    if self._regular_size(final, subject) is None:
                        staged.append((index, self._write_temp(data, subject, sync=False), final,
                                       subject))  # fmt: skip
                except ModgateError as exc:
                    results[index] = exc
            linked: list[tuple[int, Path, list[Path], str]] = []
            for index, tmp, final, subject in staged:
                try:
                    _fsync_file(tmp)
                    created = self._link(tmp, final, replace=False)
                    linked.append((index, final, created, subject))
                except OSError as exc:
                    results[index] = _failure(subject, "store", final, exc)
                except ModgateError as exc:
                    results[index] = exc
            synced: dict[Path, OSError | None] = {}
            for index, final, created, subject in linked:
                for directory in (final.parent, *(new.parent for new in created)):
                    if directory not in synced:
                        synced[directory] = _try_fsync_dir(directory)
                    failed = synced[directory]
                    if failed is not None and results[index] is None:
                        results[index] = _failure(subject, "store", final, failed)
        finally:
            for _, tmp, _, _ in staged:
                with suppress(OSError):  # swept when the store is next opened
                    tmp.unlink(missing_ok=True)
        return results

    def put_file(self, mv: ModuleVersion, kind: Kind, src: Path) -> None:
        """Install ``src``: a file from ``temp_file`` is moved, any other file is copied."""
        final, subject = self._artifact(mv, kind), str(mv)
        if Path(os.path.realpath(src.parent)) != self._tmp:
            if self._regular_size(final, subject) is None:
                self._install(self._copy_temp(src, subject), final, subject, replace=False)
            return
        try:
            _fsync_file(src)
        except OSError as exc:
            raise _failure(subject, "flush", src, exc) from exc
        self._install(src, final, subject, replace=False)

    @contextmanager
    def temp_file(self) -> Iterator[Path]:
        fd, path = self._new_temp("temp file")
        os.close(fd)
        try:
            yield path
        finally:
            # Best effort: the next open of the store sweeps what is left.
            with suppress(OSError):
                path.unlink(missing_ok=True)

    def versions(self, module: str) -> list[str]:
        listing = self._confined(self.root / list_relpath(module))
        found: list[str] = []
        for entry in self._scan(listing.parent, module):
            if not entry.name.endswith(MOD_SUFFIX) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                found.append(unescape_version(entry.name.removesuffix(MOD_SUFFIX)))
            except ModgateError:
                continue  # not a file this store or the go command wrote
        return found

    def modules(self) -> Iterator[str]:
        pending = [""]
        while pending:
            rel = pending.pop()
            directory = self.root / rel if rel else self.root
            for entry in self._scan(directory, rel or str(self.root)):
                if not entry.is_dir(follow_symlinks=False):
                    continue
                if entry.name == VERSIONS_DIR:
                    if rel and self._has_mod(Path(entry.path), rel):
                        module = _module_or_none(rel)
                        if module is not None:
                            yield module
                    continue
                if not rel and ("." not in entry.name or entry.name.startswith("_")):
                    continue  # modgate's state, the go command's sumdb cache, junk
                pending.append(f"{rel}/{entry.name}" if rel else entry.name)

    # -- list and meta ------------------------------------------------------

    def get_list(self, module: str) -> Stamped | None:
        return self._read(self._confined(self.root / list_relpath(module)), module)

    def put_list(self, module: str, data: bytes) -> None:
        final = self._confined(self.root / list_relpath(module))
        self._install(self._write_temp(data, module), final, module, replace=True)

    def get_meta(self, name: str) -> Stamped | None:
        return self._read(self._meta_path(name), name)

    def put_meta(self, name: str, data: bytes) -> None:
        final = self._meta_path(name)
        self._install(self._write_temp(data, name), final, name, replace=True)

    # -- locks ------------------------------------------------------------

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """fcntl.flock on a file of its own; blocks, so call it off the event loop."""
        path = self._lock_path(name)
        fd = self._acquire(name, path, wait=True)
        assert fd is not None
        try:
            yield
        finally:
            filelock.release(fd, path)

    def try_lock(self, name: str) -> Callable[[], None] | None:
        """``lock(name)`` without waiting: its release, or None when another holder has it."""
        path = self._lock_path(name)
        fd = self._acquire(name, path, wait=False)
        if fd is None:
            return None
        return lambda: filelock.release(fd, path)

    def sweep_locks(self) -> int:
        """Remove lock files nobody holds (left by a crash, or by older versions)."""
        try:
            return filelock.sweep(self._locks)
        except OSError as exc:
            raise _failure(str(self._locks), "clean", self._locks, exc) from exc

    def _lock_path(self, name: str) -> Path:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        return self._locks / f"{digest}{filelock.LOCK_SUFFIX}"

    def _acquire(self, name: str, path: Path, *, wait: bool) -> int | None:
        try:
            return filelock.acquire(path, wait=wait)
        except OSError as exc:
            raise _failure(name, "open the lock file", path, exc) from exc

    # -- paths ------------------------------------------------------------

    def _artifact(self, mv: ModuleVersion, kind: Kind) -> Path:
        return self._confined(self.root / artifact_relpath(mv, kind))

    def _meta_path(self, name: str) -> Path:
        return self._confined(self._meta.joinpath(*meta_elements(name), META_FILE))

    def _confined(self, path: Path) -> Path:
        if not is_confined(self.root, path):
            reason = f"{path} leads outside the store {self.root} (a symbolic link?); refusing it"
            raise StoreError(str(path.relative_to(self.root)), reason)
        return path

    # -- file operations -------------------------------------------------

    def _read(self, path: Path, subject: str) -> Stamped | None:
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _failure(subject, "read", path, exc) from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise StoreError(subject, f"{path} is not a regular file; remove it")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read()
        except OSError as exc:
            raise _failure(subject, "read", path, exc) from exc
        finally:
            os.close(fd)
        return Stamped(data, info.st_mtime)

    def _regular_size(self, path: Path, subject: str) -> int | None:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _failure(subject, "inspect", path, exc) from exc
        if not stat.S_ISREG(info.st_mode):
            raise StoreError(subject, f"{path} is not a regular file; remove it")
        return info.st_size

    def _new_temp(self, subject: str) -> tuple[int, Path]:
        path = self._tmp / f"{secrets.token_hex(12)}{TEMP_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(path, flags, FILE_MODE), path
        except OSError as exc:
            raise _failure(subject, "create", path, exc) from exc

    def _write_temp(self, data: bytes, subject: str, *, sync: bool = True) -> Path:
        fd, path = self._new_temp(subject)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                if sync:
                    os.fsync(out.fileno())
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise _failure(subject, "write", path, exc) from exc
        return path

    def _copy_temp(self, src: Path, subject: str) -> Path:
        fd, path = self._new_temp(subject)
        try:
            with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
                while chunk := inp.read(COPY_CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise _failure(subject, "copy", src, exc) from exc
        return path

    def _install(self, tmp: Path, final: Path, subject: str, *, replace: bool) -> None:
        """Move ``tmp`` to ``final`` (keeping an existing ``final`` unless ``replace``)."""
        try:
            created = self._link(tmp, final, replace=replace)
            _fsync_dir(final.parent)
            # The new directories' entries, deepest first, once the name is in place:
            # on a journaling filesystem the fsync above has committed them already
            # and these return at once; elsewhere they cost what they always did.
            for directory in created:
                _fsync_dir(directory.parent)
        except OSError as exc:
            raise _failure(subject, "store", final, exc) from exc
        finally:
            with suppress(OSError):  # swept when the store is next opened
                tmp.unlink(missing_ok=True)

    def _link(self, tmp: Path, final: Path, *, replace: bool) -> list[Path]:
        """Put ``tmp`` at ``final`` (creating its directories); returns the directories made,
        deepest first. Nothing is fsynced here."""
        created = self._make_dirs(final.parent)
        self._confined(final)
        if replace:
            tmp.replace(final)
        else:
            _link_no_clobber(tmp, final)
        return created

    def _make_dirs(self, directory: Path) -> list[Path]:
        """Create ``directory`` and its missing parents; returns those made, deepest first.

        Their parents are not fsynced here: ``_install`` does it after the
        artifact's own directory, so that one journal commit covers them all.
        """
        missing: list[Path] = []
        while not os.path.lexists(directory) and directory != self.root:
            missing.append(directory)
            directory = directory.parent
        created: list[Path] = []
        for new in reversed(missing):
            try:
                new.mkdir()
            except FileExistsError:
                continue  # another writer made it (and syncs it)
            created.append(new)
        created.reverse()
        return created

    def _scan(self, directory: Path, subject: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(directory) as entries:
                return list(entries)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _failure(subject, "list", directory, exc) from exc

    def _has_mod(self, directory: Path, subject: str) -> bool:
        return any(
            e.name.endswith(MOD_SUFFIX) and e.is_file(follow_symlinks=False)
            for e in self._scan(directory, subject)
        )

    def _sweep_temp(self, *, everything: bool = False) -> None:
        """Remove temp files a dead writer left, looking at a bounded number of entries.

        With ``everything`` (no other process has the store open, see
        :mod:`modgate.store.presence`) every temp file goes, however young.
        """
        cutoff = math.inf if everything else time.time() - STALE_TEMP_SECONDS
        subject = str(self._tmp)
        try:
            with os.scandir(self._tmp) as entries:
                for seen, entry in enumerate(entries):
                    if seen >= TEMP_SWEEP_LIMIT and not everything:
                        break
                    try:
                        info = entry.stat(follow_symlinks=False)
                        if not stat.S_ISDIR(info.st_mode) and info.st_mtime < cutoff:
                            Path(entry.path).unlink()
                    except FileNotFoundError:
                        continue  # its writer finished or another sweep got it
        except OSError as exc:
            raise _failure(subject, "clean", self._tmp, exc) from exc


def _module_or_none(escaped: str) -> str | None:
    try:
        return unescape_path(escaped)
    except ModgateError:
        return None  # a directory the go command would not have written


def _link_no_clobber(tmp: Path, final: Path) -> None:
    """Hard-link ``tmp`` to ``final`` unless ``final`` exists (atomic first-writer-wins)."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return  # another writer won; the artifact is immutable
    except OSError as exc:
        if exc.errno not in _LINK_UNSUPPORTED:
            raise
        # No hard links on this filesystem: a rename is still atomic for
        # readers, but two racing writers may both install identical bytes.
        if not os.path.lexists(final):
            tmp.replace(final)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, _READ_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_fsync_dir(directory: Path) -> OSError | None:
    try:
        _fsync_dir(directory)
    except OSError as exc:
        return exc
    return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def _failure(subject: str, action: str, path: Path, exc: OSError) -> StoreError:
    if exc.errno == errno.ELOOP:
        reason = f"cannot {action} {path}: it is a symbolic link, which the store refuses"
    else:
        detail = exc.strerror or type(exc).__name__
        reason = f"cannot {action} {path}: {detail}; check the store's permissions and free space"
    return StoreError(subject, reason)


if TYPE_CHECKING:

    def _conforms(store: FilesystemStore) -> Store:
        return store
