"""From a request to a ``Reply``: local pages, the hot set, then the gateway.

The connection serves hot-set hits itself on its fast path; everything else
comes here. Immutable answers small enough for the hot set are rendered once
and kept there; larger files are answered by path and streamed by the
connection. A ModgateError becomes its status with the one-line reason as
body; any other exception is a 500 that says "internal error" only and is
logged with its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from pathlib import Path

from modgate.protocol.errors import ModgateError
from modgate.protocol.request import Endpoint, ProxyRequest, parse_proxy_path
from modgate.server.accesslog import log_path
from modgate.server.hotcache import NEVER, HotEntry
from modgate.server.ports import GatewayLike, SumdbGatewayLike
from modgate.server.responses import (
    CC_IMMUTABLE,
    CC_NO_STORE,
    CT_JSON,
    CT_METRICS,
    CT_TEXT,
    CT_ZIP,
    Reply,
    cache_control_max_age,
    error_reply,
    etag_for,
    etag_for_file,
    etag_matches,
    not_modified,
    redirect_reply,
    render_fields,
    weak_etag_for,
)
from modgate.server.state import ServerState
from modgate.service.answer import Answer

log = logging.getLogger("modgate.server")

GET = b"GET"
HEAD = b"HEAD"
HEALTHZ = b"/healthz"
READYZ = b"/readyz"
METRICS = b"/metrics"
SUMDB = b"/sumdb/"
CT_OCTETS = b"application/octet-stream"
INTERNAL_ERROR = "internal error"
FILE_ETAGS_MAX = 4096
"""Entity tags of large files remembered, so each file is hashed once."""

CONTENT_TYPES = {
    Endpoint.LIST: CT_TEXT,
    Endpoint.LATEST: CT_JSON,
    Endpoint.INFO: CT_JSON,
    Endpoint.MOD: CT_TEXT,
    Endpoint.ZIP: CT_ZIP,
}


STORE_PLACEHOLDER = "<store>"
INTERNAL_STATUS = 500


def _spellings(root: Path) -> tuple[str, ...]:
    """The absolute and resolved forms of ``root``, longest first."""
    forms = {str(root.absolute())}
    with contextlib.suppress(OSError):
        forms.add(str(root.resolve()))
    return tuple(sorted((f for f in forms if len(f) > 1), key=len, reverse=True))


class RequestRouter:
    """Turns one HTTP request into a ``Reply``: local pages, the hot set, then the gateway."""

    def __init__(self, gateway: GatewayLike, state: ServerState) -> None:
        self.gateway = gateway
        self.state = state
        self._file_etags: OrderedDict[tuple[Path, int], bytes] = OrderedDict()
        root = getattr(getattr(gateway, "store", None), "root", None)
        self._store_paths = _spellings(root) if isinstance(root, Path) else ()
        """How the store's directory may appear in a message; never shown to a client."""

    def _error(self, err: ModgateError, route: str) -> Reply:
        """The error answer: one line, without the store's location (it goes to the log)."""
        text = str(err)
        public = self.public(text)
        if public != text or err.status >= INTERNAL_STATUS:
            log.warning(
                "error answer",
                extra={"event": "error_answer", "status": err.status, "error": text},
            )
        return error_reply(err.status, public, route)

    def public(self, text: str) -> str:
        """``text`` with every spelling of the store's path replaced by ``<store>``."""
        for spelling in self._store_paths:
            text = text.replace(spelling, STORE_PLACEHOLDER)
        return text

    async def reply(
        self, method: bytes, target: bytes, if_none_match: bytes | None, client: str = ""
    ) -> Reply:
        """The reply to one request; ``client`` (its address) only guides fetching ahead."""
        reply = await self._reply(method, target, client)
        etag = reply.etag
        if if_none_match is not None and etag is not None and etag_matches(if_none_match, etag):
            return not_modified(etag, reply.route, hit=reply.hit)
        return reply

    async def _reply(self, method: bytes, target: bytes, client: str) -> Reply:
        if method not in (GET, HEAD):
            return error_reply(405, f"method {method.decode('latin-1')} not allowed; use GET")
        path = target.split(b"?", 1)[0]
        if path == HEALTHZ:
            return self._local(200, b"ok\n", CT_TEXT, "healthz")
        if path == READYZ:
            ok, reason = await self.gateway.ready()
            reason = self.public(reason)
            return self._local(200 if ok else 503, (reason + "\n").encode(), CT_TEXT, "readyz")
        if path == METRICS:
            state = self.state
            state.flush_metrics()
            metrics = self.gateway.metrics
            if state.workers is None:
                page = metrics.render()
            else:
                page = metrics.render(state.workers.peers(), state.workers.labels)
            return self._local(200, page, CT_METRICS, "metrics")
        if path.startswith(SUMDB):
            return await self._sumdb(target)
        entry = self.state.hot.get(target, self.state.now)
        if entry is not None:
            body = entry.data[entry.head_len :]
            return Reply(200, entry.head, body, size=entry.body_len, route=entry.key[0], hit=True,
                         etag=entry.etag)  # fmt: skip
        route = "other"
        try:
            request = parse_proxy_path(target.decode("latin-1"))
            route = request.endpoint.value
            answer = await self._ask(request, client)
            return await self._render(target, request, answer)
        except ModgateError as err:
            return self._error(err, route)
        except Exception:
            log.exception("internal error serving %s", log_path(target))
            return error_reply(500, INTERNAL_ERROR, route)

    async def _sumdb(self, target: bytes) -> Reply:
        """Checksum database endpoints; 404 (the go command tries its next proxy) if none."""
        if not isinstance(self.gateway, SumdbGatewayLike):
            return error_reply(404, "no checksum database is served here", "sumdb")
        try:
            answer = await self.gateway.sumdb(target.decode("latin-1"))
        except ModgateError as err:
            return self._error(err, "sumdb")
        except Exception:
            log.exception("internal error serving %s", log_path(target))
            return error_reply(500, INTERNAL_ERROR, "sumdb")
        cache_control = CC_NO_STORE
        if answer.immutable:
            cache_control = CC_IMMUTABLE
        elif answer.max_age > 0:
            cache_control = cache_control_max_age(answer.max_age)
        content_type = CT_OCTETS if answer.binary else CT_TEXT
        head = render_fields(content_type, len(answer.body), cache_control)
        return Reply(200, head, answer.body, size=len(answer.body), route="sumdb")

    def _local(self, status: int, body: bytes, content_type: bytes, route: str) -> Reply:
        head = render_fields(content_type, len(body), CC_NO_STORE)
        return Reply(status, head, body, size=len(body), route=route)

    async def _ask(self, request: ProxyRequest, client: str) -> Answer:
        endpoint = request.endpoint
        gateway = self.gateway
        if endpoint is Endpoint.LIST:
            return await gateway.list(request.module)
        if endpoint is Endpoint.LATEST:
            return await gateway.latest(request.module)
        if endpoint is Endpoint.INFO:
            return await gateway.info(request.module, request.version or "", client)
        if endpoint is Endpoint.MOD:
            return await gateway.mod(request.module_version())
        return await gateway.zip(request.module_version(), client)

    async def _render(self, target: bytes, request: ProxyRequest, answer: Answer) -> Reply:
        route = request.endpoint.value
        if answer.location is not None:  # the URL carries a signature: never kept or logged
            return redirect_reply(answer.location, route, fetched=answer.fetched)
        content_type = CONTENT_TYPES[request.endpoint]
        hot = self.state.hot
        body = answer.body
        if body is None and answer.path is not None and hot.fits(answer.size):
            body = answer.path.read_bytes()
        if body is None:
            if answer.path is None:
                raise ValueError(
                    f"{request.subject}: the gateway answered with neither body nor path"
                )
            return await self._file_reply(request, answer.path, answer, content_type)
        if answer.immutable:
            etag: bytes | None = (
                weak_etag_for(answer.validator) if answer.validator else etag_for(body)
            )
            cache_control = CC_IMMUTABLE
            expires = NEVER
        else:
            etag = None
            max_age = self.gateway.list_max_age
            cache_control = cache_control_max_age(max_age)
            expires = self.state.now + max_age if max_age > 0 and not answer.stale else -1.0
        head = render_fields(content_type, len(body), cache_control, etag)
        if expires >= 0 and hot.fits(len(body)):
            entry = HotEntry(head + body, len(head), etag, (route, 200), expires,
                             module=request.module, subject=request.subject)  # fmt: skip
            hot.put(target, entry)
        return Reply(
            200, head, body, size=len(body), route=route, etag=etag, fetched=answer.fetched
        )

    async def _file_reply(
        self, request: ProxyRequest, path: Path, answer: Answer, content_type: bytes
    ) -> Reply:
        route = request.endpoint.value
        if answer.immutable and answer.validator:
            etag: bytes | None = weak_etag_for(answer.validator)
            cache_control = CC_IMMUTABLE
        elif answer.immutable:
            etag = await self._file_etag(path, answer.size)
            cache_control = CC_IMMUTABLE
        else:
            etag = None
            cache_control = cache_control_max_age(self.gateway.list_max_age)
        head = render_fields(content_type, answer.size, cache_control, etag)
        return Reply(
            200, head, path=path, size=answer.size, route=route, etag=etag, fetched=answer.fetched
        )

    async def _file_etag(self, path: Path, size: int) -> bytes:
        key = (path, size)
        etag = self._file_etags.get(key)
        if etag is None:
            etag = await asyncio.to_thread(etag_for_file, path)
            self._file_etags[key] = etag
            if len(self._file_etags) > FILE_ETAGS_MAX:
                self._file_etags.popitem(last=False)
        else:
            self._file_etags.move_to_end(key)
        return etag
