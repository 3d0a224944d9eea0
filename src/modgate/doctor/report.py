"""Collects findings from the analyzers and applies configuration and suppressions.

Analyzers call :meth:`Reporter.emit` with a rule (a catalog constant), a place and a message;
the reporter fills in the severity (the rule's default or the configured
one) and the rule's usual fix, drops disabled rules and findings silenced
by a ``modgate-ignore`` comment in that file, and removes duplicates (the
same rule at the same place with the same message, which happens when one
setting is seen from several scopes).
"""

from __future__ import annotations

from collections.abc import Mapping

from modgate.doctor.catalog import Rule
from modgate.doctor.config import DoctorConfig, is_suppressed, suppressions
from modgate.doctor.findings import Finding


class Reporter:
    def __init__(self, config: DoctorConfig | None = None) -> None:
        self.config = config or DoctorConfig()
        self._found: dict[tuple[str, int, str, str], Finding] = {}
        self._ignores: dict[str, Mapping[int, frozenset[str]]] = {}

    def read_suppressions(self, file: str, text: str) -> None:
        """Record the ``modgate-ignore`` comments of ``file`` (relative path)."""
        found = suppressions(text)
        if found:
            self._ignores[file] = found

    def emit(self, rule: Rule, file: str, line: int, message: str, fix: str | None = None) -> None:
        """Report ``rule`` (a constant of :mod:`modgate.doctor.catalog`) at ``file:line``."""
        rule_id = rule.id
        if rule_id in self.config.disable:
            return
        key = (file, line, rule_id, message)
        if key in self._found:
            return
        self._found[key] = Finding(
            file=file,
            line=line,
            rule=rule_id,
            severity=self.config.severity_of(rule_id),
            message=message,
            fix=fix if fix is not None else rule.fix,
        )

    def findings(self) -> list[Finding]:
        """Every kept finding, ordered by file, line and rule."""
        kept = [
            f
            for f in self._found.values()
            if not is_suppressed(f.rule, f.line, self._ignores.get(f.file, {}))
        ]
        return sorted(kept)
