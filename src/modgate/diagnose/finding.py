"""One diagnosed failure: its cause, the module involved, the evidence and a confidence."""

from __future__ import annotations

from dataclasses import dataclass, field

from modgate.diagnose.causes import CAUSES, Cause, CauseId
from modgate.protocol.module import ModuleVersion

MAX_EVIDENCE = 8
"""Evidence lines kept per finding (the first ones: where the failure shows first)."""


@dataclass(slots=True)
class DiagnosedFailure:
    """A failure found in a log; ``line`` is where its first evidence line was (1-based)."""

    cause: CauseId
    module: ModuleVersion | None
    confidence: float
    line: int
    evidence: list[str] = field(default_factory=list)
    caused_by: DiagnosedFailure | None = None
    """An earlier finding this one follows from (set by ranking; not part of the JSON)."""

    @property
    def about(self) -> Cause:
        return CAUSES[self.cause]

    @property
    def fix(self) -> str:
        return CAUSES[self.cause].fix

    def add_evidence(self, text: str) -> None:
        """Keep ``text`` unless it is there already (BuildKit repeats it) or the list is full."""
        if text and len(self.evidence) < MAX_EVIDENCE and text not in self.evidence:
            self.evidence.append(text)

    def to_json(self) -> dict[str, object]:
        """The public JSON shape: exactly cause, module, evidence, fix and confidence."""
        return {
            "cause": str(self.cause),
            "module": str(self.module) if self.module is not None else None,
            "evidence": list(self.evidence),
            "fix": self.fix,
            "confidence": round(self.confidence, 2),
        }
