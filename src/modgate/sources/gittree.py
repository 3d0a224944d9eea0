"""A module's files listed from the git tree, when ``git archive`` would add nothing to them.

``git archive`` writes each blob as it is stored unless an attribute or
``core.autocrlf`` converts it (``eol``, ``text``, ``ident``, ``filter``,
``export-subst``, ``export-ignore``). When nothing can, a module's files are
exactly the tree's blobs, and a blob id names its content: the zip entry of
an unchanged file can be reused from an earlier version. :func:`plain_tree`
lists such a tree (what ``git ls-tree -r -l`` shows, read from the tree
objects) and returns None whenever attributes might apply, so that the
caller falls back to ``git archive``.
"""

from __future__ import annotations

import stat
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from modgate.sources.git_mirror import ATTRIBUTES_LINE
from modgate.sources.gitrepo import GitRepo

_BLOB_MODES = {
    stat.S_IFREG | 0o644: stat.S_IFREG | 0o644,
    stat.S_IFREG | 0o755: stat.S_IFREG | 0o644,
    stat.S_IFLNK: stat.S_IFLNK | 0o777,
}
_GITLINK = 0o160000
GITATTRIBUTES_BYTES = b".gitattributes"
LICENSE_BYTES = b"LICENSE"
_NOT_FILES = (stat.S_IFDIR, _GITLINK)
TREE_CACHE_ENTRIES = 30_000
"""Tree entries a :class:`TreeCache` keeps by default (about 6 MB)."""
_GO_LINES = ("", ATTRIBUTES_LINE.strip())
"""What ``info/attributes`` may hold: the go command's own line unsets two attributes."""


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


