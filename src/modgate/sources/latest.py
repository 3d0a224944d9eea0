"""``@latest`` as the go command resolves the query ``latest`` against a repository.

After cmd/go modload (queryProxy, filterVersions, CheckRetractions): the
retractions come from the go.mod of the latest version found *ignoring*
retractions; then the highest non-retracted release wins, else the highest
prerelease, else the repository's default branch as a pseudo-version.
``+incompatible`` versions are skipped when the last compatible version
before them has a go.mod. The Origin merges what each step depended on, as
the go command's does.
"""

from __future__ import annotations

from collections.abc import Callable

from modgate.formats.gomod import GoModError, parse_gomod, synthesize_gomod
from modgate.protocol import semver
from modgate.protocol.module import INCOMPATIBLE
from modgate.sources.gitrepo import NoCommitsError, Origin, merge_origin
from modgate.sources.modrepo import ModRevInfo, ModuleLookupError, ModuleRepo

Allowed = Callable[[str], bool]


def _allow_all(version: str) -> bool:
    return True


def _has_gomod(repo: ModuleRepo, version: str) -> bool:
    return repo.gomod(version) != synthesize_gomod(repo.path)


def filter_versions(
    repo: ModuleRepo, versions: list[str], allowed: Allowed
) -> tuple[list[str], list[str]]:
    """Releases and prereleases a ``latest`` query may pick, in order (filterVersions)."""
    releases: list[str] = []
    prereleases: list[str] = []
    need_incompatible = False
    last_compatible = ""
    for v in versions:
        if not allowed(v):
            continue
        if not need_incompatible:
            if not v.endswith(INCOMPATIBLE):
                last_compatible = v
            elif last_compatible:
                if _has_gomod(repo, last_compatible):
                    break
                need_incompatible = True
        if semver.prerelease(v):
            prereleases.append(v)
        else:
            releases.append(v)
    return releases, prereleases


def query_latest(repo: ModuleRepo, allowed: Allowed) -> ModRevInfo:
    """The result of the query ``latest`` with ``allowed`` filtering versions."""
    versions, versions_origin = repo.versions()
    origin: Origin | None = versions_origin

    def lookup(version: str) -> ModRevInfo:
        nonlocal origin
        info = repo.stat(version)
        origin = merge_origin(origin, info.origin)
        return ModRevInfo(info.version, info.time, origin, info.name, info.short)

    releases, prereleases = filter_versions(repo, versions, allowed)
    if releases:
        return lookup(releases[-1])
    if prereleases:
        return lookup(prereleases[-1])
    try:
        head = repo.latest()
    except NoCommitsError:
        raise ModuleLookupError(
            f'{repo.path}@latest: no matching versions for query "latest"'
        ) from None
    origin = merge_origin(origin, head.origin)
    if allowed(head.version):
        return lookup(head.version)
    raise ModuleLookupError(f'{repo.path}@latest: no matching versions for query "latest"')


def retraction_checker(repo: ModuleRepo) -> Allowed:
    """Whether a version is retracted, per the latest version's go.mod (CheckRetractions).

    When the retractions cannot be loaded, nothing counts as retracted, as
    the go command treats such errors as "not disallowed".
    """
    try:
        latest = query_latest(repo, _allow_all)
        intervals = parse_gomod(repo.gomod(latest.version)).retract
    except (ModuleLookupError, GoModError, UnicodeDecodeError):
        return lambda v: False
    return lambda v: any(i.contains(v) for i in intervals)


def latest(repo: ModuleRepo) -> ModRevInfo:
    """``@latest``: the newest non-retracted version, or a pseudo-version of HEAD."""
    retracted = retraction_checker(repo)
    return query_latest(repo, lambda v: not retracted(v))
