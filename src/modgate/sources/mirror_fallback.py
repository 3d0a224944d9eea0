"""Depth-1 fetches of just what one request needs, as the go command makes them.

Used while a mirror's full fetch fails (:mod:`mirror_health`): a tagged
version needs its tag alone; a pseudo-version or a query (branch, tag,
commit prefix) the refs whose name or tip it names, found with ``git
ls-remote`` as the go command finds them; a list or ``@latest`` the tips of
every branch and tag. Each function fetches only what the mirror lacks, and
returns whether it fetched anything; none fetches once a full fetch that
started after the request (``since``) has completed the mirror.

When the tips of every branch and tag cannot be fetched together (one of
them reaches the unreadable object), the refs are fetched in halves, and
halves of halves, so that every tip that can be read is fetched and the bad
ones are found in a few fetches each. Refs deleted on the remote stay in the
mirror until a full fetch (``--prune``) succeeds.
"""

from __future__ import annotations

import logging

from modgate.sources.git_cmd import (
    GitAuthError,
    GitError,
    GitMissingError,
    GitRemoteNotFoundError,
    GitTimeoutError,
    GitTransportError,
)
from modgate.sources.git_mirror import HEAD_REFSPEC, Mirror

log = logging.getLogger("modgate.direct")

TAGS = "refs/tags/"
HEADS = "refs/heads/"
PEELED = "^{}"
_FINAL_ERRORS = (GitAuthError, GitRemoteNotFoundError, GitTransportError, GitMissingError)
"""Errors that no smaller fetch can avoid (splitting would only repeat them)."""


def shallow_tag(mirror: Mirror, tag: str, since: float | None = None) -> bool:
    """Fetch ``refs/tags/<tag>`` at depth 1 unless the mirror has it."""
    ref = TAGS + tag
    if mirror.exists() and mirror.has_ref(ref):
        return False
    return mirror.fetch_shallow([f"+{ref}:{ref}"], tag, since)


def shallow_query(mirror: Mirror, query: str, since: float | None = None) -> bool:
    """Fetch at depth 1 the refs named ``query`` or whose tip starts with hash ``query``.

    This is what the go command does for a branch, a tag, or the commit of a
    pseudo-version: it looks the name or hash up among the remote's refs
    (``git ls-remote``) and fetches the matching ref alone.
    """
    wanted = _wanted(mirror)
    specs = [
        spec
        for name, (spec, oid) in wanted.items()
        if name in (query, HEADS + query, TAGS + query) or oid.startswith(query)
    ]
    if not specs:
        return False
    return mirror.fetch_shallow(sorted(specs), query, since)


def shallow_commit(mirror: Mirror, prefix: str, since: float | None = None) -> bool:
    """:func:`shallow_query` for the commit hash (prefix) of a pseudo-version."""
    if mirror.exists() and mirror.has_commit(prefix):
        return False
    return shallow_query(mirror, prefix, since)


def shallow_all(mirror: Mirror, since: float | None = None) -> bool:
    """Fetch at depth 1 the tip of every branch and tag, and HEAD, that the mirror lacks.

    Refs whose tip cannot be fetched are recorded in ``mirror.unreadable``.
    """
    known_bad = mirror.unreadable
    wanted = _wanted(mirror)
    # refs found unreadable before, still at the same commit, are not tried again
    # until the next full fetch
    still_bad = {n: oid for n, oid in known_bad.items() if wanted.get(n, ("", ""))[1] == oid}
    skipped: list[str] = []
    by_spec = {spec: (name, oid) for name, (spec, oid) in wanted.items() if name not in still_bad}
    fetched = bool(by_spec) and _fetch_halves(mirror, sorted(by_spec), skipped, since)
    unreadable = still_bad | dict(by_spec[spec] for spec in skipped)
    unreadable.pop("HEAD", None)  # the mirror stores it under another name
    mirror.unreadable = unreadable
    return fetched


def _wanted(mirror: Mirror) -> dict[str, tuple[str, str]]:
    """The remote's refs the mirror lacks or holds at another commit: name to (refspec, commit)."""
    remote = mirror.remote_refs()
    have = mirror.refs().refs if mirror.exists() else {}
    have = {n: oid for n, oid in have.items() if n not in mirror.unreadable}
    wanted: dict[str, tuple[str, str]] = {}
    for name, oid in remote.items():
        if name.endswith(PEELED):
            continue
        target = remote.get(name + PEELED, oid)  # the commit an annotated tag names
        if name == "HEAD":
            spec = HEAD_REFSPEC
        elif name.startswith((TAGS, HEADS)):
            spec = f"+{name}:{name}"
        else:
            continue
        if have.get(name) != target:
            wanted[name] = (spec, target)
    return wanted


def _fetch_halves(
    mirror: Mirror, specs: list[str], skipped: list[str], since: float | None
) -> bool:
    """Fetch ``specs`` together, or else each half separately; skip single refs that fail."""
    try:
        if mirror.fetch_shallow(specs, f"{len(specs)} branches and tags", since):
            return True
        error = "a ref is gone from the remote"
    except (*_FINAL_ERRORS, GitTimeoutError):
        raise
    except GitError as exc:
        error = mirror.runner.scrub(str(exc))
    if len(specs) == 1:
        log.warning(
            "skipped a ref that cannot be fetched",
            extra={
                "event": "git_ref_unreadable",
                "repository": mirror.runner.scrub(mirror.url),
                "ref": specs[0].lstrip("+").partition(":")[2],
                "error": error,
            },
        )
        skipped.append(specs[0])
        return False
    middle = len(specs) // 2
    first = _fetch_halves(mirror, specs[:middle], skipped, since)
    second = _fetch_halves(mirror, specs[middle:], skipped, since)
    return first or second
