"""Hostile HTTP clients against ``modgate serve``: the scenarios that held when tried, kept so.

Each test names its bound. Everything runs on 127.0.0.1 against a server
with ``--upstream off`` (or ``direct`` behind a recording proxy), so nothing
leaves the machine.

- request smuggling: a request with a body, two lengths, a chunked body or
  a folded header gets one 4xx and the connection is closed; whatever was
  smuggled behind it is never answered (bound: 1 answer, closed within 2 s);
- path traversal: no request-target reads a file outside the store
  (bound: 0 bytes of the file beside the store in any answer);
- git option injection: module paths and queries that look like git
  options never reach git as options (bound: the marker file is never made);
- slow readers: a client that never reads a large answer holds only its own
  connection; others are answered meanwhile (bound: 20 answers within 5 s);
- pipelining: 200 requests in one write are answered in order
  (bound: 200 answers within 10 s).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from adversarial.conftest import (
    RecordingListener,
    address_of,
    raw_exchange,
    responses,
    status_lines,
)
from helpers.modules import write_big_module, write_module_version
from helpers.servers import ModgateFactory, ModgateHandle, http_get

METRICS = b"GET /metrics HTTP/1.1\r\nHost: modgate\r\n\r\n"
CLOSE_BOUND = 2.0
SMUGGLING = {
    "content-length and chunked": b"GET /healthz HTTP/1.1\r\nHost: m\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunked body": b"GET /healthz HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n",
    "two content lengths": b"GET /healthz HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n"
    b"Content-Length: 5\r\n\r\n",
    "folded header": b"GET /healthz HTTP/1.1\r\nHost: m\r\nX-A: a\r\n b\r\n\r\n",
    "bare line feeds": b"GET /healthz HTTP/1.1\nHost: m\n\n",
    "body behind content-length": b"POST /healthz HTTP/1.1\r\nHost: m\r\nContent-Length: 39\r\n"
    b"\r\n",
    "space before colon": b"GET /healthz HTTP/1.1\r\nHost: m\r\nContent-Length : 5\r\n\r\n",
    "negative length": b"GET /healthz HTTP/1.1\r\nHost: m\r\nContent-Length: -1\r\n\r\n",
    "unknown transfer coding": b"GET /healthz HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: x\r\n\r\n",
    "NUL in the target": b"GET /hea\x00lthz HTTP/1.1\r\nHost: m\r\n\r\n",
}


@pytest.fixture
def offline(modgate: ModgateFactory) -> ModgateHandle:
    return modgate("--upstream", "off")


@pytest.mark.parametrize("case", sorted(SMUGGLING))
def test_smuggled_requests_are_never_answered(offline: ModgateHandle, case: str) -> None:
    started = time.monotonic()
    raw = raw_exchange(offline.url, SMUGGLING[case] + METRICS, timeout=CLOSE_BOUND + 3)
    took = time.monotonic() - started
    statuses = status_lines(raw)
    assert len(statuses) == 1 and 400 <= statuses[0] < 500, f"{case}: answers {statuses}: {raw!r}"
    assert b"modgate_requests_total" not in raw, f"{case}: the smuggled request was answered"
    assert took < CLOSE_BOUND, f"{case}: the connection stayed open {took:.1f} s"


def test_traversal_never_reads_outside_the_store(offline: ModgateHandle, tmp_path: Path) -> None:
    secret = offline.store.parent / "secret.mod"
    secret.write_bytes(b"module TOP-SECRET-CONTENT\n")
    (offline.store / "_modgate" / "meta" / "private.mod").write_bytes(b"module STATE-CONTENT\n")
    targets = [
        "/../secret.mod",
        "/%2e%2e/secret.mod",
        "/..%2fsecret.mod",
        "/example.com/m/@v/..%2f..%2f..%2fsecret.mod",
        "/example.com/m/@v/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.mod",
        "/example.com/../../secret/@v/list",
        "/_modgate/meta/private/@v/v1.0.0.mod",
        "/_modgate/@v/list",
        "//secret.mod",
        "/./secret.mod",
        "/example.com/m/@v/v1.0.0.mod/../../../../secret.mod",
    ]
    for target in targets:
        answer = http_get(offline.url, target)
        assert b"SECRET" not in answer.body and b"STATE" not in answer.body, f"{target}: {answer}"
        assert 400 <= answer.status < 500, f"{target}: {answer}"
    for raw in (
        b"GET http://evil.example/../../secret.mod HTTP/1.1\r\nHost: x\r\nConnection: close"
        b"\r\n\r\n",
        b"GET ../secret.mod HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ):
        got = raw_exchange(offline.url, raw, timeout=CLOSE_BOUND)
        assert b"SECRET" not in got, raw
        assert all(400 <= s < 500 for s in status_lines(got)) and status_lines(got), got


INJECTIONS = [
    "/github.com/--upload-pack=touch%20MARKER/x/@v/list",
    "/github.com/-oProxyCommand=touch%20MARKER/x/@v/v1.0.0.info",
    "/github.com/fixture/x/@v/--upload-pack=touch%20MARKER.info",
    "/github.com/fixture/x/@v/-c%20core.sshCommand=touch%20MARKER.info",
    "/example.com/repo.git/@v/--exec=touch%20MARKER.info",
    "/ext::sh%20-c%20touch%20MARKER/@v/list",
]


def test_module_paths_and_queries_never_become_git_options(
    modgate: ModgateFactory, recording_listener: RecordingListener, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    server = modgate("--upstream", "direct", env=recording_listener.proxy_env())
    for target in INJECTIONS:
        answer = http_get(server.url, target.replace("MARKER", str(marker)))
        assert 400 <= answer.status < 500, f"{target}: {answer}"
    assert not marker.exists(), "a module path or query ran a command"


SLOW_ZIP_BYTES = 8 << 20
OTHERS = 20
OTHERS_BOUND = 5.0


def test_a_client_that_never_reads_holds_only_its_own_connection(
    modgate: ModgateFactory, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    built = write_big_module(store, SLOW_ZIP_BYTES)
    server = modgate("--upstream", "off", store=store)
    request = f"GET {built.url_path('zip')} HTTP/1.1\r\nHost: m\r\n\r\n".encode()
    stalled = []
    try:
        for _ in range(4):  # several connections ask for the big zip and never read
            sock = socket.create_connection(address_of(server.url), timeout=5)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(request * 4)
            stalled.append(sock)
        started = time.monotonic()
        for _ in range(OTHERS):
            answer = http_get(server.url, built.url_path("mod"), timeout=OTHERS_BOUND)
            assert answer.status == 200, str(answer)
        took = time.monotonic() - started
        assert took < OTHERS_BOUND, f"{OTHERS} answers took {took:.1f} s beside stalled readers"
    finally:
        for sock in stalled:
            sock.close()
    assert http_get(server.url, "/healthz").status == 200


PIPELINED = 200
PIPELINE_BOUND = 10.0


def test_two_hundred_pipelined_requests_are_answered_in_order(
    modgate: ModgateFactory, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    built = write_module_version(
        store, "example.com/small", "v1.0.0", {"go.mod": b"module example.com/small\n"}
    )
    server = modgate("--upstream", "off", store=store)
    paths = [built.url_path(kind) for kind in ("info", "mod", "zip")] + ["/healthz"]
    order = [paths[i % len(paths)] for i in range(PIPELINED)]
    data = b"".join(f"GET {p} HTTP/1.1\r\nHost: m\r\n\r\n".encode() for p in order)
    data += b"GET /healthz HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"
    started = time.monotonic()
    raw = raw_exchange(server.url, data, timeout=PIPELINE_BOUND)
    took = time.monotonic() - started
    answers = responses(raw)
    assert [a[0] for a in answers] == [200] * (PIPELINED + 1), f"{len(answers)} answers"
    assert took < PIPELINE_BOUND, f"took {took:.1f} s"
    expected = {paths[0]: built.info, paths[1]: built.mod, paths[2]: built.zip, "/healthz": b"ok\n"}
    wrong = [i for i, path in enumerate(order) if answers[i][2] != expected[path]]
    assert wrong == [], f"answers out of order at {wrong[:5]}"
