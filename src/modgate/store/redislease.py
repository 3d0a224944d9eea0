"""Locks shared by every replica through Redis: leases with an expiry and a fencing token.

A lock is the key ``<namespace>:lease:<sha256 of name>`` set with ``SET NX
PX``; its value is a fencing token, a number from ``INCR
<namespace>:fence`` that only grows. While a lease is held a background
thread extends it every third of its life (only if the key still holds our
token). A replica killed while holding a lease stops extending it, and the
lease ends ``lease_seconds`` later at the latest: another replica then takes
it. Release deletes the key only if it still holds our token, so a holder
whose lease ran out never releases its successor's.

Every lock is also taken in this process first (``ProcessLocks``), so the
threads of one replica queue in memory and only one of them talks to Redis.

When Redis cannot be reached the locks degrade to per-process ones: each
replica then fetches at most once per artifact, and answers stay right,
because artifacts are created with a conditional write that never
overwrites. The link to Redis (``redislink.RedisLink``, shared with the
not-found answers) says so: ``degraded`` (for ``/readyz``), one warning and
the gauge ``modgate_coordination_degraded``. Redis is asked again at most
every ``redislink.RETRY_SECONDS``; when it answers, the locks are shared again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from modgate.metrics import Metrics
from modgate.protocol.errors import StoreError
from modgate.store.locking import ProcessLocks
from modgate.store.redislink import RedisLink

log = logging.getLogger("modgate.coordination")

LEASE_SECONDS = 30.0
POLL_FIRST, POLL_MAX = 0.01, 0.2
STRICT_PREFIXES = ("sumdb/",)
"""Locks that are never degraded: the private checksum log is one append-only log, and two
replicas appending at once would fork it. While Redis is down these locks fail (the
request gets a clear error) instead of falling back to per-process locks."""

_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLocks:
    """The Locks port across replicas: Redis leases over in-process locks."""

    def __init__(
        self,
        url: str,
        namespace: str,
        metrics: Metrics | None = None,
        *,
        lease_seconds: float = LEASE_SECONDS,
        client: Any = None,
    ) -> None:
        self.link = RedisLink(url, metrics, client=client)
        self.namespace = namespace
        self.lease_ms = int(lease_seconds * 1000)
        self.client = self.link.client
        self._errors = self.link.errors
        self._local = ProcessLocks()
        self._state = threading.Lock()
        self._held: dict[str, int] = {}
        self._names: dict[str, tuple[str, int]] = {}
        """Held leases by key: the lock's name and token (for fencing checks)."""
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()

    # -- the Locks port ------------------------------------------------------

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        with self._local.lock(name):
            key = self._key(name)
            token = self._acquire(key, wait=True)
            self._refuse_degraded(name, token)
            self._name(key, name, token)
            try:
                yield
            finally:
                self._release(key, token)

    def try_lock(self, name: str) -> Callable[[], None] | None:
        local = self._local.try_lock(name)
        if local is None:
            return None
        key = self._key(name)
        try:
            token = self._acquire(key, wait=False)
        except BaseException:
            local()
            raise
        if token == 0:
            local()
            return None
        try:
            self._refuse_degraded(name, token)
        except StoreError:
            local()
            raise
        self._name(key, name, token)

        def release() -> None:
            try:
                self._release(key, token)
            finally:
                local()

        return release

    @property
    def degraded(self) -> str | None:
        """Why Redis is not used now (None while it answers)."""
        return self.link.degraded

    def token(self, name: str) -> int | None:
        """The fencing token of a lease this process holds (None when not held here)."""
        with self._state:
            return self._held.get(self._key(name))

    def health(self) -> str | None:
        return self.ping()

    def check_fence(self, name: str) -> None:
        """Before a write under a strict lock: raise unless our lease on it is still in Redis.

        ``name`` is what is written (``sumdb/<log>/tree``); the lease is the
        strict lock it lies under (``sumdb/<log>``). A replica that was paused
        past its lease's end finds another token there and does not write.
        """
        if not name.startswith(STRICT_PREFIXES):
            return
        with self._state:
            held = [(n, k, t) for k, (n, t) in self._names.items() if _under(name, n)]
        for lock_name, key, token in held:
            try:
                current = self.client.get(key)
            except self._errors as exc:
                self.link.failed(exc)
                raise StoreError(
                    name,
                    f"coordination through Redis is down ({self.degraded}); "
                    "not written: retry when Redis is back",
                ) from exc
            if current is None or int(current) != token:
                raise StoreError(
                    name,
                    f"the lease on {lock_name} ended before this write (fencing token {token}, "
                    f"now {_text(current)}); not written, retry",
                )

    def ping(self) -> str | None:
        """Ask Redis now; None when it answers, else why not (and the locks degrade)."""
        return self.link.ping()

    def close(self) -> None:
        self._stop.set()

    # -- leases -----------------------------------------------------------------

    def _name(self, key: str, name: str, token: int | None) -> None:
        if token:
            with self._state:
                self._names[key] = (name, token)

    def _refuse_degraded(self, name: str, token: int | None) -> None:
        if token is None and name.startswith(STRICT_PREFIXES):
            raise StoreError(
                name,
                f"{self.degraded}; the private checksum log is not appended to without "
                "Redis (replicas would fork it): retry when Redis is back",
            )

    def _key(self, name: str) -> str:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.namespace}:lease:{digest}"

    def _acquire(self, key: str, *, wait: bool) -> int | None:
        """The lease's token; None when degraded (the process lock alone holds it); 0 when held."""
        delay = POLL_FIRST
        while True:
            if not self.link.usable():
                return None
            try:
                token = int(self.client.incr(f"{self.namespace}:fence"))
                if self.client.set(key, token, nx=True, px=self.lease_ms):
                    self.link.answered()
                    with self._state:
                        self._held[key] = token
                    self._start_renewer()
                    return token
                self.link.answered()
            except self._errors as exc:
                self.link.failed(exc)
                return None
            if not wait:
                return 0
            time.sleep(delay)
            delay = min(delay * 2, POLL_MAX)

    def _release(self, key: str, token: int | None) -> None:
        if not token:
            return
        with self._state:
            self._held.pop(key, None)
            self._names.pop(key, None)
        try:
            self.client.eval(_RELEASE, 1, key, token)
        except self._errors as exc:
            self.link.failed(exc)  # the lease ends by itself

    def _start_renewer(self) -> None:
        with self._state:
            if self._renewer is not None and self._renewer.is_alive():
                return
            self._renewer = threading.Thread(
                target=self._renew, name="modgate-lease-renewer", daemon=True
            )
            self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_ms / 3000):
            with self._state:
                held = list(self._held.items())
            for key, token in held:
                try:
                    if not self.client.eval(_EXTEND, 1, key, token, self.lease_ms):
                        log.warning(
                            "a coordination lease was lost before it was released",
                            extra={"event": "lease_lost", "token": token},
                        )
                        with self._state:
                            if self._held.get(key) == token:
                                del self._held[key]
                except self._errors as exc:
                    self.link.failed(exc)


def _under(name: str, lock_name: str) -> bool:
    return name == lock_name or name.startswith(lock_name + "/")


def _text(value: object) -> str:
    if value is None:
        return "none"
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