class TreeCache:
    """Parsed tree objects by id, bounded by entries; a tree id names its content.

    Versions of a module share most of their directories, so a later
    version's listing reads only the trees that changed.
    """

    def __init__(self, max_entries: int = TREE_CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._trees: OrderedDict[str, list[tuple[int, bytes, str]]] = OrderedDict()
        self._count = 0
        self._lock = threading.Lock()

    def get(self, oid: str) -> list[tuple[int, bytes, str]] | None:
        with self._lock:
            found = self._trees.get(oid)
            if found is not None:
                self._trees.move_to_end(oid)
            return found

    def put(self, oid: str, entries: list[tuple[int, bytes, str]]) -> None:
        if len(entries) > self.max_entries:
            return
        with self._lock:
            if oid in self._trees:
                return
            self._trees[oid] = entries
            self._count += len(entries)
            while self._count > self.max_entries:
                _, dropped = self._trees.popitem(last=False)
                self._count -= len(dropped)


def _tree_entries(repo: GitRepo, oid: str, trees: TreeCache) -> list[tuple[int, bytes, str]] | None:
    """(mode, name, id) of each entry of tree ``oid``; None if it cannot be read."""
    cached = trees.get(oid)
    if cached is not None:
        return cached
    obj = repo.mirror.read_object(oid)
    if obj is None or obj.type != "tree":
        return None
    entries = _parse_tree(obj.data, len(oid) // 2)
    if entries is not None:
        trees.put(oid, entries)
    return entries


def _parse_tree(data: bytes, id_len: int) -> list[tuple[int, bytes, str]] | None:
    """A tree object's entries with git's canonical modes; None if it is malformed."""
    entries: list[tuple[int, bytes, str]] = []
    pos, end = 0, len(data)
    while pos < end:
        space = data.find(b" ", pos)
        nul = data.find(b"\0", space + 1)
        if space < 0 or nul < 0 or nul + 1 + id_len > end:
            return None
        try:
            mode = int(data[pos:space], 8)
        except ValueError:
            return None
        entries.append(
            (_canonical_mode(mode), data[space + 1 : nul], data[nul + 1 : nul + 1 + id_len].hex())
        )
        pos = nul + 1 + id_len
    return entries


def _canonical_mode(mode: int) -> int:
    """git's canon_mode: what ``git ls-tree`` and ``git archive`` see for a stored mode."""
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFREG:
        return stat.S_IFREG | (0o755 if mode & 0o100 else 0o644)
    if kind in (stat.S_IFLNK, stat.S_IFDIR):
        return kind
    return _GITLINK


def _list(
    repo: GitRepo, commit: str, trees: TreeCache, subdir: str = ""
) -> list[tuple[int, str, bytes]] | None:
    """The blobs of ``subdir`` at ``commit`` as (mode, oid, full path), and the root LICENSE.

    None if a ``.gitattributes`` file could apply to them (in ``subdir``, or in
    the root or a directory on the way down), or if ``subdir`` is no directory.
    Trees are read through the mirror's ``git cat-file`` process and cached by
    id, and only those of ``subdir`` and its parents: a module in a large
    repository costs what the module holds.
    """
    root = repo.mirror.read_object(f"{commit}^{{tree}}")
    if root is None or root.type != "tree":
        return None
    entries = _parse_tree(root.data, len(root.oid) // 2)
    if entries is None:
        return None
    trees.put(root.oid, entries)
    blobs: list[tuple[int, str, bytes]] = []
    prefix = b""
    if subdir:
        blobs += [(m, o, n) for m, n, o in entries if n == LICENSE_BYTES and m not in _NOT_FILES]
        for part in subdir.encode("utf-8", "surrogateescape").split(b"/"):
            if any(name == GITATTRIBUTES_BYTES for _, name, _ in entries):
                return None
            down = next((e for e in entries if e[1] == part), None)
            if down is None or down[0] != stat.S_IFDIR:
                return None
            found = _tree_entries(repo, down[2], trees)
            if found is None:
                return None
            entries, prefix = found, prefix + part + b"/"
    # Depth first in tree order, as ``git ls-tree -r`` lists them.
    stack = [(prefix, iter(entries))]
    while stack:
        prefix, level = stack[-1]
        entry = next(level, None)
        if entry is None:
            stack.pop()
            continue
        mode, name, oid = entry
        if mode == stat.S_IFDIR:
            sub = _tree_entries(repo, oid, trees)
            if sub is None:
                return None
            stack.append((prefix + name + b"/", iter(sub)))
        elif name == GITATTRIBUTES_BYTES:
            return None
        elif mode != _GITLINK:  # submodules give no files
            blobs.append((mode, oid, prefix + name))
    return blobs


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


def plain_tree(
    repo: GitRepo,
    commit: str,
    subdir: str,
    trees: TreeCache | None = None,
    known_size: Callable[[str], int | None] | None = None,
) -> list[TreeFile] | None:
    """The files of ``subdir`` at ``commit`` (and the root LICENSE when ``subdir`` has none).

    Returns None when ``git archive`` might write different bytes than the
    blobs (attributes or ``core.autocrlf``), or when ``subdir`` is not a
    directory of the tree: the caller then uses ``git archive``. Sizes come
    from ``known_size`` (by blob id) where it knows them, else from git in
    one pipelined query.
    """
    repo.mirror.ensure_attributes()
    # No core.autocrlf check: git runs with core.autocrlf=input and core.eol=lf
    # (git_cmd.git_environment), as the go command runs git archive, so line
    # endings change only through attributes.
    if not _only_go_attributes(repo):
        return None
    listed = _list(repo, commit, trees if trees is not None else TreeCache(), subdir)
    if listed is None:
        return None
    prefix = (subdir + "/").encode("utf-8", "surrogateescape") if subdir else b""
    found: list[tuple[str, int, str]] = []
    root_license: tuple[str, int, str] | None = None
    for mode_bits, oid, path in listed:
        mode = _BLOB_MODES.get(mode_bits)
        if mode is None:
            return None
        if path == b"LICENSE":
            root_license = ("LICENSE", stat.S_IFREG | 0o644, oid)
        if path.startswith(prefix):
            found.append((path[len(prefix) :].decode("utf-8", "surrogateescape"), mode, oid))
    if not found:
        return None  # no such directory, or only a file of that name: git archive decides
    if subdir and root_license is not None and not any(f[0] == "LICENSE" for f in found):
        found.append(root_license)
    sizes = [known_size(oid) if known_size is not None else None for _, _, oid in found]
    unknown = [i for i, size in enumerate(sizes) if size is None]
    asked = repo.mirror.object_sizes([found[i][2] for i in unknown])
    for i, size in zip(unknown, asked, strict=True):
        if size is None:
            return None  # a blob the tree names is missing: git archive decides
        sizes[i] = size
    return [
        TreeFile(name, mode, oid, size)
        for (name, mode, oid), size in zip(found, sizes, strict=True)
        if size is not None
    ]
