"""Routes, content types, caching headers, ETags and the error mapping."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from server_support import (
    INFO_PATH,
    LATEST_PATH,
    LIST_PATH,
    MOD_PATH,
    QUERY_INFO_PATH,
    ZIP_PATH,
    Client,
    FakeGateway,
    serve_test,
)

from modgate.protocol.errors import (
    GoneError,
    InvalidModuleError,
    InvalidRequestError,
    NotFoundError,
    StoreError,
    UpstreamError,
    UpstreamTimeoutError,
)
from modgate.server.app import ServerHandle

IMMUTABLE = "public, max-age=31536000, immutable"
TEXT = "text/plain; charset=utf-8"


@pytest.fixture
def zip_file(tmp_path: Path) -> Path:
    path = tmp_path / "v1.0.0.zip"
    path.write_bytes(b"PK" + bytes(range(256)) * 40)
    return path


@pytest.mark.parametrize(
    ("path", "content_type", "cache_control", "has_etag"),
    [
        (INFO_PATH, "application/json", IMMUTABLE, True),
        (MOD_PATH, TEXT, IMMUTABLE, True),
        (ZIP_PATH, "application/zip", IMMUTABLE, True),
        (LIST_PATH, TEXT, "public, max-age=60", False),
        (LATEST_PATH, "application/json", "public, max-age=60", False),
        (QUERY_INFO_PATH, "application/json", "public, max-age=60", False),
    ],
)
def test_proxy_routes_headers(
    zip_file: Path, path: str, content_type: str, cache_control: str, has_etag: bool
) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        resp = await client.get(path)
        assert resp.status == 200, f"GET {path}: {resp}"
        assert resp.header("content-type") == content_type, f"GET {path}: {resp}"
        assert resp.header("cache-control") == cache_control, f"GET {path}: {resp}"
        assert (resp.header("etag") is not None) == has_etag, f"GET {path}: {resp}"
        assert resp.header("server") == "modgate"
        assert resp.header("date") is not None
        assert resp.header("content-length") == str(len(resp.body))
        await client.close()

    serve_test(body, FakeGateway(zip_path=zip_file))


def test_bodies_come_from_the_gateway(zip_file: Path) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        assert (await client.get(MOD_PATH)).body == b"module example.com/mod\n"
        assert (await client.get(ZIP_PATH)).body == zip_file.read_bytes()
        assert (await client.get(LIST_PATH)).body == b"v1.0.0\nv1.1.0\n"
        info = await client.get(QUERY_INFO_PATH)
        assert b'"Version":"v1.1.0"' in info.body, str(info)
        assert gw.calls[-1] == "info example.com/mod@master"
        await client.close()

    serve_test(body, FakeGateway(zip_path=zip_file))


@pytest.mark.parametrize("path", [INFO_PATH, ZIP_PATH, LIST_PATH, "/healthz", "/nope"])
def test_head_has_get_headers_and_no_body(zip_file: Path, path: str) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(2):  # first a miss, then (for immutable answers) a hot-set hit
            head = await client.get(path, "HEAD")
            get = await client.get(path)
            head.headers.pop("date")
            get.headers.pop("date")
            assert head.status == get.status, f"HEAD {head} vs GET {get}"
            assert head.headers == get.headers, f"HEAD {head.headers} vs GET {get.headers}"
        # Had HEAD sent a body, it would have been read as the next status line.
        assert (await client.get("/healthz")).status == 200
        await client.close()

    serve_test(body, FakeGateway(zip_path=zip_file))


@pytest.mark.parametrize(
    ("if_none_match", "expect"),
    [
        ("{etag}", 304),
        ("W/{etag}", 304),
        ('"other", {etag}', 304),
        ("*", 304),
        ('"other"', 200),
    ],
)
@pytest.mark.parametrize("path", [INFO_PATH, ZIP_PATH])
def test_if_none_match(zip_file: Path, path: str, if_none_match: str, expect: int) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        first = await client.get(path)
        etag = first.header("etag")
        assert etag is not None and etag.startswith('"'), str(first)
        header = f"If-None-Match: {if_none_match.format(etag=etag)}\r\n"
        again = await client.get(path, headers=header)
        assert again.status == expect, f"If-None-Match {header!r}: {again}"
        if expect == 304:
            assert again.header("etag") == etag
            assert again.header("cache-control") == IMMUTABLE
            assert again.body == b""
        else:
            assert again.body == first.body
        await client.close()

    serve_test(body, FakeGateway(zip_path=zip_file))


@pytest.mark.parametrize("size", [100, 200_000], ids=["hot-set", "from-file"])
def test_zip_etag_is_weak_and_derived_from_its_h1(tmp_path: Path, size: int) -> None:
    # Hashing a zip of up to 500 MB to tag it would delay its first answer;
    # its h1 already names the content (though not the exact bytes: weak).
    path = tmp_path / "v1.0.0.zip"
    path.write_bytes(b"PK" + bytes(size))
    h1 = b"h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    want = b'W/"%s"' % hashlib.sha256(h1).hexdigest()[:32].encode()

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(2):  # a miss, then possibly a hot-set hit
            resp = await client.get(ZIP_PATH)
            assert resp.header("etag") == want.decode(), f"{resp}: expected {want!r}"
        for tag in (want, want.removeprefix(b"W/")):
            again = await client.get(ZIP_PATH, headers=f"If-None-Match: {tag.decode()}\r\n")
            assert again.status == 304, f"If-None-Match {tag!r}: {again}"
        await client.close()

    serve_test(body, FakeGateway(zip_path=path, zip_validator=h1))


def test_etag_is_stable_and_content_derived(zip_file: Path) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        a = await client.get(INFO_PATH)
        b = await client.get(INFO_PATH)
        c = await client.get("/example.com/mod/@v/v1.0.1.info")
        assert a.header("etag") == b.header("etag"), f"{a} vs {b}"
        assert a.header("etag") != c.header("etag"), f"different content, same tag: {a} {c}"
        await client.close()

    serve_test(body, FakeGateway(zip_path=zip_file))


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequestError("example.com/mod@v1.0.0", "bad version"), 400),
        (NotFoundError("example.com/mod@v1.0.0", "unknown revision"), 404),
        (GoneError("example.com/mod@v1.0.0", "removed"), 410),
        (InvalidModuleError("example.com/mod@v1.0.0", "zip has a bad file name"), 404),
        (UpstreamError("example.com/mod@v1.0.0", "upstream answered 500; retry later"), 502),
        (UpstreamTimeoutError("example.com/mod@v1.0.0", "upstream timed out"), 504),
        (StoreError("example.com/mod@v1.0.0", "disk full; free space"), 500),
    ],
)
def test_errors_map_to_status_and_one_line(error: Exception, status: int) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        resp = await client.get(INFO_PATH)
        assert resp.status == status, f"{type(error).__name__}: {resp}"
        assert resp.body == (str(error) + "\n").encode(), str(resp)
        assert resp.header("content-type") == TEXT
        assert resp.header("cache-control") == "no-store"
        # The connection survives an error answer.
        assert (await client.get("/healthz")).status == 200
        await client.close()

    serve_test(body, FakeGateway(error=error))


def test_unexpected_exception_is_500_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    secret = "https://user:hunter2@example.com"

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        resp = await client.get(INFO_PATH)
        assert resp.status == 500, str(resp)
        assert resp.body == b"internal error\n", str(resp)
        await client.close()

    with caplog.at_level(logging.ERROR, logger="modgate.server"):
        serve_test(body, FakeGateway(error=RuntimeError(f"boom {secret}")))
    assert any(r.exc_info for r in caplog.records), "the traceback was not logged"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 400),
        ("/example.com/mod/@v/v1.0.0.info?x=1", 400),
        ("/example.com/mod/@v/v1.0.0.tar", 404),
        ("/example.com/mod/@v/master.zip", 400),
        ("/example.com/mod/@v/v1.0.zip", 404),
    ],
)
def test_bad_proxy_paths(path: str, status: int) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        resp = await client.get(path)
        assert resp.status == status, f"GET {path}: {resp}"
        assert resp.body.endswith(b"\n") and resp.body.count(b"\n") == 1, str(resp)
        assert gw.calls == [], f"the gateway was asked: {gw.calls}"
        await client.close()

    serve_test(body)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods_are_405_with_allow(method: str) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        resp = await client.get(INFO_PATH, method)
        assert resp.status == 405, f"{method}: {resp}"
        assert resp.header("allow") == "GET, HEAD"
        assert (await client.get("/healthz")).status == 200, "connection should stay open"
        await client.close()

    serve_test(body)


@pytest.mark.parametrize(("ready", "status"), [((True, "ok"), 200), ((False, "store down"), 503)])
def test_health_and_readiness(ready: tuple[bool, str], status: int) -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        health = await client.get("/healthz")
        assert (health.status, health.body) == (200, b"ok\n"), str(health)
        readyz = await client.get("/readyz")
        assert readyz.status == status, str(readyz)
        assert readyz.body == (ready[1] + "\n").encode()
        await client.close()

    serve_test(body, FakeGateway(ready_state=ready))


def test_metrics_count_routes_bytes_and_hits() -> None:
    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        first = await client.get(INFO_PATH)
        await client.get(INFO_PATH)
        await client.get("/example.com/mod/@v/v1.9.9.zip")
        resp = await client.get("/metrics")
        assert resp.header("content-type") == "text/plain; version=0.0.4"
        text = resp.body.decode()
        expected = [
            'modgate_requests_total{route="info",status="200"} 2',
            'modgate_requests_total{route="zip",status="404"} 1',
            'modgate_cache_hits_total{layer="memory"} 1',
        ]
        for line in expected:
            assert line in text.splitlines(), f"missing {line!r} in:\n{text}"
        zip_error = len(b"example.com/mod@v1.9.9: no zip in this fake\n")
        served = f"modgate_bytes_served_total {2 * len(first.body) + zip_error}"
        assert served in text.splitlines(), f"missing {served!r} in:\n{text}"
        hot = [ln for ln in text.splitlines() if ln.startswith("modgate_hot_cache_bytes ")]
        assert hot and int(hot[0].split()[1]) > len(first.body), f"hot bytes gauge: {hot}"
        await client.close()

    serve_test(body)
