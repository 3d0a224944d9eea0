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

from collections.abc import Sequence

from modgate import __version__
from modgate.doctor.catalog import DOCS_BASE_URI, RULES, help_uri
from modgate.doctor.findings import ENVIRONMENT, Finding
from modgate.formats.sarif import SarifResult, SarifRule, render, sarif_log

TOOL_NAME = "modgate doctor"


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def _rules(docs_base: str) -> list[SarifRule]:
    out: list[SarifRule] = []
    for rule in RULES.values():
        uri = help_uri(rule.id, docs_base)
        page = uri or f"{rule.doc_page} in the modgate repository"
        out.append(
            SarifRule(
                id=rule.id,
                level=rule.severity.label,
                summary=rule.summary,
                name=_pascal(rule.name),
                full=f"{rule.summary}. Fix: {rule.fix}.",
                help=f"Fix: {rule.fix}. See {page}",
                help_uri=uri or None,
            )
        )
    return out


def _result(finding: Finding) -> SarifResult:
    message = finding.message if not finding.fix else f"{finding.message}. Fix: {finding.fix}"
    file = None if finding.file == ENVIRONMENT else finding.file
    return SarifResult(finding.rule, finding.severity.label, message, file, finding.line)


def doctor_sarif_log(
    findings: Sequence[Finding], docs_base: str = DOCS_BASE_URI
) -> dict[str, object]:
    information = docs_base.rstrip("/").rsplit("/rules", 1)[0] + "/doctor.md" if docs_base else None
    return sarif_log(
        TOOL_NAME, __version__, _rules(docs_base), [_result(f) for f in findings], information
    )


def render_sarif(findings: Sequence[Finding], docs_base: str = DOCS_BASE_URI) -> str:
    return render(doctor_sarif_log(findings, docs_base))
