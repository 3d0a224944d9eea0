"""Tables a client can add to stay bounded: the negative cache, query spellings, lock files.

In process (cheap enough for a million keys where a key costs nothing but
memory) and through ``modgate serve`` over HTTP (fewer requests, bounded in
time). Each test states its bound next to what it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import re
import socket
import tracemalloc
from pathlib import Path

import httpx
import pytest

from adversarial.conftest import address_of, file_count, process_stats
from helpers.gitfixtures import RepoBuilder
from helpers.servers import ModgateFactory
from modgate.metrics import Metrics
from modgate.protocol.errors import NotFoundError, OverloadedError
from modgate.protocol.module import ModuleVersion
from modgate.protocol.patterns import parse_patterns
from modgate.server.responses import error_reply
from modgate.service.gateway import Gateway, GatewayOptions
from modgate.service.mutable import SPELLING_MAX_BYTES
from modgate.service.routing import ChainEntry, OffSource, SourceRouter
from modgate.service.ttlcache import ENTRY_OVERHEAD, NegativeCache, TTLCache
from modgate.sources import vcs_resolve
from modgate.sources.direct import DirectSource
from modgate.sources.repotable import RepoTable
from modgate.sources.vcs_resolve import DISCOVERY_CACHE_ENTRIES, Resolver
from modgate.store.filesystem import FilesystemStore

MILLION = 1_000_000
MIB = 1 << 20
REASON = "not found: example.com answered 404 for this path; check the module path"
INFO = b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}'


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _gateway(tmp_path: Path, source: object, **opts: float) -> Gateway:
    router = SourceRouter((ChainEntry(source, False),), DirectSource(), parse_patterns(""))  # type: ignore[arg-type]
    options = GatewayOptions(**opts)  # type: ignore[arg-type]
    return Gateway(FilesystemStore(tmp_path / "store"), router, Metrics(), options)


# ---- the negative cache in process -------------------------------------------------------


def test_a_million_distinct_refusals_stay_within_the_entry_and_byte_limits() -> None:
    clock = FakeClock()
    max_entries, max_bytes = 50_000, 8 * MIB
    cache = NegativeCache(600, max_entries, max_bytes=max_bytes, clock=clock)
    for i in range(MILLION):
        key = f"info:example.com/hostile/{i}@v1.0.{i}"
        cache.remember(key, NotFoundError(key[5:], REASON))
        clock.now += 0.0001
    assert len(cache) <= max_entries, f"{len(cache)} entries kept; the limit is {max_entries}"
    assert cache.bytes <= max_bytes


def test_the_byte_estimate_covers_what_python_really_holds() -> None:
    cache = NegativeCache(600, 20_000)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for i in range(30_000):
            key = f"info:example.com/hostile/{i}@v1.0.{i}"
            cache.remember(key, NotFoundError(key[5:], REASON))
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(cache) == 20_000
    assert held <= cache.bytes, f"{held} bytes held, {cache.bytes} counted"


def test_expired_refusals_are_dropped_without_being_looked_up() -> None:
    clock = FakeClock()
    cache = NegativeCache(30, clock=clock)
    for i in range(10_000):
        cache.remember(f"k{i}", NotFoundError(f"m{i}", "absent"))
    clock.now = 31.0
    cache.remember("late", NotFoundError("late", "absent"))
    assert len(cache) == 1, f"{len(cache)} entries left after their lifetime ended"
    clock.now = 62.0
    cache.expire()
    assert len(cache) == 0


def test_ttl_cache_weighs_values_and_drops_the_oldest_first() -> None:
    cache: TTLCache[bytes] = TTLCache(60, max_bytes=10 * (1000 + ENTRY_OVERHEAD + 2), weigh=len)
    for i in range(50):
        cache.put(f"{i:02d}", b"x" * 1000)
    assert len(cache) == 10 and cache.get("49") is not None and cache.get("39") is None
    cache.put("big", b"x" * 100_000)  # larger than the whole budget: not kept
    assert cache.get("big") is None and len(cache) == 10


def test_one_refusal_hit_two_thousand_times_does_not_grow(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored exception raised again grows its traceback on every raise (about 2 kB)."""
    caplog.set_level(logging.WARNING)  # records pytest keeps would count as growth
    gateway = _gateway(tmp_path, OffSource(), negative_ttl=600)
    mv = ModuleVersion("example.com/missing", "v1.0.0")
    hits = 2_000

    async def hammer(n: int) -> int:
        depth = 0
        for _ in range(n):
            try:
                await gateway.mod(mv)
            except NotFoundError as exc:
                tb, frames = exc.__traceback__, 0
                while tb is not None:
                    frames, tb = frames + 1, tb.tb_next
                depth = max(depth, frames)
            await asyncio.sleep(0)  # the server's loop runs between requests
        return depth

    async def measure() -> tuple[int, int]:
        await hammer(100)  # warm: the first miss fetches and remembers
        before = tracemalloc.take_snapshot()
        depth = await hammer(hits)
        return depth, _grown_since(before)

    tracemalloc.start()
    try:
        depth, grown = asyncio.run(measure())
    finally:
        tracemalloc.stop()
    assert depth <= 10, f"a remembered refusal was raised with {depth} traceback frames"
    # Bound 256 KiB: a traceback growing by about 2 kB a raise would be 4 MB here.
    assert grown <= 256 * 1024, f"memory grew {grown / 1024:.0f} KiB over {hits} hits"
    assert gateway.metrics.total("modgate_negative_cache_hits_total") >= hits + 99


