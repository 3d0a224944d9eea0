"""Verify on ingest: nothing public is stored unless the checksum database agrees.

Before a public module version is stored, modgate does what the go command
does when it verifies a download:

1. looks the version up in the public database (through ``SumdbProxy``),
2. checks the tree note's signature with the database's key,
3. checks the new tree head is consistent with the last one modgate has
   seen (kept in the store, so restarts and other processes see it too) —
   a database that forks its log is caught here,
4. checks the record is in that tree (tiles authenticated against the
   signed root hash), and
5. compares the record's zip and go.mod hashes with what was fetched.

A mismatch is a security event; nothing is stored and the request fails.
Verified records are kept in the store, so each version is verified once.

Modules matching ``--private`` never reach the public database. When the
private log (``sumlog.py``) is configured, every stored version is recorded
there after these checks, and a version the log already holds must match it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from modgate.formats.note import NoteError, open_note
from modgate.formats.sumrecord import RecordError, SumRecord, parse_sum_record
from modgate.formats.tile import TILE_HEIGHT, Tile, hashes_from_tiles, plan_tile_reads
from modgate.formats.tlog import (
    EMPTY_HASH,
    HASH_SIZE,
    Hash,
    TlogError,
    Tree,
    parse_record,
    parse_tree,
    record_hash,
    stored_hash_index,
    sub_tree_hash,
    sub_tree_index,
)
from modgate.metrics import Metrics
from modgate.protocol.errors import InvalidModuleError, NotFoundError, StoreError, UpstreamError
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.module import ModuleVersion
from modgate.protocol.patterns import PatternList
from modgate.service.security import (
    CHECKSUM_MISMATCH,
    DATABASE_MISBEHAVIOR,
    RETAGGED,
    security_event,
)
from modgate.service.storereads import StoreReads
from modgate.service.sumdbproxy import Database, SumdbProxy
from modgate.service.sumlog import RetaggedError, SumLog
from modgate.store.base import Kind, Store

VERIFIED_PREFIX = "sumdb-verified"


class ChecksumMismatchError(InvalidModuleError):
    """Fetched content disagrees with the checksum database: refused."""


class NotInDatabaseError(InvalidModuleError):
    """The public checksum database does not know the version: it cannot be verified."""


class DatabaseMisbehaviorError(UpstreamError):
    """The checksum database contradicts itself (forked log, bad tile, bad signature)."""


class PublicChecker:
    """The go command's client-side checks against one public database."""

    def __init__(self, proxy: SumdbProxy, db: Database, store: Store, metrics: Metrics) -> None:
        if db.verifier is None:
            raise ValueError(
                f"checksum database {db.name} has no key; give it as NAME+HASH+KEY=URL in --sumdb"
            )
        self.proxy = proxy
        self.db = db
        self.verifier = db.verifier
        self.store = store
        self._reads = StoreReads(store)
        self.metrics = metrics
        self._prefix = f"{VERIFIED_PREFIX}/{db.name}"

    def cached(self, mv: ModuleVersion) -> SumRecord | None:
        """The verified record of ``mv`` when it was verified before."""
        stored = self.store.get_meta(self._record_name(mv))
        if stored is None:
            return None
        try:
            return parse_sum_record(mv, stored.data)
        except RecordError:
            return None

    async def record(self, mv: ModuleVersion) -> SumRecord:
        """``mv``'s record, verified against the database's signed and consistent log."""
        cached = await asyncio.to_thread(self.cached, mv) if self._reads.remote else self.cached(mv)
        if cached is not None:
            return cached
        try:
            answer = await self.proxy.lookup(self.db.name, mv)
        except NotFoundError as exc:
            raise NotInDatabaseError(
                str(mv),
                f"not in the checksum database {self.db.name} ({exc.reason}), so it cannot be "
                "verified; if it is a private module, add it to --private",
            ) from None
        try:
            record_id, text, note_bytes = parse_record(answer)
            tree = parse_tree(open_note(note_bytes, [self.verifier]).text)
        except (TlogError, NoteError) as exc:
            raise self._misbehaved(str(mv), f"its lookup answer does not verify: {exc}") from None
        await self._merge_latest(tree, note_bytes)
        if record_id >= tree.n:
            raise self._misbehaved(str(mv), f"record {record_id} is outside tree {tree.n}")
        [leaf] = await self._read_hashes(tree, [stored_hash_index(0, record_id)])
        if leaf != record_hash(text):
            raise self._misbehaved(str(mv), "the record is not the one in its signed tree")
        try:
            record = parse_sum_record(mv, text)
        except RecordError as exc:
            raise self._misbehaved(str(mv), str(exc)) from None
        # a write (fsync, or an object store's round trip): off the event loop
        await asyncio.to_thread(self.store.put_meta, self._record_name(mv), record.text())
        return record

    def _record_name(self, mv: ModuleVersion) -> str:
        return f"{self._prefix}/records/{escape_path(mv.path)}/{escape_version(mv.version)}"

    def _misbehaved(self, subject: str, detail: str) -> DatabaseMisbehaviorError:
        reason = (
            f"checksum database {self.db.name} misbehaved: {detail}; "
            "refusing to trust it (SECURITY ERROR: report this to its operators)"
        )
        security_event(self.metrics, DATABASE_MISBEHAVIOR, subject, reason)
        return DatabaseMisbehaviorError(subject, reason)

    # ---- the latest tree head seen --------------------------------------------------------

    def _latest(self) -> tuple[Tree, bytes | None]:
        stored = self.store.get_meta(f"{self._prefix}/latest")
        if stored is None:
            return Tree(0, EMPTY_HASH), None
        try:
            return parse_tree(open_note(stored.data, [self.verifier]).text), stored.data
        except (NoteError, TlogError):
            raise StoreError(
                self.db.name,
                f"the last tree head of {self.db.name} kept in the store is damaged; "
                f"remove _modgate/meta/{self._prefix}/latest to start over",
            ) from None

    async def _merge_latest(self, tree: Tree, note: bytes) -> None:
        """Prove ``tree`` consistent with the latest head seen; keep it when it is newer."""
        while True:
            if self._reads.remote:  # an object store: a round trip, never on the event loop
                latest, latest_note = await asyncio.to_thread(self._latest)
            else:
                latest, latest_note = self._latest()
            if tree.n <= latest.n:
                await self._check_trees(tree, latest)
                return
            await self._check_trees(latest, tree)
            if await asyncio.to_thread(self._install, latest_note, note):
                return

    def _install(self, expected: bytes | None, note: bytes) -> bool:
        name = f"{self._prefix}/latest"
        with self.store.lock(name):
            current = self.store.get_meta(name)
            if (current.data if current is not None else None) != expected:
                return False  # another request moved it on: check against that one
            self.store.put_meta(name, note)
            return True

    async def _check_trees(self, older: Tree, newer: Tree) -> None:
        if older.n == 0:
            return
        hashes = await self._read_hashes(newer, sub_tree_index(0, older.n, []))
        h, _ = sub_tree_hash(0, older.n, hashes)
        if h != older.hash:
            raise self._misbehaved(
                self.db.name,
                f"its tree of size {newer.n} does not extend the tree of size {older.n} "
                "seen before (a forked log)",
            )

    async def _read_hashes(self, tree: Tree, indexes: Sequence[int]) -> list[Hash]:
        plan = plan_tile_reads(tree, TILE_HEIGHT, indexes)
        data = await asyncio.gather(*(self._tile(t) for t in plan.tiles))
        try:
            return hashes_from_tiles(plan, data)
        except TlogError as exc:
            raise self._misbehaved(self.db.name, f"its tiles for tree {tree.n}: {exc}") from None

    async def _tile(self, tile: Tile) -> bytes:
        try:
            return await self.proxy.tile(self.db.name, tile)
        except NotFoundError:
            if tile.full:
                raise
        # the go command falls back to the full tile, which holds the partial one
        full = Tile(tile.h, tile.l, tile.n, 1 << tile.h)
        return (await self.proxy.tile(self.db.name, full))[: tile.w * HASH_SIZE]


