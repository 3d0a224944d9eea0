"""Zips fetched ahead: set off by a client's zip request, from that client's .info requests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_service_gateway import Answer, FakeSource, make_gateway, module_zip

from modgate.metrics import Metrics
from modgate.protocol.errors import NotFoundError, UpstreamError
from modgate.protocol.module import ModuleVersion
from modgate.service.gateway import Gateway
from modgate.service.zipprefetch import CLIENTS, HINTS, METRIC, PER_CLIENT, ZipPrefetch
from modgate.store.base import Kind

MODS = [ModuleVersion(f"example.com/m{i}", "v1.0.0") for i in range(1, 5)]
CI, BOT = "10.0.0.1", "10.0.0.2"


def table() -> dict[str, Answer | list[Answer]]:
    out: dict[str, Answer | list[Answer]] = {}
    for mv in MODS:
        gomod = f"module {mv.path}\n".encode()
        out[f"info:{mv}"] = b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}'
        out[f"mod:{mv}"] = gomod
        out[f"zip:{mv}"] = module_zip(mv, {"go.mod": gomod, "a.go": b"package a\n"})
    return out


class OrderedSource(FakeSource):
    """Also records the order of zip fetches."""

    def __init__(self, table: dict[str, Answer | list[Answer]]) -> None:
        super().__init__("up", table)
        self.zips: list[str] = []

    async def zip(self, mv: ModuleVersion, dest: Path, max_size: int) -> None:
        self.zips.append(mv.path)
        await super().zip(mv, dest, max_size)


async def settle(gw: Gateway) -> None:
    for _ in range(500):
        if not gw.zips.pending():
            break
        await asyncio.sleep(0.01)
    await gw.settle(5)


def outcome(gw: Gateway, name: str) -> float:
    return gw.metrics.counters[(METRIC, (("outcome", name),))]


def test_a_zip_request_fetches_the_zips_of_that_clients_info_requests_in_order(
    tmp_path: Path,
) -> None:
    src = OrderedSource(table())
    gw = make_gateway(tmp_path, (src, False))

    async def go() -> None:
        for mv in MODS:
            await gw.info(mv.path, mv.version, CI)
        await gw.zip(MODS[0], CI)
        await settle(gw)
        # taken in the order asked (test_hints_expire_and_are_bounded), two at a time: which
        # of two fetches under way reaches the source first is the scheduler's choice
        assert src.zips[0] == MODS[0].path, src.zips
        assert sorted(src.zips[1:]) == [mv.path for mv in MODS[1:]], src.zips
        for mv in MODS[1:]:
            assert gw.store.size(mv, Kind.ZIP), f"{mv}'s zip was not stored ahead"
            answer = await gw.zip(mv, CI)
            assert not answer.fetched, f"{mv}'s zip request fetched it again"
        assert outcome(gw, "stored") == 3
        await gw.aclose()

    asyncio.run(go())
    assert all(src.calls[f"zip:{mv}"] == 1 for mv in MODS), src.calls


def test_info_requests_alone_fetch_no_zip(tmp_path: Path) -> None:
    src = OrderedSource(table())
    gw = make_gateway(tmp_path, (src, False))

    async def go() -> None:
        for mv in MODS:
            await gw.info(mv.path, mv.version, BOT)  # go list -m -json, an update bot
        await gw.zip(MODS[0], CI)  # another client's zip request
        await settle(gw)
        await gw.aclose()

    asyncio.run(go())
    assert src.zips == [MODS[0].path], "a zip was fetched for a client that asked for none"


def test_prefetch_off_fetches_only_what_is_asked(tmp_path: Path) -> None:
    src = OrderedSource(table())
    gw = make_gateway(tmp_path, (src, False), prefetch_zips=False)

    async def go() -> None:
        for mv in MODS:
            await gw.info(mv.path, mv.version, CI)
        await gw.zip(MODS[0], CI)
        await settle(gw)
        await gw.aclose()

    asyncio.run(go())
    assert src.zips == [MODS[0].path]


def test_a_failed_prefetch_is_counted_and_the_request_fetches_again(tmp_path: Path) -> None:
    answers = table()
    good = answers[f"zip:{MODS[1]}"]
    assert isinstance(good, bytes)
    answers[f"zip:{MODS[1]}"] = [UpstreamError(str(MODS[1]), "503 from the fake"), good]
    src = OrderedSource(answers)
    gw = make_gateway(tmp_path, (src, False))

    async def go() -> None:
        await gw.info(MODS[1].path, MODS[1].version, CI)
        await gw.zip(MODS[0], CI)
        await settle(gw)
        assert outcome(gw, "failed") == 1
        assert gw.store.size(MODS[1], Kind.ZIP) is None, "a failed prefetch stored something"
        answer = await gw.zip(MODS[1], CI)
        assert answer.fetched and answer.path is not None
        assert answer.path.read_bytes() == good
        await gw.aclose()

    asyncio.run(go())


def test_hints_expire_and_are_bounded() -> None:
    fetched: list[ModuleVersion] = []

    async def fetch(mv: ModuleVersion) -> None:
        fetched.append(mv)

    async def stored(mv: ModuleVersion) -> bool:
        return mv == MODS[3]

    async def go() -> None:
        stale = ZipPrefetch(fetch, stored, Metrics(), ttl=0.0)
        stale.note(CI, MODS[1])
        await asyncio.sleep(0.01)
        stale.follow(CI, MODS[0])
        assert not stale.pending(), "an expired hint was followed"

        metrics = Metrics()
        fresh = ZipPrefetch(fetch, stored, metrics)
        for mv in MODS:
            fresh.note(CI, mv)
        fresh.follow(CI, MODS[0])
        fresh.follow(CI, MODS[0])  # the hints are used once
        while fresh.pending():
            await asyncio.sleep(0.01)
        assert fetched == [MODS[1], MODS[2]], "the stored zip was fetched again"
        assert metrics.counters[(METRIC, (("outcome", "present"),))] == 1

        for i in range(1100):  # more clients than kept: the oldest are forgotten
            fresh.note(f"10.1.{i // 256}.{i % 256}", MODS[1])
        fresh.follow("10.1.0.0", MODS[0])
        assert not fresh.pending()
        await fresh.aclose()

    asyncio.run(go())


def test_a_version_not_found_ahead_is_not_found_for_the_request_either(tmp_path: Path) -> None:
    answers = table()
    answers[f"zip:{MODS[2]}"] = NotFoundError(str(MODS[2]), "gone from the fake")
    src = OrderedSource(answers)
    gw = make_gateway(tmp_path, (src, False))

    async def go() -> None:
        await gw.info(MODS[2].path, MODS[2].version, CI)
        await gw.zip(MODS[0], CI)
        await settle(gw)
        try:
            await gw.zip(MODS[2], CI)
        except NotFoundError:
            pass
        else:
            raise AssertionError("a zip that was not found ahead was served")
        await gw.aclose()

    asyncio.run(go())
    assert src.calls[f"zip:{MODS[2]}"] == 1, "the not-found answer was not remembered"


def test_the_hints_of_many_clients_are_bounded_in_all() -> None:
    async def fetch(mv: ModuleVersion) -> None:
        raise AssertionError("nothing is followed here")

    async def stored(mv: ModuleVersion) -> bool:
        return False

    prefetch = ZipPrefetch(fetch, stored, Metrics())
    versions = [ModuleVersion("example.com/m", f"v1.0.{i}") for i in range(PER_CLIENT + 10)]
    for mv in versions:  # one client: its oldest hints go first
        prefetch.note(CI, mv)
    assert prefetch.held() == PER_CLIENT
    clients = HINTS // PER_CLIENT + 5
    assert clients <= CLIENTS, "the total bound must be the one under test"
    for i in range(clients):
        for mv in versions[:PER_CLIENT]:
            prefetch.note(f"10.2.{i // 256}.{i % 256}", mv)
    assert prefetch.held() <= HINTS, f"{prefetch.held()} hints held, more than {HINTS}"
    prefetch.note(CI, versions[0])
    assert prefetch.held() <= HINTS


def test_an_unexpected_fault_is_counted_and_the_next_zip_still_fetched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetched: list[ModuleVersion] = []

    async def fetch(mv: ModuleVersion) -> None:
        if mv == MODS[1]:
            raise RuntimeError("a bug")
        fetched.append(mv)

    async def stored(mv: ModuleVersion) -> bool:
        return False

    async def go() -> Metrics:
        metrics = Metrics()
        prefetch = ZipPrefetch(fetch, stored, metrics, workers=1)
        for mv in MODS:
            prefetch.note(CI, mv)
        prefetch.follow(CI, MODS[0])
        while prefetch.pending():
            await asyncio.sleep(0.01)
        await prefetch.aclose()
        return metrics

    metrics = asyncio.run(go())
    assert fetched == [MODS[2], MODS[3]], fetched
    assert metrics.counters[(METRIC, (("outcome", "failed"),))] == 1
    assert any("a bug" in r.getMessage() or r.exc_info for r in caplog.records), caplog.text
