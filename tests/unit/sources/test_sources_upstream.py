"""UpstreamProxy and make_client against real HTTP servers on 127.0.0.1.

The servers run in threads of the test process: a scripted GOPROXY server
(replies per path, in order, then the last one again), a forward proxy that
relays plain-HTTP requests, an HTTPS server with a throwaway CA, and a
listener that accepts connections and never answers.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import itertools
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from helpers.servers import dead_port
from modgate.diagnose.causes import CauseId
from modgate.diagnose.gateway_answers import gateway_cause
from modgate.metrics import Metrics
from modgate.protocol.errors import (
    GoneError,
    InvalidRequestError,
    ModgateError,
    NotFoundError,
    UpstreamError,
    UpstreamTimeoutError,
)
from modgate.protocol.module import ModuleVersion
from modgate.sources import upstream
from modgate.sources.httpclient import MAX_REDIRECTS, USER_AGENT, make_client
from modgate.sources.upstream import UpstreamProxy, redact_url

T = TypeVar("T")
MV = ModuleVersion("example.com/mod", "v1.0.0")
MOD_PATH = "/example.com/mod/@v/v1.0.0.mod"
READ_TIMEOUT = 0.5
TEXT = "text/plain; charset=utf-8"
POLL = 0.02
"""Seconds between shutdown checks of the test servers."""


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = TEXT
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None
    """Declare the full length, send this many body bytes, then drop the connection."""
    no_length: bool = False
    """Send no Content-Length and close the connection to end the body."""
    chunked: bool = False
    """Send the body with chunked transfer encoding (no Content-Length)."""
    trickle: float = 0.0
    """Send the body one byte at a time, this many seconds apart."""


class Server:
    """A scripted HTTP server; ``requests`` records (path, headers) of each request."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                replies = outer.script.get(self.path) or [Reply(404, b"no script\n")]
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.no_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                elif reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                body = reply.body if reply.cut_after is None else reply.body[: reply.cut_after]
                if reply.chunked:
                    body = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
                if reply.trickle:
                    try:
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    except OSError:
                        self.close_connection = True
                    return
                self.wfile.write(body)
                if reply.cut_after is not None:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": POLL}, daemon=True
        )
        self.thread.start()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


def fetch(
    url: str,
    op: Callable[[UpstreamProxy], Awaitable[T]],
    *,
    metrics: Metrics | None = None,
    retries: int = 2,
    ca_bundle: Path | None = None,
    read_timeout: float = READ_TIMEOUT,
) -> T:
    async def main() -> T:
        client = make_client(
            ca_bundle=ca_bundle,
            connect_timeout=READ_TIMEOUT,
            read_timeout=read_timeout,
            max_connections=4,
        )
        async with client:
            source = UpstreamProxy(url, client, metrics or Metrics(), retries=retries, backoff=0.01)
            try:
                return await op(source)
            finally:
                await source.aclose()

    return asyncio.run(main())


def get_mod(source: UpstreamProxy) -> Awaitable[bytes]:
    return source.mod(MV)


def errors_by_kind(metrics: Metrics, name: str) -> dict[str, float]:
    return {
        dict(labels)["kind"]: value
        for (metric, labels), value in metrics.counters.items()
        if metric == upstream.ERRORS and dict(labels)["upstream"] == name
    }