def _grown_since(before: tracemalloc.Snapshot) -> int:
    """Bytes allocated since ``before`` and still held, without the interpreter's one-off
    growth of its table of interned strings (path parsing interns names; its resize is
    a single allocation of megabytes that says nothing about a leak)."""
    interned = [tracemalloc.Filter(False, pathlib.__file__)]
    after = tracemalloc.take_snapshot().filter_traces(interned)
    return sum(d.size_diff for d in after.compare_to(before.filter_traces(interned), "filename"))


# ---- distinct misses through the gateway: no lock file, bounded memory --------------------


def test_six_hundred_distinct_misses_leave_no_file_and_bounded_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)  # records pytest keeps would count as growth
    gateway = _gateway(tmp_path, OffSource(), negative_ttl=600)
    store = tmp_path / "store"
    files_before = file_count(store)
    misses = 600

    async def hammer(names: range) -> None:
        for i in names:
            with pytest.raises(NotFoundError):
                await gateway.mod(ModuleVersion(f"example.com/hostile{i}", "v1.0.0"))
            await asyncio.sleep(0)  # the server's loop runs between requests
        await asyncio.sleep(0.1)

    async def measure() -> int:
        await hammer(range(misses, misses + 100))  # warm: the loop, the metrics, the store
        before = tracemalloc.take_snapshot()
        await hammer(range(misses))
        return _grown_since(before)

    tracemalloc.start()
    try:
        grown = asyncio.run(measure())
    finally:
        tracemalloc.stop()
    assert file_count(store) == files_before, "misses left files (lock files?) in the store"
    assert list((store / "_modgate/locks").iterdir()) == []
    per_miss = grown / misses
    # Bound: the negative cache entry (key, subject, reason: about 650 bytes) and nothing
    # else; a leak of a task, an exception or a lock per miss costs kilobytes.
    assert per_miss <= 1536, f"{per_miss:.0f} bytes held per distinct miss"
    assert gateway._flight.in_flight() == 0


# ---- query spellings: v1.0.0+anything is answered, never stored per spelling --------------


class AnySpelling:
    """A source whose every query resolves to v1.0.0 (as direct does for v1.0.0+meta)."""

    name = "up"

    def __init__(self) -> None:
        self.calls = 0

    async def info(self, module: str, version: str) -> bytes:
        self.calls += 1
        return INFO

    async def aclose(self) -> None:
        return None


def test_ten_thousand_build_metadata_spellings_store_nothing(tmp_path: Path) -> None:
    source = AnySpelling()
    gateway = _gateway(tmp_path, source, list_ttl=600)
    store = tmp_path / "store"
    before = file_count(store)
    spellings = 10_000

    async def hammer() -> None:
        for i in range(spellings):
            answer = await gateway.info("example.com/m", f"v1.0.0+hostile{i:06d}")
            assert answer.body == INFO
        again = await gateway.info("example.com/m", "v1.0.0+hostile000001")
        assert again.body == INFO

    asyncio.run(hammer())
    assert source.calls == spellings, "a spelling answered within its lifetime was fetched again"
    assert file_count(store) == before, "query records were written per spelling"
    assert gateway.answers.spellings.bytes <= SPELLING_MAX_BYTES


# ---- through HTTP: modgate serve --upstream off -------------------------------------------

