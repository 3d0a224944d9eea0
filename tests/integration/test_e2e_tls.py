"""HTTPS: the go command downloads through modgate over TLS; keys and pairs are checked at start."""

from __future__ import annotations

import base64
import collections
import datetime
import http.client
import http.server
import json
import shutil
import signal
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from helpers.goenv import describe, go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems
from helpers.servers import (
    ModgateFactory,
    ModgateHandle,
    StaticProxyFactory,
    metric_values,
    run_modgate,
    wait_for,
)
from helpers.staticproxy import LOOPBACK
from helpers.tlscerts import CertPair, TestCA, https_get
from modgate.server.tls import certificate_not_after

pytestmark = pytest.mark.go

START_TIMEOUT = 30.0


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


def go_download(
    workdir: Path, goproxy: str, ca_file: Path, args: list[str], gocache: Path, *, check: bool
) -> subprocess.CompletedProcess[str]:
    """``go mod download -json ARGS`` with a fresh module cache, trusting ``ca_file`` only."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = go_env(workdir, goproxy=goproxy, gocache=gocache, extra={"SSL_CERT_FILE": str(ca_file)})
    return run_go(["mod", "download", "-json", *args], workdir, env, check=check)


def test_go_downloads_over_https(
    tmp_path: Path,
    ca: TestCA,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    pair = ca.issue("modgate")
    upstream = static_proxy(sample.proxy_root)
    server = modgate(
        "--upstream", upstream.url, "--tls-cert", str(pair.cert), "--tls-key", str(pair.key)
    )
    assert server.url.startswith("https://"), f"listening URL {server.url}"

    proc = go_download(
        tmp_path / "ok", server.url, ca.pem, sample.download_args(), gocache, check=True
    )
    problems = download_problems(json_stream(proc.stdout), sample.versions, store=server.store)
    assert not problems, "over HTTPS:\n" + "\n".join(problems)

    # The go command really checked the certificate: another CA is not trusted.
    other = TestCA(tmp_path / "other-ca", name="another CA")
    refused = go_download(
        tmp_path / "untrusted", server.url, other.pem, ["example.com/liba@v1.0.0"], gocache,
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0, f"go trusted a certificate of another CA\n{describe(refused)}"
    assert "certificate signed by unknown authority" in refused.stdout, describe(refused)


def serve_failing(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_modgate(
        "serve", "--store", str(tmp_path / "store"), "--listen", f"{LOOPBACK}:0",
        "--upstream", "off", *args, timeout=START_TIMEOUT,
    )  # fmt: skip
    return proc


def test_start_refuses_a_key_others_can_read(tmp_path: Path, ca: TestCA) -> None:
    pair = ca.issue("modgate")
    pair.key.chmod(0o644)
    proc = serve_failing(tmp_path, "--tls-cert", str(pair.cert), "--tls-key", str(pair.key))
    assert proc.returncode == 2, f"exit code {proc.returncode}, expected 2\n{proc.stderr}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, f"expected one error line:\n{proc.stderr}"
    assert f"chmod 600 {pair.key}" in errors[0], errors[0]


BAD_STARTS = {
    "cert without key": lambda p, q: (["--tls-cert", str(p.cert)], {}, str(p.cert)),
    "key variable without cert": lambda p, q: ([], {"MODGATE_TLS_KEY": str(p.key)}, str(p.key)),
    "key of another certificate": lambda p, q: (
        ["--tls-cert", str(p.cert), "--tls-key", str(q.key)],
        {},
        str(q.key),
    ),
}


@pytest.mark.parametrize("case", BAD_STARTS.values(), ids=BAD_STARTS.keys())
def test_start_refuses_a_bad_pair(tmp_path: Path, ca: TestCA, case: object) -> None:
    pair, other = ca.issue("modgate"), ca.issue("other")
    args, env, echoed = case(pair, other)  # type: ignore[operator]
    proc = run_modgate(
        "serve", "--store", str(tmp_path / "store"), "--listen", f"{LOOPBACK}:0",
        "--upstream", "off", *args, env=env, timeout=START_TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 2, f"exit code {proc.returncode}, expected 2\n{proc.stderr}"
    assert echoed in proc.stderr, f"stderr does not name {echoed}:\n{proc.stderr}"


# ---- SIGHUP reloads the pair -------------------------------------------------------------------

RELOAD_TIMEOUT = 10.0
EXPIRY_METRIC = "modgate_tls_certificate_expiry_timestamp_seconds"
LOAD_THREADS = 3
"""Client threads opening a new connection per request, beside one keep-alive connection."""


def live_pair(folder: Path, source: CertPair) -> CertPair:
    """Files the server reads its pair from, filled with ``source``'s."""
    folder.mkdir(parents=True, exist_ok=True)
    live = CertPair(folder / "tls.crt", folder / "tls.key", "")
    live.key.touch(mode=0o600)
    install(source, live)
    return live


