"""No fsync and no blocking sleep on the event loop.

The whole serving stack (``build_gateway`` as ``modgate serve`` wires it, the
HTTP server, a real upstream on loopback) runs in this process while
``os.fsync``, ``os.fdatasync`` and ``time.sleep`` are watched: a call made by
the thread that runs the event loop is a blocking call on the loop and fails
the test with the stack that made it. The requests cover cold fetches of
every artifact kind, hits from the store and from memory, list, latest,
queries, a not-found, /readyz and /metrics.
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
from helpers.staticproxy import StaticProxy
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


def test_serving_never_blocks_the_loop_on_fsync_or_sleep(
    tmp_path: Path, sample: SampleProject, loop_calls: list[str]
) -> None:
    with StaticProxy(sample.proxy_root) as upstream:
        settings = resolve(
            {
                "store": str(tmp_path / "store"),
                "upstream": upstream.url,
                "listen": "127.0.0.1:0",
                "verify_sumdb": "off",
                "sumdb": "off",
            },
            {"HOME": str(tmp_path)},
            None,
        )
        paths = []
        for built in sample.versions:
            for kind in ("info", "mod", "zip"):
                paths.append(built.url_path(kind))
        module = sample.versions[0]
        base = module.url_path("info").rsplit("/@v/", 1)[0]
        paths += [f"{base}/@v/list", f"{base}/@latest", f"{base}/@v/v9.9.9.info"]

        async def main() -> list[int]:
            gateway = build_gateway(settings, Metrics())
            handle = await start_server(gateway, host="127.0.0.1", port=0)
            statuses = []
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{handle.port}") as c:
                    for _ in range(2):  # cold, then warm (store and memory)
                        for path in [*paths, "/readyz", "/metrics"]:
                            statuses.append((await c.get(path)).status_code)
            finally:
                await handle.close()
            return statuses

        statuses = asyncio.run(main())
    assert statuses.count(200) >= 2 * (len(paths) - 1), statuses
    assert not loop_calls, "\n\n".join(loop_calls[:3])
