"""The degraded-mirror table: doubling backoff up to a cap, one retry at a time, a bound."""

from __future__ import annotations

import pytest

from modgate.metrics import Metrics
from modgate.sources import mirror_health
from modgate.sources.mirror_health import DEGRADED, FAILURES, JITTER, MirrorHealth


def test_backoff_grows_and_is_bounded() -> None:
    now = [100.0]
    health = MirrorHealth(Metrics(), backoff=10, cap=60, clock=lambda: now[0])
    delays = [health.failed("u", "boom") for _ in range(6)]
    for got, want in zip(delays, [10, 20, 40, 60, 60, 60], strict=True):
        assert want * (1 - JITTER) <= got <= want * (1 + JITTER), delays
    assert not health.claim_retry("u"), "a retry was allowed before the backoff ran out"
    now[0] += 60 * (1 + JITTER)
    assert health.claim_retry("u"), "no retry once the backoff ran out"
    assert not health.claim_retry("u"), "two retries of one mirror at once"
    health.release("u")
    assert health.claim_retry("u"), "a released retry cannot be claimed again"
    health.succeeded("u")
    assert not health.degraded("u")


def test_the_table_is_bounded_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mirror_health, "MAX_TRACKED", 3)
    metrics = Metrics()
    health = MirrorHealth(metrics)
    for i in range(5):
        health.failed(f"https://example.com/r{i}", "boom")
    kept = [i for i in range(5) if health.degraded(f"https://example.com/r{i}")]
    assert kept == [2, 3, 4], f"the oldest should be forgotten first, kept {kept}"
    assert metrics.value(DEGRADED) == 3 and metrics.value(FAILURES) == 5
    health.succeeded("https://example.com/r3")
    assert metrics.value(DEGRADED) == 2


def test_logs_name_the_repository_without_credentials(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-token-value"
    health = MirrorHealth(scrub=lambda text: text.replace(secret, "xxxxx"))
    with caplog.at_level("WARNING", logger="modgate.direct"):
        health.failed(f"https://user:{secret}@git.example.com/r.git", f"fetch failed ({secret})")
    record = caplog.records[-1]
    assert record.event == "git_mirror_degraded"  # type: ignore[attr-defined]
    shown = f"{record.repository} {record.error}"  # type: ignore[attr-defined]
    assert secret not in shown and "git.example.com" in shown, shown
