"""Failed authentications, limited per client address.

An address that sent ``limit`` bad credentials within ``window`` seconds is
answered 429 without its credentials being looked at until the window that
began with its first failure ends. The table is bounded: the oldest
addresses are forgotten first. Behind a load balancer every client has its
address; set the limit for the whole site or turn it off (0).
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_WINDOW = 60.0
MAX_ADDRESSES = 65536


class FailureLimiter:
    def __init__(
        self, limit: int, window: float = DEFAULT_WINDOW, max_addresses: int = MAX_ADDRESSES
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def blocked(self, address: str, now: float) -> float:
        """Seconds ``address`` must still wait (0 when it may try)."""
        if self.limit <= 0:
            return 0.0
        entry = self._seen.get(address)
        if entry is None:
            return 0.0
        start, count = entry
        if now - start >= self.window:
            del self._seen[address]
            return 0.0
        return self.window - (now - start) if count >= self.limit else 0.0

    def failed(self, address: str, now: float) -> None:
        if self.limit <= 0:
            return
        start, count = self._seen.pop(address, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        self._seen[address] = (start, count + 1)
        while len(self._seen) > self.max_addresses:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