def install(source: CertPair, live: CertPair) -> None:
    shutil.copyfile(source.cert, live.cert)
    shutil.copyfile(source.key, live.key)


def reload_events(handle: ModgateHandle, event: str) -> int:
    count = 0
    for line in list(handle.stderr_lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            count += 1
    return count


class Load:
    """Requests in a loop until stopped: new connections and one keep-alive connection."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port = port
        self.context = context
        self.failures: list[str] = []
        self.served: collections.Counter[str] = collections.Counter()
        self.kept_alive = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._new_connections, daemon=True) for _ in range(LOAD_THREADS)
        ]
        self._threads.append(threading.Thread(target=self._keep_alive, daemon=True))
        for thread in self._threads:
            thread.start()

    def _new_connections(self) -> None:
        while not self._stop.is_set():
            try:
                status, body, name = https_get(self.port, "/healthz", self.context)
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"new connection: {exc!r}")
                continue
            if status != 200 or body != b"ok\n":
                self.failures.append(f"new connection: {status} {body!r}")
            self.served[name] += 1

    def _keep_alive(self) -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context)
        try:
            while not self._stop.is_set():
                try:
                    conn.request("GET", "/healthz")
                    answer = conn.getresponse()
                    body = answer.read()
                except (OSError, http.client.HTTPException) as exc:
                    self.failures.append(f"keep-alive connection: {exc!r}")
                    return
                if answer.status != 200 or body != b"ok\n":
                    self.failures.append(f"keep-alive: {answer.status} {body!r}")
                self.kept_alive += 1
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=RELOAD_TIMEOUT)


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_the_pair_under_load(
    workers: int, tmp_path: Path, ca: TestCA, modgate: ModgateFactory
) -> None:
    old, new = ca.issue("old"), ca.issue("new", valid_for=datetime.timedelta(days=60))
    live = live_pair(tmp_path / "live", old)
    server = modgate(
        "--upstream", "off", "--workers", str(workers),
        "--tls-cert", str(live.cert), "--tls-key", str(live.key),
    )  # fmt: skip
    port = int(server.url.rsplit(":", 1)[1])
    context = ca.client_context()
    load = Load(port, context)
    try:
        wait_for(lambda: load.served["old"] >= 20, RELOAD_TIMEOUT, "requests before the reload")
        install(new, live)
        server.proc.send_signal(signal.SIGHUP)
        wait_for(
            lambda: reload_events(server, "reloaded") == workers,
            RELOAD_TIMEOUT,
            f"{workers} 'reloaded' log lines",
        )
        after = load.served["new"]
        wait_for(lambda: load.served["new"] >= after + 20, RELOAD_TIMEOUT, "requests after it")
        kept = load.kept_alive
        wait_for(lambda: load.kept_alive > kept, RELOAD_TIMEOUT, "the keep-alive connection")
    finally:
        load.stop()
    assert not load.failures, f"{len(load.failures)} failed requests: {load.failures[:5]}"
    names = {https_get(port, "/healthz", context)[2] for _ in range(4 * workers)}
    assert names == {"new"}, f"certificates served after the reload: {names}"
    want = certificate_not_after(new.cert).timestamp()
    # with workers every series carries worker="N", and a sibling's figures are
    # published once a second: every worker's gauge shows the new pair soon after
    labels = {""} if workers == 1 else {f'{{worker="{i}"}}' for i in range(workers)}

    def expiry() -> dict[str, float]:
        _, page, _ = https_get(port, "/metrics", context)
        return metric_values(page.decode(), EXPIRY_METRIC)

    wait_for(
        lambda: expiry() == dict.fromkeys(labels, want),
        RELOAD_TIMEOUT,
        f"{EXPIRY_METRIC} = {want} for every worker after the reload",
    )
    assert server.stop() == 0, server.stderr_text()


def test_sighup_with_a_bad_pair_keeps_the_old_one(
    tmp_path: Path, ca: TestCA, modgate: ModgateFactory
) -> None:
    old = ca.issue("old")
    live = live_pair(tmp_path / "live", old)
    server = modgate("--upstream", "off", "--tls-cert", str(live.cert), "--tls-key", str(live.key))
    port = int(server.url.rsplit(":", 1)[1])
    context = ca.client_context()
    cases = {
        "a key of another pair": lambda: install(CertPair(old.cert, ca.issue("x").key, ""), live),
        "a key others can read": lambda: (install(ca.issue("y"), live), live.key.chmod(0o644)),
    }
    for number, (name, spoil) in enumerate(cases.items(), start=1):
        spoil()
        server.proc.send_signal(signal.SIGHUP)
        wait_for(
            lambda n=number: reload_events(server, "reload_refused") == n,  # type: ignore[misc]
            RELOAD_TIMEOUT,
            f"a 'reload_refused' log line for {name}",
        )
        status, _, served = https_get(port, "/healthz", context)
        assert (status, served) == (200, "old"), f"after {name}: {status}, certificate {served}"
        live.key.chmod(0o600)
    refused = [line for line in server.stderr_lines if "reload_refused" in line]
    assert "chmod 600" in refused[-1], refused[-1]
    assert server.stop() == 0, server.stderr_text()


def test_go_trusts_the_new_certificate_after_sighup(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    # The new pair comes from another CA: what the go command accepts tells which is served.
    first_ca, second_ca = (
        TestCA(tmp_path / "ca1", "first CA"),
        TestCA(tmp_path / "ca2", "second CA"),
    )
    live = live_pair(tmp_path / "live", first_ca.issue("modgate"))
    upstream = static_proxy(sample.proxy_root)
    server = modgate(
        "--upstream", upstream.url, "--workers", "2",
        "--tls-cert", str(live.cert), "--tls-key", str(live.key),
    )  # fmt: skip
    wanted = ["example.com/liba@v1.0.0"]
    go_download(tmp_path / "before", server.url, first_ca.pem, wanted, gocache, check=True)

    install(second_ca.issue("modgate"), live)
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reload_events(server, "reloaded") == 2, RELOAD_TIMEOUT, "both workers")
    go_download(tmp_path / "after", server.url, second_ca.pem, wanted, gocache, check=True)
    stale = go_download(tmp_path / "stale", server.url, first_ca.pem, wanted, gocache, check=False)
    assert stale.returncode != 0, f"the old certificate is still served\n{describe(stale)}"
    assert "certificate signed by unknown authority" in stale.stdout, describe(stale)


# ---- what the go command sends over http and https --------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 404 to everything and records the Authorization header of each request."""

    seen: list[str | None]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        body = b"not found\n"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def authorization_sent(tmp_path: Path, gocache: Path, ca: TestCA | None) -> list[str | None]:
    """Authorization headers the go command sends with a matching .netrc, over http or https."""
    seen: list[str | None] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    if ca is not None:
        pair = ca.issue("recorder")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pair.cert, pair.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        scheme = "https" if ca is not None else "http"
        workdir = tmp_path / scheme
        workdir.mkdir()
        netrc = workdir / "netrc"
        netrc.write_text(f"machine {LOOPBACK}:{port} login ci password s3cret\n")
        netrc.chmod(0o600)
        extra = {"NETRC": str(netrc)}
        if ca is not None:
            extra["SSL_CERT_FILE"] = str(ca.pem)
        env = go_env(workdir, goproxy=f"{scheme}://{LOOPBACK}:{port}", gocache=gocache, extra=extra)
        run_go(["mod", "download", "-json", "example.com/liba@v1.0.0"], workdir, env, check=False)
    finally:
        server.shutdown()
        server.server_close()
    assert seen, f"the go command sent no request over {scheme}"
    return seen


def test_the_go_command_sends_credentials_only_over_https(
    tmp_path: Path, ca: TestCA, gocache: Path
) -> None:
    # Why authentication needs --tls-cert: the README says so, the go command decides it.
    over_http = authorization_sent(tmp_path, gocache, None)
    assert over_http == [None] * len(over_http), f"over http: {over_http}"
    over_https = authorization_sent(tmp_path, gocache, ca)
    basic = "Basic " + base64.b64encode(b"ci:s3cret").decode()
    assert over_https and all(h == basic for h in over_https), f"over https: {over_https}"


def test_sigterm_does_not_wait_for_idle_clients_that_never_answer_close_notify(
    tmp_path: Path, ca: TestCA, modgate: ModgateFactory
) -> None:
    # Closing a TLS connection sends close_notify and waits for the client's; idle
    # keep-alive clients that never answer must not hold the stop for the whole grace.
    pair = ca.issue("modgate")
    server = modgate("--upstream", "off", "--tls-cert", str(pair.cert), "--tls-key", str(pair.key))
    port = int(server.url.rsplit(":", 1)[1])
    context = ca.client_context()
    idle = []
    for _ in range(3):
        conn = context.wrap_socket(
            socket.create_connection((LOOPBACK, port), timeout=RELOAD_TIMEOUT),
            server_hostname="localhost",
        )
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(4096).startswith(b"HTTP/1.1 200"), "no answer before SIGTERM"
        idle.append(conn)
    try:
        assert server.stop() == 0, server.stderr_text()
    finally:
        for conn in idle:
            conn.close()
    dropped = [line for line in server.stderr_lines if "still busy" in line]
    assert not dropped, "idle TLS connections held the stop until the grace ran out:\n" + "\n".join(
        dropped
    )
