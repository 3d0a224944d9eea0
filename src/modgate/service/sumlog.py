"""modgate's private checksum database: an append-only transparency log in the store.

The go command trusts it like sum.golang.org when a developer sets
``GOSUMDB="<name>+<hash>+<key> https://<modgate>/sumdb/<name>"``: every
lookup answer is a record plus a tree head signed with the log's key, and
the tiles let the client prove the record is in that tree and that every
tree it sees extends the last one it saw. So the log must never change what
it once said: records are only appended, a version's hashes never change,
and the key stays the same for the life of the log.

Layout in the store's meta area, all under ``sumdb/<name>/``::

    verifier                 the verifier key the log is signed with
    tree                     the tree head text (size and root hash): the commit point
    records/<page>           records of ids page*256 .. page*256+255, each followed
                             by a blank line (exactly a data tile's content)
    hashes/<page>            the stored hashes those records appended, in order
    index/<escaped path>/<escaped version>    the record id of a module version

An append takes the store lock ``sumdb/<name>``, writes the page files and
the index entry, and writes the tree head last. A crash in between leaves
page entries and index entries beyond the tree's size; they are ignored,
and overwritten by the next append. Pages of complete tiles never change
and are kept in memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from modgate.formats.note import Signer, sign_note
from modgate.formats.sumrecord import RecordError, SumRecord, parse_sum_record
from modgate.formats.tile import DATA_LEVEL, TILE_HEIGHT, Tile, read_tile_data, tile_width_available
from modgate.formats.tlog import (
    EMPTY_HASH,
    HASH_SIZE,
    Hash,
    TlogError,
    Tree,
    format_record,
    format_tree,
    parse_tree,
    record_hash,
    split_stored_hash_index,
    stored_hash_count,
    stored_hashes_for_record_hash,
    tree_hash,
)
from modgate.metrics import Metrics
from modgate.protocol.errors import InvalidModuleError, StoreError
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.module import ModuleVersion
from modgate.service.security import RETAGGED, security_event
from modgate.store.base import Store

PAGE_RECORDS = 1 << TILE_HEIGHT
PAGE_CACHE_ENTRIES = 512
"""Complete pages (hashes or records) kept in memory."""
RECORD_END = b"\n"
"""A blank line ends each record in a page (the record text ends in its own newline)."""


class RetaggedError(InvalidModuleError):
    """A version's content differs from what the log recorded for it: refused."""


class KeyMismatchError(StoreError):
    """The store holds a log signed by another key; serving it with this key breaks clients."""


