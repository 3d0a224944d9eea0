"""A hostile network between modgate and its upstreams: builds succeed when a path can.

A fault-injecting proxy (:mod:`helpers.faultproxy`) sits in front of a
static upstream that holds the sample project's modules. For each fault the
real go command downloads the sample project's whole build list through
modgate (``go mod download`` checks every hash against its go.sum; the
kill -9 test also builds it):

- with ``--upstream <faulty>|<good>`` the build succeeds (``|`` falls
  through on any error);
- with the faulty upstream alone and a short burst of faults, retries make
  it succeed (a zip with a flipped byte is fetched once more);
- with the faulty upstream alone and a lasting fault, it fails, and modgate's
  answer is one line naming the module@version and the upstream.

After each case every artifact in the store is re-read and compared with
what was published (:mod:`helpers.storecheck`): nothing corrupt or partial
is ever stored. The longer run is ``MODGATE_CHAOS_ROUNDS=50 pytest
tests/integration/test_chaos.py -k kill`` (README, Tests).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from helpers import netns
from helpers.faultproxy import Fault, FaultProxy
from helpers.goenv import describe, go_binary, go_env, run_go
from helpers.modules import SampleProject
from helpers.servers import (
    ModgateFactory,
    ModgateHandle,
    StaticProxyFactory,
    dead_port,
    metric_total,
    metric_values,
)
from helpers.storecheck import store_problems
from modgate.diagnose.causes import CauseId
from modgate.diagnose.gateway_answers import gateway_cause

pytestmark = pytest.mark.go

TIMEOUT = "1"
"""--upstream-timeout of these tests: a stalled or crawling answer is given up after 1 s."""
KILL_ROUNDS = int(os.environ.get("MODGATE_CHAOS_ROUNDS", "3"))
SLOW_FAULTS = (Fault.STALL, Fault.SLOW)
ZIP_ONLY = (Fault.FLIP, *SLOW_FAULTS)
"""Faults applied to zips only (a flip means nothing elsewhere; slow ones cost a timeout each)."""


@pytest.fixture
def faulty(sample: SampleProject, static_proxy: StaticProxyFactory) -> Iterator[FaultProxy]:
    good = static_proxy(sample.proxy_root)
    proxy = FaultProxy(good.url.removeprefix("http://").rstrip("/"))
    proxy.good_url = good.url  # type: ignore[attr-defined]
    yield proxy
    proxy.close()


def _build(sample: SampleProject, tmp_path: Path, gocache: Path, url: str, *, check: bool = True
           ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = go_env(tmp_path / f"go{time.monotonic_ns()}", goproxy=url, gocache=gocache)
    return run_go(["build", "-o", str(tmp_path / "app"), "."], sample.main_dir, env, check=check)


def _download(sample: SampleProject, tmp_path: Path, url: str) -> None:
    """``go mod download`` of the sample's whole build list, checked against its go.sum."""
    env = go_env(tmp_path / f"go{time.monotonic_ns()}", goproxy=url)
    run_go(["mod", "download"], sample.main_dir, env)


def _served_problems(server: ModgateHandle, sample: SampleProject, store: Path) -> list[str]:
    """What a restarted modgate serves differently from what was published, for stored zips."""
    problems = []
    for built in sample.versions:
        if not (store / built.escaped_dir() / Path(built.url_path("zip")).name).is_file():
            continue
        for kind, want in (("mod", built.mod), ("zip", built.zip)):
            answer = server.get(built.url_path(kind))
            if answer.status != 200 or answer.body != want:
                problems.append(f"{built.mv} .{kind}: served {answer.status}, not the published")
    return problems


def _suffix(fault: Fault) -> str:
    return ".zip" if fault in ZIP_ONLY else ""


def _assert_store_clean(store: Path, sample: SampleProject) -> None:
    problems = store_problems(store, sample.versions)
    assert not problems, "corrupt or partial artifacts in the store:\n" + "\n".join(problems)


