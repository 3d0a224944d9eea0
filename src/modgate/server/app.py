"""Starting, ticking and stopping the HTTP server.

``run_server`` is what the CLI calls: it installs uvloop, binds, reports the
bound port, serves until SIGTERM or SIGINT, then shuts down gracefully: stop
accepting, close idle connections, let in-flight responses finish (up to
``shutdown_grace`` seconds), flush the access log and metrics, and close the
gateway. SIGHUP runs the reload hooks (``modgate.server.reload``: the TLS
pair, and what the caller registers) and SIGUSR1 reopens the access log
file; neither stops anything. With ``workers > 1`` the parent binds one
listening socket, forks that many processes that all accept on it, and
forwards every signal to them (``modgate.server.supervisor``).

``start_server`` is the same server inside a running loop, for tests and for
embedding; it returns a ``ServerHandle``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import sniffio
import uvloop

from modgate.server.accesslog import FLUSH_INTERVAL, AccessLog
from modgate.server.admission import raise_fd_limit
from modgate.server.auth.setup import Access
from modgate.server.http import HttpConnection
from modgate.server.ports import CancellableGateway, GatewayLike
from modgate.server.reload import ReloadHook, run_hooks
from modgate.server.router import RequestRouter
from modgate.server.settings import ServerSettings
from modgate.server.state import ServerState
from modgate.server.supervisor import (
    STOP_SIGNALS,
    block_handled_signals,
    fork_worker,
    supervise,
    unblock_handled_signals,
)
from modgate.server.tls import TLS_SHUTDOWN_TIMEOUT, TlsCertificate
from modgate.server.tlsaccept import TlsAcceptor
from modgate.server.workermetrics import PUBLISH_INTERVAL, WorkerMetrics

log = logging.getLogger("modgate.server")

MAX_TICK = 1.0
"""Longest pause between two ticks: the Date header and timeouts use the tick's clock."""
TICKS_PER_TIMEOUT = 4
SHUTDOWN_POLL = 0.02
LISTEN_BACKLOG = 1024


