"""The ``direct`` source: modules straight from git, as the go command fetches them.

The module path leads to a repository (:mod:`vcs_resolve`), the repository
to one bare mirror under the state folder (:mod:`git_mirror`), and the
mirror to versions, ``.info``, ``.mod`` and ``.zip`` by the go command's own
rules (:mod:`modrepo`, :mod:`latest`). No go toolchain is involved.

The network is used only when needed: ``list``, ``latest`` and queries
(branch names, commit prefixes) fetch first, so that they see new tags and
commits; a canonical version is answered from the mirror and fetches only
when the mirror does not know its revision yet. Concurrent requests for one
repository share a fetch. git runs in worker threads, never on the event
loop.

The first request for a tagged version of a repository modgate has never
seen fetches just that tag (depth 1) and answers at once; the full mirror
is then completed in the background, so the next versions need no network
at all.

Every failure is translated here, once: a module, version or repository
that does not exist, a remote that wants credentials, times out or refuses
the transport all become ``NotFoundError`` (404, so the go command may fall
back to the next GOPROXY entry) with a body that says which of these it
was. Only a broken installation (no git) is an ``UpstreamError``.

With a :class:`HostGuard` (``modgate serve`` always has one), a module whose
host is not allowed is refused before anything is asked for, discovery
reaches checked addresses only, and every remote git command reaches its
repository only at the address that was checked (:mod:`git_pin`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from modgate.formats.info import render_info
from modgate.formats.zipentry import InflateMemo
from modgate.metrics import Metrics
from modgate.protocol.errors import InvalidRequestError, NotFoundError, UpstreamError
from modgate.protocol.module import ModuleVersion, canonical_version, check, check_path
from modgate.protocol.patterns import PatternList
from modgate.protocol.pseudo import is_pseudo_version
from modgate.sources.git_cmd import (
    DEFAULT_REMOTE_TIMEOUT,
    GitAuthError,
    GitError,
    GitMissingError,
    GitRemoteNotFoundError,
    GitRunner,
    GitTimeoutError,
    GitTransportError,
    RemoteObserver,
)
from modgate.sources.git_mirror import Mirror, now
from modgate.sources.git_pin import GitPins
from modgate.sources.gitrepo import GitRepo, NoCommitsError, UnknownRevisionError
from modgate.sources.gittree import TreeCache
from modgate.sources.hostguard import HostGuard, HostNotAllowedError
from modgate.sources.latest import latest
from modgate.sources.mirror_fallback import (
    shallow_all,
    shallow_commit,
    shallow_query,
    shallow_tag,
)
from modgate.sources.mirror_health import DEFAULT_BACKOFF, MirrorHealth
from modgate.sources.modrepo import ModRevInfo, ModuleLookupError, ModuleRepo
from modgate.sources.repotable import RepoTable
from modgate.sources.upstream import ERRORS, FETCHES, LATENCY
from modgate.sources.vcs_resolve import (
    RepoRoot,
    ResolveError,
    Resolver,
    has_path_prefix,
    parse_rewrites,
)
from modgate.sources.zipbuild import EntryCache, build_zip

T = TypeVar("T")
log = logging.getLogger("modgate.direct")

WORKER_THREADS = 32
"""Requests served at once (most of them wait on git or on a mirror's lock)."""
BACKGROUND_FETCHES = 2
"""Mirrors completed in the background at the same time."""
BACKGROUND_POLL = 0.02
MAX_COMPLETIONS = 64
"""Partial mirrors waiting for their background completion at most."""
COMPLETION_DELAY = 2.0
"""Seconds a partial mirror waits for its first zip before it is completed anyway."""
COMPLETION_GRACE = 0.5
"""Seconds between the first zip and the completion, for the zip to be checked and sent."""
TOKEN_USERNAME_MIN = 16
"""A URL user name this long is treated as a secret (an access token), not a name."""
_AUTH_HELP = (
    "give modgate's git credentials for it (a credential helper or ~/.netrc in the "
    "server's HOME, or a --git-rewrite URL)"
)


@dataclass(frozen=True, slots=True)
class _Completion:
    """A background completion that waits for the first zip (or to be hurried)."""

    zip_done: threading.Event = field(default_factory=threading.Event)
    hurry: threading.Event = field(default_factory=threading.Event)


class DirectSource:
    """Modules from git repositories, one shared mirror per repository."""

    name = "direct"

    def __init__(
        self,
        mirror_dir: Path | None = None,
        *,
        rewrites: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_REMOTE_TIMEOUT,
        environ: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        insecure: PatternList | None = None,
        inflated: InflateMemo | None = None,
        guard: HostGuard | None = None,
        metrics: Metrics | None = None,
        mirror_backoff: float = DEFAULT_BACKOFF,
    ) -> None:
        self._mirror_dir = mirror_dir
        self._owned_dir: Path | None = None
        parsed = parse_rewrites(rewrites or {})
        self.runner = GitRunner(
            dict(os.environ if environ is None else environ),
            remote_timeout=timeout,
            secrets=tuple(s for _, url in parsed for s in _url_secrets(url)),
            remote_options=GitPins(guard) if guard is not None else None,
            observe=_git_metrics(metrics) if metrics is not None else None,
        )
        self.guard = guard
        self.resolver = Resolver(
            rewrites=parsed, client=client, insecure=insecure, ping=self._ping, guard=guard
        )
        self._repos = RepoTable(self._new_repo)
        """Open repositories: bounded in number, cat-file processes closed when idle."""
        self._entries = EntryCache()
        """Deflated blobs shared by the zips of every repository (bounded by bytes)."""
        self._trees = TreeCache()
        self.inflated = inflated
        """Shared with the verification of zips: what the zips built here inflate to."""
        """Parsed git trees shared by every repository (bounded by entries)."""
        self._repos_lock = threading.Lock()
        self._background = ThreadPoolExecutor(
            BACKGROUND_FETCHES, thread_name_prefix="modgate-git-complete"
        )
        # Own threads: requests waiting on a slow remote never starve the
        # event loop's default executor, which the rest of modgate uses.
        self._workers = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="modgate-git")
        self._completing: dict[str, _Completion] = {}
        self.health = MirrorHealth(metrics, backoff=mirror_backoff, scrub=self.runner.scrub)
        """Mirrors whose full fetch fails, served by depth-1 fetches meanwhile."""

    # ---- the Source port ---------------------------------------------------------------------

    async def list(self, module: str) -> bytes:
        def op(repo: ModuleRepo, since: float) -> bytes:
            self._refresh(repo.code.mirror, since)
            versions, _ = repo.versions()
            return "".join(v + "\n" for v in versions).encode()

        return await self._run(module, module, op)

    async def latest(self, module: str) -> bytes:
        def op(repo: ModuleRepo, since: float) -> bytes:
            self._refresh(repo.code.mirror, since)
            return _render(latest(repo))

        return await self._run(f"{module}@latest", module, op)

    async def info(self, module: str, version: str) -> bytes:
        if _is_canonical_for(module, version):

            def canonical(repo: ModuleRepo, since: float) -> bytes:
                info = self._versioned(repo, since, version, lambda: repo.stat(version))
                return _render(info)

            return await self._run(f"{module}@{version}", module, canonical)

        def query(repo: ModuleRepo, since: float) -> bytes:
            mirror = repo.code.mirror
            rev = repo.rev_to_rev(version)
            self._refresh(mirror, since, fallback=lambda: shallow_query(mirror, rev, since))
            try:
                info = repo.stat(version)
            except ModuleLookupError as exc:
                # v1.2.3+meta may name the tag v1.2.3 (semver ignores build metadata)
                fallback = _canonical_query(version)
                if not fallback:
                    raise
                try:
                    info = repo.stat(fallback)
                except ModuleLookupError:
                    raise exc from None
            return _render(info)

        return await self._run(f"{module}@{version}", module, query)

    async def mod(self, mv: ModuleVersion) -> bytes:
        def op(repo: ModuleRepo, since: float) -> bytes:
            return self._versioned(repo, since, mv.version, lambda: repo.gomod(mv.version))

        return await self._run(str(mv), mv.path, op)

    async def zip(self, mv: ModuleVersion, dest: Path, max_size: int) -> None:
        def op(repo: ModuleRepo, since: float) -> None:
            self._versioned(
                repo,
                since,
                mv.version,
                lambda: build_zip(
                    repo, mv, dest, max_size, self._entries, trees=self._trees, memo=self.inflated
                ),
            )
            self._start_completion(repo.code.mirror)

        await self._run(str(mv), mv.path, op)

    def cancel(self) -> None:
        """Stop every git process (requests and background completions) and start no more."""
        self._hurry_all()
        stopped = self.runner.cancel()
        if stopped:
            log.warning(
                "shutdown: git processes still running were stopped",
                extra={"event": "git_cancelled", "processes": stopped},
            )

    async def aclose(self) -> None:
        self._hurry_all()
        await asyncio.to_thread(self._background.shutdown, wait=True, cancel_futures=True)
        await asyncio.to_thread(self._workers.shutdown, wait=True, cancel_futures=True)
        self._repos.close_all()
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)

    # ---- fetching policy -----------------------------------------------------------------------

    def _versioned(self, repo: ModuleRepo, since: float, version: str, call: Callable[[], T]) -> T:
        """``call()`` for a canonical version, fetching only what the mirror lacks.

        A tagged version on a repository seen for the first time fetches just
        its tag; the rest of the mirror follows in the background.
        """
        mirror = repo.code.mirror
        if not mirror.complete():
            rev = repo.rev_to_rev(version)
            ref = f"refs/tags/{rev}"
            if is_pseudo_version(version):
                self._refresh(
                    mirror,
                    since,
                    satisfied=lambda: mirror.complete() and mirror.has_commit(rev),
                    fallback=lambda: shallow_commit(mirror, rev, since),
                )
            elif mirror.create_with_tag(rev):
                self._complete_later(mirror, since)
            elif not mirror.exists() or not mirror.has_ref(ref):
                self._refresh(
                    mirror,
                    since,
                    satisfied=lambda: mirror.has_ref(ref),
                    fallback=lambda: shallow_tag(mirror, rev, since),
                )
        return self._retrying(repo, since, version, call)

    def _retrying(self, repo: ModuleRepo, since: float, version: str, call: Callable[[], T]) -> T:
        """``call()``; when the revision is unknown, fetch (unless fresh) and try again."""
        try:
            return call()
        except ModuleLookupError as exc:
            mirror = repo.code.mirror
            rev = repo.rev_to_rev(version)
            fallback = (
                (lambda: shallow_commit(mirror, rev, since))
                if is_pseudo_version(version)
                else (lambda: shallow_tag(mirror, rev, since))
            )
            if not exc.missing_revision or not self._refresh(mirror, since, fallback=fallback):
                raise
        return call()

    def _refresh(
        self,
        mirror: Mirror,
        since: float,
        *,
        satisfied: Callable[[], bool] | None = None,
        fallback: Callable[[], bool] | None = None,
    ) -> bool:
        """A full fetch (see :meth:`Mirror.fetch`); returns whether anything was fetched.

        When the full fetch fails for a reason other than a missing, private
        or refused repository, or has failed before and its backoff has not
        run out, ``fallback`` fetches just what this request needs at depth 1
        (by default the tips of every branch and tag), and the full fetch is
        retried later in the background.
        """
        if fallback is None:
            fallback = lambda: shallow_all(mirror, since)  # noqa: E731
        if self.health.degraded(mirror.url):
            if self.health.claim_retry(mirror.url) and not self._complete_later(
                mirror, now(), retry=True
            ):
                self.health.release(mirror.url)
            return self._fall_back(fallback)
        try:
            fetched = mirror.fetch(since, satisfied=satisfied)
        except (GitAuthError, GitRemoteNotFoundError, GitTransportError, GitMissingError):
            raise
        except GitError as exc:
            self.health.failed(mirror.url, self.runner.scrub(str(exc)))
            return self._fall_back(fallback)
        self.health.succeeded(mirror.url)
        return fetched

    def _fall_back(self, fallback: Callable[[], bool]) -> bool:
        fetched = fallback()
        if fetched:
            self.health.fell_back()
        return fetched

    def _complete_later(self, mirror: Mirror, since: float, *, retry: bool = False) -> bool:
        """Fetch the rest of a partial mirror in the background.

        It starts a moment after the first version's zip was built (or after
        :data:`COMPLETION_DELAY`), so that it does not slow down that
        request, and skips the network if a full fetch started after ``since``.
        A ``retry`` of a degraded mirror starts at once. A failure degrades
        the mirror (:class:`MirrorHealth`). Returns whether it was scheduled.
        """
        pending = _Completion()
        if retry:
            pending.zip_done.set()
            pending.hurry.set()
        with self._repos_lock:
            if mirror.url in self._completing or len(self._completing) >= MAX_COMPLETIONS:
                return False  # under way, or too many waiting: a later full fetch completes it
            self._completing[mirror.url] = pending

        def complete() -> None:
            pending.zip_done.wait(COMPLETION_DELAY)
            pending.hurry.wait(COMPLETION_GRACE)
            try:
                mirror.fetch(since, background=True)
            except GitError as exc:
                self.health.failed(mirror.url, self.runner.scrub(str(exc)))
            else:
                self.health.succeeded(mirror.url)
            finally:
                self.health.release(mirror.url)
                with self._repos_lock:
                    self._completing.pop(mirror.url, None)

        try:
            self._background.submit(complete)
        except RuntimeError:  # shutting down
            with self._repos_lock:
                self._completing.pop(mirror.url, None)
            return False
        return True

    def _start_completion(self, mirror: Mirror) -> None:
        with self._repos_lock:
            pending = self._completing.get(mirror.url)
        if pending is not None:
            pending.zip_done.set()

    def _hurry_all(self) -> tuple[_Completion, ...]:
        with self._repos_lock:
            pending = tuple(self._completing.values())
        for p in pending:
            p.hurry.set()
            p.zip_done.set()
        return pending

    def wait_background(self) -> None:
        """Block until background mirror completions are done (for tests and benchmarks)."""
        while self._hurry_all():
            time.sleep(BACKGROUND_POLL)

    # ---- plumbing ----------------------------------------------------------------------------

    def mirror_for(self, url: str) -> Mirror:
        return self._git_repo(url, url).mirror

    @property
    def mirror_dir(self) -> Path:
        """Where the mirrors live; without one configured, a private temporary folder."""
        if self._mirror_dir is None:
            self._owned_dir = Path(tempfile.mkdtemp(prefix="modgate-git-"))
            self._mirror_dir = self._owned_dir
        return self._mirror_dir

    def _git_repo(self, url: str, origin_url: str) -> GitRepo:
        return self._repos.get(url, origin_url)

    def _new_repo(self, url: str, origin_url: str) -> GitRepo:
        return GitRepo(Mirror(self.mirror_dir, url, self.runner), origin_url)

    async def _run(self, subject: str, module: str, op: Callable[[ModuleRepo, float], T]) -> T:
        since = now()
        check_path(module)
        try:
            if self.guard is not None and not any(
                has_path_prefix(module, prefix) for prefix, _ in self.resolver.rewrites
            ):
                self.guard.check_name(module.partition("/")[0])
            root = await self.resolver.resolve(module)
        except HostNotAllowedError as exc:
            self._refused(exc, subject)
        except ResolveError as exc:
            if isinstance(exc.__cause__, HostNotAllowedError):
                self._refused(exc.__cause__, subject)
            raise NotFoundError(subject, str(exc)) from None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._workers, self._call, subject, module, root, since, op
        )

    def _call(
        self,
        subject: str,
        module: str,
        root: RepoRoot,
        since: float,
        op: Callable[[ModuleRepo, float], T],
    ) -> T:
        origin_url = self.runner.scrub(root.origin_url)
        try:
            with self._repos.using(root.url, root.origin_url) as code:
                return op(ModuleRepo(code, root.root, root.subdir, module), since)
        except ModuleLookupError as exc:
            raise NotFoundError(subject, _without_subject(str(exc), subject)) from None
        except (UnknownRevisionError, NoCommitsError) as exc:
            raise NotFoundError(subject, str(exc)) from None
        except GitAuthError as exc:
            raise NotFoundError(
                subject, f"authentication failed for {origin_url} ({exc.detail}); {_AUTH_HELP}"
            ) from None
        except GitTimeoutError as exc:
            raise NotFoundError(subject, f"timed out reading {origin_url}: {exc.detail}") from None
        except GitTransportError as exc:
            raise NotFoundError(
                subject, f"git refused the transport of {origin_url}: {exc.detail}"
            ) from None
        except GitRemoteNotFoundError as exc:
            raise NotFoundError(
                subject, f"repository {origin_url} not found: {exc.detail}"
            ) from None
        except HostNotAllowedError as exc:
            self._refused(exc, subject)
        except GitMissingError as exc:
            raise UpstreamError(subject, f"{exc}; install git on the modgate server") from None
        except GitError as exc:
            raise NotFoundError(
                subject, f"git failed for {origin_url}: {self.runner.scrub(str(exc))}"
            ) from None

    def _refused(self, exc: HostNotAllowedError, subject: str) -> NoReturn:
        if self.guard is not None:
            self.guard.log_refusal(exc, subject)
        raise NotFoundError(subject, str(exc)) from None

    async def _ping(self, url: str) -> bool:
        def run() -> bool:
            try:
                self.runner.run(
                    ["ls-remote", "-q", "--end-of-options", url, "HEAD"],
                    git_dir=None,
                    action="ping repository",
                    remote=True,
                )
            except GitError:
                return False
            except HostNotAllowedError:
                if urlsplit(url).scheme in ("https", "http"):
                    raise  # the host itself is refused
                return False  # only this transport cannot be pinned: try the next one
            return True

        return await asyncio.get_running_loop().run_in_executor(self._workers, run)