# -- status mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("replies", "error", "attempts", "shown"),
    [
        ([Reply(200, b"module m\n")], None, 1, ""),
        ([Reply(404, b"not found: example.com/mod\n")], NotFoundError, 1, "404 Not Found"),
        ([Reply(410, b"gone for good\n")], GoneError, 1, "410 Gone"),
        ([Reply(500, b"boom\n")], UpstreamError, 1, "500 Internal Server Error"),
        ([Reply(403, b"denied\n")], UpstreamError, 1, "403 Forbidden"),
        ([Reply(401, b"who are you\n")], UpstreamError, 1, "401 Unauthorized"),
        ([Reply(204)], UpstreamError, 1, "204 No Content"),
        ([Reply(400, b"bad\n")], UpstreamError, 1, "400 Bad Request"),
        ([Reply(503, b"busy\n"), Reply(200, b"module m\n")], None, 2, ""),
        ([Reply(502), Reply(504), Reply(200, b"module m\n")], None, 3, ""),
        ([Reply(429, b"slow down\n")], UpstreamError, 3, "429 Too Many Requests"),
    ],
)
def test_status_mapping(
    server: Server,
    replies: list[Reply],
    error: type[ModgateError] | None,
    attempts: int,
    shown: str,
) -> None:
    server.script[MOD_PATH] = list(replies)
    metrics = Metrics()
    if error is None:
        assert fetch(server.url, get_mod, metrics=metrics) == b"module m\n"
    else:
        with pytest.raises(ModgateError) as info:
            fetch(server.url, get_mod, metrics=metrics)
        assert type(info.value) is error, f"got {type(info.value).__name__}: {info.value}"
        text = str(info.value)
        assert text.startswith("example.com/mod@v1.0.0: ") and shown in text, text
        assert f"{server.url}{MOD_PATH}" in text, text
        first_line = replies[0].body.decode().strip()
        assert first_line in text, f"body line {first_line!r} missing from {text!r}"
    assert server.paths() == [MOD_PATH] * attempts
    labels = (("upstream", server.url),)
    assert metrics.value(upstream.FETCHES, labels) == attempts
    assert metrics.histograms[(upstream.LATENCY, labels)].n == attempts
    not_found = error is not None and issubclass(error, NotFoundError)
    failed = attempts - (1 if error is None else 0)
    assert sum(errors_by_kind(metrics, server.url).values()) == (0 if not_found else failed)


@pytest.mark.parametrize(
    ("reply", "want", "unwanted"),
    [
        (Reply(404, b"first line\nsecond line\n"), "first line", "second line"),
        (Reply(404, b"\n\n  only after blanks\n"), "only after blanks", "\n"),
        (Reply(404, b"<html>oops</html>", content_type="text/html"), "404 Not Found", "oops"),
        (Reply(404, b"x\n", content_type="text/plain; charset=latin-1"), "Found", ": x"),
        (Reply(404, b"ctl\x1b[31mred\x07\n"), "ctl[31mred", "\x1b"),
        (Reply(404, b"y" * 5000), "y" * 150, "y" * 201),
    ],
)
def test_error_body_line_is_sanitized(
    server: Server, reply: Reply, want: str, unwanted: str
) -> None:
    server.script[MOD_PATH] = [reply]
    with pytest.raises(NotFoundError) as info:
        fetch(server.url, get_mod)
    assert want in str(info.value) and unwanted not in str(info.value), str(info.value)


# -- requests ---------------------------------------------------------------------------------


def test_request_paths_escape_like_the_go_command(server: Server) -> None:
    server.script = {
        "/prefix/github.com/%21azure/x/@v/v1.0.0-%21r%21c1+incompatible.info": [Reply(200, b"{}")],
        "/prefix/github.com/%21azure/x/@v/list": [Reply(200, b"v1.0.0\n")],
        "/prefix/github.com/%21azure/x/@latest": [Reply(200, b"{}")],
    }

    async def all_three(source: UpstreamProxy) -> list[bytes]:
        module = "github.com/Azure/x"
        return [
            await source.info(module, "v1.0.0-RC1+incompatible"),
            await source.list(module),
            await source.latest(module),
        ]

    assert fetch(server.url + "/prefix/", all_three) == [b"{}", b"v1.0.0\n", b"{}"]
    assert server.paths() == list(server.script)
    assert {headers["user-agent"] for _, headers in server.requests} == {USER_AGENT}


