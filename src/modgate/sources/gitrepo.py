"""A git repository as the go command's code host sees it (cmd/go modfetch/codehost).

Revisions resolve exactly as the go command resolves them against a
repository it has fetched completely: a hash it has locally first, then a
tag, a branch, ``HEAD``, or a hash prefix of a ref. The revision records
carry the same ``Origin`` the go command records, and the tag checksum
(``TagSum``) is computed the same way, so ``.info`` answers are identical.
Files are read from the mirror's objects; module trees come from
``git archive`` after the go command's ``info/attributes``, so
``.gitattributes`` (``eol=crlf``, ``ident``) change bytes the same way.
"""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import tarfile
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from modgate.formats.modzip import SourceFile
from modgate.protocol import semver
from modgate.protocol.module import go_quote
from modgate.protocol.pseudo import is_pseudo_version
from modgate.sources.git_mirror import Mirror

MIN_HASH_DIGITS = 7
HASH_DIGITS = 40
SHORT_HASH_DIGITS = 12
TAGS_REF = "refs/tags/"
HEADS_REF = "refs/heads/"
_HEX = frozenset("0123456789abcdef")
_SYMLINK_MODE = stat.S_IFLNK | 0o777
_REGULAR_MODE = stat.S_IFREG | 0o644
_STAT_CACHE_MAX = 4096


class UnknownRevisionError(Exception):
    """The revision names nothing in the repository."""

    def __init__(self, rev: str, detail: str = "") -> None:
        super().__init__(detail or f"unknown revision {rev}")
        self.rev = rev


class NoCommitsError(Exception):
    def __init__(self) -> None:
        super().__init__("no commits")


def all_hex(rev: str) -> bool:
    return all(c in _HEX for c in rev)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a result came from (codehost.Origin); fields in the go command's JSON order."""

    vcs: str = ""
    url: str = ""
    subdir: str = ""
    hash: str = ""
    tag_prefix: str = ""
    tag_sum: str = ""
    ref: str = ""
    repo_sum: str = ""

    def to_json(self) -> dict[str, Any]:
        pairs = (
            ("VCS", self.vcs),
            ("URL", self.url),
            ("Subdir", self.subdir),
            ("Hash", self.hash),
            ("TagPrefix", self.tag_prefix),
            ("TagSum", self.tag_sum),
            ("Ref", self.ref),
            ("RepoSum", self.repo_sum),
        )
        return {k: v for k, v in pairs if v}

    def for_cache(self, version: str) -> Origin:
        """The origin as the go command writes it into ``.info`` files (writeDiskStat)."""
        ref = "" if is_pseudo_version(version) else self.ref
        return replace(self, tag_prefix="", tag_sum="", repo_sum="", ref=ref)


def merge_origin(a: Origin | None, b: Origin | None) -> Origin | None:
    """The union of two origins, or None when they conflict (modload mergeOrigin)."""
    if a is None or b is None:
        return None
    if (a.vcs, a.url, a.subdir) != (b.vcs, b.url, b.subdir):
        return None
    merged = a
    if b.hash:
        if a.hash and a.hash != b.hash:
            return None
        merged = replace(merged, hash=b.hash)
    if b.tag_sum:
        if a.tag_sum and (a.tag_sum != b.tag_sum or a.tag_prefix != b.tag_prefix):
            return None
        merged = replace(merged, tag_sum=b.tag_sum, tag_prefix=b.tag_prefix)
    if b.repo_sum:
        if a.repo_sum and a.repo_sum != b.repo_sum:
            return None
        merged = replace(merged, repo_sum=b.repo_sum)
    if b.ref:
        if a.ref and a.ref != b.ref:
            return None
        merged = replace(merged, ref=b.ref)
    return merged


@dataclass(frozen=True, slots=True)
class RevInfo:
    """A commit as the code host describes it (codehost.RevInfo)."""

    name: str
    short: str
    version: str
    time: datetime
    tags: tuple[str, ...]
    origin: Origin


@dataclass(frozen=True, slots=True)
class Tags:
    origin: Origin
    tags: tuple[tuple[str, str], ...]  # (name, peeled hash), sorted by name


