"""What the connection's parser hands to its serving task."""

from __future__ import annotations

from modgate.server.responses import ConnMode, Reply


class StopParsing(Exception):
    """Raised from a parser callback to stop parsing; ``status`` 0 means a clean stop."""

    def __init__(self, status: int = 0, message: str = "") -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


class PendingRequest:
    """A request waiting for the connection's serving task."""

    __slots__ = (
        "authz",
        "client",
        "error",
        "host",
        "inm",
        "method",
        "mode",
        "started",
        "target",
        "tls",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        inm: bytes | None,
        mode: ConnMode,
        started: float,
        *,
        error: Reply | None = None,
        authz: bytes | None = None,
        host: bytes | None = None,
        client: str = "-",
        tls: bool = False,
    ) -> None:
        self.method = method
        self.target = target
        self.inm = inm
        self.mode = mode
        self.started = started
        self.error = error
        self.authz = authz
        """The Authorization header (only read while authentication is on)."""
        self.host = host
        self.client = client
        """The client's address (the peer's, or the one trusted proxies name)."""
        self.tls = tls
        """Whether the client's leg was https (this connection, or a trusted proxy's word)."""
