"""The ``/sumdb/<name>/...`` endpoints: modgate's private log and the proxied public ones.

``/sumdb/<name>/supported``, ``/latest``, ``/lookup/<module>@<version>`` and
``/tile/8/...``. For the private log's name they are answered from the log;
for a configured public database they are forwarded (``sumdbproxy.py``);
anything else is 404, which sends the go command on to its next GOPROXY entry.

A lookup names a module, so a lookup of a module that matches ``--private``
is never forwarded: the private log answers it when it is asked, and a
public database's name gets a 404 whose body tells the developer to set
GONOSUMDB (or to use modgate's private database). Tiles and ``latest``
carry no module name.

The go command accepts only one checksum database, so a client that trusts
modgate's log looks up *every* module in it, public ones and
``golang.org/toolchain`` included. A lookup for a version the log does not
hold yet therefore fetches the version through the gateway first, which
verifies it (the public database for public modules) and records it; a
version that was already stored before (imported, or stored before the log
existed) is re-hashed from the store, verified the same way, and recorded.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modgate.formats.dirhash import hash_gomod, hash_zip
from modgate.formats.tile import DATA_LEVEL, TILE_HEIGHT, Tile, parse_tile_path
from modgate.formats.tlog import TlogError
from modgate.formats.zipentry import InflateMemo, ZipReadError
from modgate.metrics import Metrics
from modgate.protocol.errors import InvalidModuleError, InvalidRequestError, NotFoundError
from modgate.protocol.escape import unescape_path, unescape_version
from modgate.protocol.module import ModuleVersion, check
from modgate.protocol.patterns import PatternList
from modgate.service.gateway import Gateway, GatewayOptions
from modgate.service.negatives import SharedNegatives
from modgate.service.routing import SourceRouter
from modgate.service.security import STORE_TAMPERED, security_event
from modgate.service.singleflight import SingleFlight
from modgate.service.sumdbproxy import SHORT_TTL, SumdbProxy, lookup_path
from modgate.service.sumlog import SumLog
from modgate.service.sumverify import SumVerifier
from modgate.store.base import Kind, Store

T = TypeVar("T")

SUMDB_PREFIX = "/sumdb/"
MAX_SUMDB_TARGET = 1024
SHORT_MAX_AGE = int(SHORT_TTL)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_VISIBLE_FIRST = 0x21
_VISIBLE_LAST = 0x7E
_USAGE = "expected /sumdb/<name>/supported, /latest, /lookup/<module>@<version> or /tile/..."


class SumdbEndpoint(enum.Enum):
    SUPPORTED = "supported"
    LATEST = "latest"
    LOOKUP = "lookup"
    TILE = "tile"


@dataclass(frozen=True, slots=True)
class SumdbRequest:
    name: str
    endpoint: SumdbEndpoint
    mv: ModuleVersion | None = None
    tile: Tile | None = None


@dataclass(frozen=True, slots=True)
class SumdbAnswer:
    """A body to send with 200: ``binary`` for hash tiles, ``immutable`` or ``max_age`` seconds."""

    body: bytes
    binary: bool = False
    immutable: bool = False
    max_age: int = 0


def _decode(target: str) -> str:
    """Percent-decode once; only visible ASCII may appear before and after."""
    bad = InvalidRequestError("", f"malformed checksum database path; {_USAGE}")
    if len(target) > MAX_SUMDB_TARGET or "?" in target or "#" in target:
        raise bad
    out: list[str] = []
    i = 0
    while i < len(target):
        c = target[i]
        if c == "%":
            pair = target[i + 1 : i + 3]
            if len(pair) != 2 or any(h not in _HEX_DIGITS for h in pair):
                raise bad
            c = chr(int(pair, 16))
            i += 3
        else:
            i += 1
        if not _VISIBLE_FIRST <= ord(c) <= _VISIBLE_LAST or c == "\\":
            raise bad
        out.append(c)
    return "".join(out)


def parse_sumdb_path(target: str) -> SumdbRequest:
    """Validate ``/sumdb/<name>/...``; InvalidRequestError (400) or NotFoundError (404)."""
    path = _decode(target)
    if not path.startswith(SUMDB_PREFIX):
        raise InvalidRequestError("", _USAGE)
    name, _, rest = path[len(SUMDB_PREFIX) :].partition("/")
    if not name:
        raise InvalidRequestError("", _USAGE)
    if rest == SumdbEndpoint.SUPPORTED.value:
        return SumdbRequest(name, SumdbEndpoint.SUPPORTED)
    if rest == SumdbEndpoint.LATEST.value:
        return SumdbRequest(name, SumdbEndpoint.LATEST)
    if rest.startswith("lookup/"):
        escaped_path, at, escaped_version = rest.removeprefix("lookup/").partition("@")
        if not at or "@" in escaped_version:
            raise InvalidRequestError(name, "invalid module@version syntax")
        mv = ModuleVersion(unescape_path(escaped_path), unescape_version(escaped_version))
        check(mv.path, mv.version)
        return SumdbRequest(name, SumdbEndpoint.LOOKUP, mv=mv)
    if rest.startswith("tile/"):
        try:
            tile = parse_tile_path(rest)
        except TlogError:
            raise InvalidRequestError(name, "invalid tile syntax") from None
        if tile.h != TILE_HEIGHT:
            raise NotFoundError(name, f"only tiles of height {TILE_HEIGHT} are served")
        return SumdbRequest(name, SumdbEndpoint.TILE, tile=tile)
    raise NotFoundError(name, _USAGE)


class SumdbService:
    """Answers every ``/sumdb/`` request; the server calls ``answer``."""

    def __init__(
        self,
        gateway: Gateway,
        proxy: SumdbProxy | None,
        log: SumLog | None,
        verifier: SumVerifier | None,
    ) -> None:
        self.gateway = gateway
        self.proxy = proxy
        self.log = log
        self.verifier = verifier
        self._flight = SingleFlight(gateway.metrics)

    def names(self) -> list[str]:
        names = [] if self.log is None else [self.log.name]
        if self.proxy is not None:
            names += [n for n in self.proxy.databases if n not in names]
        return names

    async def answer(self, target: str) -> SumdbAnswer:
        request = parse_sumdb_path(target)
        if self.log is not None and request.name == self.log.name:
            return await self._private(request, self.log)
        if request.mv is not None and self.gateway.router.private.matches(request.mv.path):
            raise NotFoundError(str(request.mv), self._private_help(request.name, request.mv))
        if self.proxy is not None and self.proxy.database(request.name) is not None:
            return await self._proxied(request, self.proxy)
        served = ", ".join(self.names()) or "none"
        raise NotFoundError(
            request.name,
            f"no checksum database {request.name} here (this modgate serves: {served})",
        )

    def _private_help(self, name: str, mv: ModuleVersion) -> str:
        globs = self.gateway.router.private.patterns
        pattern = next((g for g in globs if PatternList((g,)).matches(mv.path)), mv.path)
        text = (
            f"a private module (--private {pattern}) is never looked up in the public "
            f"checksum database {name}; set GONOSUMDB={pattern} (or GOPRIVATE) on the client"
        )
        if self.log is not None:
            text += f", or use modgate's private checksum database {self.log.name} (GOSUMDB)"
        return text

    async def _private(self, request: SumdbRequest, log: SumLog) -> SumdbAnswer:
        if request.endpoint is SumdbEndpoint.SUPPORTED:
            return SumdbAnswer(b"", max_age=SHORT_MAX_AGE)
        if request.endpoint is SumdbEndpoint.LATEST:
            return SumdbAnswer(await self._read(log.signed_tree))
        if request.endpoint is SumdbEndpoint.LOOKUP and request.mv is not None:
            mv = request.mv
            found = await self._read(log.lookup_answer, mv)
            if found is None:
                await self._flight.do(f"sumdb-record:{mv}", lambda: self._record(mv))
                found = await self._read(log.lookup_answer, mv)
            if found is None:
                raise NotFoundError(str(mv), f"not recorded in checksum log {log.name}")
            return SumdbAnswer(found, max_age=SHORT_MAX_AGE)
        tile = request.tile
        if tile is None:
            raise NotFoundError(request.name, _USAGE)
        data = await self._read(log.tile, tile)
        if data is None:
            raise NotFoundError(request.name, f"{tile.path()} is not in checksum log {log.name}")
        return SumdbAnswer(
            data,
            binary=tile.l != DATA_LEVEL,
            immutable=tile.full,
            max_age=SHORT_MAX_AGE,
        )

    async def _read(self, read: Callable[..., T], *args: Any) -> T:
        """A read of the log's records: in a thread when they are in an object store."""
        if self.gateway.reads.remote:
            return await asyncio.to_thread(read, *args)
        return read(*args)

    async def _record(self, mv: ModuleVersion) -> None:
        """Fetch and verify ``mv`` (recorded on the way), or verify and record a stored one."""
        mod = await self.gateway.mod_bytes(mv)
        await self.gateway.zip(mv)
        if self.log is None or self.verifier is None:
            return
        if await self._read(self.log.find, mv) is not None:
            return
        path = await self.gateway.reads.local_path(mv, Kind.ZIP)
        if path is None:
            raise NotFoundError(str(mv), "the zip vanished from the store; try again")
        zip_h1 = await asyncio.to_thread(_zip_hash, mv, path)
        stored = await self.gateway.reads.get(mv, Kind.ZIPHASH)
        if stored is not None and stored.decode("utf-8", "replace").strip() != zip_h1:
            detail = (
                f"the stored zip hashes to {zip_h1}, not to the {stored.decode().strip()} "
                "recorded when it was verified: the store was modified; refused (delete the "
                "version from the store to fetch it again)"
            )
            security_event(self.gateway.metrics, STORE_TAMPERED, str(mv), detail)
            raise InvalidModuleError(str(mv), detail)
        gomod_h1 = hash_gomod(mod)
        await self.verifier.prepare(mv)
        self.verifier.check(mv, Kind.MOD, gomod_h1)
        self.verifier.check(mv, Kind.ZIP, zip_h1)
        await asyncio.to_thread(self.verifier.stored, mv, gomod_h1, zip_h1)

    async def _proxied(self, request: SumdbRequest, proxy: SumdbProxy) -> SumdbAnswer:
        name = request.name
        if request.endpoint is SumdbEndpoint.SUPPORTED:
            return SumdbAnswer(b"", max_age=SHORT_MAX_AGE)
        if request.endpoint is SumdbEndpoint.LATEST:
            return SumdbAnswer(await proxy.fetch(name, "latest"))
        if request.endpoint is SumdbEndpoint.LOOKUP and request.mv is not None:
            return SumdbAnswer(
                await proxy.fetch(name, lookup_path(request.mv)), max_age=SHORT_MAX_AGE
            )
        tile = request.tile
        if tile is None:
            raise NotFoundError(name, _USAGE)
        return SumdbAnswer(
            await proxy.fetch(name, tile.path()),
            binary=tile.l != DATA_LEVEL,
            immutable=tile.full,
            max_age=SHORT_MAX_AGE,
        )


