"""The direct source's host guard: which addresses count as special, which hosts are refused,
and that discovery and git connect only to the address that was checked.

Name resolution goes through the guard's resolver seam and connections
through a recording network backend: nothing here opens a socket.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
import socket
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path

import httpcore
import httpx
import pytest

from modgate.protocol.errors import NotFoundError
from modgate.protocol.patterns import parse_patterns
from modgate.sources.direct import DirectSource
from modgate.sources.git_cmd import GitRunner
from modgate.sources.git_mirror import URL_FILE
from modgate.sources.git_pin import GitPins
from modgate.sources.hostguard import (
    HostGuard,
    HostNotAllowedError,
    PinnedTransport,
    ip_literal,
    proxied,
    special_address,
)
from modgate.sources.httpclient import make_client
from modgate.sources.vcs_resolve import RepoRoot, ResolveError, Resolver

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1::1"

SPECIAL = [
    "127.0.0.1",
    "127.9.9.9",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.1",
    "240.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "ff0e::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
    "64:ff9b::a00:1",
    "64:ff9b:1::1",
    "2001:db8::1",
]
PUBLIC = [PUBLIC_V4, "8.8.4.4", "1.1.1.1", PUBLIC_V6, "2a00:1450:4001:82a::200e"]


@pytest.mark.parametrize("text", SPECIAL)
def test_special_addresses(text: str) -> None:
    assert special_address(ipaddress.ip_address(text)), f"{text} should count as special"


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses(text: str) -> None:
    assert not special_address(ipaddress.ip_address(text)), f"{text} is a public address"


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
    ],
)
def test_ip_literals_in_every_spelling(host: str, address: str) -> None:
    assert str(ip_literal(host)) == address


@pytest.mark.parametrize("host", ["example.com", "go.corp.example.com", "1.example.com", "x"])
def test_names_are_not_literals(host: str) -> None:
    assert ip_literal(host) is None


def _no_lookup(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} must not be resolved")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "0x7f.1",
        "169.254.169.254",
        "10.0.0.1",
        "localhost",
        "LOCALHOST",
        "a.localhost",
        "localhost.",
        "ip6-localhost",
    ],
)
def test_literals_and_localhost_are_refused_without_a_lookup(host: str) -> None:
    guard = HostGuard(resolve=_no_lookup)
    with pytest.raises(HostNotAllowedError) as caught:
        guard.check_name(host)
    with pytest.raises(HostNotAllowedError):
        guard.pin(host, 443)
    assert f"host {host} is not allowed" in str(caught.value)
    assert "--direct-allow-hosts" in str(caught.value)


def test_allowed_and_trusted_hosts_are_neither_checked_nor_pinned() -> None:
    guard = HostGuard(
        parse_patterns("*.corp.example.com,10.1.2.3"),
        trusted=["git.mirror.example"],
        resolve=_no_lookup,
    )
    for host in ("git.corp.example.com", "10.1.2.3", "git.mirror.example", "GIT.Mirror.example."):
        guard.check_name(host)
        assert guard.pin(host, 443) is None, host
        assert guard.git_options(f"https://{host}/r.git", {}) == [], host
    with pytest.raises(HostNotAllowedError):
        guard.check_name("10.1.2.4")
    with pytest.raises(HostNotAllowedError):
        guard.check_name("corp.example.com.localhost")


def test_rewrite_urls_make_their_hosts_trusted() -> None:
    guard = HostGuard.trusting_urls(
        None,
        ["https://user:tok@127.0.0.1:8443/x.git", "file:///srv/git/y.git"],
        resolve=_no_lookup,
    )
    assert guard.pin("127.0.0.1", 8443) is None
    with pytest.raises(HostNotAllowedError):
        guard.check_name("127.0.0.2")


def _resolver(table: dict[str, list[str]]) -> tuple[list[str], object]:
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return table.get(host, [])

    return asked, resolve


def test_names_resolving_to_special_addresses_are_refused_and_the_error_tells_nothing() -> None:
    asked, resolve = _resolver(
        {
            "public.example": [PUBLIC_V4, PUBLIC_V6],
            "internal.example": ["10.20.30.40"],
            "mixed.example": [PUBLIC_V4, "169.254.169.254"],
            "mapped.example": ["::ffff:10.0.0.1"],
        }
    )
    guard = HostGuard(resolve=resolve)  # type: ignore[arg-type]
    assert guard.pin("public.example", 443) == PUBLIC_V4
    for host in ("internal.example", "mixed.example", "mapped.example", "nowhere.example"):
        with pytest.raises(HostNotAllowedError) as caught:
            guard.pin(host, 443)
        text = str(caught.value)
        assert host in text
        for leak in ("10.20.30.40", "169.254", "10.0.0.1", "resolve", "refused", "private"):
            assert leak not in text, f"refusal of {host} tells {leak!r}: {text}"
        assert caught.value.why, "the server log gets the reason"
    assert asked == [
        "public.example",
        "internal.example",
        "mixed.example",
        "mapped.example",
        "nowhere.example",
    ]


def test_git_is_pinned_to_the_checked_address_with_redirects_off() -> None:
    _, resolve = _resolver({"git.example": [PUBLIC_V4], "v6.example": [PUBLIC_V6]})
    guard = HostGuard(resolve=resolve)  # type: ignore[arg-type]
    assert guard.git_options("https://git.example/org/repo.git", {}) == [
        "-c",
        "http.followRedirects=false",
        "-c",
        f"http.curloptResolve=git.example:443:{PUBLIC_V4}",
    ]
    assert guard.git_options("http://v6.example:8080/r", {})[-1] == (
        f"http.curloptResolve=v6.example:8080:[{PUBLIC_V6}]"
    )
    assert guard.git_options("file:///srv/git/r.git", {}) == []


def test_git_through_a_proxy_is_not_resolved_locally() -> None:
    guard = HostGuard(resolve=_no_lookup)
    env = {"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": "corp.example"}
    assert guard.git_options("https://git.example/r.git", env) == [
        "-c",
        "http.followRedirects=false",
    ]
    with pytest.raises(HostNotAllowedError):
        guard.git_options("https://127.0.0.1/r.git", env)
    assert proxied(env, "https", "git.example")
    assert not proxied(env, "https", "git.corp.example")
    assert not proxied({"HTTP_PROXY": "http://p"}, "http", "x.example"), "curl ignores HTTP_PROXY"


@pytest.mark.parametrize("url", ["ssh://git@git.example/r.git", "git://git.example/r.git"])
def test_git_transports_that_cannot_be_pinned_are_refused(url: str) -> None:
    _, resolve = _resolver({"git.example": [PUBLIC_V4]})
    guard = HostGuard(resolve=resolve)  # type: ignore[arg-type]
    with pytest.raises(HostNotAllowedError):
        guard.git_options(url, {})
    allowed = HostGuard(parse_patterns("git.example"), resolve=_no_lookup)
    assert allowed.git_options(url, {}) == []


# --------------------------------------------------------------------------- discovery


class _Stream(httpcore.AsyncMockStream):
    def __init__(self, buffer: list[bytes], sni: list[str | None]) -> None:
        super().__init__(buffer)
        self._sni = sni

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self._sni.append(server_hostname)
        return self


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Answers each connection with the canned response for the address it connects to."""

    def __init__(self, answers: dict[str, bytes]) -> None:
        self.answers = answers
        self.connects: list[tuple[str, int]] = []
        self.sni: list[str | None] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        return _Stream([self.answers[host]], self.sni)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _page(body: str) -> bytes:
    data = body.encode()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
        + str(len(data)).encode()
        + b"\r\n\r\n"
        + data
    )