def _render(info: ModRevInfo) -> bytes:
    """The ``.info`` the go command's own lookup returns (it trims Origin when caching)."""
    origin = info.origin.to_json() if info.origin is not None else None
    return render_info(info.version, info.time, origin)


def _is_canonical_for(module: str, version: str) -> bool:
    try:
        check(module, version)
    except InvalidRequestError:
        return False
    return True


def _canonical_query(query: str) -> str:
    """The canonical form of a semver query with build metadata ("" if none or the same)."""
    canonical = canonical_version(query)
    return canonical if canonical and canonical != query else ""


def _without_subject(message: str, subject: str) -> str:
    return message.removeprefix(f"{subject}: ")


def _url_secrets(url: str) -> list[str]:
    """Credentials in a configured URL: the password, and a user name long enough to be a token."""
    parts = urlsplit(url)
    found = [parts.password or ""]
    if parts.username and len(parts.username) >= TOKEN_USERNAME_MIN:
        found.append(parts.username)
    return [v for s in found if s for v in (s, unquote(s))]


GIT_LABELS = (("upstream", "direct"),)
"""Git's remote commands are counted like requests to an upstream proxy, as one source."""


def _git_metrics(metrics: Metrics) -> RemoteObserver:
    def observe(seconds: float, failure: str | None) -> None:
        metrics.inc(FETCHES, GIT_LABELS)
        metrics.observe(LATENCY, seconds, GIT_LABELS)
        if failure is not None:
            metrics.inc(ERRORS, (*GIT_LABELS, ("kind", failure)))

    return observe
