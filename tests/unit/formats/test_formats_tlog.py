"""Transparency-log hashes, tiles and proofs against x/mod's sumdb/tlog."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.sumdb_oracle import SumdbOracle, oracle_record, start_oracle
from modgate.formats.tile import (
    TILE_HEIGHT,
    Tile,
    hashes_from_tiles,
    new_tiles,
    parse_tile_path,
    plan_tile_reads,
    read_tile_data,
    tile_for_index,
    tile_hash_reader,
)
from modgate.formats.tlog import (
    EMPTY_HASH,
    Hash,
    ProofError,
    TlogError,
    Tree,
    check_record,
    check_tree,
    format_hash,
    format_record,
    format_tree,
    parse_record,
    parse_tree,
    prove_record,
    prove_tree,
    record_hash,
    split_stored_hash_index,
    stored_hash_count,
    stored_hash_index,
    stored_hashes_for_record_hash,
    tree_hash,
)

# RFC 6962 known answers: the empty tree, and a one-record tree is the record's leaf hash.
EMPTY_TREE_HASH = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
# From x/mod (go1.27.3): tree hashes of the oracle's first 5 records.
KAT_TREE_HASHES = [
    EMPTY_TREE_HASH,
    "kt3NTYKSNLeHRv0l+Lrkhp27EiKAW1kdS5KrHpA8b70=",
    "Gy3o3RMAdSgtgQrFectzZ7IJ9WKJOEZdlASB3fBB2rE=",
    "Qtc5+jz2oFoHMeaBcG8XTtjltYtLU5+wEfRZo6cr2sM=",
    "L5liIjYy+ufpac1iw619E5+j29QbKGvOyhmSbQ7PudU=",
    "TI7QmThRpSk0HU9egfgU/pD4NDUdag4+B8RABDlyHhI=",
]


@pytest.fixture(scope="module")
def oracle(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SumdbOracle]:
    cache = request.config.cache
    assert cache is not None
    yield from start_oracle(tmp_path_factory.mktemp("tlog-oracle"), cache.mkdir("go-build"))


class MemoryLog:
    """A log in memory, built only with the functions under test."""

    def __init__(self, records: Sequence[bytes] = ()) -> None:
        self.records: list[bytes] = []
        self.hashes: list[Hash] = []
        for r in records:
            self.append(r)

    def read(self, indexes: Sequence[int]) -> list[Hash]:
        return [self.hashes[i] for i in indexes]

    def append(self, record: bytes) -> None:
        n = len(self.records)
        self.hashes += stored_hashes_for_record_hash(n, record_hash(record), self.read)
        self.records.append(record)

    def tree(self) -> Tree:
        return Tree(len(self.records), tree_hash(len(self.records), self.read))


def oracle_log(n: int) -> MemoryLog:
    return MemoryLog([oracle_record(i) for i in range(n)])


def _proof_text(proof: Sequence[Hash]) -> str:
    return ",".join(format_hash(h) for h in proof)


def log_lines(n: int, h: int, pairs: Sequence[tuple[int, int]]) -> list[str]:
    """The oracle's ``tlog`` answer, computed by modgate."""
    log = MemoryLog()
    out = []
    for i in range(n):
        out.append(f"treehash {i} {format_hash(tree_hash(i, log.read))}")
        log.append(oracle_record(i))
    tree = log.tree()
    out.append(f"treehash {n} {format_hash(tree.hash)}")
    out.append(f"count {stored_hash_count(n)}")
    for i, x in enumerate(log.hashes):
        level, k = split_stored_hash_index(i)
        assert stored_hash_index(level, k) == i, f"split of stored index {i} does not invert"
        out.append(f"stored {i} {format_hash(x)} {level} {k} {tile_for_index(h, i)[0].path()}")
    for t in new_tiles(h, 0, n):
        out.append(f"tile {t.path()} {read_tile_data(t, log.read).hex()}")
    out.extend(f"newtile {t.path()}" for t in new_tiles(h, n // 3, n))
    out.append("tree " + format_tree(tree).decode().replace("\n", "|"))

    def read_tiles(tiles: list[Tile]) -> list[bytes]:
        return [read_tile_data(t, log.read) for t in tiles]

    reader = tile_hash_reader(tree, h, read_tiles)
    for t, k in pairs:
        if t <= n and k < t:
            out.append(f"rproof {t} {k} {_proof_text(prove_record(t, k, log.read))} ")
        if t <= n and 1 <= k <= t:
            out.append(f"tproof {t} {k} {_proof_text(prove_tree(t, k, log.read))} ")
        if k < n and t == n:
            out.append(f"tileread {k} {format_hash(reader([stored_hash_index(0, k)])[0])}")
    return out


def test_known_tree_hashes() -> None:
    log = MemoryLog()
    got = [format_hash(tree_hash(0, log.read))]
    for i in range(5):
        log.append(oracle_record(i))
        got.append(format_hash(log.tree().hash))
    assert got == KAT_TREE_HASHES
    assert (
        bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        == EMPTY_HASH
    )


LOG_SHAPES = [(1, 2), (2, 2), (7, 2), (16, 2), (17, 2), (70, 2), (300, 8), (513, 8)]


@pytest.mark.go
@pytest.mark.parametrize(("n", "h"), LOG_SHAPES)
def test_log_agrees_with_xmod(oracle: SumdbOracle, n: int, h: int) -> None:
    pairs = sorted({(t, k) for t in (1, n // 2 + 1, n) for k in (0, 1, n // 3, n - 1, t)})
    want = oracle.ask("tlog", N=n, H=h, Pairs=[list(p) for p in pairs])["List"]
    got = log_lines(n, h, pairs)
    for i, (mine, theirs) in enumerate(zip(got, want, strict=False)):
        assert mine == theirs, f"line {i} differs:\nmodgate: {mine}\nx/mod:   {theirs}"
    assert len(got) == len(want), f"modgate wrote {len(got)} lines, x/mod {len(want)}"


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64, 100])
def test_proofs_check_and_tampering_fails(n: int) -> None:
    log = oracle_log(n)
    tree = log.tree()
    for k in range(n):
        proof = prove_record(n, k, log.read)
        check_record(proof, n, tree.hash, k, record_hash(oracle_record(k)))
        with pytest.raises(ProofError):
            check_record(proof, n, tree.hash, k, record_hash(b"forged\n"))
        if proof:
            bad = [*proof[:-1], bytes(32)]
            with pytest.raises(ProofError):
                check_record(bad, n, tree.hash, k, record_hash(oracle_record(k)))
    for old in range(1, n + 1):
        old_hash = tree_hash(old, log.read)
        proof = prove_tree(n, old, log.read)
        check_tree(proof, n, tree.hash, old, old_hash)
        with pytest.raises(ProofError):
            check_tree(proof, n, tree.hash, old, record_hash(b"other\n"))


def test_forked_tiles_are_detected() -> None:
    honest = oracle_log(40)
    forked = MemoryLog([*[oracle_record(i) for i in range(39)], b"example.com/evil v1 h1:y\n"])
    tree = honest.tree()
    plan = plan_tile_reads(tree, 2, [stored_hash_index(0, 5)])
    good = [read_tile_data(t, honest.read) for t in plan.tiles]
    assert hashes_from_tiles(plan, good) == [honest.hashes[stored_hash_index(0, 5)]]
    bad = [read_tile_data(t, forked.read) for t in plan.tiles]
    with pytest.raises(ProofError, match="inconsistent tile"):
        hashes_from_tiles(plan, bad)
    short = [*good[:-1], good[-1][:-32]]
    with pytest.raises(ProofError):
        hashes_from_tiles(plan, short)


TILE_PATHS = [
    "tile/8/0/000",
    "tile/8/0/001.p/5",
    "tile/8/1/x001/234",
    "tile/8/data/x123/456.p/255",
    "tile/8/0/x001/x234/067",
    "tile/8/0/1",
    "tile/8/0/x001/0001",
    "tile/8/0/000.p/256",
    "tile/8/0/000.p/0",
    "tile/8/0/000.p/",
    "tile/8/-1/000",
    "tile/31/0/000",
    "tile/0/0/000",
    "tile/8/0/x000/001",
    "tile/8/0",
    "tile/8/0/abc",
    "tile/08/0/000",
    "tile/8/0/000.p/05",
    "tiles/8/0/000",
    "tile/2/data/000.p/3",
    "tile/8/64/000",
]


@pytest.mark.go
def test_tile_paths_agree_with_xmod(oracle: SumdbOracle) -> None:
    differences = []
    for path in TILE_PATHS:
        want = oracle.ask("tilepath", path)
        try:
            t = parse_tile_path(path)
            got = f"{t.h} {t.l} {t.n} {t.w}"
        except TlogError:
            got = ""
        if got != want["S"]:
            differences.append(f"{path}: modgate {got!r}, x/mod {want}")
    assert not differences, "\n".join(differences)


@given(
    h=st.integers(1, 30),
    level=st.integers(-1, 63),
    n=st.integers(0, 10**12),
    w=st.integers(1, 1 << 30),
)
def test_tile_path_round_trip(h: int, level: int, n: int, w: int) -> None:
    tile = Tile(h, level, n, min(w, 1 << h))
    assert parse_tile_path(tile.path()) == tile, tile.path()


TREE_TEXTS = [
    f"go.sum database tree\n5\n{KAT_TREE_HASHES[5]}\n",
    f"go.sum database tree\n05\n{KAT_TREE_HASHES[5]}\n",
    f"go.sum database tree\n-5\n{KAT_TREE_HASHES[5]}\n",
    f"go.sum database tree\n5\n{KAT_TREE_HASHES[5][:-2]}\n",
    f"go.sum database tree\n5\n{KAT_TREE_HASHES[5]}",
    f"go.sum database tree\n5\n{KAT_TREE_HASHES[5]}\nextra\n",
    f"go.sum  database tree\n5\n{KAT_TREE_HASHES[5]}\n",
    f"go.sum database tree\n99999999999999999999\n{KAT_TREE_HASHES[5]}\n",
]
RECORD_TEXTS = [
    "5\nexample.com/a v1.0.0 h1:x\nexample.com/a v1.0.0/go.mod h1:y\n\nrest",
    "5\nexample.com/a v1.0.0 h1:x\n\n",
    "x\nexample.com/a v1.0.0 h1:x\n\n",
    "5\nexample.com/a v1.0.0 h1:x\n",
    "5\n\n\n",
    "5\nexample.com/a\tv1.0.0 h1:x\n\n",
    "-5\nexample.com/a v1.0.0 h1:x\n\n",
]


@pytest.mark.go
def test_tree_and_record_texts_agree_with_xmod(oracle: SumdbOracle) -> None:
    differences = []
    for text in TREE_TEXTS:
        want = oracle.ask("tree", text)
        try:
            t = parse_tree(text)
            got = f"{t.n} {format_hash(t.hash)}"
        except TlogError:
            got = ""
        if got != want["S"]:
            differences.append(f"tree {text!r}: modgate {got!r}, x/mod {want}")
    for text in RECORD_TEXTS:
        want = oracle.ask("record", text)
        try:
            rid, body, rest = parse_record(text.encode())
            got = f"{rid}|{body.decode()}|{rest.decode()}"
        except TlogError:
            got = ""
        if got != want["S"] and not text.startswith("-"):  # modgate refuses negative ids
            differences.append(f"record {text!r}: modgate {got!r}, x/mod {want}")
    assert not differences, "\n".join(differences)


def test_format_record_round_trip() -> None:
    text = b"example.com/a v1.0.0 h1:x\nexample.com/a v1.0.0/go.mod h1:y\n"
    assert parse_record(format_record(7, text) + b"note") == (7, text, b"note")
    for bad in (b"", b"no newline", b"a\n\nb\n", b"tab\there\n"):
        with pytest.raises(TlogError):
            format_record(1, bad)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 600), data=st.data())
def test_tile_reads_match_stored_hashes(n: int, data: st.DataObject) -> None:
    log = oracle_log(n)
    tree = log.tree()
    indexes = data.draw(st.lists(st.integers(0, stored_hash_index(0, n) - 1), max_size=5))
    plan = plan_tile_reads(tree, TILE_HEIGHT if n > 300 else 2, indexes)
    got = hashes_from_tiles(plan, [read_tile_data(t, log.read) for t in plan.tiles])
    assert got == [log.hashes[i] for i in indexes]
