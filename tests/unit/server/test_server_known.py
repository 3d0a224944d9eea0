"""Requests answered from their bytes: a hot request seen before is not parsed again.

A request that was exactly one whole read, parsed and answered from the hot set,
is remembered by its bytes; the same bytes, read whole while the parser is
between requests, are answered again without parsing. Everything that can
change between the two (the entry's presence and freshness, credentials) is
checked each time; anything else goes through the parser.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from server_support import INFO_PATH, LIST_PATH, Client, FakeGateway, request, serve_test

from modgate.metrics import Metrics
from modgate.server.app import ServerHandle
from modgate.server.hotcache import HotEntry
from modgate.server.http import HttpConnection
from modgate.server.router import RequestRouter
from modgate.server.settings import ServerSettings
from modgate.server.state import (
    KNOWN_BUDGET,
    KNOWN_MAX,
    KNOWN_MAX_BYTES,
    KNOWN_OVERHEAD,
    ServerState,
)

OTHER_INFO = "/example.com/mod/@v/v1.0.1.info"


class CountingParser:
    """Wraps a connection's parser and counts the reads it was fed."""

    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.fed: list[bytes] = []

    def feed_data(self, data: bytes) -> None:
        self.fed.append(bytes(data))
        self.parser.feed_data(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parser, name)


def spy(handle: ServerHandle) -> CountingParser:
    """The parser of the server's only connection, wrapped."""
    assert len(handle.state.connections) == 1, "expected exactly one open connection"
    conn: HttpConnection = next(iter(handle.state.connections))
    counting = CountingParser(conn._parser)
    conn._parser = counting  # type: ignore[assignment]
    return counting


def test_a_hot_request_seen_before_is_answered_without_parsing() -> None:
    log = io.StringIO()
    raw = request(INFO_PATH)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        first = await client.get(INFO_PATH)  # a miss: asks the gateway, fills the hot set
        parser = spy(handle)
        second = await client.get(INFO_PATH)  # a hot hit through the parser: remembered
        assert handle.state.known.get(raw) == (b"GET", INFO_PATH.encode(), None)
        third = await client.get(INFO_PATH)  # answered from its bytes
        assert parser.fed == [raw], f"the parser was fed {parser.fed}, expected the second only"
        assert first.body == second.body == third.body, (first, second, third)
        assert third.raw_head == second.raw_head
        assert gw.calls == ["info example.com/mod@v1.0.0"], gw.calls
        handle.state.access_log.flush()  # type: ignore[union-attr]
        lines = [json.loads(line) for line in log.getvalue().splitlines()]
        caches = [(line["path"], line["status"], line["cache"]) for line in lines]
        assert caches == [(INFO_PATH, 200, "miss")] + [(INFO_PATH, 200, "hit")] * 2, caches
        handle.state.flush_metrics()
        text = handle.state.metrics.render().decode()
        hits = 'modgate_requests_total{route="info",status="200"} 3'
        assert hits in text, f"expected {hits!r} in:\n{text}"
        # the first was answered from the (fake) store: a hit too, though not a hot one
        histogram = 'modgate_request_duration_seconds_count{route="info",cache="hit"} 3'
        assert histogram in text, f"expected {histogram!r} in:\n{text}"
        assert "modgate_hot_known_requests_total 1" in text, text

    serve_test(body, access_log=log)


def test_a_head_request_is_remembered_apart_from_the_get() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        get = await client.get(INFO_PATH)
        for _ in range(3):
            head = await client.get(INFO_PATH, "HEAD")
            assert head.status == 200 and head.body == b"", head
            assert head.header("content-length") == str(len(get.body)), head
        assert (await client.get(INFO_PATH)).body == get.body
        known = set(handle.state.known.values())
        assert (b"HEAD", INFO_PATH.encode(), None) in known, known

    serve_test(body)


def test_known_bytes_that_end_an_unfinished_request_are_parsed_with_it() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(3):
            await client.get(INFO_PATH)
        assert request(INFO_PATH) in handle.state.known
        # The start of a request for another version, then the known bytes: together they
        # are one request for the other version (the known bytes are a header's value).
        await client.send(f"GET {OTHER_INFO} HTTP/1.1\r\nX-Note: ".encode())
        await asyncio.sleep(0.05)  # two reads, not one
        await client.send(request(INFO_PATH))
        answer = await client.read_response()
        assert answer.status == 200 and b"v1.0.1" in answer.body, answer
        assert gw.calls[-1] == "info example.com/mod@v1.0.1", gw.calls

    serve_test(body)


def test_known_bytes_read_together_are_each_answered() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(3):
            await client.get(INFO_PATH)
        one = request(INFO_PATH)
        assert one in handle.state.known
        await client.send(one * 3 + one[:10])  # three whole requests and a start
        answers = [await client.read_response() for _ in range(3)]
        assert [a.status for a in answers] == [200] * 3, answers
        await client.send(one[10:])
        assert (await client.read_response()).status == 200
        assert one * 3 + one[:10] not in handle.state.known
        assert len(gw.calls) == 1, gw.calls

    serve_test(body)


def test_a_known_request_whose_answer_left_the_hot_set_asks_the_gateway() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(3):
            await client.get(INFO_PATH)
        handle.state.hot.entries.clear()  # evicted
        assert (await client.get(INFO_PATH)).status == 200
        assert len(gw.calls) == 2, f"the evicted answer was not asked again: {gw.calls}"

    serve_test(body)