def _redirect(location: str) -> bytes:
    return f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()


def _discover(
    path: str, table: dict[str, list[str]], answers: dict[str, bytes]
) -> tuple[RepoRoot | ResolveError, RecordingBackend, list[str]]:
    asked, resolve = _resolver(table)
    guard = HostGuard(resolve=resolve)  # type: ignore[arg-type]
    backend = RecordingBackend(answers)
    transport = PinnedTransport(
        guard, verify=ssl.create_default_context(), limits=httpx.Limits(), inner=backend
    )

    async def run() -> RepoRoot | ResolveError:
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            try:
                return await Resolver(client=client, guard=guard).resolve(path)
            except ResolveError as exc:
                return exc

    return asyncio.run(run()), backend, asked


META = '<html><head><meta name="go-import" content="{}"></head></html>'


def test_discovery_connects_to_the_checked_address_and_keeps_the_name_for_tls() -> None:
    got, backend, asked = _discover(
        "vanity.example/tool",
        {"vanity.example": [PUBLIC_V4]},
        {PUBLIC_V4: _page(META.format("vanity.example/tool git https://code.example/tool.git"))},
    )
    assert got == RepoRoot("vanity.example/tool", "https://code.example/tool.git")
    assert backend.connects == [(PUBLIC_V4, 443)], "connected somewhere else than the checked IP"
    assert backend.sni == ["vanity.example"], "TLS must verify and send the host name"
    assert asked == ["vanity.example"]