@pytest.mark.parametrize("fault", list(Fault)[1:], ids=lambda f: f.value)
def test_fall_through_to_a_good_upstream(
    fault: Fault, faulty: FaultProxy, sample: SampleProject, tmp_path: Path,
    modgate: ModgateFactory,
) -> None:  # fmt: skip
    faulty.plan = FaultProxy.always(fault, _suffix(fault))
    server = modgate(
        "--upstream", f"{faulty.url}|{faulty.good_url}",  # type: ignore[attr-defined]
        "--upstream-timeout", TIMEOUT, "--upstream-retries", "0",
    )  # fmt: skip
    _download(sample, tmp_path, server.url)
    hit = [path for path, f in faulty.log if f is fault]
    assert hit, f"the fault was never injected: {faulty.log}"
    metrics = server.metrics()
    if fault is Fault.FLIP:
        refused = metric_total(metrics, "modgate_verification_failures_total")
        assert refused >= 1, "zips with a flipped byte were not refused by verification"
    if fault is Fault.TRUNCATE_UNFRAMED:
        unframed = metric_values(metrics, "modgate_upstream_errors_total")
        assert any('kind="unframed"' in labels for labels in unframed), (
            f"answers without framing were not refused: {unframed}"
        )
    _assert_store_clean(server.store, sample)


@pytest.mark.parametrize(
    ("fault", "count"),
    [
        (Fault.RESET, 2),
        (Fault.RESET_BODY, 1),
        (Fault.STATUS_503, 2),
        (Fault.TRUNCATE, 1),
        (Fault.STALL, 1),
    ],
    ids=lambda v: v.value if isinstance(v, Fault) else str(v),
)
def test_retries_ride_out_a_burst(
    fault: Fault, count: int, faulty: FaultProxy, sample: SampleProject, tmp_path: Path,
    modgate: ModgateFactory,
) -> None:  # fmt: skip
    faulty.plan = FaultProxy.burst(fault, count, _suffix(fault))
    server = modgate(
        "--upstream", faulty.url, "--upstream-timeout", TIMEOUT, "--upstream-retries", "2",
    )  # fmt: skip
    _download(sample, tmp_path, server.url)
    assert any(f is fault for _, f in faulty.log), f"the fault was never injected: {faulty.log}"
    _assert_store_clean(server.store, sample)


def test_a_flipped_zip_is_fetched_again_from_a_single_upstream(
    faulty: FaultProxy, sample: SampleProject, tmp_path: Path, modgate: ModgateFactory,
) -> None:  # fmt: skip
    """A zip damaged once on its way: with no ``|`` alternative, modgate fetches it again."""
    faulty.plan = FaultProxy.burst(Fault.FLIP, 1, ".zip")
    server = modgate("--upstream", faulty.url, "--upstream-retries", "0", "--negative-ttl", "600")
    _download(sample, tmp_path, server.url)
    flipped = [path for path, f in faulty.log if f is Fault.FLIP]
    assert flipped, f"no zip was flipped: {faulty.log}"
    refused = metric_total(server.metrics(), "modgate_verification_failures_total")
    assert refused == len(flipped), f"{len(flipped)} zips flipped, {refused} refused"
    _assert_store_clean(server.store, sample)
    served = _served_problems(server, sample, server.store)
    assert not served, "\n".join(served)
    missing = [p for p in flipped if not (server.store / unquote(p).lstrip("/")).is_file()]
    assert not missing, f"zips flipped once and never stored: {missing}"


@pytest.mark.parametrize("fault", list(Fault)[1:], ids=lambda f: f.value)
def test_no_good_path_fails_in_one_line(
    fault: Fault, faulty: FaultProxy, sample: SampleProject, gocache: Path, tmp_path: Path,
    modgate: ModgateFactory,
) -> None:  # fmt: skip
    faulty.plan = FaultProxy.always(fault, _suffix(fault))
    server = modgate(
        "--upstream", faulty.url, "--upstream-timeout", TIMEOUT, "--upstream-retries", "1",
    )  # fmt: skip
    built = sample.version("example.com/liba", "v1.1.0")
    env = go_env(tmp_path / "go", goproxy=server.url, gocache=gocache)
    proc = run_go(["mod", "download", str(built.mv)], tmp_path, env, check=False)
    assert proc.returncode != 0, f"{fault.value}: the download succeeded\n{describe(proc)}"
    answer = server.get(built.url_path("zip"))
    body = answer.body.decode(errors="replace")
    assert answer.status in (404, 410, 502, 504), f"{fault.value}: {answer}"
    assert body.count("\n") <= 1, f"{fault.value}: the error is not one line: {body!r}"
    assert str(built.mv) in body, f"{fault.value}: the error does not name the module: {body!r}"
    assert faulty.url in body, f"{fault.value}: the error does not name the upstream: {body!r}"
    _assert_store_clean(server.store, sample)


