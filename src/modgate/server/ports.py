"""What the server needs from the service layer: the gateway, as a small port.

The server is typed against this protocol only, so its tests run against a
fake gateway and the composition root wires the real one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from modgate.metrics import Metrics
from modgate.protocol.module import ModuleVersion
from modgate.service.answer import Answer
from modgate.service.sumdb import SumdbAnswer


class GatewayLike(Protocol):
    """Answers the GOPROXY endpoints; raises the ModgateError tree for failures."""

    @property
    def metrics(self) -> Metrics: ...

    @property
    def list_max_age(self) -> int:
        """Seconds for the Cache-Control max-age of list, latest and query answers."""
        ...

    async def ready(self) -> tuple[bool, str]:
        """Readiness and a one-line reason."""
        ...

    async def list(self, module: str) -> Answer: ...

    async def latest(self, module: str) -> Answer: ...

    async def info(self, module: str, version: str, client: str = "") -> Answer:
        """``version`` may be a query (branch, tag, commit prefix); ``client`` is the
        requester's address (a hint for fetching ahead, never an access decision)."""
        ...

    async def mod(self, mv: ModuleVersion) -> Answer: ...

    async def zip(self, mv: ModuleVersion, client: str = "") -> Answer: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CancellableGateway(Protocol):
    """A gateway that can stop its fetches under way (git processes, upstream requests)."""

    async def cancel(self) -> None: ...


@runtime_checkable
class SumdbGatewayLike(Protocol):
    """A gateway that also answers ``/sumdb/...`` (checksum databases)."""

    async def sumdb(self, target: str) -> SumdbAnswer: ...