@pytest.mark.parametrize(
    "location",
    [
        "https://internal.example/x?go-get=1",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/x",
        "https://0x7f.1/x",
    ],
)
def test_every_redirect_is_checked_before_it_is_followed(location: str) -> None:
    got, backend, _ = _discover(
        "vanity.example/tool",
        {"vanity.example": [PUBLIC_V4], "internal.example": ["10.20.30.40"]},
        {PUBLIC_V4: _redirect(location), "10.20.30.40": _page("secret")},
    )
    assert isinstance(got, ResolveError), got
    assert backend.connects == [(PUBLIC_V4, 443)], f"followed a redirect to {location}"
    text = str(got)
    assert "is not allowed" in text
    for leak in ("10.20.30.40", "Connect", "refused", "TLS", "302", "secret"):
        assert leak not in text, f"the error tells {leak!r}: {text}"


def test_a_name_that_resolves_internally_is_never_connected() -> None:
    got, backend, _ = _discover(
        "internal.example/tool",
        {"internal.example": ["192.168.7.7"]},
        {"192.168.7.7": _page(META.format("internal.example/tool git https://x/y"))},
    )
    assert isinstance(got, ResolveError)
    assert backend.connects == []
    assert "host internal.example is not allowed" in str(got)


def test_discovery_through_a_proxy_leaves_resolution_to_the_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a loopback "proxy" that records the CONNECT line and refuses it
    seen: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            seen.append(conn.recv(4096).split(b"\r\n", 1)[0])
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "bypass.example")
    asked, resolve = _resolver({"bypass.example": ["10.1.1.1"]})
    guard = HostGuard(resolve=resolve)  # type: ignore[arg-type]

    async def run() -> tuple[Exception | None, Exception | None]:
        client = make_client(
            ca_bundle=None, connect_timeout=5, read_timeout=5, max_connections=4, guard=guard
        )
        async with client:
            proxied_error = bypass_error = None
            try:
                await client.get("https://vanity.example/x?go-get=1")
            except Exception as exc:
                proxied_error = exc
            try:
                await client.get("https://bypass.example/x?go-get=1")
            except Exception as exc:
                bypass_error = exc
            return proxied_error, bypass_error

    try:
        proxied_error, bypass_error = asyncio.run(run())
    finally:
        server.close()
        thread.join(timeout=5)
    assert seen == [b"CONNECT vanity.example:443 HTTP/1.1"], seen
    assert isinstance(proxied_error, httpx.ProxyError), proxied_error
    assert isinstance(bypass_error, HostNotAllowedError), "a host past the proxy is pinned"
    assert asked == ["bypass.example"], "only the host that bypasses the proxy is resolved here"


def _list_error(source: DirectSource, module: str) -> str:
    """The NotFoundError text of listing ``module`` through ``source`` ("found" without one)."""

    async def run() -> str:
        try:
            await source.list(module)
        except NotFoundError as exc:
            return str(exc)
        finally:
            await source.aclose()
        return "found"

    return asyncio.run(run())


