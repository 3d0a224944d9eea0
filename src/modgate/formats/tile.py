"""Tiles: how a transparency log is served and fetched (after x/mod sumdb/tlog tile.go).

A tile of height H holds up to 2**H consecutive hashes of one level of the
tree: tile ``(H, L, N)`` holds the hashes at tree level ``L*H`` of records
``N*2**H ...``; from them the levels ``L*H+1 .. L*H+H-1`` can be recomputed,
so tiles of every H-th level are enough. A tile at the right edge of the
tree is *partial*: ``W < 2**H`` hashes, path suffix ``.p/W``. Level ``data``
(L = -1 here) holds the record texts themselves.

Paths: ``tile/H/L/NNN[.p/W]``, with N written in groups of three digits, all
but the last prefixed with ``x``: tile 1234067 is ``x001/x234/067``.

Reading hashes of an untrusted server's tree goes in two steps, so that the
fetching can be asynchronous: :func:`plan_tile_reads` names the tiles to
fetch; :func:`hashes_from_tiles` checks them against the signed tree hash (the
tiles that make up the whole tree must reproduce it; every other tile must
hash to the entry its parent tile holds) and only then returns the hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from modgate.formats.tlog import (
    HASH_SIZE,
    Hash,
    HashReader,
    ProofError,
    TlogError,
    Tree,
    node_hash,
    split_stored_hash_index,
    stored_hash_index,
    sub_tree_index,
)

TILE_HEIGHT = 8
"""The height the go command and sum.golang.org use."""
MAX_TILE_HEIGHT = 30
MAX_TILE_LEVEL = 63
DATA_LEVEL = -1
PATH_BASE = 1000
_INCONSISTENT = "downloaded inconsistent tile"


@dataclass(frozen=True, slots=True, order=True)
class Tile:
    h: int
    l: int  # noqa: E741 - the name x/mod and the paths use
    n: int
    w: int

    @property
    def full(self) -> bool:
        return self.w == 1 << self.h

    def path(self) -> str:
        n = self.n
        text = f"{n % PATH_BASE:03d}"
        while n >= PATH_BASE:
            n //= PATH_BASE
            text = f"x{n % PATH_BASE:03d}/{text}"
        partial = "" if self.full else f".p/{self.w}"
        level = "data" if self.l == DATA_LEVEL else str(self.l)
        return f"tile/{self.h}/{level}/{text}{partial}"


def parse_tile_path(path: str) -> Tile:
    """The tile a ``tile/H/L/NNN[.p/W]`` path names; raises TlogError for any other text."""
    bad = TlogError(f"malformed tile path {path!r}")
    f = path.split("/")
    if len(f) < 4 or f[0] != "tile":
        raise bad
    is_data = f[2] == "data"
    if not (_is_small_int(f[1]) and (is_data or _is_small_int(f[2]))):
        raise bad
    h, level = int(f[1]), (DATA_LEVEL if is_data else int(f[2]))
    if h < 1 or h > MAX_TILE_HEIGHT:
        raise bad
    w = 1 << h
    if f[-2].endswith(".p"):
        if not _is_small_int(f[-1]) or not 0 < int(f[-1]) < w:
            raise bad
        w = int(f[-1])
        f = [*f[:-2], f[-2].removesuffix(".p")]
    n = 0
    for part in f[3:]:
        digits = part.removeprefix("x")
        if not _is_small_int(digits) or int(digits) >= PATH_BASE:
            raise bad
        n = n * PATH_BASE + int(digits)
    tile = Tile(h, level, n, w)
    if tile.path() != path:
        raise bad
    return tile


def _is_small_int(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= len(str(1 << 62))


def tile_for_index(h: int, index: int) -> tuple[Tile, int, int]:
    """The smallest tile holding stored hash ``index``, and the byte range to hash in it."""
    level, n = split_stored_hash_index(index)
    tile_level = level // h
    level -= tile_level * h  # the level within the tile
    tile_n = (n << level) >> h
    n -= (tile_n << h) >> level  # n within the tile, at that level
    w = (n + 1) << level
    return Tile(h, tile_level, tile_n, w), (n << level) * HASH_SIZE, ((n + 1) << level) * HASH_SIZE


def tile_hash(data: bytes) -> Hash:
    """The hash of the subtree whose bottom-level hashes are ``data``."""
    if len(data) == HASH_SIZE:
        return data
    half = len(data) // 2
    return node_hash(tile_hash(data[:half]), tile_hash(data[half:]))


def hash_from_tile(t: Tile, data: bytes, index: int) -> Hash:
    """Stored hash ``index``, computed from tile ``t`` whose content is ``data``."""
    if not (1 <= t.h <= MAX_TILE_HEIGHT and 0 <= t.l <= MAX_TILE_LEVEL and 1 <= t.w <= 1 << t.h):
        raise TlogError(f"invalid tile {t.path()}")
    if len(data) < t.w * HASH_SIZE:
        raise TlogError(f"data length {len(data)} too short for tile {t.path()}")
    t1, start, end = tile_for_index(t.h, index)
    if t.l != t1.l or t.n != t1.n or t.w < t1.w:
        raise TlogError(f"index {index} is in {t1.path()}, not {t.path()}")
    return tile_hash(data[start:end])


def new_tiles(h: int, old_size: int, new_size: int) -> list[Tile]:
    """The tiles that change when a log grows from ``old_size`` to ``new_size`` records."""
    tiles: list[Tile] = []
    level = 0
    while new_size >> (h * level) > 0:
        old_n = old_size >> (h * level)
        new_n = new_size >> (h * level)
        if old_n != new_n:
            tiles.extend(Tile(h, level, n, 1 << h) for n in range(old_n >> h, new_n >> h))
            n = new_n >> h
            w = new_n - (n << h)
            if w > 0:
                tiles.append(Tile(h, level, n, w))
        level += 1
    return tiles


def tile_width_available(t: Tile, tree_size: int) -> bool:
    """Whether a log of ``tree_size`` records has all the hashes (or records) tile ``t`` holds."""
    level = 0 if t.l == DATA_LEVEL else t.l
    return (t.n << t.h) + t.w <= tree_size >> (level * t.h)


def read_tile_data(t: Tile, read: HashReader) -> bytes:
    """The content of hash tile ``t`` from a log's stored hashes."""
    start = t.n << t.h
    indexes = [stored_hash_index(t.h * t.l, start + i) for i in range(t.w)]
    hashes = read(indexes)
    if len(hashes) != len(indexes):
        raise TlogError(f"the hash reader returned {len(hashes)} hashes for {len(indexes)}")
    return b"".join(hashes)


