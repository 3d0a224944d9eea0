"""The private log in a filesystem store, and verification against a local public database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from helpers.sumdbserver import TestSumdb
from modgate.formats.note import open_note, signer_from_seed
from modgate.formats.sumrecord import SumRecord
from modgate.formats.tile import TILE_HEIGHT, Tile, tile_hash_reader
from modgate.formats.tlog import (
    Tree,
    check_record,
    parse_record,
    parse_tree,
    prove_record,
    record_hash,
    stored_hash_index,
    tree_hash,
)
from modgate.metrics import Metrics
from modgate.protocol.errors import InvalidRequestError, NotFoundError
from modgate.protocol.module import ModuleVersion
from modgate.protocol.patterns import parse_patterns
from modgate.service.sumdb import SumdbEndpoint, parse_sumdb_path
from modgate.service.sumdbproxy import SumdbProxy, parse_databases
from modgate.service.sumlog import KeyMismatchError, RetaggedError, SumLog
from modgate.service.sumverify import (
    ChecksumMismatchError,
    DatabaseMisbehaviorError,
    NotInDatabaseError,
    PublicChecker,
    SumVerifier,
)
from modgate.store.base import Kind
from modgate.store.filesystem import FilesystemStore

T = TypeVar("T")
SIGNER = signer_from_seed("sumdb.example", bytes(range(32)))
H1 = "h1:" + "A" * 43 + "="


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def record(i: int, zip_hash: str = H1) -> SumRecord:
    return SumRecord(ModuleVersion(f"example.com/m{i}", "v1.0.0"), zip_hash, H1)


def open_log(root: Path) -> SumLog:
    return SumLog(FilesystemStore(root), SIGNER, Metrics())


def tile_reader(log: SumLog, tree: Tree) -> object:
    def read_tiles(tiles: list[Tile]) -> list[bytes]:
        out = []
        for t in tiles:
            data = log.tile(t)
            assert data is not None, f"{t.path()} missing from a log of {tree.n}"
            out.append(data)
        return out

    return tile_hash_reader(tree, TILE_HEIGHT, read_tiles)


@pytest.mark.parametrize("count", [1, 3, 256, 257, 600])
def test_log_appends_and_proves_through_tiles(tmp_path: Path, count: int) -> None:
    log = open_log(tmp_path)
    for i in range(count):
        assert log.add(record(i)) == i
    tree = log.tree()
    assert tree.n == count
    reader = tile_reader(log, tree)
    for i in sorted({0, count // 2, count - 1}):
        text = log.records(i, 1)[0]
        assert text == record(i).text()
        proof = prove_record(count, i, reader)  # type: ignore[arg-type]
        check_record(proof, count, tree.hash, i, record_hash(text))
    assert tree_hash(count, reader) == tree.hash  # type: ignore[arg-type]
    data_tile = log.tile(Tile(TILE_HEIGHT, -1, 0, min(count, 256)))
    assert data_tile is not None and data_tile.startswith(record(0).text() + b"\n")


def test_log_survives_restart_and_answers_lookups(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for i in range(5):
        log.add(record(i))
    again = open_log(tmp_path)
    answer = again.lookup_answer(record(3).mv)
    assert answer is not None
    record_id, text, note = parse_record(answer)
    assert (record_id, text) == (3, record(3).text())
    tree = parse_tree(open_note(note, [SIGNER.verifier()]).text)
    assert tree == log.tree() and tree.n == 5
    assert again.lookup_answer(ModuleVersion("example.com/other", "v1.0.0")) is None
    assert again.add(record(3)) == 3, "adding the same record again keeps its id"


def test_log_refuses_a_changed_hash(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.add(record(1))
    with pytest.raises(RetaggedError, match="re-tagged"):
        log.add(record(1, zip_hash="h1:" + "B" * 43 + "="))
    assert log.metrics.value("modgate_security_events_total", (("kind", "retagged"),)) == 1
    assert log.tree().n == 1


def test_log_refuses_another_key(tmp_path: Path) -> None:
    open_log(tmp_path)
    other = signer_from_seed("sumdb.example", bytes(32))
    with pytest.raises(KeyMismatchError, match="signed with the key"):
        SumLog(FilesystemStore(tmp_path), other, Metrics())


def test_log_ignores_an_unfinished_append(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    log = SumLog(store, SIGNER, Metrics())
    log.add(record(0))
    tree = store.get_meta("sumdb/sumdb.example/tree")
    assert tree is not None
    log.add(record(1))
    store.put_meta("sumdb/sumdb.example/tree", tree.data)  # the crash: tree head not written
    again = SumLog(store, SIGNER, Metrics())
    assert again.find(record(1).mv) is None, "a record beyond the tree head is not in the log"
    assert again.add(record(2)) == 1, "the next append takes the unfinished id"
    assert again.find(record(1).mv) is None, "the stale index entry must not match record 2"
    assert again.find(record(2).mv) is not None


SUMDB_PATHS = [
    ("/sumdb/sum.golang.org/supported", SumdbEndpoint.SUPPORTED, None),
    ("/sumdb/sum.golang.org/latest", SumdbEndpoint.LATEST, None),
    ("/sumdb/x/lookup/example.com/%21upper/kit@v1.0.0", SumdbEndpoint.LOOKUP, None),
    ("/sumdb/x/lookup/example.com/!upper/kit@v1.0.0", SumdbEndpoint.LOOKUP, None),
    ("/sumdb/x/tile/8/0/x001/234.p/5", SumdbEndpoint.TILE, None),
    ("/sumdb/x/lookup/example.com/a@v1.0", None, InvalidRequestError),
    ("/sumdb/x/lookup/example.com/a", None, InvalidRequestError),
    ("/sumdb/x/tile/8/0/1234", None, InvalidRequestError),
    ("/sumdb/x/tile/4/0/000", None, NotFoundError),
    ("/sumdb/x/other", None, NotFoundError),
    ("/sumdb//latest", None, InvalidRequestError),
    ("/sumdb/x/latest?x=1", None, InvalidRequestError),
    ("/sumdb/x/lookup/example.com/a@v1.0.0%0a", None, InvalidRequestError),
]


@pytest.mark.parametrize(("target", "endpoint", "error"), SUMDB_PATHS)
def test_parse_sumdb_path(
    target: str, endpoint: SumdbEndpoint | None, error: type[Exception] | None
) -> None:
    if error is not None:
        with pytest.raises(error):
            parse_sumdb_path(target)
        return
    assert parse_sumdb_path(target).endpoint is endpoint
    if endpoint is SumdbEndpoint.LOOKUP:
        assert parse_sumdb_path(target).mv == ModuleVersion("example.com/Upper/kit", "v1.0.0")


# ---- verification against a public database -----------------------------------------

MODS = [ModuleVersion(f"example.com/m{i}", "v1.0.0") for i in range(300)]


def gosum(mv: ModuleVersion) -> bytes | None:
    if mv not in MODS:
        return None
    return SumRecord(mv, H1, H1).text()


@pytest.fixture
def public() -> Iterator[TestSumdb]:
    with TestSumdb(gosum) as db:
        yield db


def checker(root: Path, db: TestSumdb, client: httpx.AsyncClient) -> PublicChecker:
    store = FilesystemStore(root)
    databases = parse_databases(db.spec)
    proxy = SumdbProxy(store, client, databases, Metrics())
    return PublicChecker(proxy, databases[0], store, proxy.metrics)


def test_public_records_are_verified_and_kept(tmp_path: Path, public: TestSumdb) -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client:
            check = checker(tmp_path, public, client)
            for mv in MODS[:3]:
                public.add(mv, gosum(mv) or b"")
            for mv in (MODS[0], MODS[280], MODS[1]):
                assert (await check.record(mv)).zip_hash == H1
            with pytest.raises(NotInDatabaseError, match="--private"):
                await check.record(ModuleVersion("example.com/unknown", "v1.0.0"))
            before = len(public.requests)
            await check.record(MODS[280])
            assert len(public.requests) == before, "a verified record is not looked up again"

    run(main())


def test_forked_public_database_is_refused(tmp_path: Path, public: TestSumdb) -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client:
            check = checker(tmp_path, public, client)
            await check.record(MODS[0])
            await check.record(MODS[1])
            public.fork(changed=1)
            with pytest.raises(DatabaseMisbehaviorError, match="forked"):
                await check.record(MODS[2])
            events = check.metrics.value(
                "modgate_security_events_total", (("kind", "sumdb_misbehavior"),)
            )
            assert events == 1

    run(main())


def test_verifier_compares_hashes_and_records(tmp_path: Path, public: TestSumdb) -> None:
    async def main() -> None:
        async with httpx.AsyncClient() as client:
            check = checker(tmp_path / "a", public, client)
            log = SumLog(FilesystemStore(tmp_path / "b"), SIGNER, check.metrics)
            verifier = SumVerifier(check.metrics, parse_patterns("corp.example.com"), check, log)
            mv = MODS[5]
            await verifier.prepare(mv)
            verifier.check(mv, Kind.MOD, H1)
            verifier.check(mv, Kind.ZIP, H1)
            with pytest.raises(ChecksumMismatchError, match="tampered"):
                verifier.check(mv, Kind.ZIP, "h1:" + "C" * 43 + "=")
            verifier.stored(mv, H1, H1)
            assert log.find(mv) is not None
            private = ModuleVersion("corp.example.com/secret", "v1.0.0")
            await verifier.prepare(private)  # never sent to the public database
            assert not any("corp.example.com" in p for p in public.requests)
            verifier.stored(private, H1, "h1:" + "D" * 43 + "=")
            with pytest.raises(RetaggedError):
                verifier.check(private, Kind.ZIP, H1)

    run(main())


def test_lookup_answer_is_provable(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    for i in range(20):
        log.add(record(i))
    answer = log.lookup_answer(record(7).mv)
    assert answer is not None
    record_id, text, note = parse_record(answer)
    tree = parse_tree(open_note(note, [SIGNER.verifier()]).text)
    reader = tile_reader(log, tree)
    [leaf] = reader([stored_hash_index(0, record_id)])  # type: ignore[operator]
    assert leaf == record_hash(text)


def test_proxy_keeps_full_tiles_and_lookups(tmp_path: Path, public: TestSumdb) -> None:
    for mv in MODS[:300]:
        public.add(mv, gosum(mv) or b"")

    async def main() -> None:
        async with httpx.AsyncClient() as client:
            store = FilesystemStore(tmp_path)
            proxy = SumdbProxy(store, client, parse_databases(public.spec), Metrics())
            name = public.name
            paths = ["tile/8/0/000", "tile/8/0/001.p/44", "tile/8/data/000", "latest"]
            for _ in range(2):
                for path in paths:
                    await proxy.fetch(name, path)
                await proxy.lookup(name, MODS[299])
            with pytest.raises(NotFoundError):
                await proxy.lookup(name, ModuleVersion("example.com/none", "v1.0.0"))
            with pytest.raises(NotFoundError):
                await proxy.fetch(name, "tile/8/0/001")  # not complete yet
            asked = [p for p in public.requests if not p.startswith("/lookup/example.com/none")]
            assert sorted(asked) == sorted(
                {f"/{p}" for p in paths} | {"/lookup/example.com/m299@v1.0.0", "/tile/8/0/001"}
            ), f"each answer is fetched once: {asked}"
            # complete tiles and lookups outlive the process; partial tiles and latest do not
            again = SumdbProxy(store, client, parse_databases(public.spec), Metrics())
            before = len(public.requests)
            await again.fetch(name, "tile/8/0/000")
            await again.lookup(name, MODS[299])
            assert len(public.requests) == before
            await again.fetch(name, "tile/8/0/001.p/44")
            assert len(public.requests) == before + 1

    run(main())


DATABASE_SPECS = [
    ("sum.golang.org", [("sum.golang.org", "https://sum.golang.org", True)]),
    ("sum.golang.org=http://127.0.0.1:9/sumdb/sum.golang.org/", [
        ("sum.golang.org", "http://127.0.0.1:9/sumdb/sum.golang.org", True)]),
    (f"{SIGNER.verifier()}=http://127.0.0.1:9, other.example", [
        ("sumdb.example", "http://127.0.0.1:9", True),
        ("other.example", "https://other.example", False)]),
    ("", []),
    ("bad name", None),
    ("a=ftp://x", None),
    ("sumdb.example+00000000+AAAA=http://x", None),
    ("a,a", None),
    ("a=http://x?q=1", None),
]  # fmt: skip


@pytest.mark.parametrize(("text", "want"), DATABASE_SPECS)
def test_parse_databases(text: str, want: list[tuple[str, str, bool]] | None) -> None:
    if want is None:
        with pytest.raises(ValueError):
            parse_databases(text)
        return
    got = [(db.name, db.url, db.verifier is not None) for db in parse_databases(text)]
    assert got == want
