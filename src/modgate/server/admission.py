"""Admission of connections: a limit in total and per client address.

Every open connection costs a file descriptor and some memory, and a client
can open as many as the kernel lets it. The server admits a new connection
only while fewer than ``max_connections`` are open and fewer than
``max_per_client`` come from the same client: the same IPv4 address, or the
same IPv6 /64 network (one host usually holds a whole /64, so single IPv6
addresses would be no limit at all). A connection past either
limit is answered ``503 Service Unavailable`` with ``Retry-After`` and
closed, so clients see why instead of a silent reset (over HTTPS after a
handshake of at most 2 s: see ``modgate.server.tlsaccept``); the refusal is
counted in ``modgate_connections_refused_total{reason}`` and logged (at
most one line per second, with the number refused since the last line).

The limits leave room for the descriptors that refusing takes: the default
``max_connections`` is the process's descriptor limit minus a reserve for
the store, git, upstream connections and refused clients, which modgate
raises to its hard limit at start (:func:`raise_fd_limit`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import resource

from modgate.server.responses import CC_NO_STORE, CT_TEXT, render_fields

log = logging.getLogger("modgate.server")

FD_RESERVE_MIN = 256
"""Descriptors kept out of the connection limit at least (store files, git pipes, upstreams)."""
FD_RESERVE_SHARE = 8
"""... or one descriptor in this many, if more."""
MAX_CONNECTIONS_CAP = 65_536
"""The default limit never exceeds this, however high the descriptor limit."""
MIN_CONNECTIONS = 16
RETRY_AFTER_SECONDS = 1
IPV6_CLIENT_PREFIX = 64
"""IPv6 clients are counted by network: a host is usually given a whole /64."""
REFUSAL_LINGER_MAX = 64
"""Refused connections kept open a moment so that their 503 is read, within the reserve;
more are closed at once after the 503 is written."""
LOG_INTERVAL = 1.0
MAX_CONNECTIONS = "max-connections"
PER_CLIENT = "per-client"
REASONS = (MAX_CONNECTIONS, PER_CLIENT)


def raise_fd_limit() -> int:
    """Raise the soft descriptor limit to the hard one; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        # When refused, the soft limit stays and the defaults follow it.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return current_fd_limit()


def current_fd_limit() -> int:
    """The soft descriptor limit of this process (a large number when unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else MAX_CONNECTIONS_CAP * 2


def default_max_connections(fd_limit: int) -> int:
    """The descriptor limit minus the reserve, between MIN_CONNECTIONS and the cap."""
    reserve = max(FD_RESERVE_MIN, fd_limit // FD_RESERVE_SHARE)
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS_CAP, fd_limit - reserve))


def client_key(remote: str) -> str:
    """What the per-client limit counts by: the IPv4 address, or the IPv6 /64 network."""
    if ":" not in remote:
        return remote
    try:
        address = ipaddress.IPv6Address(remote.partition("%")[0])
    except ValueError:
        return remote
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))


def refusal_response(prefix: bytes, max_connections: int, reason: str) -> bytes:
    """The whole 503 answer to a connection past a limit, after ``prefix`` (status and Date)."""
    if reason == PER_CLIENT:
        why = "too many connections from this address"
    else:
        why = f"the server has {max_connections} connections open, its limit"
    body = f"modgate: {why}; retry in a moment\n".encode()
    extra = ((b"Retry-After", str(RETRY_AFTER_SECONDS).encode()),)
    head = render_fields(CT_TEXT, len(body), CC_NO_STORE, extra=extra)
    return prefix + head + body


class Admission:
    """Counts open connections in total and per address; decides on new ones."""

    def __init__(self, max_connections: int, max_per_client: int) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.open = 0
        self.per_client: dict[str, int] = {}
        self.lingering = 0
        """Refused connections not closed yet."""
        self.refused = dict.fromkeys(REASONS, 0)
        self._flushed = dict.fromkeys(REASONS, 0)
        self._logged_at = -LOG_INTERVAL
        self._unlogged = dict.fromkeys(REASONS, 0)

    def admit(self, remote: str, now: float, *, per_client: bool = True) -> str | None:
        """Count a new connection from ``remote``: None, or why it is refused.

        ``per_client`` False (a trusted reverse proxy, which carries many clients)
        counts the connection against the total limit only.
        """
        if self.open >= self.max_connections:
            return self._refuse(MAX_CONNECTIONS, remote, now)
        if not per_client:
            self.open += 1
            return None
        client = client_key(remote)
        count = self.per_client.get(client, 0)
        if count >= self.max_per_client:
            return self._refuse(PER_CLIENT, remote, now)
        self.open += 1
        self.per_client[client] = count + 1
        return None

    def release(self, remote: str, *, per_client: bool = True) -> None:
        """An admitted connection from ``remote`` closed."""
        self.open -= 1
        if not per_client:
            return
        client = client_key(remote)
        count = self.per_client.get(client, 0) - 1
        if count > 0:
            self.per_client[client] = count
        else:
            self.per_client.pop(client, None)

    def unflushed(self) -> dict[str, int]:
        """Refusals by reason since the last call (for the metrics registry)."""
        out = {r: self.refused[r] - self._flushed[r] for r in REASONS}
        self._flushed = dict(self.refused)
        return out

    def _refuse(self, reason: str, remote: str, now: float) -> str:
        self.refused[reason] += 1
        self._unlogged[reason] += 1
        if now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            counts, self._unlogged = self._unlogged, dict.fromkeys(REASONS, 0)
            log.warning(
                "connection limit reached; new connections answered 503 (over HTTPS "
                "closed unanswered while 64 refused ones are still open)",
                extra={
                    "event": "connections_refused",
                    "reason": reason,
                    "remote": remote,
                    "open": self.open,
                    "max_connections": self.max_connections,
                    "max_connections_per_client": self.max_per_client,
                    "refused_max_connections": counts[MAX_CONNECTIONS],
                    "refused_per_client": counts[PER_CLIENT],
                },
            )
        return reason
