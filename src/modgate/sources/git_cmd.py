"""Running git: the one place modgate starts a git process.

Everything a module path or a remote server controls reaches git only as a
value, never as an option or a transport:

- every command puts ``--end-of-options`` (or ``--``) before revisions and
  URLs, and the repository is named by ``GIT_DIR``, not by an argument;
- ``GIT_ALLOW_PROTOCOL`` limits transports to :data:`SAFE_PROTOCOLS`, so
  ``ext::`` or ``fd::`` URLs are refused by git itself (an operator who sets
  the variable keeps their own list);
- nothing ever prompts: ``GIT_TERMINAL_PROMPT=0``, and ssh runs with
  ``BatchMode=yes`` unless the operator configured their own ssh command;
- remote operations are killed, with every process git started, after the
  configured timeout;
- a runner may carry a ``remote_options`` hook whose ``-c`` options go in
  front of every remote command (the direct source pins the remote's host
  to a checked address with it, see :mod:`modgate.sources.git_pin`).

The operator's own git setup applies as for any git command run by that
user: ``HOME`` and ``GIT_CONFIG_GLOBAL`` (``url.<base>.insteadOf`` rules,
credential helpers), ``~/.netrc``, ssh keys and agents. Global and system
*attribute* files are ignored (``GIT_ATTR_NOSYSTEM``, an empty
``core.attributesFile``): a module's content must depend on the repository
alone, or its checksum would differ from everyone else's.

Failures are translated here, once, from git's standard error (git reports
nearly everything with exit status 128, so its message is the only signal)
into the typed errors below. Their text never carries a credential.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAFE_PROTOCOLS = ("https", "http", "ssh", "git", "file")
"""Transports git may use. ``file`` serves the operator's local mirrors (and the tests)."""
BATCH_SSH_COMMAND = "ssh -o ControlMaster=no -o BatchMode=yes"
DEFAULT_REMOTE_TIMEOUT = 300.0
"""Seconds a fetch or ls-remote may take before it is killed."""
LOCAL_TIMEOUT = 600.0
"""Seconds a purely local git command (archive of a huge tree) may take."""
REDACTED = "xxxxx"
STDERR_LINES_KEPT = 4
KILL_GRACE = 5.0
CANCEL_GRACE = 1.0
"""Seconds git gets at shutdown to stop on SIGTERM (and remove its lock files) before SIGKILL."""
CANCELLED = "modgate is shutting down; retry the request"
PRUNE_AT = 256
"""Processes remembered before finished ones are dropped (cat-file processes stay listed)."""
BACKGROUND_NICENESS = 19
"""Seconds to wait for killed processes to release their pipes."""

# Variables that would point git at another repository or object store.
_REPOSITORY_VARIABLES = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_NAMESPACE",
        "GIT_COMMON_DIR",
        "GIT_CEILING_DIRECTORIES",
        "GIT_DISCOVERY_ACROSS_FILESYSTEM",
        "GIT_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_QUARANTINE_PATH",
    }
)
_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]*@")

# Stderr patterns of git 2.x, checked in this order.
_AUTH_PATTERNS = (
    "could not read username",
    "could not read password",
    "authentication failed",
    "terminal prompts disabled",
    "permission denied (publickey",
    "host key verification failed",
    "access denied",
    "returned error: 401",
    "returned error: 403",
    "invalid username or password",
)
_NOT_FOUND_PATTERNS = (
    "repository not found",
    "not found",
    "does not appear to be a git repository",
    "returned error: 404",
    "returned error: 410",
    "no such file or directory",
)
_MISSING_REF_PATTERN = "couldn't find remote ref"
_REFUSED_TRANSPORT_PATTERNS = (
    "transport '",
    "unable to find remote helper",
    "protocol '",
    "strange pathname",
    "strange hostname",
    "strange port",
)


class GitError(Exception):
    """A git command failed; ``detail`` is git's message, credentials removed."""

    def __init__(self, action: str, detail: str) -> None:
        super().__init__(f"{action}: {detail}" if detail else action)
        self.action = action
        self.detail = detail


class GitAuthError(GitError):
    """The remote wants credentials that modgate does not have (or has wrong ones)."""


class GitRemoteNotFoundError(GitError):
    """The remote repository (or the ref asked for) does not exist."""


class GitMissingRefError(GitRemoteNotFoundError):
    """The remote exists but lacks a ref that was asked for by name."""


class GitTimeoutError(GitError):
    """The command ran longer than its timeout and was killed."""


class GitTransportError(GitError):
    """git refused the URL's transport (``ext::``, an unknown helper)."""


class GitMissingError(GitError):
    """The git executable is not installed or not on PATH."""


