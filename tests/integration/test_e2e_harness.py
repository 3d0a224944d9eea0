"""The harness itself: the network guard, the static upstream and the sample modules.

These run without modgate, so a failure here points at the test tools, not
at the product.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.goenv import describe, go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems, zip_h1
from helpers.netguard import BlockedNetworkError, NetworkGuard
from helpers.servers import StaticProxyFactory, dead_port, http_get, wait_for
from helpers.staticproxy import LOOPBACK, Throttle

UNROUTABLE = "192.0.2.1"  # TEST-NET-1, never a real host


def connect_raw(address: tuple[str, int]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.connect(address)


def test_guard_blocks_everything_but_loopback(
    network_guard: NetworkGuard, static_proxy: StaticProxyFactory, tmp_path: Path
) -> None:
    before = len(network_guard.attempts)
    attempts: list[Callable[[], object]] = [
        lambda: socket.create_connection((UNROUTABLE, 80), timeout=1),
        lambda: connect_raw((UNROUTABLE, 80)),
        lambda: socket.getaddrinfo("proxy.golang.org", 443),
        lambda: urllib.request.urlopen(f"http://{UNROUTABLE}/", timeout=1),
    ]
    try:
        for attempt in attempts:
            with pytest.raises(BlockedNetworkError):
                attempt()
        assert len(network_guard.attempts) - before == len(attempts)
    finally:
        del network_guard.attempts[before:]
    proxy = static_proxy(tmp_path)
    assert http_get(proxy.url, "/nothing").status == 404
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.connect_ex((LOOPBACK, dead_port())) != 0


def test_sample_h1_matches_zip_entries(sample: SampleProject) -> None:
    wrong = [str(b.mv) for b in sample.versions if zip_h1(b.zip) != b.h1]
    assert not wrong, f"h1 from the file list differs from h1 of the zip entries: {wrong}"


@pytest.mark.go
def test_go_downloads_sample_from_static_proxy(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    proxy = static_proxy(sample.proxy_root)
    env = go_env(tmp_path, goproxy=proxy.url, gocache=gocache)
    proc = run_go(["mod", "download", "-json", *sample.download_args()], tmp_path, env)
    problems = download_problems(json_stream(proc.stdout), sample.versions)
    assert not problems, "\n".join(problems)
    assert "/example.com/!upper/kit/@v/v1.0.0.zip" in proxy.seen(), proxy.seen()


@pytest.mark.go
def test_go_reports_static_proxy_status(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    proxy = static_proxy(sample.proxy_root)
    proxy.status_all = 410
    env = go_env(tmp_path, goproxy=proxy.url, gocache=gocache)
    proc = run_go(["mod", "download", "example.com/liba@v1.0.0"], tmp_path, env, check=False)
    assert proc.returncode != 0 and "410 Gone" in proc.stderr, describe(proc)


def test_static_proxy_knobs(sample: SampleProject, static_proxy: StaticProxyFactory) -> None:
    proxy = static_proxy(sample.proxy_root)
    built = sample.version("example.com/liba", "v1.0.0")
    path = built.url_path("zip")
    proxy.throttle = Throttle(chunk=100, pause=0.001, min_size=1)
    answer = http_get(proxy.url, path)
    assert answer.status == 200 and answer.body == built.zip, answer
    wait_for(lambda: proxy.bytes_sent(path) == len(built.zip), 5, "the byte count to settle")
    proxy.statuses[path] = 500
    assert http_get(proxy.url, path).status == 500
    proxy.hang = True
    with pytest.raises(TimeoutError):
        http_get(proxy.url, path, timeout=0.3)
    assert proxy.count(path) == 3, proxy.seen()
