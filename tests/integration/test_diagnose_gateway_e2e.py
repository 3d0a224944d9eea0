"""``modgate diagnose`` on what the real go command prints when a real modgate refuses.

Each test runs ``modgate serve`` on loopback in a state that makes it answer
with one of its own errors, lets the go command fail against it, and feeds the
go command's output to ``modgate diagnose``: the report must name modgate's
own cause (never the generic proxy advice to add ``,direct``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers.goenv import describe, go_env, run_go
from helpers.modules import SampleProject
from helpers.servers import ModgateFactory, dead_port
from helpers.staticproxy import StaticProxy
from modgate.cli import cli

pytestmark = pytest.mark.go


def _diagnose(log: str, tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "build.log"
    path.write_text(log)
    result = CliRunner().invoke(cli, ["diagnose", "--format", "json", str(path)])
    assert result.exit_code == 1, f"diagnose exit {result.exit_code}\n{result.output}\n{log}"
    findings: list[dict[str, object]] = json.loads(result.output)
    return findings


def _failed_download(workdir: Path, env: dict[str, str], sample: SampleProject) -> str:
    proc = run_go(["mod", "download", sample.download_args()[0]], workdir, env, check=False)
    assert proc.returncode != 0, f"go mod download should fail\n{describe(proc)}"
    return proc.stdout + proc.stderr


def test_fetching_disabled_is_explained_as_modgates_own(
    tmp_path: Path, sample: SampleProject, gocache: Path, modgate: ModgateFactory
) -> None:
    server = modgate("--upstream", "off")
    workdir = tmp_path / "work"
    workdir.mkdir()
    log = _failed_download(workdir, go_env(workdir, goproxy=server.url, gocache=gocache), sample)
    findings = _diagnose(log, tmp_path)
    assert findings[0]["cause"] == "modgate-fetch-disabled", f"{findings}\n--- go printed:\n{log}"
    assert "',direct'" in str(findings[0]["fix"]) and "bypass" in str(findings[0]["fix"])


def test_a_failing_upstream_is_the_gateways_problem(
    tmp_path: Path, sample: SampleProject, gocache: Path, modgate: ModgateFactory
) -> None:
    upstream = StaticProxy(sample.proxy_root)
    upstream.status_all = 500
    try:
        server = modgate("--upstream", upstream.url, "--upstream-retries", "0")
        workdir = tmp_path / "work"
        workdir.mkdir()
        env = go_env(workdir, goproxy=server.url, gocache=gocache)
        log = _failed_download(workdir, env, sample)
    finally:
        upstream.close()
    findings = _diagnose(log, tmp_path)
    assert findings[0]["cause"] == "modgate-upstream-failed", f"{findings}\n--- go printed:\n{log}"


def test_an_unreachable_checksum_database_behind_modgate(
    tmp_path: Path, sample: SampleProject, gocache: Path, modgate: ModgateFactory
) -> None:
    upstream = StaticProxy(sample.proxy_root)
    try:
        server = modgate(
            "--upstream",
            upstream.url,
            "--sumdb",
            f"sum.golang.org=http://127.0.0.1:{dead_port()}",
            "--verify-sumdb",
            "off",
            "--upstream-retries",
            "0",
        )
        workdir = tmp_path / "work"
        workdir.mkdir()
        env = go_env(workdir, goproxy=server.url, gosumdb="sum.golang.org", gocache=gocache)
        log = _failed_download(workdir, env, sample)
    finally:
        upstream.close()
    findings = _diagnose(log, tmp_path)
    assert findings[0]["cause"] == "modgate-sumdb-failed", f"{findings}\n--- go printed:\n{log}"
