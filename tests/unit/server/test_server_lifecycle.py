"""Graceful shutdown, the access log, and run_server under SIGTERM."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from server_support import INFO_PATH, Client, FakeGateway, run

from modgate.server.accesslog import FLUSH_BATCH, AccessLog, log_path
from modgate.server.app import start_server


def test_shutdown_finishes_the_request_in_flight_and_closes_idle_ones() -> None:
    async def main() -> None:
        gw = FakeGateway(delay=0.3)
        handle = await start_server(gw)
        busy = await Client.connect(handle.port)
        idle = await Client.connect(handle.port)
        assert (await idle.get("/healthz")).status == 200
        await busy.send(f"GET {INFO_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await asyncio.sleep(0.05)  # the request is now waiting for the gateway
        closing = asyncio.create_task(handle.close(grace=5.0))
        assert await idle.closed_by_server(), "idle connection not closed at shutdown"
        resp = await busy.read_response()
        assert resp.status == 200, str(resp)
        assert resp.header("connection") == "close", str(resp)
        await closing
        assert gw.closed, "gateway.aclose() was not awaited"
        with pytest.raises(OSError):
            await Client.connect(handle.port)
        await busy.close()
        await idle.close()

    run(main())


def test_shutdown_deadline_drops_what_is_still_busy() -> None:
    async def main() -> None:
        gw = FakeGateway(delay=30)
        handle = await start_server(gw)
        client = await Client.connect(handle.port)
        await client.send(f"GET {INFO_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await asyncio.sleep(0.05)
        await asyncio.wait_for(handle.close(grace=0.2), 5)
        assert await client.closed_by_server()
        await client.close()

    run(main())


def test_access_log_lines_are_json_without_query_or_headers() -> None:
    stream = io.StringIO()

    async def main() -> None:
        handle = await start_server(FakeGateway(), access_log=stream)
        client = await Client.connect(handle.port)
        await client.get(INFO_PATH)
        await client.get(INFO_PATH, "HEAD")
        await client.get("/healthz?token=secret", headers="Authorization: Bearer hunter2\r\n")
        await client.get("/nope")
        await client.close()
        await handle.close()

    run(main())
    text = stream.getvalue()
    assert "secret" not in text and "hunter2" not in text, text
    records = [json.loads(line) for line in text.splitlines()]
    fields = {"time", "remote", "method", "path", "status", "bytes", "duration_ms", "cache"}
    for record in records:
        assert set(record) == fields, f"fields {sorted(record)}"
    got = [(r["method"], r["path"], r["status"], r["cache"]) for r in records]
    assert got == [
        ("GET", INFO_PATH, 200, "miss"),
        ("HEAD", INFO_PATH, 200, "hit"),
        ("GET", "/healthz", 200, "miss"),
        ("GET", "/nope", 400, "miss"),
    ], got
    assert records[0]["bytes"] > 0 and records[1]["bytes"] == 0
    assert records[0]["remote"] == "127.0.0.1"


def test_access_log_is_written_in_batches() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.add((0.0, "127.0.0.1", b"GET", b"/a?b=c", 200, 10, 0.0015, True))
    assert stream.getvalue() == "", "a record was written before the flush"
    log.flush()
    assert json.loads(stream.getvalue()) == {
        "time": "1970-01-01T00:00:00.000Z",
        "remote": "127.0.0.1",
        "method": "GET",
        "path": "/a",
        "status": 200,
        "bytes": 10,
        "duration_ms": 1.5,
        "cache": "hit",
    }
    for _ in range(FLUSH_BATCH):
        log.add((1.5, "::1", b"HEAD", b"/b", 404, 0, 0.0, False))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 + FLUSH_BATCH, f"{len(lines)} lines after a full batch"
    assert json.loads(lines[-1])["time"] == "1970-01-01T00:00:01.500Z"


@given(st.binary(max_size=60), st.text(max_size=20))
def test_access_log_lines_are_valid_json_for_any_target(target: bytes, remote: str) -> None:
    line = AccessLog(io.StringIO()).format((1e9, remote, b"GET", target, 200, 1, 0.25, False))
    assert line.endswith("\n") and line.count("\n") == 1, repr(line)
    record = json.loads(line)
    assert record["path"] == log_path(target), f"{line!r}"
    assert record["remote"] == remote
    assert record["duration_ms"] == 250.0


SERVER_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from server_support import FakeGateway
    from modgate.server.app import run_server

    def listening(host, port):
        print(port, flush=True)

    gw = FakeGateway()
    run_server(gw, host="127.0.0.1", port=0, hot_cache_bytes=1 << 20, access_log=None,
               workers=int(sys.argv[2]), on_listening=listening)
    print("closed" if gw.closed else "not closed", flush=True)
    """
)


@pytest.mark.parametrize(
    ("workers", "signum", "expect"),
    [
        (1, signal.SIGTERM, "closed"),
        (1, signal.SIGINT, "closed"),
        # With workers each child closes its own copy of the gateway.
        (2, signal.SIGTERM, "not closed"),
    ],
)
def test_run_server_stops_cleanly_on_signal(
    workers: int, signum: signal.Signals, expect: str
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, str(Path(__file__).parent), str(workers)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for _ in range(4):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                assert resp.read() == b"ok\n"
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"exit status {proc.returncode}"
    assert out.strip() == expect, f"after the signal: {out!r}"