class SumVerifier:
    """The hook ``Ingest`` calls: ``prepare`` (async, before), ``check``, then ``stored``."""

    def __init__(
        self,
        metrics: Metrics,
        private: PatternList,
        public: PublicChecker | None,
        log: SumLog | None,
    ) -> None:
        self.metrics = metrics
        self.private = private
        self.public = public
        self.log = log

    @property
    def reads_little(self) -> bool:
        """``check`` reads one small record of a public database; a private log reads more."""
        return self.log is None

    def _public_for(self, mv: ModuleVersion) -> PublicChecker | None:
        return None if self.private.matches(mv.path) else self.public

    async def prepare(self, mv: ModuleVersion) -> None:
        """Fetch and verify the public record of ``mv`` (once; kept in the store)."""
        public = self._public_for(mv)
        if public is not None:
            await public.record(mv)

    def check(self, mv: ModuleVersion, kind: Kind, h1: str) -> None:
        """Raise unless ``h1`` (of the zip or the .mod) agrees with every record of ``mv``."""
        what = "go.mod" if kind is Kind.MOD else "zip"
        public = self._public_for(mv)
        if public is not None:
            record = public.cached(mv)
            if record is None:
                raise NotInDatabaseError(
                    str(mv), f"not verified against checksum database {public.db.name}; try again"
                )
            expected = record.gomod_hash if kind is Kind.MOD else record.zip_hash
            if expected != h1:
                detail = (
                    f"{what} hash {h1} differs from {expected} in checksum database "
                    f"{public.db.name}: the source serves tampered content; refused"
                )
                security_event(self.metrics, CHECKSUM_MISMATCH, str(mv), detail)
                raise ChecksumMismatchError(str(mv), detail)
        found = self.log.find(mv) if self.log is not None else None
        if found is not None and self.log is not None:
            recorded = found[1].gomod_hash if kind is Kind.MOD else found[1].zip_hash
            if recorded != h1:
                detail = (
                    f"{what} hash {h1} differs from {recorded} recorded in checksum log "
                    f"{self.log.name}: the version was re-tagged or altered at its source; "
                    "refused (publish a new version instead)"
                )
                security_event(self.metrics, RETAGGED, str(mv), detail)
                raise RetaggedError(str(mv), detail)

    def stored(self, mv: ModuleVersion, gomod_h1: str, zip_h1: str) -> None:
        """Record a version whose .mod and zip were verified and stored."""
        if self.log is not None:
            self.log.add(SumRecord(mv, zip_h1, gomod_h1))