def test_invalid_names_are_refused_before_any_request(server: Server) -> None:
    for op in (
        lambda s: s.mod(ModuleVersion("../etc", "v1.0.0")),
        lambda s: s.info("example.com/mod", "../../x"),
        lambda s: s.list("example.com//x"),
    ):
        with pytest.raises(InvalidRequestError):
            fetch(server.url, op)
    assert server.requests == []


def test_redirects_are_followed(server: Server) -> None:
    server.script[MOD_PATH] = [Reply(302, headers={"Location": "/elsewhere/v1.mod"})]
    server.script["/elsewhere/v1.mod"] = [Reply(200, b"module m\n")]
    assert fetch(server.url, get_mod) == b"module m\n"


def test_redirect_loop_is_an_upstream_error(server: Server) -> None:
    server.script[MOD_PATH] = [Reply(302, headers={"Location": MOD_PATH})]
    metrics = Metrics()
    with pytest.raises(UpstreamError, match="redirected too many times"):
        fetch(server.url, get_mod, metrics=metrics)
    assert errors_by_kind(metrics, server.url) == {"redirect": 1}


def test_redirects_stop_after_the_limit(server: Server) -> None:
    hops = [f"/hop/{i}" for i in range(MAX_REDIRECTS + 1)]
    server.script[MOD_PATH] = [Reply(302, headers={"Location": hops[0]})]
    for here, there in itertools.pairwise(hops):
        server.script[here] = [Reply(307, headers={"Location": there})]
    server.script[hops[-1]] = [Reply(200, b"module m\n")]
    # the limit's worth of redirects is followed ...
    server.script[hops[-2]] = [Reply(200, b"module m\n")]
    assert fetch(server.url, get_mod) == b"module m\n"
    assert len(server.requests) == MAX_REDIRECTS + 1
    # ... one more is refused
    server.script[hops[-2]] = [Reply(307, headers={"Location": hops[-1]})]
    with pytest.raises(UpstreamError, match="redirected too many times"):
        fetch(server.url, get_mod, retries=0)


def test_credentials_follow_a_redirect_only_within_the_origin(server: Server) -> None:
    other = Server()
    try:
        authed = server.url.replace("://", "://alice:s3cret@")
        expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
        server.script[MOD_PATH] = [Reply(302, headers={"Location": "/same/v1.mod"})]
        server.script["/same/v1.mod"] = [Reply(200, b"module m\n")]
        assert fetch(authed, get_mod) == b"module m\n"
        assert [h.get("authorization") for _, h in server.requests] == [expected, expected]
        server.script[MOD_PATH] = [Reply(302, headers={"Location": f"{other.url}/cdn/v1.mod"})]
        other.script["/cdn/v1.mod"] = [Reply(200, b"module m\n")]
        assert fetch(authed, get_mod) == b"module m\n"
        assert other.paths() == ["/cdn/v1.mod"]
        assert "authorization" not in other.requests[0][1], "credentials sent to another origin"
    finally:
        other.close()


def test_an_upstreams_cookies_are_never_sent_back(server: Server) -> None:
    server.script[MOD_PATH] = [
        Reply(503, b"busy\n", headers={"Set-Cookie": "session=abc; Path=/"}),
        Reply(200, b"module m\n"),
    ]
    assert fetch(server.url, get_mod) == b"module m\n"
    assert len(server.requests) == 2
    assert "cookie" not in server.requests[1][1], "an upstream's cookie was sent back"
    assert server.requests[1][1]["user-agent"] == USER_AGENT


# -- credentials ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("https://proxy.example/p", "https://proxy.example/p"),
        ("https://alice:s3cret@proxy.example/p", "https://xxxxx@proxy.example/p"),
        ("https://token@proxy.example:8443", "https://xxxxx@proxy.example:8443"),
        ("http://a%40b:p%3Aw@[::1]:8080/", "http://xxxxx@[::1]:8080/"),
    ],
)
def test_redact_url(url: str, want: str) -> None:
    assert redact_url(url) == want


