"""Which sources a module's requests go to, and how failures fall through.

The chain follows the go command's GOPROXY semantics exactly: after an entry
followed by ``,`` only not-found (404/410) falls through to the next entry;
after ``|`` any error does. ``off`` ends the chain with "lookup disabled".
A module that matches the --private patterns is only ever fetched through
``direct``: its name never reaches an upstream proxy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from modgate.protocol.errors import (
    GoneError,
    InvalidModuleError,
    ModgateError,
    NotFoundError,
    UpstreamError,
)
from modgate.protocol.module import ModuleVersion
from modgate.protocol.patterns import PatternList
from modgate.sources.base import Source

T = TypeVar("T")

LOOKUP_DISABLED = (
    "not in the store, and fetching is disabled (upstream 'off'); "
    "import it with 'modgate import' or add an upstream"
)


@dataclass(frozen=True, slots=True)
class ChainEntry:
    source: Source
    fall_through_on_any_error: bool


class SourceRouter:
    """Which sources a module goes to: the GOPROXY chain, or ``direct`` only if private."""

    def __init__(self, chain: tuple[ChainEntry, ...], direct: Source, private: PatternList) -> None:
        self.chain = chain
        self.direct = direct
        self.private = private
        self._private_chain = (ChainEntry(direct, False),)

    def chain_for(self, module: str) -> tuple[ChainEntry, ...]:
        if self.private.matches(module):
            return self._private_chain
        return self.chain

    def sources(self) -> tuple[Source, ...]:
        seen: dict[int, Source] = {}
        for entry in (*self.chain, *self._private_chain):
            seen.setdefault(id(entry.source), entry.source)
        return tuple(seen.values())


async def walk(
    chain: tuple[ChainEntry, ...], subject: str, op: Callable[[Source], Awaitable[T]]
) -> T:
    """Try ``op`` on each entry in order, with GOPROXY fall-through rules.

    Raises the first not-found when every entry said not-found (GoneError
    only if every one said gone), and otherwise the error that stopped the
    walk or, after ``|``, the first real failure.
    """
    if not chain:
        raise NotFoundError(subject, LOOKUP_DISABLED)
    not_found: list[NotFoundError] = []
    failures: list[ModgateError] = []
    for entry in chain:
        try:
            return await op(entry.source)
        except NotFoundError as exc:
            not_found.append(exc)
        except (UpstreamError, InvalidModuleError) as exc:
            if not entry.fall_through_on_any_error:
                raise
            failures.append(exc)
    if failures:
        raise failures[0]
    if all(isinstance(e, GoneError) for e in not_found):
        raise not_found[0]
    raise next(e for e in not_found if not isinstance(e, GoneError))


class OffSource:
    """The ``off`` keyword: the chain ends here and nothing is fetched."""

    name = "off"

    async def list(self, module: str) -> bytes:
        raise NotFoundError(module, LOOKUP_DISABLED)

    async def latest(self, module: str) -> bytes:
        raise NotFoundError(module, LOOKUP_DISABLED)

    async def info(self, module: str, version: str) -> bytes:
        raise NotFoundError(f"{module}@{version}", LOOKUP_DISABLED)

    async def mod(self, mv: ModuleVersion) -> bytes:
        raise NotFoundError(str(mv), LOOKUP_DISABLED)

    async def zip(self, mv: ModuleVersion, dest: Path, max_size: int) -> None:
        raise NotFoundError(str(mv), LOOKUP_DISABLED)

    async def aclose(self) -> None:
        return None
