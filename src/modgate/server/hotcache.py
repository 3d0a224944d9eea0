"""The hot set: whole pre-rendered responses kept in memory, evicted LRU by bytes.

A hit on the hot path is one ``OrderedDict`` lookup, one ``move_to_end`` and
one write of ``entry.data``, which holds everything after the status line,
Date and Connection headers: the remaining header fields, the blank line and
the body. Those first lines change every second or per connection and are
prepended from a per-second cache (see ``state.ServerState``).

Immutable answers stay until evicted. Mutable ones (list, latest, queries)
carry an expiry on the monotonic clock and count as a miss once it passes.
"""

from __future__ import annotations

from collections import OrderedDict

from modgate.server.memfiles import MemFiles

ENTRY_OVERHEAD = 256
"""Bytes charged per entry on top of its data, for the key and bookkeeping."""

NEVER = 0.0
"""``expires`` of an immutable entry."""


class HotEntry:
    """One cached 200 response. ``key`` is the (route, status) counter it bumps."""

    __slots__ = (
        "body_len",
        "data",
        "etag",
        "expires",
        "fd",
        "fd_prefix",
        "head_len",
        "key",
        "module",
        "row",
        "seen_prefix",
        "sends",
        "subject",
    )

    def __init__(
        self,
        data: bytes,
        head_len: int,
        etag: bytes | None,
        key: tuple[str, int],
        expires: float = NEVER,
        *,
        module: str = "",
        subject: str = "",
    ) -> None:
        self.data = data
        self.head_len = head_len
        self.body_len = len(data) - head_len
        self.etag = etag
        self.key = key
        self.expires = expires
        # The module path access control decides on ("" for none: never served on
        # the hot path while authentication is on), and module@version for the audit.
        self.module = module
        self.subject = subject
        # The entry's memory file (see memfiles.MemFiles), and the prefixes it saw.
        self.fd = -1
        self.fd_prefix = b""
        self.seen_prefix = b""
        self.sends = 0  # sends from the current file
        # Its route's count of hot answers (state.ServerState.hot_row), once served.
        self.row: list[float] | None = None

    @property
    def head(self) -> bytes:
        """The header fields and blank line, for HEAD and 304."""
        return self.data[: self.head_len]

    def cost(self, target: bytes) -> int:
        return len(self.data) + len(target) + ENTRY_OVERHEAD


class HotCache:
    """An LRU of ``HotEntry`` by request target, bounded by a byte budget.

    ``entries`` is public so the connection's hot path can use it without a
    method call; anything else goes through the methods.
    """

    def __init__(self, budget: int, entry_max: int, files: MemFiles | None = None) -> None:
        if budget < 0 or entry_max <= 0:
            raise ValueError(f"hot cache budget={budget} entry_max={entry_max} must be positive")
        self.budget = budget
        self.entry_max = entry_max
        self.entries: OrderedDict[bytes, HotEntry] = OrderedDict()
        self.bytes = 0
        self.files = files if files is not None else MemFiles(0)
        """Memory files of the hottest large entries, for ``sendfile``."""

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, target: bytes, now: float) -> HotEntry | None:
        """The fresh entry for ``target`` (marked recently used), or None."""
        entry = self.entries.get(target)
        if entry is None:
            return None
        if entry.expires and entry.expires <= now:
            self._drop(target)
            return None
        self.entries.move_to_end(target)
        return entry

    def fits(self, body_len: int) -> bool:
        """Whether a body of this size may be kept at all."""
        return self.budget > 0 and body_len <= self.entry_max

    def put(self, target: bytes, entry: HotEntry) -> bool:
        """Keep ``entry`` under ``target``, evicting the least recently used as needed."""
        cost = entry.cost(target)
        if entry.body_len > self.entry_max or cost > self.budget:
            return False
        if target in self.entries:
            self._drop(target)
        while self.bytes + cost > self.budget:
            old_target, old = self.entries.popitem(last=False)
            self.bytes -= old.cost(old_target)
            self.files.release(old)
        self.entries[target] = entry
        self.bytes += cost
        return True

    def _drop(self, target: bytes) -> None:
        entry = self.entries.pop(target)
        self.bytes -= entry.cost(target)
        self.files.release(entry)

    def close(self) -> None:
        """Close the memory files (the entries stay usable from memory)."""
        self.files.close()
