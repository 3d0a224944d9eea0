"""GM042-GM045 next to the real go command: credentials it never sends, tools, vendoring.

A local proxy on 127.0.0.1 records the Authorization header of every request
and answers 401 without one. The go command reads the netrc file named by
NETRC; doctor reads the same setup written as a CI script.
"""

from __future__ import annotations

import ssl
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers.goenv import describe, go_env, run_go
from helpers.tlscerts import TestCA
from modgate.doctor.scan import scan

pytestmark = pytest.mark.go

LOOPBACK = "127.0.0.1"
MODULE = "example.com/liba@v1.0.0"


class _Recorder(ThreadingHTTPServer):
    seen: list[str | None]


class _Handler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization")
        self.server.seen.append(authorization)
        self.send_response(401 if authorization is None else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(context: ssl.SSLContext | None) -> Iterator[tuple[str, _Recorder]]:
    server = _Recorder((LOOPBACK, 0), _Handler)
    server.seen = []
    scheme = "http"
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://{LOOPBACK}:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


@pytest.fixture
def https_proxy(ca: TestCA) -> Iterator[tuple[str, _Recorder]]:
    pair = ca.issue("proxy")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert, pair.key)
    yield from _serve(context)


@pytest.fixture
def http_proxy() -> Iterator[tuple[str, _Recorder]]:
    yield from _serve(None)


def _download(tmp: Path, url: str, machine: str, ca: TestCA | None, gocache: Path) -> str:
    tmp.mkdir(parents=True, exist_ok=True)
    netrc = tmp / "netrc"
    netrc.write_text(f"machine {machine} login build password not-a-real-secret\n")
    netrc.chmod(0o600)
    extra = {"NETRC": str(netrc)}
    if ca is not None:
        extra["SSL_CERT_FILE"] = str(ca.pem)
    env = go_env(tmp, goproxy=url, gocache=gocache, extra=extra)
    proc = run_go(["mod", "download", MODULE], tmp, env, check=False)
    assert proc.returncode != 0, describe(proc)
    return str(proc.stderr)


def _doctor(tmp: Path, url: str, machine: str) -> set[str]:
    tree = tmp / "repo"
    (tree / "ci").mkdir(parents=True)
    (tree / "ci" / "setup.sh").write_text(
        f'printf "machine {machine}\\nlogin ci\\npassword $TOKEN\\n" > "$HOME/.netrc"\n'
        f"export GOPROXY={url}\n"
        "go mod download\n"
    )
    return {f.rule for f in scan(tree).findings}


def test_machine_without_the_port_is_ignored(
    tmp_path: Path, https_proxy: tuple[str, _Recorder], ca: TestCA, gocache: Path
) -> None:
    url, server = https_proxy
    stderr = _download(tmp_path / "bare", url, LOOPBACK, ca, gocache)
    assert server.seen and all(a is None for a in server.seen), (server.seen, stderr)
    assert "401" in stderr, stderr
    assert "GM042" in _doctor(tmp_path / "bare", url, LOOPBACK)

    server.seen.clear()
    machine = url.removeprefix("https://")
    _download(tmp_path / "port", url, machine, ca, gocache)
    assert server.seen and all(a is not None for a in server.seen), server.seen
    assert "GM042" not in _doctor(tmp_path / "port", url, machine)


def test_credentials_are_not_sent_over_http(
    tmp_path: Path, http_proxy: tuple[str, _Recorder], gocache: Path
) -> None:
    url, server = http_proxy
    machine = url.removeprefix("http://")
    for name in (machine, LOOPBACK):
        stderr = _download(tmp_path / name.replace(":", "_"), url, name, None, gocache)
        assert "401" in stderr, stderr
    assert server.seen and all(a is None for a in server.seen), server.seen
    assert "GM043" in _doctor(tmp_path / "doctor", url, machine)


def test_mod_vendor_without_vendor_directory(tmp_path: Path, gocache: Path) -> None:
    """GM045: the go command refuses before any download (GOPROXY=off proves it)."""
    repo = tmp_path / "repo"
    (repo / "ci").mkdir(parents=True)
    (repo / "go.mod").write_text(
        "module example.com/app\n\ngo 1.23\n\nrequire example.com/liba v1.0.0\n"
    )
    (repo / "go.sum").write_text("")
    (repo / "main.go").write_text('package main\n\nimport _ "example.com/liba"\n\nfunc main() {}\n')
    (repo / "ci" / "build.sh").write_text("go build -mod=vendor ./...\n")
    env = go_env(tmp_path, goproxy="off", gocache=gocache)
    proc = run_go(["build", "-mod=vendor", "./..."], repo, env, check=False)
    assert "inconsistent vendoring" in proc.stderr, describe(proc)
    assert "GM045" in {f.rule for f in scan(repo).findings}
    (repo / "vendor").mkdir()
    (repo / "vendor" / "modules.txt").write_text(
        "# example.com/liba v1.0.0\n## explicit\nexample.com/liba\n"
    )
    assert "GM045" not in {f.rule for f in scan(repo).findings}


def _file_proxy(root: Path, module: str, version: str, gomod: str) -> str:
    """A file:// GOPROXY serving one module version (list, info, mod, zip)."""
    base = root / module / "@v"
    base.mkdir(parents=True)
    (base / "list").write_text(f"{version}\n")
    (base / f"{version}.info").write_text(f'{{"Version":"{version}"}}\n')
    (base / f"{version}.mod").write_text(gomod)
    with zipfile.ZipFile(base / f"{version}.zip", "w") as archive:
        prefix = f"{module}@{version}/"
        archive.writestr(prefix + "go.mod", gomod)
        archive.writestr(prefix + "main.go", "package main\n\nfunc main() {}\n")
    return root.as_uri()


def test_tool_at_latest_needing_a_newer_go(tmp_path: Path, gocache: Path) -> None:
    """GM044: @latest picks a release whose go line the local toolchain cannot meet."""
    tool = "example.com/tool"
    proxy = _file_proxy(tmp_path / "proxy", tool, "v1.1.0", f"module {tool}\n\ngo 1.99\n")
    env = go_env(tmp_path, goproxy=proxy, gocache=gocache)  # GOTOOLCHAIN=local
    proc = run_go(["install", f"{tool}@latest"], tmp_path, env, check=False)
    assert proc.returncode != 0, describe(proc)
    assert "requires go >= 1.99" in proc.stderr and "GOTOOLCHAIN=local" in proc.stderr, describe(
        proc
    )
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Dockerfile").write_text(f"FROM golang:1.27\nRUN go install {tool}@latest\n")
    assert "GM044" in {f.rule for f in scan(repo).findings}
    (repo / "Dockerfile").write_text(f"FROM golang:1.27\nRUN go install {tool}@v1.1.0\n")
    assert "GM044" not in {f.rule for f in scan(repo).findings}
