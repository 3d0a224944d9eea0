"""The reverse-proxy examples in deploy/reverse-proxy/ work in front of modgate.

nginx and Caddy run the shipped snippets (only addresses, names and
certificate paths changed) in front of a real modgate; the go command
downloads through them, and a version modgate does not have shows modgate's
own error body in the go command's output (``server response: ...``), so
the proxies keep it intact. The Envoy example is checked for its routing.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from helpers.goenv import describe, go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems
from helpers.servers import ModgateFactory, StaticProxyFactory
from helpers.tlscerts import TestCA

pytestmark = pytest.mark.go

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "reverse-proxy"
NGINX = "/usr/sbin/nginx"
START_TIMEOUT = 15.0
MISSING = "v9.9.9"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not listen on {port}"
            time.sleep(0.05)


@pytest.fixture
def behind(
    sample: SampleProject, static_proxy: StaticProxyFactory, modgate: ModgateFactory
) -> Iterator[str]:
    """modgate's address (host:port) serving the sample, for a proxy to forward to."""
    upstream = static_proxy(sample.proxy_root)
    server = modgate("--upstream", upstream.url)
    yield server.url.removeprefix("http://")


def _download_through(
    goproxy: str, workdir: Path, sample: SampleProject, gocache: Path, ca: TestCA | None
) -> None:
    extra = {"SSL_CERT_FILE": str(ca.pem)} if ca else {}
    env = go_env(workdir, goproxy=goproxy, gocache=gocache, extra=extra)
    proc = run_go(["mod", "download", "-json", *sample.download_args()], workdir, env)
    problems = download_problems(json_stream(proc.stdout), sample.versions)
    assert not problems, f"through {goproxy}:\n" + "\n".join(problems)
    module = sample.versions[0].mv.path
    missing = run_go(["mod", "download", f"{module}@{MISSING}"], workdir, env, check=False)
    assert missing.returncode != 0, describe(missing)
    # modgate's own body, as the go command shows it after 'server response:'
    assert "server response:" in missing.stderr, describe(missing)
    assert f"{module}@{MISSING}" in missing.stderr.split("server response:", 1)[1], describe(
        missing
    )


def test_nginx_example_streams_and_keeps_error_bodies(
    tmp_path: Path, behind: str, sample: SampleProject, gocache: Path
) -> None:
    ca = TestCA(tmp_path / "ca")
    pair = ca.issue("nginx")
    port = _free_port()
    snippet = (EXAMPLES / "nginx.conf").read_text()
    snippet = snippet.replace("server 127.0.0.1:8080;", f"server {behind};")
    snippet = snippet.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    snippet = snippet.replace("server_name modgate.corp.example.com;", "server_name localhost;")
    snippet = snippet.replace("/etc/nginx/tls/modgate.crt", str(pair.cert))
    snippet = snippet.replace("/etc/nginx/tls/modgate.key", str(pair.key))
    assert "8080" not in snippet and "443 ssl" not in snippet, "the snippet changed shape"
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    temp_paths = "".join(
        f"    {kind}_temp_path {prefix}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf.write_text(
        f"worker_processes 1;\ndaemon off;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log warn;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n    access_log off;\n{temp_paths}{snippet}\n}}\n"
    )
    proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf)])
    try:
        _wait(port, proc, "nginx")
        _download_through(f"https://127.0.0.1:{port}", tmp_path / "go", sample, gocache, ca)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not any((prefix / "proxy").rglob("*.*")), "nginx buffered a response to disk"


def test_caddy_example_validates_and_forwards(
    tmp_path: Path, behind: str, sample: SampleProject, gocache: Path
) -> None:
    caddy = shutil.which("caddy")
    assert caddy, "caddy is not installed; run scripts/bootstrap"
    home = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    checked = subprocess.run(
        [caddy, "validate", "--config", str(EXAMPLES / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True, text=True, check=False, timeout=60, env=home,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    port = _free_port()
    text = (EXAMPLES / "Caddyfile").read_text()
    text = text.replace("modgate.corp.example.com {", f"http://127.0.0.1:{port} {{")
    text = text.replace("reverse_proxy 127.0.0.1:8080", f"reverse_proxy {behind}")
    config = tmp_path / "Caddyfile"
    config.write_text("{\n\tadmin off\n}\n" + text)
    proc = subprocess.Popen(
        [caddy, "run", "--config", str(config), "--adapter", "caddyfile"],
        env=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(port, proc, "caddy")
        _download_through(f"http://127.0.0.1:{port}", tmp_path / "go", sample, gocache, None)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_envoy_example_routes_everything_to_modgate_without_a_timeout() -> None:
    config = yaml.safe_load((EXAMPLES / "envoy.yaml").read_text())
    (listener,) = config["static_resources"]["listeners"]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (route,) = manager["route_config"]["virtual_hosts"][0]["routes"]
    assert route["match"] == {"prefix": "/"}
    assert route["route"]["timeout"] == "0s", "a zip must be able to stream for as long as it takes"
    assert manager["use_remote_address"] is True
    (cluster,) = config["static_resources"]["clusters"]
    assert cluster["name"] == route["route"]["cluster"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"]["address"] == "127.0.0.1"
    assert re.fullmatch(r"\d+s", manager["stream_idle_timeout"])
