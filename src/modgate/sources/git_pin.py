"""Pinning every remote git command to the address the host guard checked.

:class:`GitPins` is the :class:`~modgate.sources.git_cmd.GitRunner` hook
for remote commands: it finds the repository URL the command will talk to
(the mirror's recorded URL, or the URL argument after ``--end-of-options``),
asks git which URL it will really use (``git ls-remote --get-url`` applies
the operator's ``url.<base>.insteadOf`` rules), and returns the ``-c``
options of :meth:`HostGuard.git_options` for it. A URL that the operator's
git configuration rewrote is the operator's choice and is left alone, as
``--git-rewrite`` targets are. When the URL cannot be found the command is
refused: the hook fails closed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from modgate.sources.git_cmd import GitRunner
from modgate.sources.git_mirror import URL_FILE
from modgate.sources.hostguard import HostGuard, HostNotAllowedError

EFFECTIVE_URLS_KEPT = 4096
"""Repository URLs whose effective form (after ``insteadOf``) is remembered."""
END_OF_OPTIONS = "--end-of-options"


class GitPins:
    """``remote_options`` hook of a runner: ``-c`` options for one remote git command."""

    def __init__(self, guard: HostGuard) -> None:
        self.guard = guard
        self._effective: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, runner: GitRunner, args: Sequence[str], git_dir: Path | None) -> list[str]:
        url = remote_url(args, git_dir)
        if url is None:
            raise HostNotAllowedError("(unknown)", "the remote URL of a git command is unknown")
        parts = urlsplit(url)
        if parts.scheme == "file" or self.guard.allowed(parts.hostname or ""):
            return []  # the operator's own repositories: nothing to check or pin
        if self.effective_url(runner, url) != url:
            return []  # the operator's own insteadOf rule chose this repository
        return self.guard.git_options(url, runner.environ)

    def effective_url(self, runner: GitRunner, url: str) -> str:
        with self._lock:
            known = self._effective.get(url)
        if known is not None:
            return known
        if urlsplit(url).scheme == "file":
            effective = url
        else:
            effective = (
                runner.run(
                    ["ls-remote", "--get-url", END_OF_OPTIONS, url],
                    git_dir=None,
                    action="read the repository URL",
                )
                .stdout.decode("utf-8", "replace")
                .strip()
            )
        with self._lock:
            if len(self._effective) >= EFFECTIVE_URLS_KEPT:
                self._effective.clear()
            self._effective[url] = effective
        return effective


def remote_url(args: Sequence[str], git_dir: Path | None) -> str | None:
    """The repository URL a remote git command talks to (None when it cannot be told)."""
    if git_dir is not None:
        try:
            return (git_dir / URL_FILE).read_text(encoding="utf-8")
        except OSError:
            return None
    if END_OF_OPTIONS in args:
        rest = list(args)[list(args).index(END_OF_OPTIONS) + 1 :]
        return rest[0] if rest else None
    return None