def test_credentials_are_sent_but_never_shown(server: Server) -> None:
    user, password = "alice-user", "pa55-w0rd-secret"
    authed = server.url.replace("://", f"://{user}:{password}@")
    echo = f"denied for {user}:{password} at {authed}/x\n".encode()
    server.script[MOD_PATH] = [Reply(500, echo)]
    metrics = Metrics()
    with pytest.raises(UpstreamError) as info:
        fetch(authed, get_mod, metrics=metrics)
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    assert server.requests[0][1].get("authorization") == expected
    dead = f"http://{user}:{password}@127.0.0.1:{_closed_port()}"
    with pytest.raises(UpstreamError) as dead_info:
        fetch(dead, get_mod, metrics=metrics, retries=0)
    shown = [str(info.value), str(dead_info.value), metrics.render().decode()]
    for text in shown:
        assert password not in text and user not in text, f"credentials leaked: {text}"
    assert "xxxxx@127.0.0.1" in str(info.value)


def test_bad_upstream_urls_are_refused() -> None:
    bad = ("ftp://proxy.example", "proxy.example", "https://", "https://h/?q=1", "http://h:x")
    for url in bad:
        with pytest.raises(ValueError, match="upstream"):
            fetch(url, get_mod)


# -- network failures -------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dead_upstream_is_retried_then_named() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    metrics = Metrics()
    with pytest.raises(UpstreamError) as info:
        fetch(url, get_mod, metrics=metrics, retries=1)
    assert type(info.value) is UpstreamError
    assert f"cannot connect to {url}: connection refused" in str(info.value)
    assert errors_by_kind(metrics, url) == {"connect": 2}


def test_dns_failure_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(host: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    metrics = Metrics()
    with pytest.raises(UpstreamError, match="cannot resolve the host of") as info:
        fetch("https://proxy.invalid", get_mod, metrics=metrics, retries=0)
    assert "Name or service not known" in str(info.value)
    assert errors_by_kind(metrics, "https://proxy.invalid") == {"dns": 1}


def test_hung_upstream_times_out_within_the_read_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # connections complete in the backlog; nobody answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        metrics = Metrics()
        started = time.monotonic()
        with pytest.raises(UpstreamTimeoutError, match="did not answer within") as info:
            fetch(url, get_mod, metrics=metrics, retries=0)
        elapsed = time.monotonic() - started
    assert elapsed < READ_TIMEOUT + 2, f"took {elapsed:.1f}s for a {READ_TIMEOUT}s timeout"
    assert str(info.value).startswith("example.com/mod@v1.0.0: ")
    assert errors_by_kind(metrics, url) == {"timeout": 1}


# -- size limits and zips ---------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_bodies_are_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    monkeypatch.setattr(upstream, "MOD_MAX_BYTES", 100)
    server.script[MOD_PATH] = [Reply(200, b"m" * 101, chunked=chunked)]
    metrics = Metrics()
    with pytest.raises(UpstreamError, match="more than 100 bytes"):
        fetch(server.url, get_mod, metrics=metrics)
    assert errors_by_kind(metrics, server.url) == {"too_large": 1}
    assert len(server.requests) == 1, "a too-large answer was retried"


def test_close_delimited_answers_are_refused(server: Server) -> None:
    # A go.mod cut in half by a dropped connection still parses: an answer whose end
    # only the closing of the connection marks cannot be trusted.
    server.script[MOD_PATH] = [Reply(200, b"module example.com/mod\n", no_length=True)]
    metrics = Metrics()
    with pytest.raises(UpstreamError, match="without Content-Length or chunked encoding"):
        fetch(server.url, get_mod, metrics=metrics)
    assert errors_by_kind(metrics, server.url) == {"unframed": 1}
    assert len(server.requests) == 1, "an unframed answer was retried"


def test_chunked_answers_are_accepted(server: Server) -> None:
    server.script[MOD_PATH] = [Reply(200, b"module example.com/mod\n", chunked=True)]
    assert fetch(server.url, get_mod) == b"module example.com/mod\n"


def test_a_trickling_body_is_given_up(server: Server, tmp_path: Path) -> None:
    # one byte per read, each within the read timeout: only the pace rule stops it
    path = "/example.com/mod/@v/v1.0.0.zip"
    server.script[path] = [Reply(200, b"z" * 4000, trickle=0.05)]
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="bytes/s"):
        fetch(server.url, lambda s: s.zip(MV, tmp_path / "z.zip", 1 << 20), read_timeout=0.3)
    assert time.monotonic() - started < 3, "the trickle was not given up after one window"