def test_an_unreachable_proxy_is_named_not_the_upstream(
    faulty: FaultProxy, sample: SampleProject, gocache: Path, tmp_path: Path,
    modgate: ModgateFactory,
) -> None:  # fmt: skip
    """http_proxy names a dead port: the answer points at the proxy and the variable."""
    proxy = f"http://ci:t0ken@127.0.0.1:{dead_port()}"
    env = {"http_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}
    server = modgate("--upstream", faulty.url, "--upstream-retries", "0", env=env)
    built = sample.version("example.com/liba", "v1.1.0")
    go = go_env(tmp_path / "go", goproxy=server.url, gocache=gocache)
    proc = run_go(["mod", "download", str(built.mv)], tmp_path, go, check=False)
    assert proc.returncode != 0, f"the download succeeded\n{describe(proc)}"
    answer = server.get(built.url_path("info"))
    body = answer.body.decode(errors="replace")
    assert answer.status == 502, answer
    assert body.count("\n") <= 1, f"the error is not one line: {body!r}"
    shown = proxy.replace("ci:t0ken", "xxxxx")
    assert f"cannot connect to the proxy {shown} (from http_proxy)" in body, body
    assert str(built.mv) in body and faulty.url in body, body
    assert "t0ken" not in body + server.stderr_text(), "the proxy's password leaked"
    assert gateway_cause(body) is CauseId.MODGATE_UPSTREAM_FAILED, "modgate diagnose misses it"
    assert not faulty.log, f"a request reached the upstream without the proxy: {faulty.log}"


def test_kill_9_during_cold_downloads(
    faulty: FaultProxy, sample: SampleProject, gocache: Path, tmp_path: Path,
    modgate: ModgateFactory,
) -> None:  # fmt: skip
    """modgate killed at random moments of a cold download; the store stays correct each time."""
    store = tmp_path / "store"
    faulty.plan = FaultProxy.always(Fault.SLOW, ".zip")
    faulty.slow_interval = 0.0005  # about 2 kB/s: every zip is mid-transfer for a while
    rng = random.Random(int(os.environ.get("MODGATE_CHAOS_SEED", "11")))
    interrupted = 0
    for round_ in range(KILL_ROUNDS):
        server = modgate("--upstream", faulty.url, "--upstream-timeout", "30", store=store)
        served = _served_problems(server, sample, store)
        assert not served, f"after restart number {round_}:\n" + "\n".join(served)
        env = go_env(tmp_path / f"go{round_}", goproxy=server.url, gocache=gocache)
        download = subprocess.Popen(
            [str(go_binary()), "mod", "download", *sample.download_args()],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rng.uniform(0.1, 0.8))
        server.kill()
        download.kill()
        download.wait()
        problems = store_problems(store, sample.versions)
        assert not problems, f"after kill -9 number {round_ + 1}:\n" + "\n".join(problems)
        stored = {p.name for p in store.rglob("*.zip") if "_modgate" not in p.parts}
        interrupted += len(stored) < len(sample.versions)
    assert interrupted, "no kill happened before the download was complete"
    faulty.plan = FaultProxy.always(Fault.NONE)
    server = modgate("--upstream", faulty.url, store=store)
    _build(sample, tmp_path, gocache, server.url)
    _assert_store_clean(store, sample)


def test_dns_failure(tmp_path: Path) -> None:
    """An upstream whose name cannot be resolved: ``|`` falls through; alone, one clear line.

    Runs in a loopback-only network namespace, where the resolver fails at once
    without sending a packet (:mod:`helpers.netns`).
    """
    why = netns.available()
    if why:
        pytest.skip(f"cannot make a network namespace here: {why}")
    tests_dir = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tests_dir), env.get("PYTHONPATH", "")])
    proc = netns.run_isolated(
        [sys.executable, "-m", "helpers.dns_scenario", str(tmp_path)],
        env=env,
        cwd=str(tests_dir),
        timeout=240,
    )
    assert proc.returncode == 0, f"the scenario failed:\n{proc.stdout}\n{proc.stderr}"
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["fallthrough_exit"] == 0, f"with a good path the download failed: {seen}"
    assert seen["dns_errors"], f"the resolver failure was not counted as kind dns: {seen}"
    assert seen["fallthrough_store"] == [], seen["fallthrough_store"]
    assert seen["alone_exit"] != 0, f"with no good path the download succeeded: {seen}"
    body = seen["alone_body"]
    assert seen["alone_status"] in (502, 504), seen
    assert body.count("\n") <= 1 and seen["module"] in body and seen["bad"] in body, (
        f"the error must be one line naming the module and the upstream: {body!r}"
    )
    assert "resolve" in body, f"the error does not say the name could not be resolved: {body!r}"
    assert seen["alone_store"] == [], seen["alone_store"]
