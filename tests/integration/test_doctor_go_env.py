"""``doctor --env`` against the real go command: what it predicts, go does.

A hung proxy blocks the go command with no output, even with ``|`` after it;
a private module looked up in a checksum database that does not know it
fails until GOPRIVATE covers it; and doctor reads the effective settings
from ``go env -json`` when go is on PATH.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers.goenv import describe, go_binary, go_env, run_go
from helpers.modules import SampleProject
from helpers.servers import StaticProxyFactory, dead_port
from modgate.doctor.analyzers.goenv import ModuleRef
from modgate.doctor.env.envcheck import EnvOptions, check_environment
from modgate.doctor.report import Reporter

pytestmark = pytest.mark.go

HANG_SECONDS = 2.0
"""How long the go command is given before it counts as blocked."""
PROBE_TIMEOUT = 0.5
LIBA = "example.com/liba@v1.0.0"


def trap() -> dict[str, str]:
    """Send any direct fetch to a dead local port instead of the network."""
    dead = f"http://127.0.0.1:{dead_port()}"
    return {"HTTPS_PROXY": dead, "HTTP_PROXY": dead}


def doctor_env(
    environ: dict[str, str], modules: tuple[ModuleRef, ...] = ()
) -> list[tuple[str, str]]:
    report = Reporter()
    env = check_environment(EnvOptions(environ, (), PROBE_TIMEOUT), modules, report)
    assert env.source.startswith("go env -json"), env.source
    return [(f.rule, f.message) for f in report.findings()]


@pytest.mark.parametrize("separator", [",", "|"])
def test_a_hung_proxy_blocks_go_whatever_the_separator(
    separator: str,
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
) -> None:
    hung = static_proxy(sample.proxy_root)
    hung.hang = True
    good = static_proxy(sample.proxy_root)
    env = go_env(tmp_path, goproxy=f"{hung.url}{separator}{good.url}", gocache=gocache)
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(
            [str(go_binary()), "mod", "download", LIBA],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=HANG_SECONDS,
            check=False,
        )
    assert good.seen() == [], "go never moved past the hung proxy"
    rules = [rule for rule, _ in doctor_env(env)]
    assert "GM104" in rules, rules


def test_private_module_in_a_checksum_database_that_does_not_know_it(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    proxy = static_proxy(sample.proxy_root)
    sumdb = static_proxy(tmp_path / "empty-sumdb")  # answers 404 to every lookup
    gosumdb = f"sum.golang.org {sumdb.url}"
    env = go_env(tmp_path / "a", goproxy=proxy.url, gosumdb=gosumdb, gocache=gocache, extra=trap())
    proc = run_go(["mod", "download", "corp.example.com/secret@v1.0.0"], tmp_path, env, check=False)
    assert "verifying" in proc.stderr and "404 Not Found" in proc.stderr, describe(proc)
    assert any("/lookup/corp.example.com/secret@v1.0.0" in p for p in sumdb.seen())
    covered = go_env(
        tmp_path / "b",
        goproxy=proxy.url,
        gosumdb=gosumdb,
        gocache=gocache,
        extra={**trap(), "GONOSUMDB": "corp.example.com"},
    )
    run_go(["mod", "download", "corp.example.com/secret@v1.0.0"], tmp_path, covered)
    required = (ModuleRef("corp.example.com/secret", "go.mod", 5),)
    hint = {**env, "GOSUMDB": "off"}
    report = Reporter()
    check_environment(EnvOptions(hint, ("corp.example.com",), PROBE_TIMEOUT), required, report)
    assert "GM107" not in {f.rule for f in report.findings()}, "GOSUMDB=off skips the database"
    report = Reporter()
    check_environment(EnvOptions(env, ("corp.example.com",), PROBE_TIMEOUT), required, report)
    assert "GM107" in {f.rule for f in report.findings()}
    report = Reporter()
    check_environment(EnvOptions(covered, ("corp.example.com",), PROBE_TIMEOUT), required, report)
    assert "GM107" not in {f.rule for f in report.findings()}


def test_effective_settings_come_from_go_env(
    tmp_path: Path, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    forbidden = static_proxy(tmp_path / "root")
    forbidden.status_all = 403
    env = go_env(tmp_path, goproxy=f"{forbidden.url},direct", gocache=gocache)
    proc = run_go(["mod", "download", LIBA], tmp_path, env, check=False)
    assert "403 Forbidden" in proc.stderr, describe(proc)
    found = doctor_env(env)
    assert [rule for rule, _ in found if rule >= "GM100"] == ["GM102"], found
