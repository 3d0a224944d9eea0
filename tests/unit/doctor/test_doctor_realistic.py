"""A realistic repository that trips many rules at once, compared with a golden file.

``tests/data/doctor/realistic/`` is a payments service with a multi-stage
Dockerfile, two workflows, a Jenkinsfile, Kubernetes manifests with
ConfigMaps, scripts, an env file, go.mod/go.sum, a suppression comment and a
``.modgate-doctor.toml``. ``realistic.golden.json`` is the JSON output of
doctor on it; run with ``UPDATE_GOLDEN=1`` to rewrite it after a deliberate
change, and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from modgate.cli import cli
from modgate.doctor.config import find_config, load_config
from modgate.doctor.scan import scan

DATA = Path(__file__).resolve().parents[2] / "data" / "doctor"
REPO = DATA / "realistic"
GOLDEN = DATA / "realistic.golden.json"
MIN_RULES = 25


def test_realistic_repository_matches_the_golden_file() -> None:
    config = load_config(find_config(REPO) or REPO / "missing")
    findings = [f.to_json() for f in scan(REPO, config).findings]
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(findings, indent=2) + "\n")
    golden = json.loads(GOLDEN.read_text())
    missing = [f for f in golden if f not in findings]
    extra = [f for f in findings if f not in golden]
    assert not missing and not extra, (
        f"doctor output differs from {GOLDEN.name} (UPDATE_GOLDEN=1 rewrites it)\n"
        f"missing: {json.dumps(missing, indent=1)}\nunexpected: {json.dumps(extra, indent=1)}"
    )
    assert findings == golden, "same findings, different order"


def test_realistic_repository_trips_many_rules_and_honours_its_config() -> None:
    golden = json.loads(GOLDEN.read_text())
    rules = {f["rule"] for f in golden}
    assert len(rules) >= MIN_RULES, f"only {len(rules)} rules fire: {sorted(rules)}"
    assert "GM005" not in rules, "GM005 is disabled in .modgate-doctor.toml"
    gm004 = [f for f in golden if f["rule"] == "GM004"]
    assert gm004 and all(f["severity"] == "warning" for f in gm004), gm004
    suppressed = [f for f in golden if f["rule"] == "GM022" and f["line"] == 6]
    assert not suppressed, "the modgate-ignore comment in build/tools.Dockerfile is ignored"


def test_the_cli_prints_the_same_json() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--format", "json", str(REPO)])
    assert result.exit_code == 1, result.output
    assert json.loads(result.output) == json.loads(GOLDEN.read_text())