def tile_parent(t: Tile, k: int, tree_size: int) -> Tile | None:
    """The tile ``k`` tile levels above ``t`` in a tree of ``tree_size``; None past its edge."""
    level = t.l + k
    n = t.n >> (k * t.h)
    w = 1 << t.h
    limit = tree_size >> (level * t.h)
    if (n << t.h) + w >= limit:
        if n << t.h >= limit:
            return None
        w = limit - (n << t.h)
    return Tile(t.h, level, n, w)


# ---- reading hashes from an untrusted server's tiles --------------------------------


@dataclass(slots=True)
class TilePlan:
    """The tiles to fetch to read ``indexes`` of ``tree``, and where each hash lies."""

    tree: Tree
    indexes: list[int]
    tiles: list[Tile] = field(default_factory=list)
    order: dict[Tile, int] = field(default_factory=dict)
    roots: list[int] = field(default_factory=list)
    """Stored indexes of the complete subtrees that make up the whole tree."""
    root_tiles: list[int] = field(default_factory=list)
    index_tiles: list[int] = field(default_factory=list)

    def _add(self, tile: Tile) -> int:
        self.order[tile] = len(self.tiles)
        self.tiles.append(tile)
        return len(self.tiles) - 1


def plan_tile_reads(tree: Tree, h: int, indexes: Sequence[int]) -> TilePlan:
    """Which tiles authenticate and hold stored hashes ``indexes`` of ``tree``."""
    if tree.n <= 0:
        raise TlogError("cannot read hashes of an empty tree")
    plan = TilePlan(tree, list(indexes))
    plan.roots = sub_tree_index(0, tree.n, [])
    for x in plan.roots:
        tile = tile_parent(tile_for_index(h, x)[0], 0, tree.n)
        if tile is None:
            raise TlogError(f"bad tile math for subtree {x} of a tree of size {tree.n}")
        plan.root_tiles.append(plan.order[tile] if tile in plan.order else plan._add(tile))
    limit = stored_hash_index(0, tree.n)
    for x in plan.indexes:
        if x >= limit:
            raise TlogError(f"stored hash {x} is not in a tree of size {tree.n}")
        tile = tile_for_index(h, x)[0]
        k = 0
        while True:  # climb to a tile that is already planned
            parent = tile_parent(tile, k, tree.n)
            if parent is not None and parent in plan.order:
                break
            if k > MAX_TILE_LEVEL:
                raise TlogError(f"bad tile math for index {x} in a tree of size {tree.n}")
            k += 1
        if k == 0:
            plan.index_tiles.append(plan.order[parent])
            continue
        slot = -1
        for j in range(k - 1, -1, -1):  # then plan the full tiles on the way down
            parent = tile_parent(tile, j, tree.n)
            if parent is None or not parent.full:
                raise TlogError(f"bad tile math for index {x} in a tree of size {tree.n}")
            slot = plan._add(parent)
        plan.index_tiles.append(slot)
    return plan