def test_a_known_request_for_an_expired_list_asks_the_gateway() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(3):
            await client.get(LIST_PATH)
        assert request(LIST_PATH) in handle.state.known
        assert gw.calls == ["list example.com/mod"], gw.calls
        handle.state.update_clock(handle.state.now + gw.list_max_age, 0.0)
        assert (await client.get(LIST_PATH)).status == 200
        assert len(gw.calls) == 2, f"the expired list was not asked again: {gw.calls}"

    serve_test(body)


def test_requests_that_were_not_hot_or_whole_are_not_remembered() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        await client.get(INFO_PATH)  # a miss
        assert handle.state.known == {}, handle.state.known
        await client.get(INFO_PATH, headers='If-None-Match: "x"\r\n')  # conditional
        await client.get(INFO_PATH, headers="Connection: close\r\n")  # closes
        assert handle.state.known == {}, handle.state.known
        client = await Client.connect(handle.port)
        raw = request(INFO_PATH)
        await client.send(raw[:20])
        await asyncio.sleep(0.05)  # two reads, not one
        await client.send(raw[20:])  # hot, but not one whole read
        assert (await client.read_response()).status == 200
        assert handle.state.known == {}, handle.state.known

    serve_test(body)


def test_remembered_requests_are_bounded() -> None:
    settings = ServerSettings()

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        state = handle.state
        for i in range(KNOWN_MAX + 10):
            state.remember(b"GET /%d HTTP/1.1\r\n\r\n" % i, (b"GET", b"/%d" % i, None))
            assert len(state.known) <= KNOWN_MAX
        pad = b"x" * (KNOWN_MAX_BYTES - 100)
        for i in range(2 * KNOWN_BUDGET // KNOWN_MAX_BYTES):
            state.remember(b"GET /%d HTTP/1.1\r\nX: %s\r\n\r\n" % (i, pad), (b"GET", b"/", None))
            held = sum(len(raw) + KNOWN_OVERHEAD for raw in state.known)
            assert held == state.known_bytes <= KNOWN_BUDGET, (held, state.known_bytes)
        client = await Client.connect(handle.port)
        long_header = "X-Pad: " + "p" * KNOWN_MAX_BYTES + "\r\n"
        for _ in range(3):
            assert (await client.get(INFO_PATH, headers=long_header)).status == 200
        assert all(len(raw) <= KNOWN_MAX_BYTES for raw in state.known), "a long request was kept"

    serve_test(body, settings=settings)


# ---- the same answers with and without remembering, however the bytes are split ----------


class _Capture:
    """A transport that keeps what is written."""

    def __init__(self) -> None:
        self.out = bytearray()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)

    def writelines(self, data: Iterable[bytes]) -> None:
        for chunk in data:
            self.out += chunk

    def get_write_buffer_size(self) -> int:
        return 0


def _answers(state: ServerState, reads: list[bytes], remember: bool) -> bytes:
    conn = HttpConnection(state, RequestRouter.__new__(RequestRouter))
    transport = _Capture()
    conn.connection_made(transport)  # type: ignore[arg-type]
    if not remember:
        conn._known = None
    for data in reads:
        conn.data_received(data)
    assert conn._task is None, "every request here is hot: none should reach the router"
    return bytes(transport.out)


HOT_TARGETS = [b"/example.com/a/@v/v1.0.0.info", b"/example.com/a/@v/v1.0.0.mod"]
_REQUESTS = st.builds(
    lambda method, target, extra: b"%s %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (method, target, extra),
    st.sampled_from([b"GET", b"HEAD"]),
    st.sampled_from(HOT_TARGETS),
    st.sampled_from([b"", b"User-Agent: Go-http-client/1.1\r\n", b"Connection: keep-alive\r\n"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_REQUESTS, min_size=1, max_size=12), st.data())
def test_remembering_never_changes_an_answer(requests: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(requests)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=8)))
    reads = [stream[i:j] for i, j in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    state = ServerState(ServerSettings(), Metrics(), None)
    for target in HOT_TARGETS:
        body = b"body of " + target
        head = b"Content-Length: %d\r\n\r\n" % len(body)
        state.hot.put(target, HotEntry(head + body, len(head), None, ("info", 200)))
    for one in requests:  # seen before, one read each: remembered
        _answers(state, [one], remember=True)
    assert len(state.known) == len(set(requests)), state.known
    with_known = _answers(state, reads, remember=True)
    without = _answers(state, reads, remember=False)
    assert with_known == without, f"reads {reads}: answers differ"
    assert with_known.count(b"HTTP/1.1 200") == len(requests), with_known


def test_remembering_a_request_keeps_the_count_of_answers_from_bytes() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(3):  # miss, hot hit (remembered), answered from its bytes
            await client.get(INFO_PATH)
        for _ in range(2):  # a HEAD remembered after that answer, then answered from its bytes
            await client.get(INFO_PATH, "HEAD")
        assert len(handle.state.known) == 2, handle.state.known
        handle.state.flush_metrics()
        text = handle.state.metrics.render().decode()
        assert "modgate_hot_known_requests_total 2" in text, text

    serve_test(body)