def test_a_qualified_path_on_a_public_host_tries_every_scheme(tmp_path: Path) -> None:
    # https is pinned (and fails here: nothing answers); ssh cannot be pinned, so it is
    # skipped rather than reported as a refused host
    _, resolve = _resolver({"example.com": [PUBLIC_V4]})
    guard = HostGuard(resolve=resolve)  # type: ignore[arg-type]
    fake_git = tmp_path / "git"
    # answers --get-url with the URL (no insteadOf rules) and fails every remote command
    fake_git.write_text(
        '#!/bin/sh\nfor a; do last="$a"; [ "$a" = --get-url ] && get=1; done\n'
        'if [ -n "$get" ]; then echo "$last"; exit 0; fi\nexit 128\n'
    )
    fake_git.chmod(0o755)
    source = DirectSource(tmp_path / "mirrors", guard=guard, environ={"PATH": os.environ["PATH"]})
    source.runner = dataclasses.replace(source.runner, executable=str(fake_git))

    text = _list_error(source, "example.com/repo.git")
    assert "no secure protocol found" in text, text


def test_a_qualified_path_on_an_internal_host_is_refused(tmp_path: Path) -> None:
    _, resolve = _resolver({"git.internal.example": ["10.9.8.7"]})
    guard = HostGuard(resolve=resolve)  # type: ignore[arg-type]
    source = DirectSource(tmp_path / "mirrors", guard=guard, environ={"PATH": os.environ["PATH"]})

    text = _list_error(source, "git.internal.example/repo.git")
    assert "host git.internal.example is not allowed" in text, text
    assert "10.9.8.7" not in text


def test_every_checked_address_is_pinned_and_tried_in_order() -> None:
    _, resolve = _resolver({"dual.example": [PUBLIC_V6, PUBLIC_V4]})
    guard = HostGuard(resolve=resolve)  # type: ignore[arg-type]
    assert guard.git_options("https://dual.example/r.git", {})[-1] == (
        f"http.curloptResolve=dual.example:443:[{PUBLIC_V6}],{PUBLIC_V4}"
    )

    class FirstFails(RecordingBackend):
        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            if host == PUBLIC_V6:
                self.connects.append((host, port))
                raise httpcore.ConnectError("network unreachable")
            return await super().connect_tcp(host, port, timeout, local_address, socket_options)

    backend = FirstFails({PUBLIC_V4: _page("ok")})
    transport = PinnedTransport(
        guard, verify=ssl.create_default_context(), limits=httpx.Limits(), inner=backend
    )

    async def run() -> int:
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            return (await client.get("https://dual.example/x")).status_code

    assert asyncio.run(run()) == 200
    assert backend.connects == [(PUBLIC_V6, 443), (PUBLIC_V4, 443)]


def _fake_git(tmp_path: Path, rewritten: dict[str, str]) -> GitRunner:
    """A git that answers --get-url from ``rewritten`` (as insteadOf rules would)."""
    script = tmp_path / "git"
    cases = "".join(f'  "{k}") echo "{v}";;\n' for k, v in rewritten.items())
    script.write_text(
        f'#!/bin/sh\nfor a; do last="$a"; done\ncase "$last" in\n{cases}  *) echo "$last";;\nesac\n'
    )
    script.chmod(0o755)
    return GitRunner({"PATH": os.environ["PATH"]}, executable=str(script))


def test_git_pins_follow_the_url_git_will_really_use(tmp_path: Path) -> None:
    _, resolve = _resolver({"git.example": [PUBLIC_V4], "internal.example": ["10.0.0.9"]})
    pins = GitPins(HostGuard(resolve=resolve))  # type: ignore[arg-type]
    runner = _fake_git(tmp_path, {"https://internal.example/r.git": "file:///srv/mirror/r.git"})
    args = ["ls-remote", "-q", "--end-of-options"]
    got = pins(runner, [*args, "https://git.example/r.git", "HEAD"], None)
    assert got[-1] == f"http.curloptResolve=git.example:443:{PUBLIC_V4}"
    # the operator's insteadOf rule sends this one to a local mirror: nothing to check
    assert pins(runner, [*args, "https://internal.example/r.git"], None) == []
    # a mirror's URL comes from the mirror; an unknown URL is refused
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / URL_FILE).write_text("https://10.1.1.1/x.git")
    with pytest.raises(HostNotAllowedError):
        pins(runner, ["fetch", "--end-of-options", "origin"], mirror)
    with pytest.raises(HostNotAllowedError):
        pins(runner, ["fetch"], None)
