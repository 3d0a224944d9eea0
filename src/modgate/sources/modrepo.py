"""A module inside a git repository (after cmd/go modfetch/coderepo.go).

Maps module versions to commits and back the way the go command does: the
module's directory in the repository (``codeDir``) prefixes its tags, a
``/vN`` module lives either in ``codeDir`` or in ``codeDir/vN``, tags of a
higher major without a go.mod become ``+incompatible`` versions, and every
other commit gets the pseudo-version the go command would compute (with
retracted and disallowed tags skipped as bases). Errors read like the go
command's and are raised as :class:`ModuleLookupError`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from modgate.formats.gomod import GoModError, parse_gomod, synthesize_gomod
from modgate.protocol import semver
from modgate.protocol.module import (
    INCOMPATIBLE,
    InvalidVersionError,
    canonical_version,
    match_path_major,
    path_major_prefix,
    split_path_version,
)
from modgate.protocol.pseudo import (
    is_pseudo_version,
    pseudo_version,
    pseudo_version_base,
    pseudo_version_rev,
    pseudo_version_time,
)
from modgate.sources.gitrepo import GitRepo, Origin, RevInfo, UnknownRevisionError
from modgate.sources.moddir import (
    GO_MOD,
    LICENSE,
    ModuleLayout,
    ModuleLookupError,
    has_path_prefix,
)

__all__ = ["LICENSE", "ModRevInfo", "ModuleLookupError", "ModuleRepo"]


@dataclass(frozen=True, slots=True)
class ModRevInfo:
    """A resolved module version (modfetch.RevInfo): what ``.info`` holds, plus the commit."""

    version: str
    time: datetime
    origin: Origin | None
    name: str = ""
    short: str = ""


class ModuleRepo:
    """The module ``path`` in ``code``, whose root is import path ``code_root``."""

    def __init__(self, code: GitRepo, code_root: str, subdir: str, path: str) -> None:
        if not has_path_prefix(path, code_root):
            raise ModuleLookupError(f"mismatched repo: found {code_root} for {path}")
        prefix, path_major, ok = split_path_version(path)
        if not ok:
            raise ModuleLookupError(f"invalid module path {path!r}")
        if code_root == path:
            prefix = path
        code_dir = ""
        if code_root != path:
            if not has_path_prefix(prefix, code_root):
                raise ModuleLookupError(
                    f"repository rooted at {code_root} cannot contain module {path}"
                )
            code_dir = prefix[len(code_root) :].strip("/")
        if subdir:
            code_dir = posixpath.normpath(posixpath.join(code_dir, subdir))
        self.path = path
        self.code = code
        self.code_root = code_root
        self.code_dir = code_dir
        self.path_prefix = prefix
        self.path_major = path_major
        self.pseudo_major = path_major_prefix(path_major)
        self.layout = ModuleLayout(path, code_root, code_dir, prefix, path_major)

    def _error(self, version: str, detail: str, *, missing: bool = False) -> ModuleLookupError:
        return ModuleLookupError(
            f"{self.path}@{version}: invalid version: {detail}", missing_revision=missing
        )

    @property
    def tag_prefix(self) -> str:
        return f"{self.code_dir}/" if self.code_dir else ""

    # ---- versions ----------------------------------------------------------------------------

    def versions(self, prefix: str = "") -> tuple[list[str], Origin]:
        if self.path.startswith("gopkg.in/") and self.path.endswith("-unstable"):
            return [], Origin(vcs="git", url=self.code.url)
        p = f"{self.code_dir}/{prefix}" if self.code_dir else prefix
        tags = self.code.tags(p)
        origin = replace(tags.origin, subdir=self.code_dir)
        found: list[str] = []
        incompatible: list[str] = []
        for name, _ in tags.tags:
            if not name.startswith(p):
                continue
            v = name[len(self.code_dir) + 1 :] if self.code_dir else name
            if not v or v != semver.canonical(v) or is_pseudo_version(v):
                continue
            if not match_path_major(v, self.path_major):
                if not self.code_dir and not self.path_major and semver.major(v) > "v1":
                    incompatible.append(v)
                continue
            found.append(v)
        found = semver.sort_versions(found)
        incompatible = semver.sort_versions(incompatible)
        return self._append_incompatible(found, incompatible), origin

    def _has_gomod(self, rev: str) -> bool:
        return self.code.read_file(rev, GO_MOD) is not None

    def _append_incompatible(self, found: list[str], incompatible: list[str]) -> list[str]:
        if not incompatible or self.path_major:
            return found
        if found and self._has_gomod(found[-1]):
            return found
        out = list(found)
        last_major, last_has_gomod = "", False
        for i, v in enumerate(incompatible):
            major = semver.major(v)
            if major != last_major:
                same = [w for w in incompatible[i:] if semver.major(w) == major]
                last_major, last_has_gomod = major, self._has_gomod(same[-1])
            if not last_has_gomod:
                out.append(v + INCOMPATIBLE)
        return out

    # ---- stat --------------------------------------------------------------------------------

    def stat(self, rev: str) -> ModRevInfo:
        if rev == "latest":
            return self.latest()
        try:
            info = self.code.stat(self.rev_to_rev(rev))
        except UnknownRevisionError as exc:
            raise self._error(rev, str(exc), missing=True) from None
        return self.convert(info, rev)

    def latest(self) -> ModRevInfo:
        return self.convert(self.code.latest(), "")

    def rev_to_rev(self, rev: str) -> str:
        if semver.is_valid(rev):
            if is_pseudo_version(rev):
                return pseudo_version_rev(rev)
            if semver.build(rev) == INCOMPATIBLE:
                rev = rev[: -len(INCOMPATIBLE)]
            return f"{self.code_dir}/{rev}" if self.code_dir else rev
        return rev

    def convert(self, info: RevInfo, stat_vers: str) -> ModRevInfo:
        result = self._convert(info, stat_vers)
        origin = replace(info.origin, subdir=self.code_dir)
        v = result.version
        if is_pseudo_version(v) and (v != stat_vers or not v.startswith("v0.0.0-")):
            prefix = self.tag_prefix
            if self.path_major:
                prefix += self.path_major[1:] + "."
            tags = self.code.tags(prefix)
            origin = replace(origin, tag_prefix=tags.origin.tag_prefix, tag_sum=tags.origin.tag_sum)
        return replace(result, origin=origin)

    def _can_use_incompatible(
        self, info: RevInfo, v: str, stat_vers: str, memo: dict[str, bool]
    ) -> bool:
        if self.code_dir or self.path_major:
            return False
        if "" not in memo:
            memo[""] = self.code.read_file(info.name, GO_MOD) is None
        if not memo[""]:
            return False
        if v and not stat_vers.endswith(INCOMPATIBLE):
            major = semver.major(v)
            if major not in memo:
                memo[major] = self.code.read_file(info.name, f"{major}/{GO_MOD}") is None
            if not memo[major]:
                return False
        return True

    def _check_canonical(
        self, info: RevInfo, v: str, stat_vers: str, memo: dict[str, bool]
    ) -> ModRevInfo:
        try:
            self.find_dir(v)
        except ModuleLookupError as exc:
            raise self._error(v, str(exc)) from None
        if v == stat_vers.removesuffix(INCOMPATIBLE):
            v = stat_vers
        base = v.removesuffix(INCOMPATIBLE)
        problem = ""
        if not match_path_major(base, self.path_major):
            if self._can_use_incompatible(info, base, stat_vers, memo):
                v = base + INCOMPATIBLE
            elif self.path_major:
                problem = "module path includes a major version suffix, so major version must match"
            else:
                wanted = posixpath.join(self.path_prefix, semver.major(v))
                problem = (
                    "module contains a go.mod file, so module path must match major version "
                    f'("{wanted}")'
                )
        elif v.endswith(INCOMPATIBLE):
            problem = (
                f"+incompatible suffix not allowed: major version {semver.major(v)} is compatible"
            )
        if stat_vers and stat_vers == canonical_version(stat_vers):
            stat_base = stat_vers.removesuffix(INCOMPATIBLE)
            if stat_base != base:
                raise self._error(stat_vers, f"resolves to version {v} ({stat_base} is not a tag)")
        if problem:
            raise self._error(v, problem)
        return ModRevInfo(v, info.time, None, info.name, info.short)

    def _tag_to_version(self, tag: str) -> tuple[str, bool]:
        prefix = self.tag_prefix
        if not tag.startswith(prefix):
            return "", False
        trimmed = tag[len(prefix) :]
        if is_pseudo_version(tag):
            return "", False
        v = semver.canonical(trimmed)
        if not v or not trimmed.startswith(v):
            return "", False
        return v, v == trimmed

    def _convert(self, info: RevInfo, stat_vers: str) -> ModRevInfo:
        memo: dict[str, bool] = {}
        if is_pseudo_version(stat_vers):
            result = self._check_canonical(info, stat_vers, stat_vers, memo)
            self._validate_pseudo(info, stat_vers)
            return result
        checkers: list[Callable[[str], bool]] = []

        def is_retracted(v: str) -> bool:
            # Loaded on first use: a tagged version never needs them.
            if not checkers:
                checkers.append(self.retracted_checker())
            return checkers[0](v)

        v, canonical = self._tag_to_version(info.version)
        if canonical:
            try:
                return self._check_canonical(info, v, stat_vers, memo)
            except ModuleLookupError:
                pass
        highest = pseudo_base = ""
        for tag in info.tags:
            v, canonical = self._tag_to_version(tag)
            if stat_vers and semver.compare(v, stat_vers) == 0:
                if canonical:
                    return self._check_canonical(info, v, stat_vers, memo)
                pseudo_base = v
            if canonical and semver.compare(highest, v) < 0 and not is_retracted(v):
                allowed = match_path_major(v, self.path_major)
                if allowed or self._can_use_incompatible(info, v, stat_vers, memo):
                    highest = v
        if highest:
            return self._check_canonical(info, highest, stat_vers, memo)

        def tag_allowed(tag: str) -> bool:
            v, _ = self._tag_to_version(tag)
            if not v:
                return False
            if not match_path_major(v, self.path_major) and not self._can_use_incompatible(
                info, v, stat_vers, memo
            ):
                return False
            return not is_retracted(v)

        if not pseudo_base:
            tag = self.code.recent_tag(info.name, self.tag_prefix, tag_allowed)
            if tag:
                pseudo_base, _ = self._tag_to_version(tag)
        version = pseudo_version(self.pseudo_major, pseudo_base, info.time, info.short)
        return self._check_canonical(info, version, stat_vers, memo)

    def _validate_pseudo(self, info: RevInfo, version: str) -> None:
        def fail(detail: str) -> ModuleLookupError:
            return ModuleLookupError(f"{self.path}@{version}: invalid pseudo-version: {detail}")

        try:
            rev = pseudo_version_rev(version)
            if rev != info.short:
                if rev.startswith(info.short):
                    raise fail(f"revision is longer than canonical (expected {info.short})")
                if info.short.startswith(rev):
                    raise fail(f"revision is shorter than canonical (expected {info.short})")
                raise fail(f"does not match short name of revision (expected {info.short})")
            if pseudo_version_time(version) != info.time.replace(microsecond=0):
                expected = info.time.strftime("%Y%m%d%H%M%S")
                raise fail(f"does not match version-control timestamp (expected {expected})")
            base = pseudo_version_base(version.removesuffix(INCOMPATIBLE))
        except InvalidVersionError as exc:
            raise fail(exc.detail) from None
        if base == "":
            if self.pseudo_major == "" and semver.major(version) == "v1":
                raise fail("major version without preceding tag must be v0, not v1")
            return
        for tag in info.tags:
            if tag.removeprefix(self.tag_prefix) == base:
                raise fail(
                    f"tag ({tag}) found on revision {rev} is already canonical, so should not "
                    "be replaced with a pseudo-version derived from that tag"
                )
        last_tag = ""
        for name, _ in self.code.tags(self.tag_prefix + base).tags:
            if semver.compare(name.removeprefix(self.tag_prefix), base) == 0:
                last_tag = name
                if self.code.descends_from(info.name, name):
                    return
        if not last_tag:
            raise fail(f"preceding tag ({base}) not found")
        raise fail(f"revision {rev} is not a descendent of preceding tag ({last_tag})")

    # ---- go.mod and retractions -------------------------------------------------------------

    def find_dir(self, version: str) -> tuple[str, str, bytes | None]:
        """``(rev, dir, go.mod or None)`` of ``version``; raises ModuleLookupError."""
        if not semver.is_valid(version):
            raise self._error(version, "syntax error")
        rev = self.rev_to_rev(version)
        directory, gomod = self.layout.find_dir(self.code, rev, version)
        return rev, directory, gomod

    def gomod(self, version: str) -> bytes:
        if version != canonical_version(version):
            raise ModuleLookupError(f"version {version} is not canonical")
        if is_pseudo_version(version):
            self.stat(version)
        try:
            _, _, data = self.find_dir(version)
        except ModuleLookupError as exc:
            raise self._error(version, str(exc), missing=exc.missing_revision) from None
        return data if data is not None else synthesize_gomod(self.path)

    def retracted_checker(self) -> Callable[[str], bool]:
        """Whether a version is retracted by the go.mod of the highest version (never fails)."""
        try:
            found, _ = self.versions()
            compatible = [v for v in found if not v.endswith(INCOMPATIBLE)]
            if not compatible:
                return lambda v: False
            releases = [v for v in compatible if not semver.prerelease(v)]
            highest = releases[-1] if releases else compatible[-1]
            intervals = parse_gomod(self.gomod(highest)).retract
        except (ModuleLookupError, UnknownRevisionError, GoModError, UnicodeDecodeError):
            return lambda v: False
        return lambda v: any(interval.contains(v) for interval in intervals)