HTTP_MISSES = 3000
HTTP_REPEATS = 3000
RSS_GROWTH_BOUND = 12 * MIB
"""Measured: about 0.7 kB per distinct miss (its refusal); before, 6 to 12 kB per distinct
miss and 2 kB per repeat, which would be 24 MB or more here."""
FD_GROWTH_BOUND = 16
PIPELINE_BATCH = 200
STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def _get_many(url: str, paths: list[str]) -> list[int]:
    """GET each path on one connection, ``PIPELINE_BATCH`` requests written at a time."""
    statuses: list[int] = []
    with socket.create_connection(address_of(url), timeout=30) as sock:
        for start in range(0, len(paths), PIPELINE_BATCH):
            batch = paths[start : start + PIPELINE_BATCH]
            sock.sendall(
                b"".join(b"GET %s HTTP/1.1\r\nHost: m\r\n\r\n" % p.encode() for p in batch)
            )
            received = b""
            while len(STATUS_LINE.findall(received)) < len(batch):
                chunk = sock.recv(1 << 20)
                assert chunk, f"connection closed after {len(statuses)} answers"
                received += chunk
            statuses += [int(code) for code in STATUS_LINE.findall(received)]
    return statuses


def test_hostile_misses_over_http_stay_within_memory_files_and_descriptors(
    modgate: ModgateFactory,
) -> None:
    server = modgate("--upstream", "off", "--negative-ttl", "600", "--access-log", "off")
    pid = server.proc.pid
    _get_many(server.url, [f"/example.com/warm{i}/@v/v1.0.0.info" for i in range(200)])
    before = process_stats(pid)
    files_before = file_count(server.store)
    distinct = [f"/example.com/hostile{i}/@v/v1.0.{i}.info" for i in range(HTTP_MISSES)]
    assert set(_get_many(server.url, distinct)) == {404}
    same = ["/example.com/missing/@v/v9.9.9.info"] * HTTP_REPEATS
    assert set(_get_many(server.url, same)) == {404}
    after = process_stats(pid)
    assert file_count(server.store) == files_before, "misses left files in the store"
    grown = after.rss_bytes - before.rss_bytes
    assert grown <= RSS_GROWTH_BOUND, (
        f"RSS grew {grown / MIB:.1f} MiB over {HTTP_MISSES} distinct and {HTTP_REPEATS} "
        f"repeated misses (bound {RSS_GROWTH_BOUND // MIB} MiB)"
    )
    assert after.open_files - before.open_files <= FD_GROWTH_BOUND


# ---- open repositories and their cat-file processes ----------------------------------------


class _FakeMirror:
    def __init__(self) -> None:
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


class _FakeRepo:
    def __init__(self) -> None:
        self.mirror = _FakeMirror()


def test_ten_thousand_repository_urls_keep_at_most_max_open() -> None:
    clock = FakeClock()
    made: list[_FakeRepo] = []

    def make(url: str, origin: str) -> _FakeRepo:
        made.append(_FakeRepo())
        return made[-1]

    table = RepoTable(make, max_open=16, idle_close=60, idle_drop=600, clock=clock)  # type: ignore[arg-type]
    with table.using("https://busy.example/repo", "x") as busy:
        for i in range(10_000):
            with table.using(f"https://hostile.example/r{i}", "x"):
                clock.now += 0.001
            assert len(table) <= 17, f"{len(table)} repositories open (limit 16 + 1 in use)"
        table.sweep()
        assert busy.mirror.closes == 0, "a repository in use was closed"
    dropped = sum(1 for r in made if r.mirror.closes)
    assert dropped >= 10_000 - 16, f"only {dropped} dropped repositories had their processes closed"
    clock.now += 61
    table.sweep()
    assert all(r.mirror.closes for r in made[-16:]), "idle repositories kept their processes"
    clock.now += 600
    table.sweep()
    assert len(table) == 0, "repositories idle for longer than idle_drop were kept"


REPOSITORIES = 30
OPEN_LIMIT = 8


