"""What doctor reports: a finding of one rule at one place, with a severity.

A :class:`Finding` names its rule (``GM012``), the file relative to the
scanned root (POSIX separators) and a 1-based line, so ``str(finding)`` is
the one line a person reads: ``Dockerfile:12: error GM021 ...``. Findings
about the live environment (``doctor --env``) have no file line; they use
:data:`ENVIRONMENT` as the file and line 0.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

ENVIRONMENT = "<environment>"
"""The ``file`` of findings about the live environment rather than a file."""


class Severity(enum.IntEnum):
    """Ordered so that ``severity >= threshold`` reads naturally."""

    NOTE = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Severity:
        """``error``, ``warning`` or ``note`` (any case); ValueError echoing anything else."""
        try:
            return cls[value.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in sorted(cls, reverse=True))
            raise ValueError(f"unknown severity {value!r} (use one of {choices})") from None


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """One problem found at ``file:line``; ``fix`` says what to change, when known."""

    file: str
    line: int
    rule: str
    severity: Severity
    message: str
    fix: str | None = None

    @property
    def location(self) -> str:
        return self.file if self.line <= 0 else f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.location}: {self.severity.label} {self.rule} {self.message}"

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "rule": self.rule,
            "severity": self.severity.label,
            "file": self.file,
            "line": self.line,
            "message": self.message,
        }
        if self.fix is not None:
            data["fix"] = self.fix
        return data
