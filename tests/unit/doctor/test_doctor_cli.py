"""``modgate doctor``: formats, colors, exit codes, SARIF structure."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner

from modgate.cli import cli
from modgate.cli.doctor import _use_color
from modgate.doctor.catalog import RULES
from modgate.doctor.findings import ENVIRONMENT, Finding, Severity
from modgate.doctor.output.render import render_text
from modgate.doctor.output.sarif import doctor_sarif_log

SARIF_LEVELS = {"error", "warning", "note", "none"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _repo(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(
        "FROM golang:latest\nENV GOPROXY=https://goproxy.corp.example\nCOPY go.mod ./\n"
        "RUN go mod download\n"
    )
    (tmp_path / "go.mod").write_text("module example.com/app\n\ngo 1.23.0\n")
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["doctor", *args], env=env)
    return result.exit_code, result.output


def test_exit_codes_follow_fail_on(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    assert run(str(repo))[0] == 1  # an error
    assert run("--fail-on", "error", str(repo))[0] == 1
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "go.mod").write_text("module example.com/clean\n\ngo 1.23.0\n")
    assert run(str(clean)) == (0, "no findings (1 file scanned)\n")
    notes_only = tmp_path / "notes"
    notes_only.mkdir()
    (notes_only / "ci.env").write_text("GOPROXY=https://goproxy.corp.example\n")  # GM005, a note
    assert run(str(notes_only))[0] == 0
    assert run("--fail-on", "note", str(notes_only))[0] == 1


@pytest.mark.parametrize(
    "args",
    [["/nonexistent/path"], ["--format", "xml", "."], ["--fail-on", "fatal", "."], ["--bogus"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, output = run(*args)
    assert code == 2, output
    assert "Error" in output


def test_text_is_grouped_by_file_with_a_summary(tmp_path: Path) -> None:
    code, output = run("--color", "never", str(_repo(tmp_path)))
    assert code == 1
    assert not ANSI.search(output)
    lines = output.splitlines()
    assert lines[0] == "Dockerfile"
    assert lines[1].startswith("  Dockerfile:1: warning GM022 ")
    assert "go.mod" not in lines[0]
    assert re.fullmatch(
        r"\d+ findings: \d+ errors?, \d+ warnings?, \d+ notes? in 1 file \(2 files scanned\)",
        lines[-1],
    ), lines[-1]


def test_color_only_when_asked_for_or_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    finding = Finding("f", 1, "GM002", Severity.ERROR, "m", "x")
    assert ANSI.search(render_text([finding], 1, color=True))
    assert not ANSI.search(render_text([finding], 1, color=False))
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert _use_color("auto") is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert _use_color("auto") is False
    assert _use_color("always") is True
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    monkeypatch.delenv("NO_COLOR")
    assert _use_color("auto") is False


def test_json_is_a_list_of_findings(tmp_path: Path) -> None:
    code, output = run("--format", "json", str(_repo(tmp_path)))
    data = json.loads(output)
    assert code == 1 and isinstance(data, list) and data
    for item in data:
        assert set(item) <= {"rule", "severity", "file", "line", "message", "fix"}
        assert {"rule", "severity", "file", "line", "message"} <= set(item)
        assert item["rule"] in RULES and item["severity"] in {"error", "warning", "note"}
        assert isinstance(item["line"], int) and item["line"] >= 1


def _validate_sarif(log: dict[str, object]) -> None:
    """The parts of SARIF 2.1.0 that code-scanning consumers require."""
    assert log["version"] == "2.1.0"
    assert str(log["$schema"]).endswith("sarif-2.1.0.json")
    runs = log["runs"]
    assert isinstance(runs, list) and len(runs) == 1
    run_ = runs[0]
    driver = run_["tool"]["driver"]
    assert driver["name"]
    rules = driver["rules"]
    ids = [r["id"] for r in rules]
    assert ids == list(RULES), "every rule, in catalog order"
    for rule in rules:
        assert rule["shortDescription"]["text"]
        assert rule["defaultConfiguration"]["level"] in SARIF_LEVELS
        if "helpUri" in rule:
            uri = urlsplit(rule["helpUri"])
            assert uri.scheme == "https" and uri.path.endswith(f"/docs/rules/{rule['id']}.md")
        else:
            assert f"docs/rules/{rule['id']}.md" in rule["help"]["text"]
    for result in run_["results"]:
        assert result["ruleId"] in ids
        assert ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in SARIF_LEVELS
        assert result["message"]["text"]
        for location in result.get("locations", []):
            physical = location["physicalLocation"]
            uri = physical["artifactLocation"]["uri"]
            assert not urlsplit(uri).scheme and not uri.startswith("/"), uri
            assert physical["region"]["startLine"] >= 1


def test_sarif_structure(tmp_path: Path) -> None:
    code, output = run("--format", "sarif", str(_repo(tmp_path)))
    log = json.loads(output)
    _validate_sarif(log)
    results = log["runs"][0]["results"]
    assert code == 1 and results
    first = results[0]
    assert first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "Dockerfile"


def test_sarif_for_environment_findings_has_no_location() -> None:
    finding = Finding(ENVIRONMENT, 0, "GM101", Severity.ERROR, "HOME is not set")
    log = doctor_sarif_log([finding], "https://docs.example/docs/rules/")
    _validate_sarif(log)
    (result,) = log["runs"][0]["results"]  # type: ignore[index]
    assert "locations" not in result


def test_docs_uri_option(tmp_path: Path) -> None:
    _, output = run(
        "--format", "sarif", "--docs-uri", "https://d.example/x/docs/rules", str(_repo(tmp_path))
    )
    rule = json.loads(output)["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["helpUri"] == "https://d.example/x/docs/rules/GM001.md"


def test_list_rules() -> None:
    code, output = run("--list-rules")
    assert code == 0
    assert [line.split()[0] for line in output.splitlines()] == list(RULES)


def test_a_single_file_can_be_checked(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    code, output = run("--format", "json", str(repo / "Dockerfile"))
    assert code == 1
    assert {f["file"] for f in json.loads(output)} == {"Dockerfile"}


REPO_ROOT = Path(__file__).resolve().parents[3]


def test_the_github_actions_example_is_clean_by_its_own_standard(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    example = REPO_ROOT / "examples" / "github-actions" / "modgate-doctor.yml"
    (workflows / "doctor.yml").write_text(example.read_text())
    assert run("--fail-on", "note", str(tmp_path)) == (0, "no findings (1 file scanned)\n")


def test_the_pre_commit_hook_runs_doctor() -> None:
    (hook,) = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "modgate-doctor"
    assert hook["entry"].split()[:2] == ["modgate", "doctor"]
    files = re.compile(hook["files"])
    for name in (
        "Dockerfile",
        "deploy/app.yaml",
        "go.mod",
        ".github/workflows/ci.yml",
        "ci/go.env",
    ):
        assert files.search(name), name
    assert not files.search("main.go")