def test_thirty_repositories_keep_cat_file_processes_bounded(tmp_path: Path) -> None:
    """The issue's case: 34 cat-file processes after 30 repositories, for the server's life."""
    rewrites = {}
    for i in range(REPOSITORIES):
        repo = RepoBuilder(tmp_path / "repos" / f"r{i}")
        repo.write({"go.mod": f"module example.com/r{i}\n\ngo 1.21\n", "a.go": "package a\n"})
        repo.commit("c1")
        repo.tag("v1.0.0")
        rewrites[f"example.com/r{i}"] = (tmp_path / "repos" / f"r{i}").as_uri()
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text('[protocol "file"]\n\tallow = always\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    source = DirectSource(tmp_path / "mirrors", rewrites=rewrites, environ=env)
    source._repos.max_open = OPEN_LIMIT
    peak = 0

    async def serve_all() -> None:
        nonlocal peak
        try:
            for i in range(REPOSITORIES):
                info = await source.info(f"example.com/r{i}", "v1.0.0")
                assert b'"Version":"v1.0.0"' in info
                peak = max(peak, source.runner.processes())
            await asyncio.to_thread(source.wait_background)
            assert len(source._repos) <= OPEN_LIMIT
            source._repos.idle_close = 0
            source._repos.sweep()
            idle = source.runner.processes()
            assert idle == 0, f"{idle} git processes left after every repository went idle"
        finally:
            await source.aclose()

    asyncio.run(serve_all())
    assert peak <= 2 * OPEN_LIMIT + 2, (
        f"{peak} git processes at once for {REPOSITORIES} repositories "
        f"(bound: 2 cat-file per open repository, {OPEN_LIMIT} open, + 2 running commands)"
    )


# ---- go-get discovery answers ---------------------------------------------------------------

DISCOVERED_PATHS = 3_000
DISCOVERY_LIMIT = 1_000


def test_discovery_answers_for_many_paths_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every path under a vanity root (``vanity.example/x/<anything>``) is remembered."""
    assert DISCOVERY_CACHE_ENTRIES >= DISCOVERY_LIMIT  # the real limit; a smaller one here
    monkeypatch.setattr(vcs_resolve, "DISCOVERY_CACHE_ENTRIES", DISCOVERY_LIMIT)
    asked = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal asked
        asked += 1
        meta = '<meta name="go-import" content="vanity.example/x git https://git.example/x.git">'
        return httpx.Response(200, text=f"<html><head>{meta}</head></html>")

    async def resolve_all() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            resolver = Resolver(client=client)
            for i in range(DISCOVERED_PATHS):
                root = await resolver.resolve(f"vanity.example/x/p{i}")
                assert root.url == "https://git.example/x.git"
            assert len(resolver._cache) <= DISCOVERY_LIMIT, f"{len(resolver._cache)} kept"
            before = asked
            await resolver.resolve(f"vanity.example/x/p{DISCOVERED_PATHS - 1}")
            assert asked == before, "a recent discovery answer was not reused"

    asyncio.run(resolve_all())


# ---- fetches whose clients hung up ------------------------------------------------------------

FLIGHT_LIMIT = 50


class Hanging:
    """A source that never answers (a remote that accepts and stalls)."""

    name = "hung"

    async def mod(self, mv: ModuleVersion) -> bytes:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        return None


def test_clients_that_ask_and_hang_up_cannot_start_unbounded_fetches(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path, Hanging())
    gateway._flight.max_flights = FLIGHT_LIMIT

    async def hammer() -> None:
        for i in range(FLIGHT_LIMIT * 4):
            request = asyncio.ensure_future(
                gateway.mod(ModuleVersion(f"example.com/slow{i}", "v1.0.0"))
            )
            await asyncio.sleep(0)
            request.cancel()  # the client hung up; its fetch goes on
            with contextlib.suppress(asyncio.CancelledError, OverloadedError):
                await request
            assert gateway._flight.in_flight() <= FLIGHT_LIMIT
        with pytest.raises(OverloadedError) as refused:
            await gateway.mod(ModuleVersion("example.com/one-more", "v1.0.0"))
        assert refused.value.status == 503 and "retry" in str(refused.value)
        await gateway.cancel()
        await asyncio.sleep(0)
        assert gateway._flight.in_flight() == 0, "cancel left fetches under way"

    asyncio.run(hammer())


def test_an_overloaded_answer_says_when_to_retry() -> None:
    reply = error_reply(OverloadedError("example.com/m@v1.0.0", "busy; retry").status, "busy")
    assert reply.status == 503
    assert b"\r\nRetry-After: 1\r\n" in reply.head, reply.head


TRIED_URLS = 8


def test_repository_urls_that_fail_leave_no_file(tmp_path: Path) -> None:
    """Before, each repository URL tried left ``<sha256>.lock`` under ``_modgate/git/``."""
    rewrites = {
        f"example.com/gone{i}": (tmp_path / "nowhere" / f"r{i}").as_uri() for i in range(TRIED_URLS)
    }
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text('[protocol "file"]\n\tallow = always\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    mirrors = tmp_path / "mirrors"
    source = DirectSource(mirrors, rewrites=rewrites, environ=env)

    async def try_all() -> None:
        try:
            for i in range(TRIED_URLS):
                with pytest.raises(NotFoundError):
                    await source.list(f"example.com/gone{i}")
                with pytest.raises(NotFoundError):
                    await source.info(f"example.com/gone{i}", "v1.0.0")
        finally:
            await source.aclose()

    asyncio.run(try_all())
    left = sorted(p.name for p in mirrors.iterdir()) if mirrors.exists() else []
    assert left == [], f"{len(left)} files or folders left by URLs that failed: {left[:3]}"