class SumLog:
    """The private log named after its signer key, in ``store``."""

    def __init__(self, store: Store, signer: Signer, metrics: Metrics) -> None:
        self.store = store
        self.signer = signer
        self.name = signer.name
        self.verifier_key = str(signer.verifier())
        self.metrics = metrics
        self._prefix = f"sumdb/{self.name}"
        self._pages: OrderedDict[str, bytes] = OrderedDict()
        self._signed: tuple[Tree, bytes] | None = None
        self._bind_key()

    def _bind_key(self) -> None:
        name = f"{self._prefix}/verifier"
        with self.store.lock(self._prefix):
            stored = self.store.get_meta(name)
            if stored is None:
                self.store.put_meta(name, self.verifier_key.encode() + b"\n")
                return
        if stored.data.decode("utf-8", "replace").strip() != self.verifier_key:
            raise KeyMismatchError(
                self.name,
                f"the store's checksum log {self.name} is signed with the key "
                f"{stored.data.decode('utf-8', 'replace').strip()}, not {self.verifier_key}; "
                "start modgate with that log's key file (a new key would make every client "
                "that saw the log report a security error)",
            )

    # ---- reading ----------------------------------------------------------------------

    def tree(self) -> Tree:
        stored = self.store.get_meta(f"{self._prefix}/tree")
        if stored is None:
            return Tree(0, EMPTY_HASH)
        try:
            return parse_tree(stored.data)
        except TlogError:
            raise StoreError(
                self.name, f"the tree head of checksum log {self.name} is damaged; restore it"
            ) from None

    def signed_tree(self, tree: Tree | None = None) -> bytes:
        """The signed note of ``tree`` (the current one when None)."""
        tree = tree or self.tree()
        cached = self._signed
        if cached is not None and cached[0] == tree:
            return cached[1]
        signed = sign_note(format_tree(tree).decode("ascii"), [self.signer])
        self._signed = (tree, signed)
        return signed

    def find(self, mv: ModuleVersion, tree: Tree | None = None) -> tuple[int, SumRecord] | None:
        """The id and record of ``mv`` when the log holds it."""
        tree = tree or self.tree()
        stored = self.store.get_meta(self._index_name(mv))
        if stored is None or not stored.data.strip().isdigit():
            return None
        record_id = int(stored.data)
        if record_id >= tree.n:
            return None  # left by an append that did not finish
        text = self.records(record_id, 1, tree)[0]
        try:
            return record_id, parse_sum_record(mv, text)
        except RecordError:
            return None  # an unfinished append's index entry; the id went to another record

    def lookup_answer(self, mv: ModuleVersion) -> bytes | None:
        """The ``/lookup`` answer for ``mv``: id, record, blank line, signed tree note."""
        tree = self.tree()
        found = self.find(mv, tree)
        if found is None:
            return None
        record_id, record = found
        return format_record(record_id, record.text()) + self.signed_tree(tree)

    def records(self, start: int, count: int, tree: Tree | None = None) -> list[bytes]:
        tree = tree or self.tree()
        if start < 0 or count < 0 or start + count > tree.n:
            raise StoreError(self.name, f"records {start}..{start + count} are not in the log")
        out: list[bytes] = []
        while count > 0:
            page, offset = divmod(start, PAGE_RECORDS)
            texts = self._record_page(page, tree.n)
            take = texts[offset : offset + count]
            out.extend(take)
            start += len(take)
            count -= len(take)
        return out

    def tile(self, tile: Tile) -> bytes | None:
        """A tile's content, or None when the log has no such tile (yet)."""
        tree = self.tree()
        if tile.h != TILE_HEIGHT or not tile_width_available(tile, tree.n):
            return None
        if tile.l == DATA_LEVEL:
            texts = self.records(tile.n << tile.h, tile.w, tree)
            return b"".join(text + RECORD_END for text in texts)
        return read_tile_data(tile, lambda indexes: self._read_hashes(indexes, tree.n))

    # ---- appending --------------------------------------------------------------------

    def add(self, record: SumRecord) -> int:
        """Append ``record`` unless the log has it; returns its id.

        Raises RetaggedError (after reporting a security event) when the log
        already holds other hashes for the same module version.
        """
        with self.store.lock(self._prefix):
            tree = self.tree()
            found = self.find(record.mv, tree)
            if found is not None:
                record_id, old = found
                if old != record:
                    raise self._retagged(old, record)
                return record_id
            self._append(record, tree)
            return tree.n

    def _retagged(self, old: SumRecord, new: SumRecord) -> RetaggedError:
        which = "zip" if old.zip_hash != new.zip_hash else "go.mod"
        detail = (
            f"{old.mv} was recorded in checksum log {self.name} with {which} hash "
            f"{old.zip_hash if which == 'zip' else old.gomod_hash}, but the source now serves "
            f"{new.zip_hash if which == 'zip' else new.gomod_hash}: the version was re-tagged "
            "or its content was altered; refused (publish a new version instead)"
        )
        security_event(self.metrics, RETAGGED, str(old.mv), detail)
        return RetaggedError(str(old.mv), detail)

    def _append(self, record: SumRecord, tree: Tree) -> None:
        n = tree.n
        page = n // PAGE_RECORDS
        texts = self._record_page(page, n) if n % PAGE_RECORDS else []
        hashes = self._hash_page(page, n) if n % PAGE_RECORDS else b""
        text = record.text()

        def read(indexes: Sequence[int]) -> list[Hash]:
            return self._read_hashes(indexes, n)

        added = stored_hashes_for_record_hash(n, record_hash(text), read)
        new_hashes = hashes + b"".join(added)
        new_page = b"".join(t + RECORD_END for t in [*texts, text])

        def read_new(indexes: Sequence[int]) -> list[Hash]:
            return self._read_hashes(indexes, n + 1, tail=(page, new_hashes))

        root = tree_hash(n + 1, read_new)
        self.store.put_meta(f"{self._prefix}/records/{page}", new_page)
        self.store.put_meta(f"{self._prefix}/hashes/{page}", new_hashes)
        self.store.put_meta(self._index_name(record.mv), f"{n}\n".encode())
        self.store.put_meta(f"{self._prefix}/tree", format_tree(Tree(n + 1, root)))
        if (n + 1) % PAGE_RECORDS == 0:
            self._remember(f"records/{page}", new_page)
            self._remember(f"hashes/{page}", new_hashes)

    # ---- pages ------------------------------------------------------------------------

    def _index_name(self, mv: ModuleVersion) -> str:
        return f"{self._prefix}/index/{escape_path(mv.path)}/{escape_version(mv.version)}"

    def _remember(self, key: str, data: bytes) -> None:
        self._pages[key] = data
        self._pages.move_to_end(key)
        while len(self._pages) > PAGE_CACHE_ENTRIES:
            self._pages.popitem(last=False)

    def _page(self, kind: str, page: int, complete: bool) -> bytes:
        key = f"{kind}/{page}"
        cached = self._pages.get(key) if complete else None
        if cached is not None:
            self._pages.move_to_end(key)
            return cached
        stored = self.store.get_meta(f"{self._prefix}/{key}")
        data = stored.data if stored is not None else b""
        if complete:
            self._remember(key, data)
        return data

    def _record_page(self, page: int, tree_size: int) -> list[bytes]:
        """The record texts of ``page`` that belong to a tree of ``tree_size``."""
        first = page * PAGE_RECORDS
        count = min(PAGE_RECORDS, tree_size - first)
        data = self._page("records", page, complete=count == PAGE_RECORDS)
        texts = [part + b"\n" for part in data.split(b"\n\n")[:count]]
        if len(texts) < count:
            raise StoreError(self.name, f"records page {page} of checksum log {self.name} is short")
        return texts

    def _hash_page(self, page: int, tree_size: int) -> bytes:
        first = page * PAGE_RECORDS
        complete = tree_size >= first + PAGE_RECORDS
        want = stored_hash_count(min(tree_size, first + PAGE_RECORDS)) - stored_hash_count(first)
        data = self._page("hashes", page, complete=complete)
        if len(data) < want * HASH_SIZE:
            raise StoreError(self.name, f"hashes page {page} of checksum log {self.name} is short")
        return data[: want * HASH_SIZE]

    def _read_hashes(
        self, indexes: Sequence[int], tree_size: int, tail: tuple[int, bytes] | None = None
    ) -> list[Hash]:
        out: list[Hash] = []
        for index in indexes:
            level, n = split_stored_hash_index(index)
            # the record whose append stored this hash
            page = (((n + 1) << level) - 1) // PAGE_RECORDS
            data = tail[1] if tail is not None and tail[0] == page else None
            if data is None:
                data = self._hash_page(page, tree_size)
            offset = (index - stored_hash_count(page * PAGE_RECORDS)) * HASH_SIZE
            h = data[offset : offset + HASH_SIZE]
            if len(h) != HASH_SIZE:
                raise StoreError(self.name, f"stored hash {index} is missing from the log")
            out.append(h)
        return out
