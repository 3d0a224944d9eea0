"""``doctor --env``: effective settings, cache directories, and probes of local servers only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from doctor_servers import serving

from modgate.cli import cli
from modgate.doctor.analyzers.goenv import ModuleRef
from modgate.doctor.env.effective import SOURCE_COMPUTED, compute
from modgate.doctor.env.envcheck import EnvOptions, check_environment, is_private
from modgate.doctor.env.probe import Outcome, Prober
from modgate.doctor.findings import ENVIRONMENT
from modgate.doctor.report import Reporter

TIMEOUT = 0.5


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, str]]:
    with serving(tmp_path) as values:
        yield values


# --------------------------------------------------------------------------- effective env


def test_computed_defaults_follow_the_go_command() -> None:
    env = compute({"HOME": "/home/u", "GOPRIVATE": "corp.example", "GOENV": "off"})
    assert env.source == SOURCE_COMPUTED
    assert env.get("GOPROXY") == "https://proxy.golang.org,direct"
    assert env.get("GOSUMDB") == "sum.golang.org"
    assert env.get("GONOPROXY") == env.get("GONOSUMDB") == "corp.example"
    assert env.get("GOMODCACHE") == "/home/u/go/pkg/mod"
    assert env.get("GOCACHE") == "/home/u/.cache/go-build"
    assert env.explicit == frozenset({"GOPRIVATE", "GOENV"})


def test_computed_values_from_the_go_env_file_and_xdg(tmp_path: Path) -> None:
    config = tmp_path / "config" / "go"
    config.mkdir(parents=True)
    (config / "env").write_text("GOPROXY=https://goproxy.corp.example,direct\nGOFLAGS=-mod=mod\n")
    env = compute(
        {
            "HOME": "/home/u",
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_CACHE_HOME": "/cache",
            "GOPATH": "/gp1:/gp2",
            "GOFLAGS": "-trimpath",
        }
    )
    assert env.get("GOPROXY") == "https://goproxy.corp.example,direct"
    assert env.get("GOFLAGS") == "-trimpath", "the environment wins over the go env file"
    assert env.get("GOMODCACHE") == "/gp1/pkg/mod"
    assert env.get("GOCACHE") == "/cache/go-build"


def test_nothing_to_derive_caches_from() -> None:
    env = compute({"GOENV": "off"})
    assert env.get("GOMODCACHE") == "" and env.get("GOCACHE") == ""


# --------------------------------------------------------------------------- probes


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("ok", Outcome.OK),
        ("notfound", Outcome.NOT_FOUND),
        ("forbidden", Outcome.HTTP_ERROR),
        ("hung", Outcome.HUNG),
        ("refused", Outcome.REFUSED),
        ("selfsigned", Outcome.TLS_UNKNOWN_AUTHORITY),
    ],
)
def test_probe_outcomes(servers: dict[str, str], name: str, outcome: Outcome) -> None:
    prober = Prober({}, TIMEOUT)
    try:
        result = prober.get(servers[name] + "/golang.org/x/mod/@v/list")
    finally:
        prober.close()
    assert result.outcome is outcome, f"{name}: {result}"


def test_probe_trusts_ssl_cert_file(servers: dict[str, str]) -> None:
    prober = Prober({"SSL_CERT_FILE": servers["cert"]}, TIMEOUT)
    try:
        assert prober.get(servers["selfsigned"] + "/x").outcome is Outcome.OK
    finally:
        prober.close()


def test_probe_name_mismatch(servers: dict[str, str]) -> None:
    prober = Prober({"SSL_CERT_FILE": servers["mismatch_cert"]}, TIMEOUT)
    try:
        result = prober.get(servers["mismatch"] + "/x")
    finally:
        prober.close()
    assert result.outcome is Outcome.TLS_NAME_MISMATCH, result


def test_probe_by_another_name_of_the_certificate(servers: dict[str, str]) -> None:
    prober = Prober({"SSL_CERT_FILE": servers["cert"]}, TIMEOUT)
    try:
        result = prober.get(servers["selfsigned"].replace("127.0.0.1", "localhost") + "/x")
    finally:
        prober.close()
    assert result.outcome is Outcome.OK, result


# --------------------------------------------------------------------------- fall-through rules


def _env_rules(
    environ: dict[str, str], modules: tuple[ModuleRef, ...] = ()
) -> list[tuple[str, str]]:
    report = Reporter()
    base = {"GOSUMDB": "off", "GOTOOLCHAIN": "local", "PATH": "/usr/bin:/bin"}
    check_environment(EnvOptions({**base, **environ}, (), TIMEOUT, use_go=False), modules, report)
    return [(f.rule, f.message) for f in report.findings() if f.rule >= "GM100"]


def test_comma_stops_pipe_falls_through(servers: dict[str, str], tmp_path: Path) -> None:
    dirs = {
        "GOMODCACHE": str(tmp_path / "m"),
        "GOCACHE": str(tmp_path / "c"),
        "HOME": str(tmp_path),
    }
    comma = _env_rules({**dirs, "GOPROXY": f"{servers['forbidden']},{servers['ok']}"})
    assert [r for r, _ in comma] == ["GM102"] and "stops here" in comma[0][1]
    pipe = _env_rules({**dirs, "GOPROXY": f"{servers['forbidden']}|{servers['ok']}"})
    assert [r for r, _ in pipe] == ["GM103"] and "falls through" in pipe[0][1]
    not_found = _env_rules({**dirs, "GOPROXY": f"{servers['notfound']},{servers['ok']}"})
    assert not_found == []
    hung = _env_rules({**dirs, "GOPROXY": f"{servers['hung']}|{servers['ok']}"})
    assert [r for r, _ in hung] == ["GM104"], "a hang is never an error the go command moves past"
    refused_last = _env_rules({**dirs, "GOPROXY": f"{servers['ok']}|{servers['refused']}"})
    assert [r for r, _ in refused_last] == ["GM102"], "the last entry has nothing to fall to"


def test_sumdb_is_reached_through_proxies_that_support_it(
    servers: dict[str, str], tmp_path: Path
) -> None:
    dirs = {
        "GOMODCACHE": str(tmp_path / "m"),
        "GOCACHE": str(tmp_path / "c"),
        "HOME": str(tmp_path),
    }
    # the 404 proxy does not support it, the next one answers /supported and /latest
    ok = _env_rules(
        {**dirs, "GOSUMDB": "sum.golang.org", "GOPROXY": f"{servers['notfound']},{servers['ok']}"}
    )
    assert ok == []
    broken = _env_rules(
        {**dirs, "GOSUMDB": "sum.golang.org", "GOPROXY": f"{servers['forbidden']},{servers['ok']}"}
    )
    assert "GM106" in [r for r, _ in broken], broken


def test_cache_directories(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_text("x")
    found = _env_rules(
        {
            "GOPROXY": "off",
            "GOMODCACHE": str(regular / "mod"),
            "GOCACHE": "off",
            "HOME": str(tmp_path),
        }
    )
    assert [r for r, _ in found] == ["GM101", "GM101"], found
    assert any("GOCACHE=off" in m for _, m in found)
    missing = _env_rules({"GOPROXY": "off", "GOENV": "off"})
    assert sorted(m.split(":")[0] for _, m in missing) == [
        "HOME is not set",
        "build cache is required, but could not be located",
        "go",
    ]


def test_private_modules_heuristic_and_hints() -> None:
    env = compute({"GOENV": "off", "GONOPROXY": "git.corp.example.com"})
    assert is_private("git.corp.internal/x", (), env)
    assert is_private("git.corp.example.com/x", (), env), "named in GONOPROXY"
    assert not is_private("github.com/corp/x", (), env)
    assert is_private("github.com/corp/x", ("github.com/corp",), env)


def test_env_cli_computes_without_go(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, servers: dict[str, str]
) -> None:
    for name in ("PATH", "HOME", "GOPROXY", "GOSUMDB", "GOMODCACHE", "GOCACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GOENV", "off")
    monkeypatch.setenv("GOPROXY", servers["hung"])
    monkeypatch.setenv("GOSUMDB", f"sum.golang.org {servers['ok']}")
    result = CliRunner().invoke(
        cli, ["doctor", "--env", "--timeout", "0.5", "--format", "text", str(tmp_path)]
    )
    assert result.exit_code == 1, result.output
    assert SOURCE_COMPUTED in result.output
    assert f"{ENVIRONMENT}: error GM104" in result.output