def is_origin_tag(tag: str) -> bool:
    """Whether a tag takes part in ``TagSum`` (semver-like and not pseudo-looking)."""
    c = semver.canonical(tag)
    return c != "" and tag.startswith(c) and not is_pseudo_version(tag)


def commit_time(commit: bytes) -> datetime:
    """The committer time (``%ct``) of a raw commit object, in UTC."""
    for line in commit.split(b"\n"):
        if not line:
            break
        if line.startswith(b"committer "):
            stamp = line.rsplit(b" ", 2)[1]
            return datetime.fromtimestamp(int(stamp), UTC)
    raise ValueError("commit without a committer line")


@dataclass
class GitRepo:
    """The code host view of a mirror; ``url`` is the repository URL the go command names."""

    mirror: Mirror
    url: str
    _stats: dict[tuple[tuple[int, int], str], RevInfo] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refs(self) -> dict[str, str]:
        return self.mirror.refs().refs

    def tags(self, prefix: str) -> Tags:
        refs = self.refs()
        found = sorted(
            (name[len(TAGS_REF) :], h)
            for name, h in refs.items()
            if name.startswith(TAGS_REF) and name[len(TAGS_REF) :].startswith(prefix)
        )
        directory = prefix[: prefix.rfind("/") + 1]
        h = hashlib.sha256()
        for name, tag_hash in found:
            if is_origin_tag(name.removeprefix(directory)):
                h.update(f"{go_quote(name)} {tag_hash}\n".encode("utf-8", "surrogateescape"))
        tag_sum = "t1:" + base64.b64encode(h.digest()).decode()
        origin = Origin(vcs="git", url=self.url, tag_prefix=prefix, tag_sum=tag_sum)
        return Tags(origin, tuple(found))

    # ---- revisions -------------------------------------------------------------------------

    def stat(self, rev: str) -> RevInfo:
        """Resolve ``rev`` (hash, hash prefix, tag, branch, HEAD) as the go command does."""
        if rev == "latest":
            return self.latest()
        snapshot = self.mirror.refs()
        key = (snapshot.generation, rev)
        with self._lock:
            cached = self._stats.get(key)
        if cached is not None:
            return cached
        info = self._stat(rev, snapshot.refs)
        with self._lock:
            if len(self._stats) >= _STAT_CACHE_MAX:
                self._stats.clear()
            self._stats[key] = info
        return info

    def _stat(self, rev: str, refs: dict[str, str]) -> RevInfo:
        is_hash = MIN_HASH_DIGITS <= len(rev) <= HASH_DIGITS and all_hex(rev)
        if is_hash:
            info = self.stat_local(rev, rev)
            if info is not None:
                return info
        if TAGS_REF + rev in refs:
            info = self.stat_local(rev, TAGS_REF + rev)
            if info is None:
                raise UnknownRevisionError(rev)
            return info
        ref = commit = ""
        if HEADS_REF + rev in refs:
            ref = HEADS_REF + rev
            commit = rev = refs[ref]
        elif rev == "HEAD" and "HEAD" in refs:
            ref = "HEAD"
            commit = rev = refs[ref]
        elif is_hash:
            for name in sorted(refs):
                h = refs[name]
                if h.startswith(rev):
                    if commit and commit != h:
                        raise UnknownRevisionError(rev, f"ambiguous revision {rev}")
                    ref = ref or name
                    commit = h
            if not commit and len(rev) == HASH_DIGITS:
                commit = rev
        else:
            raise UnknownRevisionError(rev)
        found = self.stat_local(rev, commit or rev)
        if found is None:
            raise UnknownRevisionError(rev)
        origin = replace(found.origin, hash=found.name, ref=ref if ref != found.name else "")
        return replace(found, origin=origin)

    def stat_local(self, version: str, rev: str) -> RevInfo | None:
        """``rev`` in the mirror, described with ``version`` as the go command's statLocal."""
        obj = self.mirror.read_object(f"{rev}^{{commit}}")
        if obj is None or obj.type != "commit":
            return None
        commit = obj.oid
        if commit.startswith(version):
            version = commit
        origin = Origin(vcs="git", url=self.url, hash=commit)
        if not commit.startswith(rev):
            origin = replace(origin, ref=rev)
        refs = self.refs()
        tags = tuple(
            sorted(
                {
                    name[len(TAGS_REF) :]
                    for name, h in refs.items()
                    if h == commit and name.startswith(TAGS_REF)
                }
            )
        )
        return RevInfo(
            name=commit,
            short=commit[:SHORT_HASH_DIGITS] if len(commit) == HASH_DIGITS else commit,
            version=version if version in tags else commit,
            time=commit_time(obj.data),
            tags=tags,
            origin=origin,
        )

    def latest(self) -> RevInfo:
        """The remote HEAD (codehost Latest), with ``Ref: HEAD``."""
        head = self.refs().get("HEAD")
        if not head:
            raise NoCommitsError()
        info = self.stat(head)
        return replace(info, origin=replace(info.origin, ref="HEAD", hash=head))

    def read_file(self, rev: str, path: str) -> bytes | None:
        """The blob at ``path`` in revision ``rev``, or None if there is none."""
        info = self.stat(rev)
        obj = self.mirror.read_object(f"{info.name}:{path}")
        if obj is None or obj.type != "blob":
            return None
        return obj.data

    def recent_tag(self, rev: str, prefix: str, allowed: Any) -> str:
        """The highest allowed tag with ``prefix`` on ``rev`` or its ancestors ("" if none)."""
        info = self.stat(rev)
        out = self.mirror.runner.run(
            [
                "for-each-ref",
                "--format=%(refname)",
                f"--merged={info.name}",
                "--end-of-options",
                TAGS_REF,
            ],
            git_dir=self.mirror.dir,
            action="find tags merged into a commit",
        ).stdout
        highest = ""
        for line in out.decode("utf-8", "surrogateescape").splitlines():
            name = line.strip()
            if not name.startswith(TAGS_REF):
                continue
            tag = name[len(TAGS_REF) :]
            if not tag.startswith(prefix) or not allowed(tag):
                continue
            version = tag[len(prefix) :]
            if semver.compare(version, highest) > 0:
                highest = version
        return prefix + highest if highest else ""

    def descends_from(self, rev: str, tag: str) -> bool:
        """Whether ``rev`` is ``tag``'s commit or one of its descendants."""
        tag_hash = self.refs().get(TAGS_REF + tag)
        if tag_hash is None:
            return False
        info = self.stat(rev)
        result = self.mirror.runner.run(
            ["merge-base", "--is-ancestor", "--end-of-options", tag_hash, info.name],
            git_dir=self.mirror.dir,
            action="check commit ancestry",
            ok_codes=(0, 1),
        )
        return result.returncode == 0

    # ---- trees -------------------------------------------------------------------------------

    def archive(self, rev: str, subdir: str) -> list[SourceFile] | None:
        """The files of ``subdir`` at ``rev`` as ``git archive`` writes them; None if absent.

        Names are relative to ``subdir``. Symbolic links keep their mode (the
        zip rules omit them); directories and submodules give no entries.
        """
        info = self.stat(rev)
        self.mirror.ensure_attributes()
        args = ["archive", "--format=tar", "--end-of-options", info.name]
        if subdir:
            args.append(subdir)
        result = self.mirror.runner.run(
            args,
            git_dir=self.mirror.dir,
            action="archive a module tree",
            ok_codes=(0, 128),
        )
        if result.returncode != 0:
            if b"did not match any files" in result.stderr:
                return None
            raise self.mirror.runner.classify("archive a module tree", result.stderr, remote=False)
        prefix = f"{subdir}/" if subdir else ""
        files: list[SourceFile] = []
        with tarfile.open(fileobj=io.BytesIO(result.stdout), mode="r:", encoding="utf-8") as tar:
            for member in tar:
                name = member.name
                if not name.startswith(prefix) or name == prefix:
                    continue
                name = name[len(prefix) :]
                if member.issym():
                    target = member.linkname.encode("utf-8", "surrogateescape")
                    files.append(SourceFile(name, target, _SYMLINK_MODE))
                elif member.isreg():
                    extracted = tar.extractfile(member)
                    data = extracted.read() if extracted is not None else b""
                    files.append(SourceFile(name, data, _REGULAR_MODE))
        return files
