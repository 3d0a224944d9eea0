"""The checksum-database proxy: ``/sumdb/<name>/...`` forwarded to public databases.

The go command, when GOSUMDB names a database without a URL, first asks its
GOPROXY for ``/sumdb/<name>/supported`` and then sends its lookups and tile
reads there. modgate answers for every configured database (by default
sum.golang.org at https://sum.golang.org), so clients verify modules without
reaching the database themselves.

What is kept, and for how long:

- complete tiles (``tile/8/L/NNN`` and ``tile/8/data/NNN``) never change:
  kept in the store forever;
- lookups: kept in the store forever (the record of a version never changes;
  the tree note inside an old answer is still a valid, older tree head);
  a lookup is checked (record syntax, and the note's signature when the
  database's key is known) before it is kept;
- partial tiles (``.p/W``), ``latest`` and not-found answers: in memory for
  ``SHORT_TTL`` seconds.

The proxy is also the verifier's client (``sumverify.py``): it reads the
public database through ``fetch``, with the same caches.
"""

from __future__ import annotations

import asyncio
import http
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from modgate.formats.gosumdb import KNOWN_KEYS, SUM_GOLANG_ORG
from modgate.formats.note import NoteError, Verifier, open_note, parse_verifier
from modgate.formats.tile import Tile
from modgate.formats.tlog import TlogError, parse_record
from modgate.metrics import Metrics
from modgate.protocol.errors import (
    GoneError,
    ModgateError,
    NotFoundError,
    UpstreamError,
    UpstreamTimeoutError,
)
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.goproxy import redact_url
from modgate.protocol.module import ModuleVersion
from modgate.service.singleflight import SingleFlight
from modgate.service.storereads import StoreReads
from modgate.service.ttlcache import NegativeCache, TTLCache
from modgate.store.base import Store

DEFAULT_DATABASES = f"{SUM_GOLANG_ORG}=https://{SUM_GOLANG_ORG}"
SHORT_TTL = 30.0
"""Seconds partial tiles, ``latest`` and not-found answers are reused."""
SHORT_MAX_BYTES = 16 << 20
"""Memory for partial tiles and ``latest`` answers (each at most a tile of 8 KiB)."""
MAX_ANSWER_BYTES = 1 << 20
"""No checksum-database answer is this large (a full tile is 8 KiB)."""
CACHE_PREFIX = "sumdb-proxy"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SPEC = re.compile(r"(?P<key>[^=\s]+)(=(?P<url>https?://\S+))?")


@dataclass(frozen=True, slots=True)
class Database:
    """A public checksum database: its name, base URL and (when known) its verifier key."""

    name: str
    url: str
    verifier: Verifier | None


def parse_databases(text: str) -> tuple[Database, ...]:
    """Read ``NAME[+HASH+KEY][=URL],...``; raises ValueError naming the bad entry.

    A bare name gets ``https://NAME``; the key is needed for verify-on-ingest
    and is built in for sum.golang.org.
    """
    out: dict[str, Database] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        m = _SPEC.fullmatch(entry)
        if m is None:
            raise ValueError(f"{entry!r} is not NAME[+HASH+KEY][=URL]")
        key = m.group("key")
        name = key.split("+", 1)[0]
        if _NAME.fullmatch(name) is None:
            raise ValueError(f"{name!r} is not a checksum database name (use a host name)")
        verifier = None
        if "+" in key:
            try:
                verifier = parse_verifier(key)
            except NoteError as exc:
                raise ValueError(f"{entry!r}: {exc}") from None
        elif name in KNOWN_KEYS:
            verifier = parse_verifier(KNOWN_KEYS[name])
        url = (m.group("url") or f"https://{name}").rstrip("/")
        parts = urlsplit(url)
        if not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"{entry!r}: the URL needs a host and no query or fragment")
        if name in out:
            raise ValueError(f"checksum database {name!r} is configured twice")
        out[name] = Database(name, url, verifier)
    return tuple(out.values())


def lookup_path(mv: ModuleVersion) -> str:
    return f"lookup/{escape_path(mv.path)}@{escape_version(mv.version)}"


