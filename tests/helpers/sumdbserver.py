"""A small checksum database on 127.0.0.1, standing in for sum.golang.org in the tests.

It serves ``/lookup/``, ``/latest`` and ``/tile/8/...`` like the real one.
A lookup of a version it does not know asks ``gosum`` for the record (as
sum.golang.org asks proxy.golang.org) and appends it. ``fork()`` makes it
misbehave: it rebuilds its log with one earlier record changed and serves
that from then on, so its new tree heads contradict the ones it signed
before. ``requests`` records every path asked for.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from helpers.modules import gomod_h1, zip_h1
from modgate.formats.note import Signer, sign_note, signer_from_seed
from modgate.formats.tile import DATA_LEVEL, parse_tile_path, read_tile_data, tile_width_available
from modgate.formats.tlog import (
    Hash,
    TlogError,
    Tree,
    format_record,
    format_tree,
    record_hash,
    stored_hashes_for_record_hash,
    tree_hash,
)
from modgate.protocol.escape import escape_path, escape_version, unescape_path, unescape_version
from modgate.protocol.module import ModuleVersion

LOOPBACK = "127.0.0.1"
POLL_INTERVAL = 0.02
GoSum = Callable[[ModuleVersion], bytes | None]


def proxy_gosum(root: Path) -> GoSum:
    """Records computed from a GOPROXY-layout tree, as sum.golang.org computes them."""

    def gosum(mv: ModuleVersion) -> bytes | None:
        base = root / escape_path(mv.path) / "@v" / escape_version(mv.version)
        mod, zipped = base.with_name(base.name + ".mod"), base.with_name(base.name + ".zip")
        if not mod.is_file() or not zipped.is_file():
            return None
        return (
            f"{mv.path} {mv.version} {zip_h1(zipped.read_bytes())}\n"
            f"{mv.path} {mv.version}/go.mod {gomod_h1(mod.read_bytes())}\n"
        ).encode()

    return gosum


class _Log:
    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.hashes: list[Hash] = []
        self.ids: dict[ModuleVersion, int] = {}

    def read(self, indexes: Sequence[int]) -> list[Hash]:
        return [self.hashes[i] for i in indexes]

    def append(self, mv: ModuleVersion, record: bytes) -> int:
        n = len(self.records)
        self.hashes += stored_hashes_for_record_hash(n, record_hash(record), self.read)
        self.records.append(record)
        self.ids[mv] = n
        return n

    def tree(self) -> Tree:
        return Tree(len(self.records), tree_hash(len(self.records), self.read))


class TestSumdb:
    """A threaded checksum database; ``url`` is its base, ``vkey`` its verifier key."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, gosum: GoSum, name: str = "sumdb.test", seed: bytes = b"\x07" * 32) -> None:
        self.gosum = gosum
        self.signer: Signer = signer_from_seed(name, seed)
        self.name = name
        self.vkey = str(self.signer.verifier())
        self.requests: list[str] = []
        self._log = _Log()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
        )
        self._thread.start()

    @property
    def spec(self) -> str:
        """The ``--sumdb`` value that makes modgate proxy and trust this database."""
        return f"{self.vkey}={self.url}"

    def __enter__(self) -> TestSumdb:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def add(self, mv: ModuleVersion, record: bytes) -> int:
        with self._lock:
            known = self._log.ids.get(mv)
            return known if known is not None else self._log.append(mv, record)

    def size(self) -> int:
        with self._lock:
            return len(self._log.records)

    def fork(self, changed: int = 0) -> None:
        """Rebuild the log with record ``changed`` altered: a forked history."""
        with self._lock:
            old = self._log
            forked = _Log()
            by_id = {i: mv for mv, i in old.ids.items()}
            for i, record in enumerate(old.records):
                # the same version with other bytes: another leaf hash, another tree
                text = record[:-1] + b" \n" if i == changed else record
                forked.append(by_id[i], text)
            self._log = forked

    # -- answers ----------------------------------------------------------------------

    def signed(self) -> bytes:
        with self._lock:
            tree = self._log.tree()
        return sign_note(format_tree(tree).decode(), [self.signer])

    def lookup(self, mv: ModuleVersion) -> bytes | None:
        with self._lock:
            record_id = self._log.ids.get(mv)
        if record_id is None:
            record = self.gosum(mv)
            if record is None:
                return None
            record_id = self.add(mv, record)
        with self._lock:
            text = self._log.records[record_id]
            tree = self._log.tree()
        return format_record(record_id, text) + sign_note(format_tree(tree).decode(), [self.signer])

    def tile(self, path: str) -> bytes | None:
        try:
            tile = parse_tile_path(path)
        except TlogError:
            return None
        with self._lock:
            log = self._log
            if not tile_width_available(tile, len(log.records)):
                return None
            if tile.l == DATA_LEVEL:
                start = tile.n << tile.h
                return b"".join(r + b"\n" for r in log.records[start : start + tile.w])
            return read_tile_data(tile, log.read)


def _handler_for(db: TestSumdb) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            with db._lock:
                db.requests.append(path)
            body: bytes | None = None
            if path == "/latest":
                body = db.signed()
            elif path.startswith("/lookup/"):
                escaped_path, _, escaped_version = path.removeprefix("/lookup/").partition("@")
                mv = ModuleVersion(unescape_path(escaped_path), unescape_version(escaped_version))
                body = db.lookup(mv)
            elif path.startswith("/tile/"):
                body = db.tile(path[1:])
            if body is None:
                self._send(404, b"not found\n")
            else:
                self._send(200, body)

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
