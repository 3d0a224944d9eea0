"""Small in-memory maps whose entries expire, bounded in entries and bytes.

Every request can add a key (a missing path, a short-lived answer), so each
map has a limit and drops expired entries on its own: one lifetime for the
whole map means insertion order is expiry order, so each ``put`` pops the
expired entries at the front (amortised O(1)) and a map that stops growing
never holds an entry longer than its lifetime plus the next write.

The negative cache keeps only what an error says (its kind, subject and
reason) and raises a new exception on each hit: raising one stored instance
again and again would append to its traceback for ever.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from modgate.protocol.errors import ModgateError

V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_BYTES = 32 << 20
ENTRY_OVERHEAD = 400
"""Bytes counted per entry beyond the characters of its key and value (string headers,
the tuple, the float, the ordered dict's slot and link: about 370 measured with tracemalloc)."""


def _no_weight(_: object) -> int:
    return 0


class TTLCache(Generic[V]):
    """Entries live ``ttl`` seconds; at most ``max_entries`` and ``max_bytes`` are kept.

    ``weigh(value)`` is the size of a value in bytes (keys are counted by
    their length); the oldest entries are dropped first when a limit is hit.
    """

    def __init__(
        self,
        ttl: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        weigh: Callable[[V], int] = _no_weight,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._weigh = weigh
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V, int]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value, _ = entry
        if self._clock() >= expires:
            self.discard(key)
            return None
        return value

    def put(self, key: str, value: V, ttl: float | None = None) -> None:
        """Keep ``value`` for the map's lifetime, or for ``ttl`` seconds when that is shorter.

        An entry with a shorter life may outlive its expiry in memory until it
        is read or reaches the front, never past the map's lifetime: ``get``
        does not return it after its expiry.
        """
        life = self.ttl if ttl is None else min(ttl, self.ttl)
        if life <= 0:
            return
        now = self._clock()
        self.discard(key)
        size = len(key) + self._weigh(value) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        self._entries[key] = (now + life, value, size)
        self.bytes += size
        self._trim(now)

    def discard(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[2]

    def expire(self) -> None:
        """Drop every expired entry now (``put`` does this as it goes)."""
        self._trim(self._clock())

    def _trim(self, now: float) -> None:
        entries = self._entries
        while entries:
            key, (expires, _, size) = next(iter(entries.items()))
            if expires > now and len(entries) <= self.max_entries and self.bytes <= self.max_bytes:
                return
            del entries[key]
            self.bytes -= size


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a remembered error said: its class, subject and one-line reason."""

    kind: type[ModgateError]
    subject: str
    reason: str

    def error(self) -> ModgateError:
        """A new exception equal to the one remembered (a fresh traceback each time)."""
        return self.kind(self.subject, self.reason)


class NegativeCache:
    """Not-found answers by key for ``ttl`` seconds, bounded in entries and bytes."""

    def __init__(
        self,
        ttl: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache: TTLCache[Refusal] = TTLCache(
            ttl,
            max_entries,
            max_bytes=max_bytes,
            weigh=lambda r: len(r.subject) + len(r.reason),
            clock=clock,
        )

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def bytes(self) -> int:
        return self._cache.bytes

    def remember(self, key: str, exc: ModgateError, ttl: float | None = None) -> None:
        """Remember ``exc`` for the cache's lifetime (or ``ttl`` seconds when shorter)."""
        self._cache.put(key, Refusal(_plain_kind(type(exc)), exc.subject, exc.reason), ttl)

    def known(self, key: str) -> bool:
        """Whether a refusal of ``key`` is remembered (and not expired)."""
        return self._cache.get(key) is not None

    def error(self, key: str) -> ModgateError | None:
        """A new exception for a remembered refusal of ``key``, or None."""
        found = self._cache.get(key)
        return None if found is None else found.error()

    def expire(self) -> None:
        self._cache.expire()


def _plain_kind(kind: type[ModgateError]) -> type[ModgateError]:
    """The nearest class of ``kind`` built from ``(subject, reason)`` alone.

    Some errors take other arguments (``InvalidZipError(mv, problems)``);
    rebuilding one of those from its reason would garble the message.
    """
    for cls in kind.__mro__:
        if issubclass(cls, ModgateError) and cls.__init__ is ModgateError.__init__:
            return cls
    return ModgateError