class SumdbProxy:
    """Reads configured public databases through ``client``, with the caches above."""

    def __init__(
        self,
        store: Store,
        client: httpx.AsyncClient,
        databases: tuple[Database, ...],
        metrics: Metrics,
    ) -> None:
        self.store = store
        self._reads = StoreReads(store)
        self.client = client
        self.databases = {db.name: db for db in databases}
        self.metrics = metrics
        self._short: TTLCache[bytes] = TTLCache(SHORT_TTL, max_bytes=SHORT_MAX_BYTES, weigh=len)
        self._missing = NegativeCache(SHORT_TTL)
        self._flight = SingleFlight(metrics)

    def database(self, name: str) -> Database | None:
        return self.databases.get(name)

    async def lookup(self, name: str, mv: ModuleVersion) -> bytes:
        return await self.fetch(name, lookup_path(mv))

    async def tile(self, name: str, tile: Tile) -> bytes:
        return await self.fetch(name, tile.path())

    async def fetch(self, name: str, path: str) -> bytes:
        """The answer of database ``name`` to ``path`` (``latest``, ``lookup/...``, ``tile/...``).

        ``path`` must already be validated. Raises NotFoundError for an
        unknown database or a not-found answer, UpstreamError for failures.
        """
        db = self.databases.get(name)
        if db is None:
            raise NotFoundError(name, f"checksum database {name} is not proxied here")
        key = f"{name}/{path}"
        durable = _durable(path)
        if durable:
            stored = await self._reads.get_meta(f"{CACHE_PREFIX}/{key}")
            if stored is not None:
                self.metrics.inc("modgate_cache_hits_total", (("layer", "sumdb"),))
                return stored.data
        else:
            cached = self._short.get(key)
            if cached is not None:
                self.metrics.inc("modgate_cache_hits_total", (("layer", "sumdb"),))
                return cached
        missing = self._missing.error(key)
        if missing is not None:
            self.metrics.inc("modgate_negative_cache_hits_total")
            raise missing

        async def fetch() -> bytes:
            try:
                data = await self._get(db, path)
            except NotFoundError as exc:
                self._missing.remember(key, exc)
                raise
            if path.startswith("lookup/"):
                self._check_lookup(db, path, data)
            if durable:  # a write (fsync, or an object store's round trip): off the loop
                await asyncio.to_thread(self.store.put_meta, f"{CACHE_PREFIX}/{key}", data)
            else:
                self._short.put(key, data)
            return data

        return await self._flight.do(key, fetch)

    def _check_lookup(self, db: Database, path: str, data: bytes) -> None:
        subject = f"{db.name}/{path}"
        try:
            _, _, note = parse_record(data)
            if db.verifier is not None:
                open_note(note, [db.verifier])
        except (TlogError, NoteError) as exc:
            raise UpstreamError(
                subject, f"{db.url} sent an answer that does not verify: {exc}"
            ) from None

    async def _get(self, db: Database, path: str) -> bytes:
        url = f"{db.url}/{path}"
        shown = f"{redact_url(db.url)}/{path}"
        labels = (("upstream", redact_url(db.url)),)
        subject = f"{db.name}/{path}"
        self.metrics.inc("modgate_upstream_fetches_total", labels)
        started = time.monotonic()
        try:
            async with self.client.stream("GET", url) as resp:
                if resp.status_code != http.HTTPStatus.OK:
                    raise self._status_error(subject, shown, resp.status_code, labels)
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise UpstreamError(
                            subject, f"{shown} sent more than {MAX_ANSWER_BYTES} bytes"
                        )
                return bytes(body)
        except httpx.TimeoutException as exc:
            self.metrics.inc("modgate_upstream_errors_total", (*labels, ("kind", "timeout")))
            raise UpstreamTimeoutError(
                subject, f"{shown} did not answer in time; check the network or --sumdb"
            ) from exc
        except httpx.HTTPError as exc:
            self.metrics.inc("modgate_upstream_errors_total", (*labels, ("kind", "connect")))
            raise UpstreamError(
                subject,
                f"cannot reach checksum database {redact_url(db.url)} ({type(exc).__name__}); "
                "check --sumdb, the network and any HTTP(S)_PROXY setting",
            ) from exc
        finally:
            self.metrics.observe(
                "modgate_upstream_latency_seconds", time.monotonic() - started, labels
            )

    def _status_error(
        self, subject: str, shown: str, status: int, labels: tuple[tuple[str, str], ...]
    ) -> ModgateError:
        reason = f"{shown} answered {status}"
        if status == http.HTTPStatus.NOT_FOUND:
            return NotFoundError(subject, reason)
        if status == http.HTTPStatus.GONE:
            return GoneError(subject, reason)
        self.metrics.inc("modgate_upstream_errors_total", (*labels, ("kind", "status")))
        return UpstreamError(subject, f"{reason}; the checksum database is failing, try later")


def _durable(path: str) -> bool:
    """Whether the answer to ``path`` never changes: lookups and complete tiles."""
    if path.startswith("lookup/"):
        return True
    return path.startswith("tile/") and ".p/" not in path
