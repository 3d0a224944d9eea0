"""The source port: where artifacts come from.

A source raises ``NotFoundError``/``GoneError`` when it does not have the
module or version (the chain may fall through to the next entry after ``,``),
and ``UpstreamError`` for any other failure (only ``|`` falls through).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from modgate.protocol.module import ModuleVersion


class Source(Protocol):
    name: str
    """How the source appears in logs and metrics: a URL without credentials, or ``direct``."""

    async def list(self, module: str) -> bytes: ...

    async def latest(self, module: str) -> bytes: ...

    async def info(self, module: str, version: str) -> bytes:
        """The .info JSON for a canonical version or a query (branch, tag, commit)."""

    async def mod(self, mv: ModuleVersion) -> bytes: ...

    async def zip(self, mv: ModuleVersion, dest: Path, max_size: int) -> None:
        """Write the zip to ``dest``; fail with UpstreamError beyond ``max_size`` bytes."""

    async def aclose(self) -> None: ...


@runtime_checkable
class Cancellable(Protocol):
    """A source whose work in flight can be stopped at once (at shutdown, after the grace)."""

    def cancel(self) -> None:
        """Stop the processes and threads' work in flight; later calls fail at once."""
