"""Accepting TLS connections: admission first, then the handshake.

A listener created with ``ssl=`` hands the protocol its connection only after
the handshake, so connections still in their handshake were counted by no
limit: a client could hold thousands of half-done handshakes (about 53 KiB
of buffers each), bounded only by the handshake timeout and the descriptor
limit. Here the listener accepts plain TCP; each new connection is counted
by the server's ``Admission`` (in total and per client, as for plain HTTP)
before a byte of TLS is read, then upgraded with ``loop.start_tls`` under the
handshake timeout. The slot is released when the handshake fails, times out
or the server stops, and otherwise when the connection closes.

A connection past a limit can be told so only after a handshake: it gets
one, within 2 s, then the same ``503`` with ``Retry-After`` as over plain
HTTP. Those handshakes share the budget of refused connections kept open
(``REFUSAL_LINGER_MAX``, 64): past it, a refused connection is closed at
once, before its handshake, so a flood past the limit costs at most 64
handshakes' memory for 2 s. Refusals are counted and logged as for plain
HTTP (``modgate_connections_refused_total{reason}``).

Two hand-overs need care. The ClientHello can be read before the handshake
task first runs (uvloop starts reading as soon as the connection is made):
the plain protocol keeps those bytes, stops reading, and they are given to
the TLS layer before anything read later. Data that arrives together with
the client's last handshake message (the first request, sent right after
``Finished``) can be delivered before ``start_tls`` returns: a stand-in
protocol holds it until the ``HttpConnection`` takes over the TLS transport.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import cast

from modgate.server.admission import REFUSAL_LINGER_MAX
from modgate.server.http import HttpConnection
from modgate.server.state import ServerState

log = logging.getLogger("modgate.server")

REFUSAL_HANDSHAKE_TIMEOUT = 2.0
"""Seconds a connection past a limit may take over its handshake before it is dropped."""


class TlsAcceptor:
    """The listener's protocol factory (``protocol``) for one HTTPS server."""

    def __init__(
        self,
        state: ServerState,
        make_connection: Callable[[bool, str | None], HttpConnection],
        context: ssl.SSLContext,
        *,
        handshake_timeout: float,
        shutdown_timeout: float,
    ) -> None:
        self._state = state
        self._make = make_connection
        self._context = context
        self._handshake_timeout = handshake_timeout
        self._shutdown_timeout = shutdown_timeout
        self.handshakes: set[asyncio.Task[bool]] = set()
        """Handshakes under way (each holds an admission slot)."""

    def protocol(self) -> asyncio.Protocol:
        return _Accepted(self)

    async def close(self) -> None:
        """Stop every handshake under way and free their slots (the server is stopping)."""
        tasks = list(self.handshakes)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def accepted(
        self, transport: asyncio.Transport, early: list[bytes]
    ) -> asyncio.Task[bool] | None:
        """A TCP connection: count it and start its handshake, or refuse it.

        ``early`` is where the plain protocol keeps bytes read before the handshake starts.
        """
        state = self._state
        admission = state.admission
        remote = "-"
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            remote = str(peer[0])
        proxies = state.settings.trusted_proxies
        per_client = proxies is None or not proxies.trusts(remote)
        if state.closing:
            transport.abort()
            return None
        refused = admission.admit(remote, state.now, per_client=per_client)
        timeout = self._handshake_timeout
        if refused is not None:
            if admission.lingering >= REFUSAL_LINGER_MAX:
                transport.abort()  # too many refusals under way to answer this one
                return None
            admission.lingering += 1
            timeout = min(timeout, REFUSAL_HANDSHAKE_TIMEOUT)
        task = asyncio.get_running_loop().create_task(
            self._handshake(transport, early, refused, timeout)
        )

        def finished(task: asyncio.Task[bool]) -> None:
            # Whatever ended the task (even a cancel before its first step), a
            # connection not handed over gives its slot back here.
            self.handshakes.discard(task)
            if task.cancelled() or task.exception() is not None or not task.result():
                transport.abort()
                if refused is not None:
                    admission.lingering -= 1
                else:
                    admission.release(remote, per_client=per_client)

        self.handshakes.add(task)
        task.add_done_callback(finished)
        return task

    async def _handshake(
        self, transport: asyncio.Transport, early: list[bytes], refused: str | None, timeout: float
    ) -> bool:
        """True once the connection is handed to its ``HttpConnection`` (which frees its slot)."""
        standin = _Handoff()
        loop = asyncio.get_running_loop()
        # Runs after start_tls made its TLS protocol the transport's, before reading resumes.
        loop.call_soon(_feed_early, transport, early)
        try:
            tls_transport = await loop.start_tls(
                transport,
                standin,
                self._context,
                server_side=True,
                ssl_handshake_timeout=timeout,
                ssl_shutdown_timeout=self._shutdown_timeout,
            )
        except Exception as exc:
            log.debug("TLS handshake failed: %r", exc)
            return False
        if tls_transport is None:  # a closed transport: not expected after a handshake
            return False
        if refused is not None:
            # The connection answers 503 and lingers on its own account from here.
            self._state.admission.lingering -= 1
            conn = self._make(False, refused)
        else:
            conn = self._make(True, None)
        standin.hand_over(conn, tls_transport)
        return True


class _Accepted(asyncio.Protocol):
    """The plain TCP connection until its handshake starts."""

    def __init__(self, acceptor: TlsAcceptor) -> None:
        self._acceptor = acceptor
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[bool] | None = None
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._task = self._acceptor.accepted(self._transport, self._early)

    def data_received(self, data: bytes) -> None:
        # Read before start_tls took the transport over: kept for the TLS layer.
        self._early.append(data)
        if self._transport is not None:
            self._transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        # Gone before its handshake started: the task frees the slot.
        if self._task is not None:
            self._task.cancel()


def _feed_early(transport: asyncio.Transport, early: list[bytes]) -> None:
    """Give the TLS protocol now reading ``transport`` the bytes read before it was there."""
    if not early or transport.is_closing():
        return
    protocol = transport.get_protocol()
    if not isinstance(protocol, _Accepted | _Handoff) and hasattr(protocol, "buffer_updated"):
        _feed(cast(asyncio.BufferedProtocol, protocol), early)


def _feed(protocol: asyncio.BufferedProtocol, early: list[bytes]) -> None:
    for chunk in early:
        view = memoryview(chunk)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]
    early.clear()


class _Handoff(asyncio.Protocol):
    """Holds what the TLS layer delivers before the ``HttpConnection`` takes over."""

    def __init__(self) -> None:
        self._early: list[bytes] = []
        self._eof = False
        self._lost: tuple[Exception | None] | None = None

    def data_received(self, data: bytes) -> None:
        self._early.append(data)

    def eof_received(self) -> bool:
        self._eof = True
        return True  # keep the transport open until the connection decides

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = (exc,)

    def hand_over(self, conn: HttpConnection, transport: asyncio.Transport) -> None:
        """Make ``conn`` the TLS transport's protocol and give it what came early."""
        transport.set_protocol(conn)
        conn.connection_made(transport)
        for data in self._early:
            conn.data_received(data)
        self._early.clear()
        if self._eof and not conn.eof_received():
            transport.close()
        if self._lost is not None:
            conn.connection_lost(self._lost[0])
