"""One bare mirror per repository, updated incrementally and shared by every request.

A mirror lives in ``<state>/<sha256 of the URL>`` (the URL never becomes a
file name, so one mirror can never nest inside another), with
``<sha256>.lock`` beside it while it is held. Creating and fetching hold an
exclusive ``flock`` on that file, which excludes other threads and other
modgate processes alike (the holder removes the file when it lets go, so a
URL that was only tried leaves nothing behind); reading needs no lock,
because git adds objects before it moves refs. ``fetch(since)`` skips the
network when another fetch started after ``since``: a burst of requests for
one repository causes one fetch.

A new mirror may start *partial*: ``create_with_tag`` brings one tag at depth 1,
which is all a tagged version needs (its .info, .mod and .zip depend on
that commit alone), and is much cheaper than a full clone of a large
history. The first full ``fetch`` completes it (``--unshallow``); until
then it is not :meth:`complete` and answers nothing else.

The mirror keeps what the go command looks at: ``refs/heads/*``,
``refs/tags/*`` (pruned, so it matches the remote) and the remote's
``HEAD``, stored as ``refs/modgate/HEAD`` because a bare repository's own
HEAD is a symbolic ref. Object reads go through long-lived ``git cat-file``
processes (:mod:`modgate.sources.git_catfile`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from modgate.sources.git_catfile import CatFile, GitObject
from modgate.sources.git_cmd import GitError, GitMissingRefError, GitRunner
from modgate.store import filelock

REMOTE = "origin"
HEAD_REF = "refs/modgate/HEAD"
FETCH_STAMP = "modgate-fetched"
"""Touched (with the start time) after each full fetch."""
REFS_STAMP = "modgate-refs"
"""Touched after any fetch: the refs may have changed."""
URL_FILE = "modgate-url"
SHALLOW_FILE = "shallow"
ATTRIBUTES_LINE = "\n* -export-subst -export-ignore\n"
"""What the go command appends to info/attributes before ``git archive``."""
REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
HEAD_REFSPEC = f"+HEAD:{HEAD_REF}"
_REF_NAME_RE = re.compile(r"[A-Za-z0-9_.+~-]+(/[A-Za-z0-9_.+~-]+)*")


@dataclass(frozen=True, slots=True)
class RefSnapshot:
    """The refs the go command considers: HEAD, refs/heads/*, refs/tags/* (peeled)."""

    refs: dict[str, str]
    generation: tuple[int, int]
    """Changes whenever a fetch finished (identity of the refs stamp file)."""


class Mirror:
    """A bare repository mirroring ``url``; safe to share between threads."""

    def __init__(self, root: Path, url: str, runner: GitRunner) -> None:
        digest = hashlib.sha256(f"git3:{url}".encode()).hexdigest()
        self.url = url
        self.dir = root / digest
        self.lock_path = root / f"{digest}.lock"
        self.runner = runner
        self.fetches = 0
        """Fetches this object ran (not counting skipped ones)."""
        self._refs: RefSnapshot | None = None
        self._refs_lock = threading.Lock()
        self._objects = CatFile(runner, self.dir)
        self._sizes = CatFile(runner, self.dir, check=True)
        self._attributes_checked = False
        self.unreadable: dict[str, str] = {}
        """Refs of the remote that a depth-1 fetch could not bring (name to commit).

        They are listed with the mirror's refs, as the go command lists them
        from ``git ls-remote``, so that lists and origins match its own; a
        version on one of them fails to resolve, as it does for the go
        command. Cleared by the next full fetch.
        """

    # ---- state ---------------------------------------------------------------------------

    def exists(self) -> bool:
        try:
            return (self.dir / URL_FILE).read_text(encoding="utf-8") == self.url
        except OSError:
            return False

    def complete(self) -> bool:
        """Whether the mirror holds every branch and tag with full history."""
        return (
            self.exists()
            and (self.dir / FETCH_STAMP).exists()
            and not (self.dir / SHALLOW_FILE).exists()
        )

    def has_ref(self, ref: str) -> bool:
        return ref in self.refs().refs

    def has_commit(self, rev: str) -> bool:
        obj = self.read_object(f"{rev}^{{commit}}")
        return obj is not None and obj.type == "commit"

    def last_fetch(self) -> float:
        """Wall-clock start of the last successful full fetch by any process (0 if none)."""
        try:
            return (self.dir / FETCH_STAMP).stat().st_mtime
        except OSError:
            return 0.0

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The mirror's lock; its file is removed on release (see ``store.filelock``)."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with filelock.locked(self.lock_path):
            yield

    # ---- updating ------------------------------------------------------------------------

    def fetch(
        self,
        since: float,
        *,
        background: bool = False,
        satisfied: Callable[[], bool] | None = None,
    ) -> bool:
        """Update from the remote unless a fetch started at or after ``since``.

        Creates the mirror on first use. ``satisfied`` tells whether the
        mirror already has what the caller needs (checked once the lock is
        held, after any fetch running meanwhile), which also skips the fetch.
        ``background`` fetches run at low priority. Returns whether this
        call fetched.
        """
        with self.locked():
            if self.exists() and (
                self.last_fetch() >= since or (satisfied is not None and satisfied())
            ):
                return False
            created = not self.exists()
            if created:
                self._create()
            started = time.time()
            try:
                self._fetch(background)
            except BaseException:
                if created:  # no mirror is left behind for a remote that never answered
                    shutil.rmtree(self.dir, ignore_errors=True)
                raise
            self.unreadable = {}
            stamp = self.dir / FETCH_STAMP
            stamp.touch()
            # The stamp records when the fetch started: only a fetch that began
            # after a request arrived is sure to include what the request needs.
            os.utime(stamp, (started, started))
            self._refs_changed()
            if background:
                self.refs()  # read the new refs here, not in the next request
            self.fetches += 1
            return True

    def create_with_tag(self, tag: str) -> bool:
        """Create the mirror holding just ``refs/tags/<tag>`` at depth 1.

        Returns False, fetching nothing more, when the mirror already exists
        or the remote has no such tag (the mirror then exists but is empty).
        """
        if not _safe_ref_name(tag) or self.exists():
            return False
        ref = f"refs/tags/{tag}"
        with self.locked():
            if self.exists():
                return False
            self._create()
            # a missing tag leaves the mirror empty: a full fetch will tell more
            return self._fetch_depth1([f"+{ref}:{ref}"], tag, created=True)

    def fetch_shallow(self, refspecs: list[str], what: str, since: float | None = None) -> bool:
        """Fetch just ``refspecs`` at depth 1, creating the mirror if needed.

        This is how the go command fetches one version, and the fallback when
        the full mirror cannot be completed (an unreadable object in the
        remote's history, a fetch that runs past the timeout, a server that
        limits fetch size). Returns False when the remote lacks a ref named,
        or, given the ``since`` of a request, when a full fetch that started
        after it has completed the mirror meanwhile (it holds everything).
        """
        with self.locked():
            if since is not None and self.complete() and self.last_fetch() >= since:
                return False
            created = not self.exists()
            if created:
                self._create()
            return self._fetch_depth1(refspecs, what, created=created)

    def _fetch_depth1(self, refspecs: list[str], what: str, *, created: bool) -> bool:
        """Fetch ``refspecs`` at depth 1 (the lock held); False when the remote lacks a ref.

        Any other failure removes the mirror again when the caller ``created`` it.
        """
        try:
            self.runner.run(
                [
                    "fetch",
                    "-q",
                    "-f",
                    "--depth=1",
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--no-auto-maintenance",
                    "--end-of-options",
                    REMOTE,
                    *refspecs,
                ],
                git_dir=self.dir,
                action=f"fetch {what} from {self.runner.scrub(self.url)}",
                remote=True,
            )
        except GitMissingRefError:
            return False
        except BaseException:
            if created:
                shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self._refs_changed()
        self.fetches += 1
        return True

    def remote_refs(self) -> dict[str, str]:
        """The remote's refs as ``git ls-remote`` lists them (name to object id), unpeeled."""
        out = self.runner.run(
            ["ls-remote", "-q", "--end-of-options", self.url],
            git_dir=None,
            action=f"list the refs of {self.runner.scrub(self.url)}",
            remote=True,
        ).stdout
        refs: dict[str, str] = {}
        for line in out.decode("utf-8", "surrogateescape").splitlines():
            oid, _, name = line.partition("\t")
            if oid and name:
                refs[name] = oid
        return refs

    def _refs_changed(self) -> None:
        # A new file (new inode) each time, so readers see a new generation
        # even on file systems with coarse timestamps.
        tmp = self.dir / f"{REFS_STAMP}.tmp"
        tmp.write_text(f"{time.time()!r}\n", encoding="utf-8")
        tmp.replace(self.dir / REFS_STAMP)

    def _create(self) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir)  # left over from a creation that did not finish
        self.dir.mkdir(parents=True)
        try:
            # No templates: a mirror needs no sample hooks or description.
            self.runner.run(
                ["init", "--bare", "-q", "--template="], git_dir=self.dir, action="create mirror"
            )
            # The remote's URL goes into the config file directly: one git process
            # less, and a URL carrying a credential never appears in a command line.
            with (self.dir / "config").open("a", encoding="utf-8") as config:
                config.write(remote_section(REMOTE, self.url))
            self.ensure_attributes()
            (self.dir / URL_FILE).write_text(self.url, encoding="utf-8")
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _fetch(self, background: bool) -> None:
        base = ["fetch", "-q", "-f", "--prune", "--no-tags", "--no-write-fetch-head"]
        if (self.dir / SHALLOW_FILE).exists():
            base.append("--unshallow")
        action = f"fetch {self.runner.scrub(self.url)}"
        try:
            self.runner.run(
                [*base, "--end-of-options", REMOTE, *REFSPECS, HEAD_REFSPEC],
                git_dir=self.dir,
                action=action,
                remote=True,
                background=background,
            )
        except GitMissingRefError:
            # The remote has no HEAD (an empty repository, or HEAD names an unborn branch).
            self.runner.run(
                [*base, "--end-of-options", REMOTE, *REFSPECS],
                git_dir=self.dir,
                action=action,
                remote=True,
                background=background,
            )
            self.runner.run(
                ["update-ref", "-d", "--end-of-options", HEAD_REF],
                git_dir=self.dir,
                action="forget the remote HEAD",
            )

    def ensure_attributes(self) -> None:
        """Disable export-subst and export-ignore for ``git archive``, as the go command does."""
        if self._attributes_checked:
            return
        info = self.dir / "info"
        info.mkdir(exist_ok=True)
        path = info / "attributes"
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = ""
        if not current.endswith(ATTRIBUTES_LINE):
            with path.open("a", encoding="utf-8") as f:
                f.write(ATTRIBUTES_LINE)
        self._attributes_checked = True

    # ---- reading -------------------------------------------------------------------------

    def refs(self) -> RefSnapshot:
        """The current refs, re-read only after a fetch (by any process) finished."""
        try:
            st = (self.dir / REFS_STAMP).stat()
            generation = (st.st_ino, st.st_mtime_ns)
        except OSError:
            generation = (0, 0)
        with self._refs_lock:
            if self._refs is not None and self._refs.generation == generation:
                return self._with_unreadable(self._refs)
            out = self.runner.run(
                [
                    "for-each-ref",
                    "--format=%(objectname) %(*objectname) %(refname)",
                    "--end-of-options",
                    "refs/heads/",
                    "refs/tags/",
                    HEAD_REF,
                ],
                git_dir=self.dir,
                action="read refs",
            ).stdout
            refs: dict[str, str] = {}
            for line in out.decode("utf-8", "surrogateescape").splitlines():
                fields = line.split(" ")
                if len(fields) != 3:
                    continue
                oid, peeled, name = fields
                if name == HEAD_REF:
                    name = "HEAD"
                refs[name] = peeled or oid
            self._refs = RefSnapshot(refs, generation)
            return self._with_unreadable(self._refs)

    def _with_unreadable(self, snapshot: RefSnapshot) -> RefSnapshot:
        unreadable = self.unreadable
        if not unreadable:
            return snapshot
        return RefSnapshot({**unreadable, **snapshot.refs}, snapshot.generation)

    def read_object(self, name: str) -> GitObject | None:
        """The object ``name`` (``<rev>^{commit}``, ``<hash>:<path>``), or None if absent."""
        return self._objects.read(name)

    def read_objects(self, names: list[str]) -> list[GitObject | None]:
        """:meth:`read_object` of each name, in one round trip per chunk."""
        return self._objects.read_many(names)

    def object_sizes(self, names: list[str]) -> list[int | None]:
        """The size of each object in ``names``, None where absent (one round trip per chunk)."""
        return self._sizes.sizes(names)

    def close(self) -> None:
        self._objects.close()
        self._sizes.close()


def remote_section(name: str, url: str) -> str:
    """A git config section naming ``url`` as remote ``name`` (fetch refspecs are explicit)."""
    if any(c in url for c in "\n\r\0"):
        raise GitError("configure mirror", "the repository URL contains a line break or NUL")
    quoted = url.replace("\\", "\\\\").replace('"', '\\"')
    return f'[remote "{name}"]\n\turl = "{quoted}"\n'


def _safe_ref_name(name: str) -> bool:
    return bool(_REF_NAME_RE.fullmatch(name)) and ".." not in name and not name.endswith(".lock")


def now() -> float:
    """The wall-clock time to pass as ``since`` for a request that starts now."""
    return time.time()
