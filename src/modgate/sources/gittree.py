"""A module's files listed from the git tree, when ``git archive`` would add nothing to them.

``git archive`` writes each blob as it is stored unless an attribute or
``core.autocrlf`` converts it (``eol``, ``text``, ``ident``, ``filter``,
``export-subst``, ``export-ignore``). When nothing can, a module's files are
exactly the tree's blobs, and a blob id names its content: the zip entry of
an unchanged file can be reused from an earlier version. :func:`plain_tree`
lists such a tree (``git ls-tree``) and returns None whenever attributes
might apply, so that the caller falls back to ``git archive``.
"""

from __future__ import annotations

import stat
import threading
from dataclasses import dataclass

from modgate.sources.git_mirror import ATTRIBUTES_LINE
from modgate.sources.gitrepo import GitRepo

GITATTRIBUTES = ".gitattributes"
_BLOB_MODES = {
    b"100644": stat.S_IFREG | 0o644,
    b"100755": stat.S_IFREG | 0o644,
    b"120000": stat.S_IFLNK | 0o777,
}
_GO_LINES = ("", ATTRIBUTES_LINE.strip())
"""What ``info/attributes`` may hold: the go command's own line unsets two attributes."""
_PLAIN_AUTOCRLF = ("", "false", "input")
"""Values that leave output alone (``input`` converts only what is committed)."""


@dataclass(frozen=True, slots=True)
class TreeFile:
    """A blob of a module tree: name relative to the module root, mode as ``git archive``."""

    name: str
    mode: int
    oid: str
    size: int

    @property
    def is_regular(self) -> bool:
        return stat.S_IFMT(self.mode) == stat.S_IFREG


_autocrlf: dict[str, bool] = {}
_autocrlf_lock = threading.Lock()


def _converts_line_endings(repo: GitRepo) -> bool:
    """Whether git's configuration (``core.autocrlf``) rewrites line endings on output."""
    key = str(repo.mirror.dir)
    with _autocrlf_lock:
        known = _autocrlf.get(key)
    if known is not None:
        return known
    out = repo.mirror.runner.run(
        ["config", "--get", "core.autocrlf"],
        git_dir=repo.mirror.dir,
        action="read the line ending configuration",
        ok_codes=(0, 1),
    ).stdout
    converts = out.decode("utf-8", "replace").strip().lower() not in _PLAIN_AUTOCRLF
    with _autocrlf_lock:
        _autocrlf[key] = converts
    return converts


def _list(repo: GitRepo, commit: str) -> list[tuple[bytes, str, int, bytes]] | None:
    """Every entry of ``commit``'s tree as (mode, oid, size, path); None with gitattributes."""
    out = repo.mirror.runner.run(
        ["ls-tree", "-r", "-z", "-l", "--full-tree", "--end-of-options", commit],
        git_dir=repo.mirror.dir,
        action="list a module tree",
    ).stdout
    entries: list[tuple[bytes, str, int, bytes]] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        fields = meta.split()
        if len(fields) != 4:
            return None
        if path == b".gitattributes" or path.endswith(b"/.gitattributes"):
            return None
        mode, kind, oid, size = fields
        if kind != b"blob":
            continue  # submodules give no files
        entries.append((mode, oid.decode(), int(size), path))
    return entries


def _only_go_attributes(repo: GitRepo) -> bool:
    """Whether ``info/attributes`` holds nothing but the go command's own line.

    The tree's ``.gitattributes`` files are checked by :func:`_list`; git
    runs with no system attributes and ``core.attributesFile`` set to the
    null device (:func:`modgate.sources.git_cmd.git_environment`), so this
    file is the only other source of attributes.
    """
    try:
        text = (repo.mirror.dir / "info" / "attributes").read_text(encoding="utf-8")
    except FileNotFoundError:
        return True
    except (OSError, UnicodeDecodeError):
        return False
    return all(line.strip() in _GO_LINES for line in text.splitlines())


def plain_tree(repo: GitRepo, commit: str, subdir: str) -> list[TreeFile] | None:
    """The files of ``subdir`` at ``commit`` (and the root LICENSE when ``subdir`` has none).

    Returns None when ``git archive`` might write different bytes than the
    blobs (attributes or ``core.autocrlf``), or when ``subdir`` is not a
    directory of the tree: the caller then uses ``git archive``.
    """
    repo.mirror.ensure_attributes()
    if not _only_go_attributes(repo) or _converts_line_endings(repo):
        return None
    listed = _list(repo, commit)
    if listed is None:
        return None
    prefix = (subdir + "/").encode("utf-8", "surrogateescape") if subdir else b""
    files: list[TreeFile] = []
    root_license: TreeFile | None = None
    for mode_bits, oid, size, path in listed:
        mode = _BLOB_MODES.get(mode_bits)
        if mode is None:
            return None
        if path == b"LICENSE":
            root_license = TreeFile("LICENSE", stat.S_IFREG | 0o644, oid, size)
        if not path.startswith(prefix):
            continue
        name = path[len(prefix) :].decode("utf-8", "surrogateescape")
        files.append(TreeFile(name, mode, oid, size))
    if not files:
        return None  # no such directory, or only a file of that name: git archive decides
    if subdir and root_license is not None and not any(f.name == "LICENSE" for f in files):
        files.append(root_license)
    return files
