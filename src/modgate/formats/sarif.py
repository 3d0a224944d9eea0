"""SARIF 2.1.0 logs for code scanning (GitHub, GitLab, Azure DevOps): the one writer.

Every modgate command that reports findings on files (``doctor``,
``verify``) writes one run through :func:`sarif_log`: ``tool.driver`` with
its rules, and one result per finding whose location is the file as a URI
relative to the scanned root (``uriBaseId: %SRCROOT%``, percent-encoded)
plus ``region.startLine`` when the line is known. Code-scanning services
resolve ``%SRCROOT%`` to the checkout, so the same log works on any machine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
LEVELS = frozenset({"error", "warning", "note"})


@dataclass(frozen=True, slots=True)
class SarifRule:
    id: str
    level: str
    summary: str
    name: str | None = None
    full: str | None = None
    help: str | None = None
    help_uri: str | None = None

    def to_json(self) -> dict[str, object]:
        entry: dict[str, object] = {"id": self.id}
        if self.name:
            entry["name"] = self.name
        entry["shortDescription"] = {"text": self.summary}
        if self.full:
            entry["fullDescription"] = {"text": self.full}
        if self.help:
            entry["help"] = {"text": self.help}
        entry["defaultConfiguration"] = {"level": self.level}
        if self.help_uri:
            entry["helpUri"] = self.help_uri
        return entry


@dataclass(frozen=True, slots=True)
class SarifResult:
    rule_id: str
    level: str
    message: str
    file: str | None
    """POSIX path relative to the scanned root, or None for a finding about no file."""
    line: int = 0


def _result(result: SarifResult, index: dict[str, int]) -> dict[str, object]:
    if result.level not in LEVELS:
        raise ValueError(f"SARIF level {result.level!r} is not one of {sorted(LEVELS)}")
    out: dict[str, object] = {
        "ruleId": result.rule_id,
        "ruleIndex": index[result.rule_id],
        "level": result.level,
        "message": {"text": result.message},
    }
    if result.file is not None:
        location: dict[str, object] = {
            "artifactLocation": {"uri": quote(result.file), "uriBaseId": SRCROOT}
        }
        if result.line > 0:
            location["region"] = {"startLine": result.line}
        out["locations"] = [{"physicalLocation": location}]
    return out


def sarif_log(
    tool: str,
    version: str,
    rules: Sequence[SarifRule],
    results: Sequence[SarifResult],
    information_uri: str | None = None,
) -> dict[str, object]:
    """One SARIF log with one run; every result's rule must be among ``rules``."""
    driver: dict[str, object] = {"name": tool, "version": version}
    if information_uri:
        driver["informationUri"] = information_uri
    driver["rules"] = [rule.to_json() for rule in rules]
    index = {rule.id: i for i, rule in enumerate(rules)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "columnKind": "unicodeCodePoints",
                "results": [_result(r, index) for r in results],
            }
        ],
    }


def render(log: dict[str, object]) -> str:
    return json.dumps(log, indent=2) + "\n"
