"""Gateway behaviour with fake sources over a real filesystem store."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from modgate.metrics import Metrics
from modgate.protocol.errors import (
    GoneError,
    InvalidModuleError,
    NotFoundError,
    StoreError,
    UpstreamError,
)
from modgate.protocol.module import ModuleVersion
from modgate.protocol.patterns import parse_patterns
from modgate.service.gateway import Gateway, GatewayOptions
from modgate.service.mutable import merge_list
from modgate.service.routing import ChainEntry, OffSource, SourceRouter
from modgate.service.sumlog import RetaggedError
from modgate.service.sumverify import ChecksumMismatchError
from modgate.sources.direct import DirectSource
from modgate.store.base import Kind
from modgate.store.filesystem import FilesystemStore

MV = ModuleVersion("example.com/m", "v1.0.0")
GOMOD = b"module example.com/m\n\ngo 1.22\n"


def module_zip(mv: ModuleVersion, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"{mv.path}@{mv.version}/{name}", data)
    return buf.getvalue()


GOOD_ZIP = module_zip(MV, {"go.mod": GOMOD, "m.go": b"package m\n"})


Answer = bytes | Exception


class FakeSource:
    """Answers from a table; an Exception value is raised. Counts every call.

    A list value holds successive answers; its last one is repeated.
    """

    def __init__(
        self, name: str, table: dict[str, Answer | list[Answer]], delay: float = 0
    ) -> None:
        self.name = name
        self.table = table
        self.delay = delay
        self.calls: Counter[str] = Counter()

    async def _answer(self, key: str) -> bytes:
        self.calls[key] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        value = self.table.get(key)
        if isinstance(value, list):
            value = value.pop(0) if len(value) > 1 else value[0]
        if value is None:
            raise NotFoundError(key, "not in the fake table")
        if isinstance(value, Exception):
            raise value
        return value

    async def list(self, module: str) -> bytes:
        return await self._answer(f"list:{module}")

    async def latest(self, module: str) -> bytes:
        return await self._answer(f"latest:{module}")

    async def info(self, module: str, version: str) -> bytes:
        return await self._answer(f"info:{module}@{version}")

    async def mod(self, mv: ModuleVersion) -> bytes:
        return await self._answer(f"mod:{mv}")

    async def zip(self, mv: ModuleVersion, dest: Path, max_size: int) -> None:
        dest.write_bytes(await self._answer(f"zip:{mv}"))

    async def aclose(self) -> None:
        return None


def good_table() -> dict[str, Answer | list[Answer]]:
    return {
        "list:example.com/m": b"v1.0.0\nv0.9.0\n",
        "latest:example.com/m": b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}',
        "info:example.com/m@v1.0.0": b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}',
        "info:example.com/m@main": b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}',
        "mod:example.com/m@v1.0.0": GOMOD,
        "zip:example.com/m@v1.0.0": GOOD_ZIP,
    }


def make_gateway(
    tmp_path: Path, *entries: tuple[FakeSource | OffSource, bool], private: str = "", **opts: float
) -> Gateway:
    chain = tuple(ChainEntry(src, any_error) for src, any_error in entries)
    router = SourceRouter(chain, DirectSource(), parse_patterns(private))
    options = GatewayOptions(**opts)  # type: ignore[arg-type]
    return Gateway(FilesystemStore(tmp_path / "store"), router, Metrics(), options)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_fetches_verifies_and_stores_every_artifact(tmp_path: Path) -> None:
    src = FakeSource("up", good_table())
    gw = make_gateway(tmp_path, (src, False))

    async def go() -> None:
        info = await gw.info(MV.path, MV.version)
        assert info.immutable and info.body is not None and b"v1.0.0" in info.body
        assert (await gw.mod(MV)).body == GOMOD
        answer = await gw.zip(MV)
        assert answer.path is not None and answer.path.read_bytes() == GOOD_ZIP
        stored_h1 = gw.store.get(MV, Kind.ZIPHASH)
        assert answer.validator == stored_h1, f"zip validator {answer.validator!r}"
        # second round is served from the store: no new source calls
        await gw.info(MV.path, MV.version)
        await gw.mod(MV)
        await gw.zip(MV)

    run(go())
    assert src.calls == Counter(
        {
            "info:example.com/m@v1.0.0": 1,
            "mod:example.com/m@v1.0.0": 1,
            "zip:example.com/m@v1.0.0": 1,
        }
    )
    ziphash = gw.store.get(MV, Kind.ZIPHASH)
    assert ziphash is not None and ziphash.startswith(b"h1:")


def test_fifty_concurrent_zip_requests_cause_one_fetch(tmp_path: Path) -> None:
    src = FakeSource("up", good_table(), delay=0.05)
    gw = make_gateway(tmp_path, (src, False))

    async def go() -> list[bytes]:
        answers = await asyncio.gather(*(gw.zip(MV) for _ in range(50)))
        return [a.path.read_bytes() for a in answers if a.path]

    bodies = run(go())
    assert bodies == [GOOD_ZIP] * 50
    assert src.calls["zip:example.com/m@v1.0.0"] == 1, src.calls
    assert gw.metrics.total("modgate_singleflight_waits_total") >= 49


@pytest.mark.parametrize(
    ("failure", "any_error", "reaches_second"),
    [
        (NotFoundError("x", "no"), False, True),
        (GoneError("x", "gone"), False, True),
        (UpstreamError("x", "500"), False, False),
        (UpstreamError("x", "500"), True, True),
        (InvalidModuleError("x", "bad"), False, False),
    ],
)
def test_chain_fall_through_follows_goproxy_separators(
    tmp_path: Path, failure: Exception, any_error: bool, reaches_second: bool
) -> None:
    first = FakeSource("first", {"mod:example.com/m@v1.0.0": failure})
    second = FakeSource("second", good_table())
    gw = make_gateway(tmp_path, (first, any_error), (second, False))

    async def go() -> bytes | None:
        return (await gw.mod(MV)).body

    if reaches_second:
        assert run(go()) == GOMOD
    else:
        with pytest.raises(type(failure)):
            run(go())
    assert second.calls["mod:example.com/m@v1.0.0"] == (1 if reaches_second else 0)


def test_off_ends_the_chain_with_not_found(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, (OffSource(), False))
    with pytest.raises(NotFoundError, match="fetching is disabled"):
        run(gw.mod(MV))


def test_private_modules_never_reach_upstream(tmp_path: Path) -> None:
    src = FakeSource("up", good_table())
    gw = make_gateway(tmp_path, (src, False), private="example.com")

    async def go() -> None:
        calls = (
            lambda: gw.list(MV.path),
            lambda: gw.latest(MV.path),
            lambda: gw.info(MV.path, "v1.0.0"),
            lambda: gw.info(MV.path, "main"),
            lambda: gw.mod(MV),
            lambda: gw.zip(MV),
        )
        for call in calls:
            with pytest.raises(NotFoundError):
                await call()

    run(go())
    assert sum(src.calls.values()) == 0, f"private module names reached upstream: {src.calls}"


def test_negative_cache_remembers_not_found(tmp_path: Path) -> None:
    src = FakeSource("up", {})
    gw = make_gateway(tmp_path, (src, False), negative_ttl=60)

    async def go() -> None:
        for _ in range(3):
            with pytest.raises(NotFoundError):
                await gw.mod(MV)

    run(go())
    assert src.calls["mod:example.com/m@v1.0.0"] == 1


def test_list_is_refreshed_after_ttl_and_served_stale_on_error(tmp_path: Path) -> None:
    table = good_table()
    src = FakeSource("up", table)
    gw = make_gateway(tmp_path, (src, False), list_ttl=0)

    async def go() -> None:
        first = await gw.list(MV.path)
        assert first.body == b"v0.9.0\nv1.0.0\n" and not first.stale
        table["list:example.com/m"] = UpstreamError("up", "answered 500")
        second = await gw.list(MV.path)
        assert second.body == first.body and second.stale

    run(go())
    assert src.calls["list:example.com/m"] == 2
    assert gw.metrics.total("modgate_stale_served_total") == 1


def test_list_without_any_good_answer_fails(tmp_path: Path) -> None:
    src = FakeSource("up", {"list:example.com/m": UpstreamError("up", "answered 500")})
    gw = make_gateway(tmp_path, (src, False))
    with pytest.raises(UpstreamError):
        run(gw.list(MV.path))


def test_query_info_resolves_and_expires(tmp_path: Path) -> None:
    src = FakeSource("up", good_table())
    gw = make_gateway(tmp_path, (src, False), list_ttl=3600)

    async def go() -> None:
        for _ in range(2):
            answer = await gw.info(MV.path, "main")
            assert not answer.immutable and answer.body and b"v1.0.0" in answer.body

    run(go())
    assert src.calls["info:example.com/m@main"] == 1


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("mod:example.com/m@v1.0.0", b"<html>captive portal</html>"),
        ("zip:example.com/m@v1.0.0", b"not a zip at all"),
        ("zip:example.com/m@v1.0.0", module_zip(MV, {"go.mod": b"module example.com/other\n"})),
        (
            "zip:example.com/m@v1.0.0",
            module_zip(ModuleVersion("example.com/x", "v1.0.0"), {"a": b""}),
        ),
        ("info:example.com/m@v1.0.0", b'{"Version":"v1.0.1"}'),
    ],
)
def test_invalid_artifacts_are_refused_and_not_stored(tmp_path: Path, key: str, bad: bytes) -> None:
    table = good_table()
    table[key] = bad
    kind = key.split(":", maxsplit=1)[0]

    async def go() -> None:
        calls = {
            "mod": lambda: gw.mod(MV),
            "zip": lambda: gw.zip(MV),
            "info": lambda: gw.info(MV.path, MV.version),
        }
        with pytest.raises(InvalidModuleError):
            await calls[kind]()

        with pytest.raises(InvalidModuleError):
            await calls[kind]()  # remembered: answered without asking the source again

    src = FakeSource("up", table)
    gw = make_gateway(tmp_path, (src, False), negative_ttl=60)
    run(go())
    stored = gw.store.size(MV, Kind(kind))
    assert stored is None, f"refused .{kind} was stored ({stored} bytes)"
    # fetched once more (the bytes may have been damaged on their way), then refused
    assert src.calls[key] == 2, f"{key} asked {src.calls[key]} times, not 2"
    assert gw.metrics.total("modgate_verification_failures_total") == 2


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("mod:example.com/m@v1.0.0", b"<html>captive portal</html>"),
        ("zip:example.com/m@v1.0.0", GOOD_ZIP[: len(GOOD_ZIP) // 2]),
        ("info:example.com/m@v1.0.0", b'{"Version":"v1.0.1"}'),
    ],
)
def test_bytes_damaged_once_are_fetched_again(tmp_path: Path, key: str, bad: bytes) -> None:
    """A single upstream that sends damaged bytes once: the second fetch is stored."""
    table = good_table()
    good = table[key]
    assert isinstance(good, bytes)
    table[key] = [bad, good]
    src = FakeSource("up", table)
    gw = make_gateway(tmp_path, (src, False), negative_ttl=60)
    kind = Kind(key.split(":", maxsplit=1)[0])

    async def go() -> None:
        await gw.mod(MV)
        await gw.info(MV.path, MV.version)
        await gw.zip(MV)

    run(go())
    assert src.calls[key] == 2, f"{key} asked {src.calls[key]} times, not 2"
    stored = gw.store.get(MV, kind) if kind is not Kind.ZIP else None
    if kind is Kind.ZIP:
        path = gw.store.local_path(MV, Kind.ZIP)
        assert path is not None and path.read_bytes() == GOOD_ZIP, "the good zip is not stored"
    else:
        assert stored == good, f"stored .{kind.value} {stored!r}, not the good bytes"
    assert gw.metrics.total("modgate_verification_failures_total") == 1


class ZipMismatchVerifier:
    """A checksum database that disagrees with every zip: a security event, raised as ``error``."""

    reads_little = True

    def __init__(self, error: type[InvalidModuleError]) -> None:
        self.error = error

    async def prepare(self, mv: ModuleVersion) -> None:
        return None

    def check(self, mv: ModuleVersion, kind: Kind, h1: str) -> None:
        if kind is Kind.ZIP:
            raise self.error(str(mv), f"zip hash {h1} differs from the checksum database")

    def stored(self, mv: ModuleVersion, gomod_h1: str, zip_h1: str) -> None:
        return None


@pytest.mark.parametrize("error", [ChecksumMismatchError, RetaggedError])
def test_checksum_disagreements_are_never_fetched_again(
    tmp_path: Path, error: type[InvalidModuleError]
) -> None:
    src = FakeSource("up", good_table())
    router = SourceRouter((ChainEntry(src, False),), DirectSource(), parse_patterns(""))
    gw = Gateway(
        FilesystemStore(tmp_path / "store"), router, Metrics(), GatewayOptions(negative_ttl=60),
        verifier=ZipMismatchVerifier(error),
    )  # fmt: skip

    async def go() -> None:
        for _ in range(2):
            with pytest.raises(error):
                await gw.zip(MV)

    run(go())
    assert src.calls["zip:example.com/m@v1.0.0"] == 1, src.calls
    assert gw.store.local_path(MV, Kind.ZIP) is None


def test_merge_list_sorts_dedups_and_drops_junk() -> None:
    upstream = (
        b"v1.10.0 2024-01-01T00:00:00Z\nv1.2.0\n\ngarbage\nv1.2\n"
        b"v0.0.0-20240101000000-abcdefabcdef\n"
    )
    assert merge_list("example.com/m", upstream, ["v1.2.0", "v1.3.0"]) == (
        b"v1.2.0\nv1.3.0\nv1.10.0 2024-01-01T00:00:00Z\n"
    )


def test_a_mod_miss_fetches_the_info_with_it(tmp_path: Path) -> None:
    src = FakeSource("up", good_table(), delay=0.02)
    gw = make_gateway(tmp_path, (src, False))

    async def go() -> None:
        assert (await gw.mod(MV)).body == GOMOD
        await asyncio.sleep(0.05)
        assert gw.store.get(MV, Kind.INFO) is not None, "the .info was not fetched with the .mod"
        info = await gw.info(MV.path, MV.version)
        assert info.body == good_table()["info:example.com/m@v1.0.0"]

    run(go())
    assert src.calls == Counter({"mod:example.com/m@v1.0.0": 1, "info:example.com/m@v1.0.0": 1})


def test_an_info_miss_fetches_the_mod_with_it(tmp_path: Path) -> None:
    src = FakeSource("up", good_table())
    gw = make_gateway(tmp_path, (src, False))

    async def go() -> None:
        await gw.info(MV.path, MV.version)
        await asyncio.sleep(0.05)  # the prefetch ends on its own, without a request for it
        assert gw.store.get(MV, Kind.MOD) == GOMOD
        assert (await gw.mod(MV)).body == GOMOD

    run(go())
    assert src.calls["mod:example.com/m@v1.0.0"] == 1, src.calls


def test_a_failed_prefetch_fails_only_its_own_request(tmp_path: Path) -> None:
    table = good_table()
    table["info:example.com/m@v1.0.0"] = UpstreamError("example.com/m@v1.0.0", "503")
    src = FakeSource("up", table)
    gw = make_gateway(tmp_path, (src, False))

    async def go() -> None:
        assert (await gw.mod(MV)).body == GOMOD
        await asyncio.sleep(0.05)
        with pytest.raises(UpstreamError):
            await gw.info(MV.path, MV.version)  # not remembered: asked again, fails again

    run(go())
    assert src.calls["info:example.com/m@v1.0.0"] == 2, src.calls
    assert gw.store.get(MV, Kind.INFO) is None


def test_an_invalid_prefetched_info_is_refused_and_not_stored(tmp_path: Path) -> None:
    table = good_table()
    table["info:example.com/m@v1.0.0"] = b'{"Version":"v9.9.9","Time":"2024-01-02T03:04:05Z"}'
    src = FakeSource("up", table)
    gw = make_gateway(tmp_path, (src, False))

    async def go() -> None:
        await gw.mod(MV)
        await asyncio.sleep(0.05)
        with pytest.raises(InvalidModuleError):
            await gw.info(MV.path, MV.version)

    run(go())
    assert gw.store.get(MV, Kind.INFO) is None
    assert gw.metrics.total("modgate_verification_failures_total") >= 1


class GatedStore(FilesystemStore):
    """A filesystem store whose writes of a .mod wait until ``gate`` is set (or fail)."""

    def __init__(self, root: Path, fail: bool = False) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.fail = fail

    def put(self, mv: ModuleVersion, kind: Kind, data: bytes) -> None:
        if kind is Kind.MOD:
            assert self.gate.wait(10), "the test never opened the gate"
            if self.fail:
                raise StoreError(str(mv), "disk full (test)")
        super().put(mv, kind, data)

    def put_many(self, items: list[tuple[ModuleVersion, Kind, bytes]]) -> list[Exception | None]:
        """Through ``put``, one at a time, so that the gate holds grouped writes too."""
        errors: list[Exception | None] = []
        for mv, kind, data in items:
            try:
                self.put(mv, kind, data)
            except StoreError as exc:
                errors.append(exc)
            else:
                errors.append(None)
        return errors


def gated_gateway(tmp_path: Path, src: FakeSource, *, fail: bool = False) -> Gateway:
    router = SourceRouter((ChainEntry(src, False),), DirectSource(), parse_patterns(""))
    return Gateway(GatedStore(tmp_path / "store", fail=fail), router, Metrics())


def test_a_mod_miss_is_answered_with_verified_bytes_before_they_are_stored(
    tmp_path: Path,
) -> None:
    src = FakeSource("up", good_table())
    gw = gated_gateway(tmp_path, src)
    store = gw.store
    assert isinstance(store, GatedStore)

    async def go() -> None:
        answer = await asyncio.wait_for(gw.mod(MV), 5)
        assert answer.body == GOMOD, "the answer is not the fetched .mod"
        assert store.get(MV, Kind.MOD) is None, "stored before the gate opened?"
        # a second request meanwhile waits for the store lock, then reads the store
        second = asyncio.ensure_future(gw.mod(MV))
        await asyncio.sleep(0.1)
        assert not second.done(), "the second request did not wait for the write under way"
        store.gate.set()
        assert (await asyncio.wait_for(second, 5)).body == GOMOD
        assert store.get(MV, Kind.MOD) == GOMOD
        await gw.aclose()

    run(go())
    assert src.calls["mod:example.com/m@v1.0.0"] == 1, src.calls


def test_an_invalid_mod_is_refused_before_any_answer(tmp_path: Path) -> None:
    table = good_table()
    table["mod:example.com/m@v1.0.0"] = b"<html>login</html>"
    gw = gated_gateway(tmp_path, FakeSource("up", table))

    async def go() -> None:
        with pytest.raises(InvalidModuleError):
            await asyncio.wait_for(gw.mod(MV), 5)
        await gw.aclose()

    run(go())
    assert gw.store.get(MV, Kind.MOD) is None


def test_a_store_failure_after_the_answer_is_logged_and_fetched_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = FakeSource("up", good_table())
    gw = gated_gateway(tmp_path, src, fail=True)
    store = gw.store
    assert isinstance(store, GatedStore)
    store.gate.set()

    async def go() -> None:
        assert (await gw.mod(MV)).body == GOMOD
        await gw.settle(5)  # the write ends (here: fails)
        store.fail = False
        assert (await gw.mod(MV)).body == GOMOD
        await gw.aclose()

    with caplog.at_level(logging.WARNING, logger="modgate.gateway"):
        run(go())
    events = [getattr(r, "event", "") for r in caplog.records]
    assert "store_after_answer_failed" in events, events
    assert src.calls["mod:example.com/m@v1.0.0"] == 2, "the failed write was not fetched again"
    assert gw.store.get(MV, Kind.MOD) == GOMOD


@pytest.mark.parametrize(("padding", "on_loop"), [(0, True), (70_000, False)])
def test_small_mod_files_are_checked_on_the_loop_and_large_ones_in_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, padding: int, on_loop: bool
) -> None:
    gomod = GOMOD + b"// padding\n" * (padding // 11)
    table = good_table()
    table["mod:example.com/m@v1.0.0"] = gomod
    gw = make_gateway(tmp_path, (FakeSource("up", table), False))
    threads: list[str] = []
    real = gw.ingest.accept_mod

    def recording(mv: ModuleVersion, data: bytes, source: str) -> None:
        threads.append(threading.current_thread().name)
        real(mv, data, source)

    monkeypatch.setattr(gw.ingest, "accept_mod", recording)

    async def go() -> None:
        assert (await gw.mod(MV)).body == gomod
        await gw.aclose()

    run(go())
    assert len(threads) == 1, threads
    assert (threads[0] == threading.main_thread().name) is on_loop, (
        f"a {len(gomod)}-byte .mod was checked in {threads[0]}"
    )
