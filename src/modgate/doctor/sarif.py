"""SARIF 2.1.0 output for code scanning (GitHub, GitLab, Azure DevOps).

One run whose ``tool.driver.rules`` lists every rule (ID, name, short and
full description, ``helpUri`` to its page under ``docs/rules/``, default
level), and one result per finding with ``ruleId``, ``ruleIndex``, a
``level`` of ``error``, ``warning`` or ``note``, the message, and a physical
location: the file as a URI relative to the scanned root
(``uriBaseId: %SRCROOT%``) and ``region.startLine``. Findings about the live
environment have no file, so they carry no location.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import quote

from modgate import __version__
from modgate.doctor.catalog import DOCS_BASE_URI, DOCS_PATH, RULES, help_uri
from modgate.doctor.findings import ENVIRONMENT, Finding

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "modgate doctor"
SRCROOT = "%SRCROOT%"


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def _rules(docs_base: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for rule in RULES.values():
        uri = help_uri(rule.id, docs_base)
        page = uri or f"{DOCS_PATH}/{rule.id}.md in the modgate repository"
        entry: dict[str, object] = {
            "id": rule.id,
            "name": _pascal(rule.name),
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": f"{rule.summary}. Fix: {rule.fix}."},
            "help": {"text": f"Fix: {rule.fix}. See {page}"},
            "defaultConfiguration": {"level": rule.severity.label},
        }
        if uri:
            entry["helpUri"] = uri
        out.append(entry)
    return out


def _result(finding: Finding, index: dict[str, int]) -> dict[str, object]:
    message = finding.message if not finding.fix else f"{finding.message}. Fix: {finding.fix}"
    result: dict[str, object] = {
        "ruleId": finding.rule,
        "ruleIndex": index[finding.rule],
        "level": finding.severity.label,
        "message": {"text": message},
    }
    if finding.file != ENVIRONMENT:
        location: dict[str, object] = {
            "artifactLocation": {"uri": quote(finding.file), "uriBaseId": SRCROOT}
        }
        if finding.line > 0:
            location["region"] = {"startLine": finding.line}
        result["locations"] = [{"physicalLocation": location}]
    return result


def _driver(docs_base: str) -> dict[str, object]:
    driver: dict[str, object] = {"name": TOOL_NAME, "version": __version__}
    if docs_base:
        driver["informationUri"] = docs_base.rstrip("/").rsplit("/rules", 1)[0] + "/doctor.md"
    driver["rules"] = _rules(docs_base)
    return driver


def sarif_log(findings: Sequence[Finding], docs_base: str = DOCS_BASE_URI) -> dict[str, object]:
    index = {rule_id: i for i, rule_id in enumerate(RULES)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": _driver(docs_base)},
                "columnKind": "unicodeCodePoints",
                "results": [_result(f, index) for f in findings],
            }
        ],
    }


def render_sarif(findings: Sequence[Finding], docs_base: str = DOCS_BASE_URI) -> str:
    return json.dumps(sarif_log(findings, docs_base), indent=2) + "\n"
