"""The hot set: LRU by bytes, expiry, and serving without asking the gateway."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from server_support import INFO_PATH, LIST_PATH, MOD_PATH, Client, FakeGateway, serve_test

from modgate.protocol.errors import NotFoundError
from modgate.server.app import ServerHandle
from modgate.server.hotcache import ENTRY_OVERHEAD, HotCache, HotEntry
from modgate.server.settings import ServerSettings

KEY = ("info", 200)


def entry(size: int, expires: float = 0.0) -> HotEntry:
    return HotEntry(b"h" * 10 + b"b" * size, 10, b'"t"', KEY, expires)


def cost(target: bytes, size: int) -> int:
    return 10 + size + len(target) + ENTRY_OVERHEAD


def test_get_returns_what_was_put() -> None:
    cache = HotCache(budget=10_000, entry_max=1000)
    e = entry(100)
    assert cache.put(b"/a", e)
    assert cache.get(b"/a", now=0.0) is e
    assert cache.get(b"/b", now=0.0) is None
    assert cache.bytes == cost(b"/a", 100)


def test_least_recently_used_is_evicted_first() -> None:
    budget = 3 * cost(b"/a", 100)
    cache = HotCache(budget=budget, entry_max=1000)
    for target in (b"/a", b"/b", b"/c"):
        assert cache.put(target, entry(100))
    assert cache.get(b"/a", now=0.0) is not None  # /b is now the oldest
    cache.put(b"/d", entry(100))
    kept = set(cache.entries)
    assert kept == {b"/a", b"/c", b"/d"}, f"kept {kept}, expected /b evicted"
    assert cache.bytes <= budget


def test_a_large_entry_evicts_as_many_as_needed() -> None:
    cache = HotCache(budget=4 * cost(b"/a", 100), entry_max=10_000)
    for target in (b"/a", b"/b", b"/c", b"/d"):
        cache.put(target, entry(100))
    cache.put(b"/e", entry(250))
    assert list(cache.entries) == [b"/c", b"/d", b"/e"], list(cache.entries)


def test_entries_over_the_entry_limit_or_budget_are_refused() -> None:
    cache = HotCache(budget=1000, entry_max=500)
    assert not cache.put(b"/big", entry(501))
    assert not HotCache(budget=100, entry_max=500).put(b"/x", entry(200))
    assert not cache.fits(501) and cache.fits(500)
    assert not HotCache(budget=0, entry_max=500).fits(1)


def test_replacing_an_entry_keeps_the_byte_count_right() -> None:
    cache = HotCache(budget=10_000, entry_max=1000)
    cache.put(b"/a", entry(100))
    cache.put(b"/a", entry(300))
    assert cache.bytes == cost(b"/a", 300)
    assert len(cache) == 1


def test_mutable_entries_expire() -> None:
    cache = HotCache(budget=10_000, entry_max=1000)
    cache.put(b"/list", entry(10, expires=5.0))
    assert cache.get(b"/list", now=4.9) is not None
    assert cache.get(b"/list", now=5.0) is None
    assert cache.bytes == 0 and len(cache) == 0


@given(
    st.lists(
        st.tuples(st.sampled_from([b"/a", b"/b", b"/c", b"/d", b"/e"]), st.integers(0, 700)),
        max_size=60,
    ),
    st.integers(0, 3000),
)
def test_byte_count_matches_entries_and_stays_within_budget(
    ops: list[tuple[bytes, int]], budget: int
) -> None:
    cache = HotCache(budget=budget, entry_max=600)
    for target, size in ops:
        cache.put(target, entry(size))
        total = sum(e.cost(t) for t, e in cache.entries.items())
        assert cache.bytes == total, f"counted {cache.bytes}, entries hold {total}"
        assert cache.bytes <= budget, f"{cache.bytes} bytes over a budget of {budget}"


# ---- through the server -------------------------------------------------------------------


def test_second_request_is_served_without_the_gateway() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        first = await client.get(INFO_PATH)
        second = await client.get(INFO_PATH)
        head = await client.get(INFO_PATH, "HEAD")
        assert gw.calls == ["info example.com/mod@v1.0.0"], f"gateway calls: {gw.calls}"
        assert second.body == first.body
        assert head.status == 200 and head.header("etag") == first.header("etag")

    serve_test(body)


def test_evicted_entries_are_asked_for_again() -> None:
    # Each .info entry costs about 600 bytes: room for two.
    settings = ServerSettings(hot_cache_bytes=1300)
    paths = [f"/example.com/mod/@v/v1.0.{i}.info" for i in range(3)]

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for path in paths:
            await client.get(path)
        assert len(handle.state.hot) == 2, list(handle.state.hot.entries)
        asked = len(gw.calls)
        await client.get(paths[2])
        await client.get(paths[1])
        assert len(gw.calls) == asked, f"recent entries were asked again: {gw.calls[asked:]}"
        await client.get(paths[0])
        assert len(gw.calls) == asked + 1, f"the evicted one was not asked again: {gw.calls}"

    serve_test(body, settings=settings)


def test_mutable_answers_are_cached_for_their_max_age_only() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        await client.get(LIST_PATH)
        await client.get(LIST_PATH)
        assert gw.calls == ["list example.com/mod"], f"gateway calls: {gw.calls}"
        handle.state.update_clock(handle.state.now + gw.list_max_age, 0.0)
        await client.get(LIST_PATH)
        assert len(gw.calls) == 2, f"expired list not asked again: {gw.calls}"

    serve_test(body)


def test_max_age_zero_is_never_cached() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(2):
            resp = await client.get(LIST_PATH)
            assert resp.header("cache-control") == "public, max-age=0", str(resp)
        assert len(gw.calls) == 2, f"gateway calls: {gw.calls}"

    serve_test(body, FakeGateway(list_max_age=0))


def test_errors_are_not_cached() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(2):
            assert (await client.get(INFO_PATH)).status == 404
        assert len(gw.calls) == 2, f"gateway calls: {gw.calls}"
        assert len(handle.state.hot) == 0

    serve_test(body, FakeGateway(error=NotFoundError("example.com/mod@v1.0.0", "not found")))


def test_hot_set_disabled_with_zero_budget() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(2):
            assert (await client.get(MOD_PATH)).status == 200
        assert len(gw.calls) == 2, f"gateway calls: {gw.calls}"

    serve_test(body, settings=ServerSettings(hot_cache_bytes=0))
