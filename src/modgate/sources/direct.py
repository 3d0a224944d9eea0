"""The ``direct`` source: modules straight from version control.

Routing to ``direct`` is in place (the ``direct`` keyword of --upstream and
every --private module); fetching from git is not built yet, so every
request answers not-found with a reason that says so. A not-found lets the
go command fall through to the next GOPROXY entry it has.
"""

from __future__ import annotations

from pathlib import Path

from modgate.protocol.errors import NotFoundError
from modgate.protocol.module import ModuleVersion

DIRECT_UNAVAILABLE = (
    "fetching straight from version control is not available in this modgate yet; "
    "publish the module to an upstream proxy or import it with 'modgate import'"
)


class DirectSource:
    name = "direct"

    async def list(self, module: str) -> bytes:
        raise NotFoundError(module, DIRECT_UNAVAILABLE)

    async def latest(self, module: str) -> bytes:
        raise NotFoundError(module, DIRECT_UNAVAILABLE)

    async def info(self, module: str, version: str) -> bytes:
        raise NotFoundError(f"{module}@{version}", DIRECT_UNAVAILABLE)

    async def mod(self, mv: ModuleVersion) -> bytes:
        raise NotFoundError(str(mv), DIRECT_UNAVAILABLE)

    async def zip(self, mv: ModuleVersion, dest: Path, max_size: int) -> None:
        raise NotFoundError(str(mv), DIRECT_UNAVAILABLE)

    async def aclose(self) -> None:
        return None
