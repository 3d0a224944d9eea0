"""The server's limits and timeouts: one frozen value built by the caller."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from modgate.protocol.request import MAX_TARGET_LENGTH
from modgate.server.forwarded import TrustedProxies

KIB = 1024
MIB = 1024 * KIB

DEFAULT_HOT_CACHE_BYTES = 64 * MIB
DEFAULT_HOT_ENTRY_MAX_BYTES = 1 * MIB
DEFAULT_SENDFILE_BYTES = 32 * MIB
DEFAULT_MAX_TARGET = MAX_TARGET_LENGTH
DEFAULT_MAX_HEADER_BYTES = 16 * KIB
DEFAULT_MAX_HEADERS = 100
DEFAULT_MAX_PIPELINED = 32
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_SEND_TIMEOUT = 60.0
DEFAULT_SHUTDOWN_GRACE = 10.0
DEFAULT_FILE_CHUNK = 16 * KIB
DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 256
ZERO_ALLOWED = frozenset({"hot_cache_bytes", "max_connections"})
"""Settings where 0 has a meaning (hot set off; connections sized to the descriptor limit)."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Limits of the HTTP server. Every value must be positive."""

    hot_cache_bytes: int = DEFAULT_HOT_CACHE_BYTES
    """Budget of the in-memory hot set of pre-rendered responses (0 disables it)."""
    hot_entry_max_bytes: int = DEFAULT_HOT_ENTRY_MAX_BYTES
    """Largest body kept in the hot set; larger files are streamed from disk."""
    sendfile_bytes: int = DEFAULT_SENDFILE_BYTES
    """Bytes of the hottest large responses kept in files (memory or page cache) for sendfile."""
    hot_file_dir: Path | None = None
    """A directory on a disk filesystem for those files (None: shared memory only)."""
    max_target: int = DEFAULT_MAX_TARGET
    """Longest request-target accepted (414 beyond)."""
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    """Largest header block accepted (431 beyond)."""
    max_headers: int = DEFAULT_MAX_HEADERS
    """Most header fields accepted (431 beyond)."""
    max_pipelined: int = DEFAULT_MAX_PIPELINED
    """Requests queued on one connection before the server stops reading from it."""
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    """Seconds a client has to send a complete request head."""
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    """Seconds an idle keep-alive connection is kept open."""
    send_timeout: float = DEFAULT_SEND_TIMEOUT
    """Seconds a client may leave a response unread before the connection is dropped."""
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    """Seconds in-flight requests get to finish at shutdown."""
    file_chunk: int = DEFAULT_FILE_CHUNK
    """Bytes of a large file handed to the transport when the socket is full, so the
    event loop reports when it drains; the rest goes by ``os.sendfile``."""
    max_connections: int = 0
    """Connections open at once; more are answered 503 (0: sized to the descriptor limit)."""
    max_connections_per_client: int = DEFAULT_MAX_CONNECTIONS_PER_CLIENT
    """Connections open at once from one client address; more are answered 503."""
    trusted_proxies: TrustedProxies | None = None
    """Reverse proxies whose X-Forwarded-For/Forwarded headers name the client (None: none)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float):
                continue
            if f.name in ZERO_ALLOWED and value == 0:
                continue
            if value <= 0:
                raise ValueError(f"server setting {f.name}={value!r} must be positive")
