"""HTTPS: the go command downloads through modgate over TLS; keys and pairs are checked at start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers.goenv import describe, go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems
from helpers.servers import ModgateFactory, StaticProxyFactory, run_modgate
from helpers.staticproxy import LOOPBACK
from helpers.tlscerts import TestCA

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
