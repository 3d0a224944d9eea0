"""A modgate killed mid-download leaves no partial artifact under a final name."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers.modules import stored_problems, write_big_module
from helpers.servers import ModgateFactory, StaticProxyFactory, http_get, wait_for
from helpers.staticproxy import Throttle

BIG_FILE = 20 * 1024 * 1024
"""Incompressible bytes in the module, so the zip is about this big."""
KILL_AFTER = 2 * 1024 * 1024
"""Kill modgate once the upstream has sent this much of the zip."""
SLOW = Throttle(chunk=256 * 1024, pause=0.05, min_size=1024 * 1024)
FINAL_SUFFIXES = (".zip", ".ziphash")


def test_kill_9_mid_download(
    tmp_path: Path, static_proxy: StaticProxyFactory, modgate: ModgateFactory
) -> None:
    big = write_big_module(tmp_path / "upstream", BIG_FILE)
    upstream = static_proxy(tmp_path / "upstream")
    upstream.throttle = SLOW
    store = tmp_path / "store"
    path = big.url_path("zip")
    vdir = store / big.escaped_dir()

    first = modgate("--upstream", upstream.url, store=store)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(http_get, first.url, path, timeout=60)
        wait_for(
            lambda: upstream.bytes_sent(path) >= KILL_AFTER,
            30,
            f"the upstream to send {KILL_AFTER} bytes of {path}",
        )
        first.kill()
        sent = upstream.bytes_sent(path)
        assert sent < len(big.zip), f"the whole zip ({sent} bytes) went out before the kill"
        pending.exception(timeout=60)  # the client saw the connection drop (or an error)

    finals = sorted(
        p.relative_to(store).as_posix()
        for p in store.rglob("*")
        if p.name.endswith(FINAL_SUFFIXES) and "_modgate" not in p.relative_to(store).parts
    )
    assert not finals, f"after kill -9 these files exist under final names: {finals}"

    offline = modgate("--upstream", "off", store=store)
    answer = offline.get(path)
    assert answer.status == 404, f"with --upstream off after the crash, GET {path}: {answer}"
    assert offline.stop() == 0

    upstream.throttle = None
    again = modgate("--upstream", upstream.url, store=store)
    answer = again.get(path, timeout=60)
    assert answer.status == 200, f"after restarting with the upstream, GET {path}: {answer}"
    assert hashlib.sha256(answer.body).digest() == hashlib.sha256(big.zip).digest(), (
        f"served {len(answer.body)} bytes that differ from the {len(big.zip)}-byte zip"
    )
    problems = stored_problems(store, big)
    assert not problems, "\n".join(problems)
    assert (vdir / "v1.0.0.zip").stat().st_size == len(big.zip)
