"""``modgate verify``: go.mod and go.sum checked against modgate and the checksum database."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.goenv import describe
from helpers.modules import SampleProject
from helpers.servers import (
    ModgateFactory,
    ModgateHandle,
    StaticProxyFactory,
    dead_port,
    run_modgate,
)
from helpers.sumdbserver import TestSumdb, proxy_gosum


@dataclass
class Project:
    app: Path
    server: ModgateHandle
    public: TestSumdb

    def verify(self, *args: str, sumdb: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_modgate(
            "verify",
            str(self.app),
            "--proxy",
            self.server.url,
            "--sumdb",
            sumdb or self.public.vkey,
            *args,
        )


@pytest.fixture
def project(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> Iterator[Project]:
    app = tmp_path / "app"
    shutil.copytree(sample.main_dir, app)
    upstream = static_proxy(sample.proxy_root)
    with TestSumdb(proxy_gosum(sample.proxy_root)) as public:
        # the server only proxies here; what it looks up on ingest is tested elsewhere
        server = modgate(
            "--upstream", upstream.url, "--sumdb", public.spec, "--verify-sumdb", "off"
        )
        yield Project(app, server, public)


def _edit(pattern: str, replacement: str) -> Callable[[Path], None]:
    def edit(app: Path) -> None:
        path = app / "go.sum"
        lines = path.read_text().splitlines(keepends=True)
        out = [replacement if line.startswith(pattern) else line for line in lines]
        if not any(line.startswith(pattern) for line in lines):
            out.append(replacement)
        path.write_text("".join(out))

    return edit


BAD_HASH = "h1:" + "A" * 43 + "="
CASES = {
    "clean": (lambda app: None, set()),
    "missing zip line": (_edit("example.com/liba v1.1.0 h1", ""), {"missing-sum"}),
    "missing go.mod line": (
        _edit("example.com/old v2.0.0+incompatible/go.mod", ""),
        {"missing-sum"},
    ),
    "changed hash": (
        _edit("example.com/Upper/kit v1.0.0 h1", f"example.com/Upper/kit v1.0.0 {BAD_HASH}\n"),
        {"hash-mismatch"},
    ),
    "stale version": (
        _edit("example.com/liba v1.0.0 h1", "example.com/liba v1.0.0 h1:bogus=\n"),
        {"stale-sum", "hash-mismatch"},
    ),
    "malformed": (_edit("junk", "junk line\n"), {"malformed-sum"}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_verify_findings(case: str, project: Project) -> None:
    mutate, expected = CASES[case]
    mutate(project.app)

    proc = project.verify("--format", "json")

    report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    rules = {f["rule"] for f in report.get("findings", [])}
    assert rules == expected, f"{case}: rules {rules}, want {expected}\n{describe(proc)}"
    assert proc.returncode == (1 if expected else 0), describe(proc)


def test_verify_without_database_hashes_what_the_proxy_serves(project: Project) -> None:
    CASES["changed hash"][0](project.app)
    proc = project.verify(sumdb="off")
    assert proc.returncode == 1, describe(proc)
    assert "hash-mismatch" in proc.stdout and "the proxy" in proc.stdout, describe(proc)
    assert not [p for p in project.public.requests if p.startswith("/lookup/")], (
        "with --sumdb off nothing is looked up"
    )


def test_verify_sarif(project: Project) -> None:
    CASES["changed hash"][0](project.app)
    proc = project.verify("--format", "sarif")
    sarif = json.loads(proc.stdout)
    assert sarif["version"] == "2.1.0", proc.stdout
    run = sarif["runs"][0]
    rule_ids = {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    [result] = run["results"]
    assert result["ruleId"] == "hash-mismatch" and result["ruleId"] in rule_ids, result
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("go.sum"), location
    assert location["region"]["startLine"] >= 1, location


def _git(app: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=app,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_verify_flags_gosum_changed_without_gomod(project: Project) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    _git(project.app, "init", "-q")
    _git(project.app, "add", ".")
    _git(project.app, "commit", "-q", "-m", "initial")
    assert project.verify().returncode == 0

    path = project.app / "go.sum"
    path.write_text("".join(sorted(path.read_text().splitlines(keepends=True), reverse=True)))
    proc = project.verify()

    assert proc.returncode == 1, describe(proc)
    assert "gosum-without-gomod" in proc.stdout, describe(proc)


def test_verify_environment_errors(tmp_path: Path, project: Project) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    no_gomod = run_modgate("verify", str(empty), "--proxy", project.server.url)
    assert no_gomod.returncode == 2, describe(no_gomod)
    unreachable = run_modgate(
        "verify", str(project.app), "--proxy", f"http://127.0.0.1:{dead_port()}", "--sumdb", "off"
    )
    assert unreachable.returncode == 2, describe(unreachable)
    assert "cannot connect" in unreachable.stderr, describe(unreachable)
    no_proxy = run_modgate("verify", str(project.app))
    assert no_proxy.returncode == 2 and "GOPROXY" in no_proxy.stderr, describe(no_proxy)