def _zip_hash(mv: ModuleVersion, path: Path) -> str:
    try:
        with path.open("rb") as f:
            return hash_zip(f)
    except (OSError, ZipReadError) as exc:
        raise InvalidModuleError(str(mv), f"the stored zip cannot be read: {exc}") from exc


class SumdbGateway(Gateway):
    """The gateway with the ``/sumdb/`` endpoints beside the GOPROXY ones."""

    def __init__(
        self,
        store: Store,
        router: SourceRouter,
        metrics: Metrics,
        options: GatewayOptions | None = None,
        closers: tuple[Callable[[], Awaitable[None]], ...] = (),
        *,
        verifier: SumVerifier | None = None,
        proxy: SumdbProxy | None = None,
        log: SumLog | None = None,
        inflated: InflateMemo | None = None,
        shared_negatives: SharedNegatives | None = None,
    ) -> None:
        super().__init__(
            store, router, metrics, options, closers,
            verifier=verifier, inflated=inflated, shared_negatives=shared_negatives,
        )  # fmt: skip
        self.sumdb_service = SumdbService(self, proxy, log, verifier)

    async def sumdb(self, target: str) -> SumdbAnswer:
        """The answer to a raw ``/sumdb/...`` request-target."""
        return await self.sumdb_service.answer(target)