class GitCancelledError(GitError):
    """modgate is shutting down: the command was stopped, or never started."""


class LiveProcesses:
    """The git processes of one runner, so that shutdown can stop them all at once."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self.cancelled = False

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for p in self._procs if p.poll() is None)

    def start(self, action: str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        """``subprocess.Popen(argv, **popen)``, remembered until :meth:`discard`."""
        with self._lock:
            if self.cancelled:
                raise GitCancelledError(action, CANCELLED)
            proc: subprocess.Popen[bytes] = subprocess.Popen(argv, **popen)
            self._procs.add(proc)
            if len(self._procs) > PRUNE_AT:
                self._procs = {p for p in self._procs if p.returncode is None}
            return proc

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def cancel(self) -> int:
        """Refuse new processes; TERM every running one's group, then KILL what is left."""
        with self._lock:
            self.cancelled = True
            procs = [p for p in self._procs if p.poll() is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # git removes its lock files on SIGTERM; SIGKILL would leave them behind
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + CANCEL_GRACE
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        return len(procs)


RemoteOptions = Callable[["GitRunner", Sequence[str], "Path | None"], list[str]]
"""``(runner, args, git_dir) -> options`` for one remote command."""


@dataclass(frozen=True, slots=True)
class GitResult:
    stdout: bytes
    stderr: bytes
    returncode: int


@dataclass(frozen=True)
class GitRunner:
    """Runs git with a safe, fixed environment derived from the operator's.

    ``secrets`` are strings (passwords, tokens from configured URLs) that
    must never appear in an error message even outside a URL.
    """

    environ: Mapping[str, str]
    remote_timeout: float = DEFAULT_REMOTE_TIMEOUT
    secrets: tuple[str, ...] = ()
    executable: str = "git"
    remote_options: RemoteOptions | None = None
    """Options put in front of every remote command; it may refuse the command by raising."""
    observe: RemoteObserver | None = None
    """Told of every remote command: its seconds, and its failure kind (None: it worked)."""
    _env: dict[str, str] = field(init=False, repr=False, compare=False)
    _live: LiveProcesses = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_env", git_environment(self.environ))
        object.__setattr__(self, "_live", LiveProcesses())

    def cancel(self) -> int:
        """Stop every git process this runner started and refuse new ones (at shutdown).

        Returns how many were running. The calls waiting on them raise
        :class:`GitCancelledError`.
        """
        return self._live.cancel()

    def processes(self) -> int:
        """git processes running now (commands and long-lived cat-file processes)."""
        return len(self._live)

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        """A process from :meth:`popen_batch` was stopped and reaped by its owner."""
        self._live.discard(proc)

    def env(self, git_dir: Path | None) -> dict[str, str]:
        env = dict(self._env)
        if git_dir is not None:
            env["GIT_DIR"] = str(git_dir)
        return env

    def run(
        self,
        args: Sequence[str],
        *,
        git_dir: Path | None,
        action: str,
        remote: bool = False,
        stdin: bytes | None = None,
        ok_codes: Iterable[int] = (0,),
        timeout: float | None = None,
        background: bool = False,
    ) -> GitResult:
        """Run ``git <args>``; raise a :class:`GitError` subclass unless it exits in ``ok_codes``.

        ``remote`` commands use the remote timeout and have their failures
        classified (authentication, not found, refused transport).
        ``background`` work runs at low CPU priority on one thread, so that it
        does not slow down the requests being answered meanwhile.
        """
        limit = (
            timeout if timeout is not None else (self.remote_timeout if remote else LOCAL_TIMEOUT)
        )
        if remote and self.remote_options is not None:
            args = [*self.remote_options(self, args, git_dir), *args]
        argv = [self.executable, *args]
        if background:
            argv = [self.executable, "-c", "pack.threads=1", *args]
            nice = shutil.which("nice")
            if nice is not None:
                argv = [nice, "-n", str(BACKGROUND_NICENESS), *argv]
        try:
            proc = self._live.start(
                action,
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env(git_dir),
                cwd=str(git_dir) if git_dir is not None else None,
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError as exc:
            if git_dir is not None and not git_dir.is_dir():
                raise GitError(action, f"the mirror {git_dir} has gone") from exc
            raise GitMissingError(action, "git is not installed or not on PATH") from exc
        started = time.monotonic()
        failure: str | None = "other"
        try:
            try:
                out, err = proc.communicate(stdin, timeout=limit)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                failure = "timeout"
                raise GitTimeoutError(
                    action, f"git did not finish within {limit:g} s and was stopped"
                ) from None
            except BaseException:
                kill_group(proc)
                raise
            finally:
                self._live.discard(proc)
            if self._live.cancelled:
                failure = "cancelled"
                raise GitCancelledError(action, CANCELLED)
            if proc.returncode not in tuple(ok_codes):
                error = self.classify(action, err, remote=remote)
                failure = failure_kind(error)
                raise error
            failure = None
            return GitResult(out, err, proc.returncode)
        finally:
            if remote and self.observe is not None:
                self.observe(time.monotonic() - started, failure)

    def classify(self, action: str, stderr: bytes, *, remote: bool) -> GitError:
        """The typed error for a failed command with standard error ``stderr``."""
        text = self.scrub(stderr.decode("utf-8", "replace"))
        detail = summarize(text)
        lowered = text.lower()
        if remote:
            if any(p in lowered for p in _REFUSED_TRANSPORT_PATTERNS):
                return GitTransportError(action, detail)
            if _MISSING_REF_PATTERN in lowered:
                return GitMissingRefError(action, detail)
            if any(p in lowered for p in _AUTH_PATTERNS):
                return GitAuthError(action, detail)
            if any(p in lowered for p in _NOT_FOUND_PATTERNS):
                return GitRemoteNotFoundError(action, detail)
        return GitError(action, detail)

    def scrub(self, text: str) -> str:
        """``text`` without URL credentials or any of the configured secrets."""
        return scrub(text, self.secrets)

    def popen_batch(self, git_dir: Path, *, check: bool = False) -> subprocess.Popen[bytes]:
        """A long-lived ``git cat-file --batch`` (``--batch-check``) on ``git_dir``."""
        try:
            return self._live.start(
                "read objects",
                [self.executable, "cat-file", "--batch-check" if check else "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=self.env(git_dir),
                cwd=str(git_dir),
                start_new_session=True,
                close_fds=True,
            )
        except FileNotFoundError as exc:
            raise GitMissingError("read objects", "git is not installed or not on PATH") from exc


RemoteObserver = Callable[[float, "str | None"], None]


def failure_kind(error: GitError) -> str | None:
    """How a remote git failure is counted (None: not found, which is an answer, not an error)."""
    if isinstance(error, GitRemoteNotFoundError):
        return None
    if isinstance(error, GitAuthError):
        return "auth"
    if isinstance(error, GitTimeoutError):
        return "timeout"
    if isinstance(error, GitTransportError):
        return "transport"
    return "other"


def git_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment every git command runs with, derived from the operator's."""
    env = {k: v for k, v in environ.items() if k not in _REPOSITORY_VARIABLES}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GCM_INTERACTIVE": "never",
            "GIT_ATTR_NOSYSTEM": "1",
            "LC_ALL": "C",
            "LANGUAGE": "",
            # Extra settings through the environment, not -c, so that a
            # GIT_CONFIG_COUNT of the operator is kept and extended.
            **_config_env(
                environ,
                {
                    "core.attributesFile": os.devnull,
                    "core.autocrlf": "input",
                    "core.eol": "lf",
                    "gc.autoDetach": "false",
                    "maintenance.autoDetach": "false",
                    "log.showSignature": "false",
                    "credential.interactive": "false",
                },
            ),
        }
    )
    env.setdefault("GIT_ALLOW_PROTOCOL", ":".join(SAFE_PROTOCOLS))
    if "GIT_SSH_COMMAND" not in environ and "GIT_SSH" not in environ:
        env["GIT_SSH_COMMAND"] = BATCH_SSH_COMMAND
    return env


def _config_env(environ: Mapping[str, str], settings: Mapping[str, str]) -> dict[str, str]:
    try:
        start = int(environ.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        start = 0
    out = {"GIT_CONFIG_COUNT": str(start + len(settings))}
    for i, (key, value) in enumerate(settings.items(), start):
        out[f"GIT_CONFIG_KEY_{i}"] = key
        out[f"GIT_CONFIG_VALUE_{i}"] = value
    return out


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Hide URL userinfo (``user:pass@`` -> ``xxxxx@``) and every secret in ``text``."""
    text = _USERINFO_RE.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def summarize(stderr: str) -> str:
    """The useful lines of git's standard error, joined into one line."""
    lines = [line.strip() for line in stderr.splitlines()]
    useful = [
        line.removeprefix("fatal: ").removeprefix("error: ").removeprefix("remote: ")
        for line in lines
        if line and not line.startswith(("hint:", "warning: redirecting"))
    ]
    return "; ".join(useful[:STDERR_LINES_KEPT])


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` and everything it started (it leads its own session), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired, OSError, ValueError):
        proc.communicate(timeout=KILL_GRACE)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE)