def test_zip_is_streamed_to_dest_and_retried_from_scratch(server: Server, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096
    path = "/example.com/mod/@v/v1.0.0.zip"
    server.script[path] = [Reply(200, data, cut_after=300_000), Reply(200, data)]
    dest = tmp_path / "dest.zip"
    dest.write_bytes(b"")
    metrics = Metrics()
    fetch(server.url, lambda s: s.zip(MV, dest, len(data)), metrics=metrics)
    assert dest.read_bytes() == data, "the retried zip is not exactly the upstream's bytes"
    assert server.paths() == [path, path]
    assert errors_by_kind(metrics, server.url) == {"network": 1}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_zip_beyond_max_size_is_refused(server: Server, tmp_path: Path, chunked: bool) -> None:
    server.script["/example.com/mod/@v/v1.0.0.zip"] = [Reply(200, b"z" * 5000, chunked=chunked)]
    dest = tmp_path / "dest.zip"
    with pytest.raises(UpstreamError, match="more than 4999 bytes"):
        fetch(server.url, lambda s: s.zip(MV, dest, 4999))
    assert len(server.requests) == 1


# -- the HTTP client: proxies and trust ------------------------------------------------------


class ForwardProxy:
    """A plain-HTTP forward proxy that relays absolute-form requests and records them."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.seen.append(self.path)
                target = urllib.parse.urlsplit(self.path)
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
                try:
                    conn.request("GET", target.path, headers={"User-Agent": "relay"})
                    answer = conn.getresponse()
                    body = answer.read()
                finally:
                    conn.close()
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": POLL}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def test_http_proxy_from_the_environment_is_used(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpx does not bypass loopback on its own: only NO_PROXY does, so clear it.
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    server.script[MOD_PATH] = [Reply(200, b"module m\n")]
    relay = ForwardProxy()
    try:
        monkeypatch.setenv("HTTP_PROXY", relay.url)
        assert fetch(server.url, get_mod) == b"module m\n"
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert fetch(server.url, get_mod) == b"module m\n"
    finally:
        relay.close()
    assert relay.seen == [server.url + MOD_PATH], "the request did not go through HTTP_PROXY"
    assert [h["user-agent"] for _, h in server.requests] == ["relay", USER_AGENT]


PROXY_NAMES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def _only_proxy(monkeypatch: pytest.MonkeyPatch, name: str, value: str, no_proxy: str) -> None:
    for other in (*PROXY_NAMES, "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, value)
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)


@pytest.mark.parametrize(
    ("name", "scheme"),
    [
        ("HTTPS_PROXY", "https"),
        ("https_proxy", "https"),
        ("HTTP_PROXY", "http"),
        ("ALL_PROXY", "http"),
    ],
)
def test_an_unreachable_proxy_is_named_not_the_upstream(
    monkeypatch: pytest.MonkeyPatch, name: str, scheme: str
) -> None:
    port = dead_port()
    _only_proxy(monkeypatch, name, f"http://alice:s3cret@127.0.0.1:{port}", no_proxy="")
    url = f"{scheme}://127.0.0.1:{dead_port()}"
    metrics = Metrics()
    with pytest.raises(UpstreamError) as info:
        fetch(url, get_mod, metrics=metrics, retries=1)
    message = str(info.value)
    want = (
        f"cannot connect to the proxy http://xxxxx@127.0.0.1:{port} (from {name}), "
        f"which requests to {url} go through: connection refused; check {name} and NO_PROXY"
    )
    assert want in message, f"the error does not name the proxy and {name}: {message!r}"
    assert "alice" not in message and "s3cret" not in message, f"credentials shown: {message!r}"
    assert errors_by_kind(metrics, url) == {"proxy": 2}, "not counted (and retried) as proxy"
    assert gateway_cause(message) is CauseId.MODGATE_UPSTREAM_FAILED, "diagnose misses it"


def test_a_proxy_that_refuses_the_tunnel_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_CONNECT(self) -> None:
            self.send_response(403, "Forbidden")
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": POLL})
    thread.start()
    try:
        proxy = f"http://bob:pw9@127.0.0.1:{httpd.server_address[1]}"
        _only_proxy(monkeypatch, "HTTPS_PROXY", proxy, no_proxy="")
        metrics = Metrics()
        url = f"https://127.0.0.1:{dead_port()}"
        with pytest.raises(UpstreamError) as info:
            fetch(url, get_mod, metrics=metrics)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    message = str(info.value)
    shown = proxy.replace("bob:pw9", "xxxxx")
    assert f"the proxy {shown} (from HTTPS_PROXY) failed the request to {url}" in message
    assert "403" in message and "pw9" not in message, message
    assert errors_by_kind(metrics, url) == {"proxy": 1}, "a refusal by the proxy was retried"
    assert gateway_cause(message) is CauseId.MODGATE_UPSTREAM_FAILED, "diagnose misses it"


def test_an_upstream_in_no_proxy_is_named_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    _only_proxy(monkeypatch, "HTTP_PROXY", f"http://127.0.0.1:{dead_port()}", "127.0.0.1")
    url = f"http://127.0.0.1:{dead_port()}"
    with pytest.raises(UpstreamError) as info:
        fetch(url, get_mod, retries=0)
    assert f"cannot connect to {url}: connection refused" in str(info.value)
    assert "proxy http" not in str(info.value), str(info.value)


def test_an_unresolvable_proxy_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(host: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    _only_proxy(monkeypatch, "HTTPS_PROXY", "http://proxy.corp.invalid:3128", no_proxy="")
    with pytest.raises(UpstreamError) as info:
        fetch("https://goproxy.invalid", get_mod, retries=0)
    assert (
        "cannot resolve the proxy http://proxy.corp.invalid:3128 (from HTTPS_PROXY), which "
        "requests to https://goproxy.invalid go through: Name or service not known"
    ) in str(info.value)


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    commands = [
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=modgate test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"],
    ]  # fmt: skip
    for argv in commands:
        proc = subprocess.run(argv, cwd=d, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stderr}"
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key")


def test_custom_ca_bundle_is_trusted_in_addition(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.cert, pki.key)
    tls = Server(tls=ctx)
    try:
        tls.script[MOD_PATH] = [Reply(200, b"module m\n")]
        metrics = Metrics()
        with pytest.raises(UpstreamError, match="--ca-bundle") as info:
            fetch(tls.url, get_mod, metrics=metrics)
        assert "certificate" in str(info.value), str(info.value)
        assert errors_by_kind(metrics, tls.url) == {"tls": 1}, "a TLS failure was retried"
        assert fetch(tls.url, get_mod, ca_bundle=pki.ca) == b"module m\n"
        with monkeypatch.context() as env:
            env.setenv("SSL_CERT_FILE", str(pki.ca))  # replaces the system trust, as in Go
            assert fetch(tls.url, get_mod) == b"module m\n"
    finally:
        tls.close()


def test_unreadable_ca_bundle_names_the_file(tmp_path: Path) -> None:
    bogus = tmp_path / "bundle.pem"
    bogus.write_text("not a certificate")
    for path in (bogus, tmp_path / "missing.pem"):
        with pytest.raises(ValueError, match="cannot load the CA bundle") as info:
            make_client(ca_bundle=path, connect_timeout=1, read_timeout=1, max_connections=1)
        assert str(path) in str(info.value)