def hashes_from_tiles(plan: TilePlan, data: Sequence[bytes]) -> list[Hash]:
    """The planned hashes, after checking every tile against the signed tree.

    Raises ProofError ("downloaded inconsistent tile") when the tiles do not
    reproduce the tree's hash or a tile does not match its parent: the server
    serves a different tree than it signed.
    """
    tiles = plan.tiles
    if len(data) != len(tiles):
        raise TlogError(f"{len(data)} tiles read for {len(tiles)} planned")
    for tile, content in zip(tiles, data, strict=True):
        if len(content) != tile.w * HASH_SIZE:
            raise ProofError(f"{_INCONSISTENT}: {tile.path()} has {len(content)} bytes")
    th: Hash | None = None
    for i in range(len(plan.roots) - 1, -1, -1):
        j = plan.root_tiles[i]
        h = hash_from_tile(tiles[j], data[j], plan.roots[i])
        th = h if th is None else node_hash(h, th)
    if th != plan.tree.hash:
        raise ProofError(_INCONSISTENT)
    for i in range(plan.root_tiles[-1] + 1, len(tiles)):
        tile = tiles[i]
        parent = tile_parent(tile, 1, plan.tree.n)
        if parent is None or parent not in plan.order:
            raise TlogError(f"bad tile math: lost the parent of {tile.path()}")
        j = plan.order[parent]
        expected = hash_from_tile(parent, data[j], stored_hash_index(parent.l * parent.h, tile.n))
        if expected != tile_hash(data[i]):
            raise ProofError(_INCONSISTENT)
    return [
        hash_from_tile(tiles[j], data[j], x)
        for x, j in zip(plan.indexes, plan.index_tiles, strict=True)
    ]


def tile_hash_reader(
    tree: Tree, h: int, read_tiles: Callable[[list[Tile]], Sequence[bytes]]
) -> HashReader:
    """A HashReader over a server's tiles (synchronous), checking each read against ``tree``."""

    def read(indexes: Sequence[int]) -> list[Hash]:
        plan = plan_tile_reads(tree, h, indexes)
        return hashes_from_tiles(plan, read_tiles(plan.tiles))

    return read
