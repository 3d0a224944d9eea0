"""The HTTP/1.1 connection: httptools parsing, the hot path, pipelining, limits.

A request whose target is in the hot set is answered inside the parser's
callback: one dict lookup, two buffers appended to the output list and a few
integer additions; the output list is written with one ``writelines`` after
each ``feed_data``, so pipelined hits leave in one system call. Every other
request goes to a queue served in order by one task per connection, which
asks the ``RequestRouter``; while that task runs, later requests (hits included)
wait in the queue so responses keep the request order. When the queue is
long or the client stops reading, the connection stops reading too.

A hot request that arrived as exactly one whole read is remembered by its
bytes (``ServerState.known``, bounded). When the same bytes arrive again as one
read while the parser is between requests, they are the same request: it is
answered without parsing (one dict lookup on the bytes), after the same checks
of the entry's freshness and the credentials. Any other read goes through the
parser, so what was not parsed before is never answered this way.

Limits: request-target length (414), header count and size (431), no request
bodies (413 / 400, then close), malformed requests (400, then close), a
deadline for the request head (slow clients) and for idle keep-alive
connections, checked by ``check_timeouts`` once per server tick.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from bisect import bisect_left
from collections import deque
from typing import cast

import httptools

from modgate.metrics import LATENCY_BUCKETS
from modgate.server.accesslog import FLUSH_BATCH
from modgate.server.admission import REFUSAL_LINGER_MAX, refusal_response
from modgate.server.auth.gate import ConnAccess
from modgate.server.filesend import FileChangedError, sendfile_file
from modgate.server.forwarded import FORWARDED, X_FORWARDED_FOR
from modgate.server.forwarded import NAMES as FORWARDING_NAMES
from modgate.server.hotcache import HotEntry
from modgate.server.pending import PendingRequest, StopParsing
from modgate.server.responses import ConnMode, error_reply
from modgate.server.router import RequestRouter
from modgate.server.state import (
    CACHE_HIT,
    CACHE_MISS,
    CACHE_NONE,
    FIRST_BOUND,
    KNOWN_MAX_BYTES,
    KnownRequest,
    ServerState,
)

log = logging.getLogger("modgate.server")

GET = b"GET"
HEAD = b"HEAD"
HTTP_10 = "1.0"
NO_BODY_TE = 400
NO_BODY_CL = 413
# Lengths of the header names the server looks at, to skip lower-casing the rest.
CONTENT_LENGTH = b"content-length"
TRANSFER_ENCODING = b"transfer-encoding"
IF_NONE_MATCH = b"if-none-match"
CONNECTION = b"connection"
WATCHED_NAMES = frozenset((CONTENT_LENGTH, TRANSFER_ENCODING, IF_NONE_MATCH, CONNECTION))
WATCHED_NAME_LENGTHS = frozenset(len(name) for name in WATCHED_NAMES)
AUTHORIZATION = b"authorization"
HOST = b"host"
AUTH_NAMES = frozenset((AUTHORIZATION, HOST))
"""Read only while authentication is on: the credentials, and the host for 401 bodies."""
WATCHED_WITH_AUTH = WATCHED_NAMES | AUTH_NAMES
WATCHED_WITH_AUTH_LENGTHS = frozenset(len(name) for name in WATCHED_WITH_AUTH)
LINGER_TIMEOUT = 2.0
"""Seconds input is read and discarded after the last response before closing."""
HEAD_SLACK = 64 * 1024
"""Raw bytes of an unfinished request head tolerated beyond the target and header limits."""


class HttpConnection(asyncio.Protocol):
    def __init__(
        self,
        state: ServerState,
        router: RequestRouter,
        admitted: bool = False,
        refused: str | None = None,
    ) -> None:
        settings = state.settings
        self._state = state
        self._router = router
        self._hot = state.hot.entries
        self._files = state.hot.files
        self._min_sendfile = self._files.min_body if self._files.enabled else 1 << 62
        self._sockfd = -1
        self._log = state.access_log
        self._records = None if self._log is None else self._log.records
        self._max_target = settings.max_target
        self._max_headers = settings.max_headers
        self._max_header_bytes = settings.max_header_bytes
        self._max_head_raw = settings.max_target + settings.max_header_bytes + HEAD_SLACK
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._remote = "-"
        self._out: list[bytes] = []
        self._queue: deque[PendingRequest] = deque()
        self._task: asyncio.Task[None] | None = None
        self._fast = True  # no task, writable, not shutting down: hits may be written at once
        self._write_paused = False
        self._paused_since = 0.0
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._stopped = False  # the parser is fed no more data
        self._close_after = False  # close once the current response is written
        self._lost = False
        self._lingering = False
        # Counted by the server's admission (released when lost); ``admitted`` says the
        # TLS acceptor counted it already, before its handshake (modgate.server.tlsaccept).
        self._admitted = admitted
        self._refused = refused  # refused already (by the TLS acceptor): answer 503
        self._refused_lingering = False
        # The request being parsed.
        self._url = b""
        self._nheaders = 0
        self._hbytes = 0
        self._special = False  # a header below was seen; the three are valid only then
        self._inm: bytes | None = None
        self._body = 0
        self._conn_header = False
        self._head_started = state.now  # 0.0 once the head is complete
        self._head_raw = 0
        self._last_active = state.now
        self._t0 = 0.0
        # Between two requests: the parser was fed whole requests only (or nothing yet).
        self._between = True
        # Requests seen before, by their exact bytes (None: not used on this connection).
        self._known: dict[bytes, KnownRequest] | None = state.known
        self._candidate: KnownRequest | None = None
        # Access control (None while authentication is off).
        self._access: ConnAccess | None = None
        self._authz: bytes | None = None
        self._host: bytes | None = None
        auth = state.access is not None
        self._watched = WATCHED_WITH_AUTH if auth else WATCHED_NAMES
        self._watched_lengths = WATCHED_WITH_AUTH_LENGTHS if auth else WATCHED_NAME_LENGTHS
        # A trusted reverse proxy as the peer: the client is named by its headers.
        self._proxies = settings.trusted_proxies
        self._via_proxy = False
        self._client = "-"
        self._xff: bytes | None = None
        self._fwd: bytes | None = None
        self._xproto: bytes | None = None
        self._tls = self._conn_tls = False

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        # sendfile() writes to the socket itself: never under TLS, which it would bypass.
        plain = transport.get_extra_info("sslcontext") is None
        if sock is not None and sock.type == socket.SOCK_STREAM and plain:
            self._sockfd = sock.fileno()
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self._remote = str(peer[0])
        self._client = self._remote
        self._conn_tls = self._tls = not plain
        if self._proxies is not None and self._proxies.trusts(self._remote):
            self._via_proxy = True
            self._watched = self._watched | FORWARDING_NAMES
            self._watched_lengths = frozenset(len(name) for name in self._watched)
            self._known = None  # the client is named by headers, which a request may vary
        if not self._admitted and not self._admit(transport):
            return
        if self._state.access is not None:
            self._access = self._state.access.connection(self._remote, not plain)
        self._state.connections.add(self)
        if self._state.closing:
            transport.close()

    def _admit(self, transport: asyncio.Transport) -> bool:
        """Count the connection, or answer 503 and close it when a limit is reached."""
        state = self._state
        admission = state.admission
        refused = self._refused or admission.admit(
            self._remote, state.now, per_client=not self._via_proxy
        )
        if refused is None:
            self._admitted = True
            return True
        self._stopped = True
        prefix = state.prefix(503, ConnMode.CLOSE)
        transport.write(refusal_response(prefix, admission.max_connections, refused))
        state.count("other", 503, 0, False)
        if admission.lingering < REFUSAL_LINGER_MAX:
            admission.lingering += 1
            self._refused_lingering = True
            self._close(linger=True)
        else:
            transport.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._admitted:
            self._admitted = False
            self._state.admission.release(self._remote, per_client=not self._via_proxy)
        elif self._refused_lingering:
            self._refused_lingering = False
            self._state.admission.lingering -= 1
        self._state.connections.discard(self)
        self._wake()

    def eof_received(self) -> bool:
        """The client sent everything it will: answer what is queued, then close."""
        self._stopped = True
        return not self._lingering and self._task is not None

    def pause_writing(self) -> None:
        self._write_paused = True
        self._paused_since = self._state.now
        self._fast = False

    def resume_writing(self) -> None:
        self._write_paused = False
        self._fast = self._task is None and not self._state.closing
        self._wake()

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        self._last_active = self._state.now
        fresh = self._between
        if fresh and self._fast and self._known is not None:
            # The same bytes as a hot request parsed before: the same request again.
            known = self._known.get(data)
            if known is not None and self._hit(known[0], known[1], known[2], time.perf_counter()):
                self._state.known_hits += 1
                self._head_started = 0.0
                if self._out:  # empty when the answer went out with sendfile
                    assert self._transport is not None
                    self._transport.writelines(self._out)
                    self._out.clear()
                return
        if not self._head_started:
            # Bytes between requests (blank lines included, which the parser skips)
            # start the header timer: they never refresh the idle one.
            self._head_started = self._state.now
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as err:
            stop = err.__context__
            if isinstance(stop, StopParsing):
                self._stop(stop.status, stop.message)
            else:
                log.error("request parsing failed", exc_info=stop)
                self._stop(500, "internal error")
        except httptools.HttpParserUpgrade:
            self._stop(0, "")
        except httptools.HttpParserError as err:
            self._stop(400, f"malformed request: {_first_line(err)}")
        else:
            if self._head_started and self._url:
                self._head_raw += len(data)
                if self._head_raw > self._max_head_raw:
                    self._stop(431, "request head too large")
            candidate = self._candidate
            if candidate is not None:
                self._candidate = None
                # Exactly one whole request, answered hot: remember what these bytes ask.
                if fresh and self._between and len(data) <= KNOWN_MAX_BYTES:
                    self._state.remember(data, candidate)
        if self._out:
            assert self._transport is not None
            self._transport.writelines(self._out)
            self._out.clear()
            if self._stopped and self._task is None:
                self._close(linger=True)

    def _send_whole(self, entry: HotEntry) -> bool:
        """Send a hot GET response from its memory file with one ``sendfile``.

        Only with nothing waiting to be written, so the order of responses
        holds; what the socket does not take goes through the transport.
        Returns False when the entry has no file (the caller writes it).
        """
        transport = self._transport
        if self._sockfd < 0 or transport is None or transport.get_write_buffer_size():
            return False
        prefix = self._state.ok_prefix
        fd = entry.fd if entry.fd_prefix is prefix else self._files.fd_for(entry, prefix)
        if fd < 0:
            return False
        total = len(prefix) + len(entry.data)
        try:
            sent = os.sendfile(self._sockfd, fd, 0, total)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # a broken connection: the transport's write reports it
        if sent < total:
            self._out.append((prefix + entry.data)[sent:])
        entry.sends += 1
        return True

    # ---- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._between = False
        self._candidate = None
        self._url = b""
        self._nheaders = 0
        self._hbytes = 0
        self._special = False
        if not self._head_started:
            self._head_started = self._state.now
        if self._access is not None:
            self._authz = None
            self._host = None
        if self._via_proxy:
            self._xff = self._fwd = self._xproto = None
        self._t0 = time.perf_counter()

    def on_message_complete(self) -> None:
        self._between = True

    def on_url(self, url: bytes) -> None:
        self._url = target = self._url + url
        if len(target) > self._max_target:
            raise StopParsing(414, f"request-target longer than {self._max_target} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._nheaders += 1
        self._hbytes += len(name) + len(value)
        if self._nheaders > self._max_headers:
            raise StopParsing(431, f"more than {self._max_headers} header fields")
        if self._hbytes > self._max_header_bytes:
            raise StopParsing(431, f"header fields longer than {self._max_header_bytes} bytes")
        if len(name) in self._watched_lengths:
            lname = name.lower()
            if lname not in self._watched:
                return
            if lname in FORWARDING_NAMES:
                # several fields of one name are one comma-separated list
                if lname == X_FORWARDED_FOR:
                    self._xff = value if self._xff is None else self._xff + b"," + value
                elif lname == FORWARDED:
                    self._fwd = value if self._fwd is None else self._fwd + b"," + value
                elif self._xproto is None:
                    self._xproto = value
                return
            if lname in AUTH_NAMES:
                if lname == HOST:
                    self._host = value
                elif self._authz is None:
                    self._authz = value
                else:  # two Authorization fields: refused as malformed credentials
                    self._authz += b", " + value
                return
            if not self._special:
                self._special = True
                self._inm = None
                self._body = 0
                self._conn_header = False
            if lname == CONNECTION:
                self._conn_header = True
            elif lname == CONTENT_LENGTH:
                if value.strip() != b"0":
                    self._body = NO_BODY_CL
            elif lname == TRANSFER_ENCODING:
                self._body = NO_BODY_TE
            elif lname == IF_NONE_MATCH:
                self._inm = value if self._inm is None else self._inm + b"," + value

    def on_headers_complete(self) -> None:
        self._head_started = 0.0
        self._head_raw = 0
        parser = self._parser
        keep_alive = parser.should_keep_alive()
        inm = None
        http10 = False
        if self._special:
            if self._body:
                raise StopParsing(self._body, "requests to this server must not have a body")
            inm = self._inm
            # Without a Connection header only HTTP/1.1 is persistent, so the
            # version needs looking up only when that header was sent.
            http10 = self._conn_header and parser.get_http_version() == HTTP_10
        method = parser.get_method()
        url = self._url
        if self._via_proxy:
            self._forwarded()
        if (
            self._fast
            and keep_alive
            and inm is None
            and not http10
            and self._hit(method, url, self._authz, self._t0)
        ):
            if self._known is not None:
                self._candidate = (method, url, self._authz)
            return
        if not keep_alive:
            mode = ConnMode.CLOSE
        elif http10:
            mode = ConnMode.KEEP_10
        else:
            mode = ConnMode.KEEP
        self._enqueue(
            PendingRequest(
                method,
                url,
                inm,
                mode,
                self._t0,
                authz=self._authz,
                host=self._host,
                client=self._client,
                tls=self._tls,
            )
        )
        if not keep_alive:
            raise StopParsing(0, "")

    def _hit(self, method: bytes, url: bytes, authz: bytes | None, t0: float) -> bool:
        """Answer a GET or HEAD of a hot ``url`` into the output list; False if it is not hot.

        ``t0`` is when the request began (its duration is logged and measured).
        """
        entry = self._hot.get(url)
        if entry is None:
            return False
        state = self._state
        if entry.expires and entry.expires <= state.now:
            return False
        access = self._access
        if access is not None and not access.fast(authz, entry, state.now):
            return False
        if method == GET:
            data = entry.data
            nbytes = entry.body_len
        elif method == HEAD:
            data = entry.data[: entry.head_len]
            nbytes = 0
        else:
            return False
        self._hot.move_to_end(url)
        out = self._out
        if nbytes < self._min_sendfile or out or not self._send_whole(entry):
            out.append(state.ok_prefix)
            out.append(data)
        state.hits += 1
        state.bytes_served += nbytes
        duration = time.perf_counter() - t0
        row = entry.row
        if row is None:
            row = entry.row = state.hot_row(entry.key[0])
        if duration <= FIRST_BOUND:
            row[0] += 1
        else:
            row[bisect_left(LATENCY_BUCKETS, duration)] += 1
        row[-1] += duration
        records = self._records
        if records is not None:
            records.append((time.time(), self._client, method, url, 200, nbytes, duration, True))
            if len(records) >= FLUSH_BATCH:
                self._log.flush()  # type: ignore[union-attr]
        return True

    def _forwarded(self) -> None:
        """This request's client and scheme, as the trusted proxies in front of us name them."""
        proxies = self._proxies
        assert proxies is not None
        self._client = proxies.client(self._remote, self._xff, self._fwd)
        https = proxies.https(self._remote, self._xproto, self._fwd)
        self._tls = self._conn_tls if https is None else https
        if self._access is not None:
            self._access.seen_as(self._client, self._tls)

    # ---- the serving task ---------------------------------------------------------------

    def _enqueue(self, pending: PendingRequest) -> None:
        self._queue.append(pending)
        self._fast = False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._serve_queue())
        if len(self._queue) >= self._state.settings.max_pipelined and not self._reading_paused:
            self._pause_reading()

    def _stop(self, status: int, message: str) -> None:
        """Parse nothing more; answer ``status`` (unless 0) after the queued requests."""
        self._stopped = True
        self._pause_reading()
        if status:
            reply = error_reply(status, message, close=True)
            self._enqueue(
                PendingRequest(
                    b"-",
                    self._url,
                    None,
                    ConnMode.CLOSE,
                    self._t0,
                    error=reply,
                    client=self._client,
                )
            )
        elif self._task is None and not self._out:
            self._close(linger=True)

    async def _serve_queue(self) -> None:
        transport = self._transport
        assert transport is not None
        low_water = self._state.settings.max_pipelined // 2
        try:
            while self._queue and not self._lost and not self._close_after:
                pending = self._queue.popleft()
                if self._reading_paused and not self._stopped and len(self._queue) <= low_water:
                    self._resume_reading()
                await self._writable()
                await self._serve(pending)
        except ConnectionError:
            pass
        except FileChangedError as err:
            log.error("%s; connection dropped mid-response", err)
            transport.abort()
        except Exception:
            log.exception("internal error while writing a response")
            transport.abort()
        finally:
            self._task = None
            self._last_active = self._state.now
            if self._head_started:
                # Bytes that came while answering (the start of the next request, or a
                # blank line) get a full header timeout from now, not from their arrival.
                self._head_started = self._state.now
            if self._close_after or self._state.closing or (self._stopped and not self._queue):
                self._queue.clear()
                self._close(linger=not self._state.closing)
            else:
                self._fast = not self._write_paused
                if self._reading_paused:
                    self._resume_reading()

    async def _serve(self, pending: PendingRequest) -> None:
        state = self._state
        transport = self._transport
        assert transport is not None
        if pending.error is not None:
            reply = pending.error
        else:
            denied = None
            if self._access is not None:
                if self._via_proxy:
                    self._access.seen_as(pending.client, pending.tls)
                denied = await self._access.check(pending.target, pending.authz, pending.host)
            if denied is not None:
                reply = denied
            else:
                reply = await self._router.reply(
                    pending.method, pending.target, pending.inm, pending.client
                )
        mode = pending.mode
        if reply.close or state.closing or (self._stopped and not self._queue):
            mode = ConnMode.CLOSE
        if mode is ConnMode.CLOSE:
            self._close_after = True
        prefix = state.prefix(reply.status, mode)
        sent = 0
        if pending.method == HEAD or reply.status == 304:
            transport.writelines((prefix, reply.head))
        elif reply.path is not None:
            transport.writelines((prefix, reply.head))
            await self._writable()
            await sendfile_file(
                transport, reply.path, reply.size, state.settings.file_chunk, self._writable
            )
            sent = reply.size
        else:
            transport.writelines((prefix, reply.head, reply.body))
            sent = len(reply.body)
        state.count(reply.route, reply.status, sent, reply.hit)
        duration = time.perf_counter() - pending.started
        ok = CACHE_HIT if reply.status < 400 else CACHE_NONE
        state.observe(reply.route, CACHE_MISS if reply.fetched else ok, duration)
        if self._log is not None:
            record = (time.time(), pending.client, pending.method, pending.target, reply.status,
                      sent, duration, reply.hit)  # fmt: skip
            self._log.add(record)

    async def _writable(self) -> None:
        while self._write_paused and not self._lost:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
        if self._lost:
            raise ConnectionResetError("client went away")

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._waiter = None

    def _pause_reading(self) -> None:
        if self._transport is not None and not self._reading_paused:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._transport is not None and self._reading_paused and not self._lost:
            self._reading_paused = False
            self._transport.resume_reading()

    # ---- timeouts and shutdown ----------------------------------------------------------

    def check_timeouts(self, now: float) -> None:
        """Close the connection if a deadline passed (called once per server tick)."""
        transport = self._transport
        if transport is None or self._lost or self._lingering:
            return
        settings = self._state.settings
        if self._task is not None:
            if self._write_paused and now - self._paused_since > settings.send_timeout:
                transport.abort()
            return
        if self._head_started:
            if now - self._head_started > settings.header_timeout:
                self._stopped = True
                if self._url:
                    reply = error_reply(408, "request head not received in time", close=True)
                    prefix = self._state.prefix(408, ConnMode.CLOSE)
                    transport.writelines((prefix, reply.head, reply.body))
                    self._state.count(reply.route, 408, reply.size, False)
                    self._close(linger=True)
                else:
                    transport.close()
        elif now - self._last_active > settings.idle_timeout:
            self._stopped = True
            transport.close()

    def begin_shutdown(self) -> None:
        """Finish the response in progress (if any), then close."""
        self._fast = False
        self._stopped = True
        self._pause_reading()
        if self._task is None and self._transport is not None:
            self._transport.close()

    def _close(self, *, linger: bool) -> None:
        """Close; with ``linger``, first send FIN and discard input for a while.

        A socket closed with unread input sends a reset, which can destroy the
        error response the client has not read yet (an oversized or rejected
        request, a pipeline cut short). Lingering reads and drops what the
        client still sends until it closes or LINGER_TIMEOUT passes.
        """
        transport = self._transport
        if transport is None or transport.is_closing() or self._lingering:
            return
        self._stopped = True
        if not linger or self._lost or not transport.can_write_eof():
            transport.close()
            return
        self._lingering = True
        transport.write_eof()
        self._reading_paused = True
        self._resume_reading()
        asyncio.get_running_loop().call_later(LINGER_TIMEOUT, transport.close)

    def abort(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._transport is not None:
            self._transport.abort()


def _first_line(err: Exception) -> str:
    lines = str(err).splitlines()
    return lines[0] if lines else type(err).__name__
