"""No fsync and no blocking sleep on the event loop.

The whole serving stack (``build_gateway`` as ``modgate serve`` wires it, the
HTTP server, a real upstream on loopback) runs in this process while
``os.fsync``, ``os.fdatasync`` and ``time.sleep`` are watched: a call made by
the thread that runs the event loop is a blocking call on the loop and fails
the test with the stack that made it. The requests cover cold fetches of
every artifact kind, hits from the store and from memory, list, latest,
queries, a not-found, /readyz and /metrics. With an S3 store (moto's
server on loopback) every request botocore sends to the object store is
watched the same way: none may leave from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers.modules import SampleProject
from helpers.s3server import S3Server
from helpers.staticproxy import StaticProxy
from helpers.sumdbserver import TestSumdb, proxy_gosum
from modgate.cli.serve import build_gateway
from modgate.config import resolve
from modgate.metrics import Metrics
from modgate.server.app import start_server

WATCHED = ("fsync", "fdatasync")


@pytest.fixture
def loop_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Blocking calls made on a thread that runs an event loop, with their stacks."""
    seen: list[str] = []

    def watch(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # no loop in this thread: a worker thread, as it should be
            else:
                stack = "".join(traceback.format_stack(limit=12))
                seen.append(f"{name}{args!r} on the event loop:\n{stack}")
            return real(*args, **kwargs)

        return wrapper

    for name in WATCHED:
        monkeypatch.setattr(os, name, watch(f"os.{name}", getattr(os, name)))
    monkeypatch.setattr(time, "sleep", watch("time.sleep", time.sleep))
    yield seen


def _paths(sample: SampleProject) -> list[str]:
    paths = []
    for built in sample.versions:
        for kind in ("info", "mod", "zip"):
            paths.append(built.url_path(kind))
    module = sample.versions[0]
    base = module.url_path("info").rsplit("/@v/", 1)[0]
    return [*paths, f"{base}/@v/list", f"{base}/@latest", f"{base}/@v/v9.9.9.info"]


def _serve(settings: dict[str, str], home: Path, paths: list[str], rounds: int) -> list[int]:
    """Statuses of ``rounds`` passes over ``paths`` (and /readyz, /metrics) through one server."""
    base = {"listen": "127.0.0.1:0", "verify_sumdb": "off", "sumdb": "off"}
    resolved = resolve({**base, **settings}, {"HOME": str(home)}, None)
    gateway = build_gateway(resolved, Metrics())  # as modgate serve does: before the loop runs

    async def main() -> list[int]:
        handle = await start_server(gateway, host="127.0.0.1", port=0)
        statuses = []
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{handle.port}") as c:
                for _ in range(rounds):  # cold, then warm (store and memory)
                    for path in [*paths, "/readyz", "/metrics"]:
                        statuses.append((await c.get(path)).status_code)
        finally:
            await handle.close()
        return statuses

    return asyncio.run(main())


def test_serving_never_blocks_the_loop_on_fsync_or_sleep(
    tmp_path: Path, sample: SampleProject, loop_calls: list[str]
) -> None:
    paths = _paths(sample)
    with StaticProxy(sample.proxy_root) as upstream:
        store = {"store": str(tmp_path / "store"), "upstream": upstream.url}
        statuses = _serve(store, tmp_path, paths, 2)
    assert statuses.count(200) >= 2 * (len(paths) - 1), statuses
    assert not loop_calls, "\n\n".join(loop_calls[:3])


def test_an_s3_store_is_never_asked_from_the_event_loop(
    tmp_path: Path,
    sample: SampleProject,
    loop_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.endpoint import Endpoint  # noqa: PLC0415  (slow; only this test needs it)

    s3 = S3Server()
    try:
        s3.create_bucket("loop")
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)
        real_send = Endpoint._send

        def send(self: Endpoint, request: Any) -> Any:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                stack = "".join(traceback.format_stack(limit=14))
                loop_calls.append(f"S3 {request.method} {request.url} on the event loop:\n{stack}")
            return real_send(self, request)

        monkeypatch.setattr(Endpoint, "_send", send)
        paths = _paths(sample)
        # verified against a checksum database, whose answers are kept in the bucket too
        public = TestSumdb(proxy_gosum(sample.proxy_root))
        with StaticProxy(sample.proxy_root) as upstream, public:
            fetching = {"store": "s3://loop/mirror", "store_cache": str(tmp_path / "c1"),
                        "upstream": upstream.url, "sumdb": public.spec,
                        "verify_sumdb": public.name}  # fmt: skip
            statuses = _serve(fetching, tmp_path, paths, 2)
        # another replica, its disk cache empty: every artifact is read from the bucket
        reading = {"store": "s3://loop/mirror", "store_cache": str(tmp_path / "c2"),
                   "upstream": "off"}  # fmt: skip
        cold_reads = _serve(reading, tmp_path, paths, 1)
    finally:
        s3.close()
    assert statuses.count(200) >= 2 * (len(paths) - 1), statuses
    assert cold_reads.count(200) >= len(paths) - 1, cold_reads
    assert not loop_calls, "\n\n".join(loop_calls[:3])
