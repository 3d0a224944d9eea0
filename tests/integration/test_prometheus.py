"""Alert rules and the Grafana dashboard are checked by the real promtool.

- ``promtool check rules`` and ``promtool test rules`` (the unit tests in
  ``deploy/prometheus/modgate-rules.test.yaml`` fire and clear every alert);
- every alert has a runbook section in ``docs/runbooks.md``;
- every metric a rule or a dashboard panel names is one that a running
  modgate exports (scraped from a real ``modgate serve`` over HTTPS, so the
  certificate gauge is there too);
- every dashboard query is valid PromQL (checked by promtool as a rule).
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.modules import SampleProject
from helpers.servers import ModgateFactory, StaticProxyFactory, metric_values
from helpers.tlscerts import TestCA

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "modgate-rules.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "modgate-rules.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "modgate-dashboard.json"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
METRIC_NAME = re.compile(r"\b((?:modgate|process)_[a-z0-9_]+)\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is not installed; run scripts/bootstrap (Debian package prometheus)"
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False, timeout=120)


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def _named_metrics(expr: str, recorded: set[str]) -> set[str]:
    names = set()
    for found in METRIC_NAME.findall(expr):
        if found in recorded:
            continue
        name = found
        for suffix in HISTOGRAM_SUFFIXES:
            if found.endswith(suffix):
                name = found[: -len(suffix)]
        names.add(name)
    return names


def test_promtool_accepts_the_rules():
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_clears_in_promtool_unit_tests():
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired: set[str] = set()
    cleared: set[str] = set()
    for case in tested:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else cleared).add(check["alertname"])
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert alerts - fired == set(), f"alerts never shown firing: {sorted(alerts - fired)}"
    assert alerts - cleared == set(), f"alerts never shown clearing: {sorted(alerts - cleared)}"


def test_every_alert_has_a_runbook_section():
    text = RUNBOOKS.read_text()
    sections = {line[3:].strip() for line in text.splitlines() if line.startswith("## ")}
    for rule in _rules():
        if "alert" not in rule:
            continue
        assert rule["alert"] in sections, f"no '## {rule['alert']}' in docs/runbooks.md"
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == rule["alert"].lower(), rule["annotations"]["runbook"]


def test_dashboard_queries_are_valid_promql(tmp_path: Path):
    queries = _panel_queries()
    assert queries, "the dashboard has no queries"
    rules = []
    for i, (_, query) in enumerate(queries):
        expr = query
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query{i}", "expr": expr})
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def exported(modgate: ModgateFactory, tmp_path: Path) -> set[str]:
    """Metric names on /metrics of a fresh modgate serving HTTPS."""
    ca = TestCA(tmp_path / "ca")
    pair = ca.issue("modgate")
    server = modgate("--tls-cert", str(pair.cert), "--tls-key", str(pair.key))
    context = ssl.create_default_context(cafile=str(ca.pem))
    with urllib.request.urlopen(f"{server.url}/metrics", context=context, timeout=10) as reply:
        text = reply.read().decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_rules_and_dashboard_name_only_exported_metrics(exported: set[str]):
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    used: dict[str, set[str]] = {}
    for rule in _rules():
        where = rule.get("record") or rule["alert"]
        for name in _named_metrics(rule["expr"], recorded):
            used.setdefault(name, set()).add(f"rule {where}")
    for title, expr in _panel_queries():
        for name in _named_metrics(expr, recorded):
            used.setdefault(name, set()).add(f"panel {title!r}")
    missing = {name: sorted(places) for name, places in used.items() if name not in exported}
    assert not missing, f"named but not exported by modgate: {missing}"


def test_labelled_counters_that_alerts_watch_start_at_zero(modgate: ModgateFactory):
    server = modgate()
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    for kind in ("checksum_mismatch", "retagged", "store_tampered", "sumdb_misbehavior"):
        line = f'modgate_security_events_total{{kind="{kind}"}} 0'
        assert line in text.splitlines(), f"missing at start: {line}"
    assert "modgate_build_info{" in text


def test_request_durations_are_counted_by_route_and_cache_outcome(
    modgate: ModgateFactory, static_proxy: StaticProxyFactory, sample: SampleProject
) -> None:
    upstream = static_proxy(sample.proxy_root)
    server = modgate("--upstream", upstream.url)
    built = sample.versions[0]
    for _ in range(3):  # a cold fetch, then answers from the store and from memory
        for kind in ("zip", "mod", "info"):
            answer = server.get(built.url_path(kind))
            assert answer.status == 200, answer
    assert server.get(built.url_path("info").replace(built.mv.version, "v9.9.9")).status == 404
    counts = metric_values(server.metrics(), "modgate_request_duration_seconds_count")
    assert counts.get('{route="zip",cache="miss"}') == 1, counts
    assert counts.get('{route="zip",cache="hit"}') == 2, counts
    for route in ("mod", "info"):  # fetched along with the zip (a miss if asked meanwhile)
        seen = sum(counts.get(f'{{route="{route}",cache="{c}"}}', 0) for c in ("hit", "miss"))
        assert seen == 3, counts
    assert counts.get('{route="info",cache="none"}') == 1, counts
    buckets = metric_values(server.metrics(), "modgate_request_duration_seconds_bucket")
    assert buckets['{route="zip",cache="hit",le="+Inf"}'] == 2, buckets
