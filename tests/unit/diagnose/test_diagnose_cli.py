"""``modgate diagnose``: JSON contract, text report, colors and exit codes."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from modgate.cli import cli
from modgate.cli.diagnose import _use_color
from modgate.diagnose import CAUSES, CauseId, diagnose_lines

CORPUS = Path(__file__).resolve().parents[2] / "data" / "diagnose"
FIELDS = {"cause", "module", "evidence", "fix", "confidence"}
MODULE = re.compile(r"^[^\s@]+@v\d+\.\d+\.\d+\S*$")
ESC = "\x1b["


def _run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["diagnose", *args], input=stdin)


@pytest.mark.parametrize(
    "name", ["sumdb-prompts-404--buildkit", "checksum-mismatch-zip", "unknown-revision--github"]
)
def test_json_has_exactly_the_public_fields(name: str) -> None:
    result = _run("--format", "json", str(CORPUS / f"{name}.log"))
    assert result.exit_code == 1, result.output
    findings = json.loads(result.output)
    assert findings, "a failed log gave no findings"
    confidences = []
    for finding in findings:
        assert set(finding) == FIELDS, f"fields {sorted(finding)} != {sorted(FIELDS)}"
        assert finding["cause"] in {str(cause) for cause in CauseId}
        assert finding["module"] is None or MODULE.match(finding["module"]), finding["module"]
        assert isinstance(finding["evidence"], list) and finding["evidence"]
        assert all(isinstance(line, str) and line for line in finding["evidence"])
        assert finding["fix"] == CAUSES[CauseId(finding["cause"])].fix
        assert 0 <= finding["confidence"] <= 1
        confidences.append(finding["confidence"])
    assert confidences == sorted(confidences, reverse=True), "findings are not ranked"


def test_json_of_a_clean_log_is_an_empty_list() -> None:
    result = _run("--format", "json", str(CORPUS / "success--github.log"))
    assert (result.exit_code, json.loads(result.output)) == (0, [])


def test_text_report_names_cause_module_evidence_fix_and_docs() -> None:
    result = _run(str(CORPUS / "sumdb-prompts-404--github.log"))
    assert result.exit_code == 1
    for part in (
        "1. private-module-in-public-sumdb",
        "corp.example.com/private@v1.0.0",
        "| fatal: could not read Username",
        "fix: Set GOPRIVATE",
        "docs: docs/diagnose.md#private-module-in-public-sumdb",
        "1 failure found; most likely cause: private-module-in-public-sumdb",
    ):
        assert part in result.output, f"{part!r} missing from:\n{result.output}"
    assert ESC not in result.output, "colors on a non-terminal"


def test_exit_codes() -> None:
    assert _run(str(CORPUS / "success.log")).exit_code == 0
    assert _run(str(CORPUS / "proxy-404.log")).exit_code == 1
    missing = _run("/nonexistent/build.log")
    assert missing.exit_code == 2, missing.output
    assert "cannot read LOG" in missing.output
    assert _run(str(CORPUS)).exit_code == 2
    assert _run("--format", "xml", str(CORPUS / "success.log")).exit_code == 2


def test_reads_standard_input() -> None:
    log = (CORPUS / "proxy-dns--gitlab.log").read_text()
    for args in ((), ("-",)):
        result = _run("--format", "json", *args, stdin=log)
        assert result.exit_code == 1, result.output
        assert json.loads(result.output)[0]["cause"] == "proxy-unreachable"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text("go: x\n")
    log.chmod(0)
    result = _run(str(log))
    assert result.exit_code == 2, result.output
    assert "not readable" in result.output or "cannot read LOG" in result.output


def test_color_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run("--color", "always", str(CORPUS / "proxy-404.log"))
    assert ESC in result.output
    result = _run("--color", "never", str(CORPUS / "proxy-404.log"))
    assert ESC not in result.output
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert _use_color("auto") is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert _use_color("auto") is False
    assert _use_color("always") is True
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    monkeypatch.delenv("NO_COLOR")
    assert _use_color("auto") is False


def test_unknown_failures_are_reported_with_their_error_lines() -> None:
    lines = [
        "2024-05-14T09:21:03.1234567Z ##[group]Run go mod download",
        "2024-05-14T09:21:03.1234567Z go: example.com/foo@v1.0.0: something no rule knows",
        "2024-05-14T09:21:03.1234567Z ##[error]Process completed with exit code 1.",
    ]
    findings = diagnose_lines(lines)
    assert [str(f.cause) for f in findings] == ["unknown"]
    assert findings[0].module is None
    assert findings[0].evidence == [
        "go: example.com/foo@v1.0.0: something no rule knows",
        "Process completed with exit code 1.",
    ]


def test_a_compile_error_is_no_module_failure_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text(
        "2024-05-14T09:21:03.1234567Z ##[group]Run go build ./...\n"
        "2024-05-14T09:21:03.1234567Z # example.com/app\n"
        "2024-05-14T09:21:03.1234567Z ./main.go:6:2: undefined: undefinedThing\n"
        "2024-05-14T09:21:03.1234567Z ##[error]Process completed with exit code 1.\n"
    )
    result = _run("--color", "never", str(log))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("no module failure found; the build failed with a compile "), (
        result.output
    )
    assert "./main.go:6:2: undefined: undefinedThing" in result.output
    assert json.loads(_run("--format", "json", str(log)).output) == []


def test_error_words_without_a_failure_are_not_a_failure() -> None:
    lines = [
        "[eslint] 0 errors, 0 warnings",
        "Failed to extract cache",
        "##[warning]Restore cache failed: Dependencies file is not found",
        "go: downloading example.com/foo v1.0.0",
        "Job succeeded",
    ]
    assert diagnose_lines(lines) == []


def test_the_text_report_explains_a_causal_chain() -> None:
    result = _run("--color", "never", str(CORPUS / "tls-then-stale-vendor.log"))
    assert result.exit_code == 1, result.output
    first, second = result.output.split("\n\n")[:2]
    assert first.startswith("1. tls-unknown-authority"), result.output
    assert second.startswith("2. inconsistent-vendoring"), result.output
    assert "chain: probably a consequence of #1 tls-unknown-authority (log line 1)" in second