class ServerHandle:
    """A listening server. ``close()`` shuts it down gracefully and closes the gateway."""

    def __init__(
        self,
        server: asyncio.Server,
        state: ServerState,
        gateway: GatewayLike,
        host: str,
        port: int,
    ) -> None:
        self.server = server
        self.state = state
        self.gateway = gateway
        self.host = host
        self.port = port
        self._closed = False
        self.access: Access | None = None
        """Authentication and read grants (None: off)."""
        self.tls_acceptor: TlsAcceptor | None = None
        """Counts and upgrades new connections of an HTTPS server (None: plain HTTP)."""
        self._last_flush = time.monotonic()
        self._last_publish = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._tick_interval = min(
            MAX_TICK,
            min(
                state.settings.header_timeout,
                state.settings.idle_timeout,
                state.settings.send_timeout,
            )
            / TICKS_PER_TIMEOUT,
        )
        self._tick()

    def _tick(self) -> None:
        state = self.state
        now = time.monotonic()
        wall = time.time()
        state.update_clock(now, wall)
        for conn in list(state.connections):
            conn.check_timeouts(now)
        if state.access_log is not None and now - self._last_flush >= FLUSH_INTERVAL:
            self._last_flush = now
            _flush_log(state.access_log)
        if state.workers is not None and now - self._last_publish >= PUBLISH_INTERVAL:
            self._last_publish = now
            state.flush_metrics()
            snapshot = self.gateway.metrics.snapshot()
            asyncio.get_running_loop().run_in_executor(None, state.workers.publish, snapshot)
        # Wake just after the next wall-clock second so Date is never a second behind.
        delay = min(self._tick_interval, 1.0 - (wall % 1.0) + 0.001)
        self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    async def close(self, grace: float | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        state = self.state
        grace = state.settings.shutdown_grace if grace is None else grace
        self.server.close()
        state.closing = True
        if self.tls_acceptor is not None:
            await self.tls_acceptor.close()  # handshakes under way end now
        for conn in list(state.connections):
            conn.begin_shutdown()
        deadline = time.monotonic() + grace
        while state.connections and time.monotonic() < deadline:
            await asyncio.sleep(SHUTDOWN_POLL)
        for conn in list(state.connections):
            log.warning("shutdown: dropping a connection still busy after %.1f s", grace)
            conn.abort()
        await asyncio.sleep(0)
        if isinstance(self.gateway, CancellableGateway):
            # The grace is over: git and upstream work still under way is stopped, so
            # that the process exits now and not when a hung remote times out.
            await self.gateway.cancel()
        if self._timer is not None:
            self._timer.cancel()
        state.flush_metrics()
        state.hot.close()
        if state.access_log is not None:
            _flush_log(state.access_log)
        if self.access is not None:
            await self.access.aclose()
        await self.gateway.aclose()


def _flush_log(access_log: AccessLog) -> None:
    try:
        access_log.flush()
    except (OSError, ValueError) as err:
        log.error("access log: cannot write (%s); records dropped", err)


async def start_server(
    gateway: GatewayLike,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    settings: ServerSettings | None = None,
    access_log: TextIO | Path | None = None,
    sock: socket.socket | None = None,
    tls: TlsCertificate | None = None,
    access: Access | None = None,
    workers: WorkerMetrics | None = None,
) -> ServerHandle:
    """Listen on ``host:port`` (or on ``sock``) in the running loop; HTTPS with ``tls``.

    An ``access_log`` path is opened here (``OSError`` if it cannot be). ``workers``
    is this worker's share of one /metrics page for all of them (``--workers N``).
    """
    settings = settings or ServerSettings()
    if isinstance(access_log, Path):
        log_file: AccessLog | None = AccessLog.open(access_log)
    else:
        log_file = AccessLog(access_log) if access_log is not None else None
    state = ServerState(settings, gateway.metrics, log_file)
    state.access = access.gate if access is not None else None
    state.workers = workers
    router = RequestRouter(gateway, state)
    loop = asyncio.get_running_loop()

    def connection(admitted: bool = False, refused: str | None = None) -> HttpConnection:
        return HttpConnection(state, router, admitted, refused)

    factory: Callable[[], asyncio.Protocol] = connection
    acceptor = None
    if tls is not None:
        # The listener accepts plain TCP: a connection is counted by the connection
        # limits before its handshake, which the acceptor then runs (modgate.server.tlsaccept).
        # Without a shutdown bound, a closed TLS connection would wait 30 s for the
        # client's close_notify, counted as open (limits, the SIGTERM grace) all that time.
        acceptor = TlsAcceptor(
            state,
            connection,
            tls.server_context,
            handshake_timeout=settings.header_timeout,
            shutdown_timeout=TLS_SHUTDOWN_TIMEOUT,
        )
        factory = acceptor.protocol
    if sock is not None:
        server = await loop.create_server(factory, sock=sock, backlog=LISTEN_BACKLOG)
    else:
        server = await loop.create_server(
            factory, host, port, backlog=LISTEN_BACKLOG, reuse_address=True
        )
    bound = server.sockets[0].getsockname()
    handle = ServerHandle(server, state, gateway, str(bound[0]), int(bound[1]))
    handle.tls_acceptor = acceptor
    if access is not None:
        handle.access = access
        access.start(loop)
    return handle


def run_server(
    gateway: GatewayLike,
    *,
    host: str,
    port: int,
    hot_cache_bytes: int,
    access_log: TextIO | Path | None,
    workers: int = 1,
    on_listening: Callable[[str, int], None] | None = None,
    settings: ServerSettings | None = None,
    tls: TlsCertificate | None = None,
    reload_hooks: Sequence[ReloadHook] = (),
    access: Access | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP reloads, SIGUSR1 reopens the access log.

    ``access_log`` None disables the access log; a ``Path`` is opened by each
    serving process and reopened on SIGUSR1. ``reload_hooks`` run on SIGHUP
    in every serving process, after the TLS certificate's, or on SIGUSR1
    after the access log is reopened (see ``modgate.server.reload``).
    """
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    raise_fd_limit()  # before the serving processes start: they size their connection limit by it
    settings = replace(settings or ServerSettings(), hot_cache_bytes=hot_cache_bytes)
    hooks = [ReloadHook("tls certificate", tls.reload)] if tls is not None else []
    hooks += reload_hooks
    if workers == 1:
        uvloop.run(
            _serve_until_signal(
                gateway,
                host=host,
                port=port,
                settings=settings,
                access_log=access_log,
                on_listening=on_listening,
                tls=tls,
                hooks=hooks,
                access=access,
            )
        )
        return
    sock = _listen(host, port)
    bound = sock.getsockname()
    # Where the workers publish their metrics for one /metrics page (see workermetrics).
    metrics_folder = Path(tempfile.mkdtemp(prefix="modgate-metrics-"))

    def serve(index: int) -> None:
        uvloop.run(
            _serve_until_signal(
                gateway,
                host="",
                port=0,
                settings=settings,
                access_log=access_log,
                on_listening=None,
                sock=sock,
                tls=tls,
                hooks=hooks,
                access=access,
                workers=WorkerMetrics(metrics_folder, index),
            )
        )

    block_handled_signals()
    children = [fork_worker(functools.partial(serve, index)) for index in range(workers)]
    sock.close()
    if on_listening is not None:
        on_listening(str(bound[0]), int(bound[1]))
    healthy = supervise(children)
    shutil.rmtree(metrics_folder, ignore_errors=True)
    if not healthy:
        # A worker failed (logged): exit 1, so a service manager sees a failure.
        log.error(
            "stopped after a worker failed; exit status 1",
            extra={"event": "stopped", "pid": os.getpid(), "status": 1},
        )
        raise SystemExit(1)


async def _serve_until_signal(
    gateway: GatewayLike,
    *,
    host: str,
    port: int,
    settings: ServerSettings,
    access_log: TextIO | Path | None,
    on_listening: Callable[[str, int], None] | None,
    sock: socket.socket | None = None,
    tls: TlsCertificate | None = None,
    hooks: Sequence[ReloadHook] = (),
    access: Access | None = None,
    workers: WorkerMetrics | None = None,
) -> None:
    """One serving process: the signals' meanings are set before anything else."""
    # The upstream client's transport (httpcore, anyio) asks which event loop runs, several
    # times per request; sniffio answers from this thread-local at once instead of sniffing
    # (about a tenth of the transport's busy samples on a cold .mod miss).
    sniffio.thread_local.name = "asyncio"
    stop = asyncio.Event()
    handles: list[ServerHandle] = []
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, _stop, sig, stop)
    loop.add_signal_handler(signal.SIGHUP, run_hooks, hooks, signal.SIGHUP)
    loop.add_signal_handler(signal.SIGUSR1, _reopen_logs, handles, hooks)
    unblock_handled_signals()  # a forked worker starts with them blocked
    handle = await start_server(
        gateway,
        host=host,
        port=port,
        settings=settings,
        access_log=access_log,
        sock=sock,
        tls=tls,
        access=access,
        workers=workers,
    )
    handles.append(handle)
    if on_listening is not None:
        on_listening(handle.host, handle.port)
    await stop.wait()
    await handle.close()


def _stop(signum: int, stop: asyncio.Event) -> None:
    if not stop.is_set():
        log.info(
            "%s: stopping",
            signal.Signals(signum).name,
            extra={"event": "signal", "signal": signal.Signals(signum).name, "pid": os.getpid()},
        )
    stop.set()


def _reopen_logs(handles: list[ServerHandle], hooks: Sequence[ReloadHook]) -> None:
    """SIGUSR1: the access log, then the log files of the hooks registered for SIGUSR1."""
    for handle in handles:
        access_log = handle.state.access_log
        if access_log is None:
            continue
        try:
            access_log.reopen()
        except (OSError, ValueError) as err:
            log.error(
                "access log: cannot reopen %s (%s); still writing to the old file",
                access_log.path,
                err,
                extra={"event": "reopen_failed", "pid": os.getpid()},
            )
        else:
            if access_log.path is not None:
                log.info(
                    "access log reopened",
                    extra={"event": "reopened", "path": str(access_log.path), "pid": os.getpid()},
                )
    run_hooks(hooks, signal.SIGUSR1)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock
