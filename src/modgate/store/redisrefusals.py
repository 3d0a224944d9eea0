"""Not-found answers shared by every replica through Redis.

When one replica learns that a module, a version or a query does not exist
upstream, it publishes the refusal with ``SET <namespace>:neg:<sha256 of
key> VALUE PX <ttl>``; another replica about to ask the upstream for the
same key reads it first (``GET`` and ``PTTL`` in one round trip) and
answers the same 404/410 for the rest of the time left, without asking.

A value holds what the client is told anyway, nothing else: the error's
kind, its subject and its one-line reason, as compact JSON of at most
``MAX_VALUE`` bytes. What is read is checked as hostile input: a value that
is too long, not that JSON, of an unknown kind, with control characters,
or without an expiry is ignored (the upstream is asked, as if the key were
absent) and counted in ``modgate_negative_shared_rejected_total``.

Lookups use the link's quick client (``QUICK_TIMEOUT``, one immediate
retry) and are skipped while the link is degraded: a missing or hung Redis
costs a request at most 1 s, and then nothing until Redis is asked again.
"""

from __future__ import annotations

import hashlib
import json

from modgate.metrics import Metrics
from modgate.protocol.errors import GoneError, InvalidModuleError, ModgateError, NotFoundError
from modgate.store.redislink import RedisLink

FORMAT = 1
MAX_VALUE = 2048
MAX_SUBJECT = 512
MAX_REASON = 1024
REJECTED_METRIC = "modgate_negative_shared_rejected_total"
KINDS: dict[str, type[ModgateError]] = {
    cls.__name__: cls for cls in (NotFoundError, GoneError, InvalidModuleError)
}
"""The errors that are remembered as not-found answers (the gateway's negative cache)."""


def refusal_key(namespace: str, key: str) -> str:
    """The Redis key of ``key``'s refusal: fixed length, whatever ``key`` holds."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{namespace}:neg:{digest}"


def encode(exc: ModgateError) -> bytes | None:
    """The value stored for ``exc``; None when it is not shareable (kind, subject too long)."""
    kind = next((name for name, cls in KINDS.items() if type(exc) is cls), None)
    if kind is None or len(exc.subject) > MAX_SUBJECT or not exc.subject.isprintable():
        return None
    reason = "".join(c if c.isprintable() else " " for c in exc.reason[:MAX_REASON])
    value = {"v": FORMAT, "kind": kind, "subject": exc.subject, "reason": reason}
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return data if len(data) <= MAX_VALUE else None


def decode(data: bytes) -> ModgateError:
    """The error a stored value describes; ValueError saying why a value is refused."""
    if len(data) > MAX_VALUE:
        raise ValueError(f"value of {len(data)} bytes, more than {MAX_VALUE}")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON text: {type(exc).__name__}") from None
    if not isinstance(value, dict) or set(value) != {"v", "kind", "subject", "reason"}:
        raise ValueError("not an object with exactly v, kind, subject and reason")
    if type(value["v"]) is not int or value["v"] != FORMAT:
        raise ValueError("unknown format version")
    cls = KINDS.get(value["kind"]) if isinstance(value["kind"], str) else None
    if cls is None:
        raise ValueError("unknown kind")
    subject, reason = value["subject"], value["reason"]
    if not _line(subject, MAX_SUBJECT, empty=True) or not _line(reason, MAX_REASON, empty=False):
        raise ValueError("subject or reason not one printable line within bounds")
    return cls(subject, reason)


def _line(text: object, limit: int, *, empty: bool) -> bool:
    if not isinstance(text, str) or len(text) > limit:
        return False
    return (empty or bool(text)) and text.isprintable()


class RedisRefusals:
    """The shared half of the negative cache (``service.negatives.SharedNegatives``)."""

    def __init__(self, link: RedisLink, namespace: str, metrics: Metrics | None = None) -> None:
        self.link = link
        self.namespace = namespace
        self._metrics = metrics
        if metrics is not None:
            metrics.declare(REJECTED_METRIC)

    def lookup(self, key: str) -> tuple[ModgateError, float] | None:
        """A refusal of ``key`` published by any replica, with its seconds left; None if none."""
        if not self.link.usable():
            return None
        name = refusal_key(self.namespace, key)
        try:
            with self.link.quick.pipeline(transaction=False) as pipe:
                data, left_ms = pipe.get(name).pttl(name).execute()
        except self.link.errors as exc:
            self.link.failed(exc)
            return None
        self.link.answered()
        if data is None:
            return None
        try:
            if not isinstance(left_ms, int) or left_ms <= 0:
                raise ValueError("no expiry")  # a refusal that would last for ever
            return decode(data), left_ms / 1000
        except ValueError:
            if self._metrics is not None:
                self._metrics.inc(REJECTED_METRIC)
            return None

    def publish(self, key: str, exc: ModgateError, ttl: float) -> None:
        """Tell the other replicas that ``key`` is refused, for ``ttl`` seconds."""
        data = encode(exc)
        if data is None or ttl <= 0 or not self.link.usable():
            return
        try:
            self.link.quick.set(refusal_key(self.namespace, key), data, px=max(1, int(ttl * 1000)))
        except self.link.errors as exc_:
            self.link.failed(exc_)
            return
        self.link.answered()
