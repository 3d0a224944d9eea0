"""A crash's leftovers go at the next start: kill -9 mid-download, then start again.

Bound: one 8 MB download cut after 1 MB, two starts, under 30 s; after the
second start the store's temp folder is empty (no ten-minute wait) and no
partial artifact exists under a final name.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers.modules import write_big_module
from helpers.servers import ModgateFactory, StaticProxyFactory, http_get, wait_for
from helpers.staticproxy import Throttle

BIG_FILE = 8 * 1024 * 1024
KILL_AFTER = 1024 * 1024
SLOW = Throttle(chunk=128 * 1024, pause=0.05, min_size=1024 * 1024)


def _temp_files(store: Path) -> list[str]:
    tmp = store / "_modgate" / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def test_temp_files_of_a_killed_server_are_gone_at_the_next_start(
    tmp_path: Path, static_proxy: StaticProxyFactory, modgate: ModgateFactory
) -> None:
    big = write_big_module(tmp_path / "upstream", BIG_FILE)
    upstream = static_proxy(tmp_path / "upstream")
    upstream.throttle = SLOW
    store = tmp_path / "store"
    path = big.url_path("zip")
    first = modgate("--upstream", upstream.url, store=store)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(http_get, first.url, path, timeout=30)
        wait_for(lambda: upstream.bytes_sent(path) >= KILL_AFTER, 20, "the download to start")
        wait_for(lambda: bool(_temp_files(store)), 10, "a temp file of the download")
        first.kill()
        pending.exception(timeout=30)
    left = _temp_files(store)
    assert left, "the kill left no temp file: the test would prove nothing"

    second = modgate("--upstream", "off", store=store)
    assert _temp_files(store) == [], f"temp files survived the start: {left}"
    assert second.get(path).status == 404, "a partial zip is served"
    finals = [p.name for p in (store / big.escaped_dir()).glob("v1.0.0.zip*")]
    assert finals == [], f"partial artifacts under final names: {finals}"
