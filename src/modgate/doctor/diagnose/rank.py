"""Order findings so that the most likely root cause comes first.

Confidence decides, then the position in the log (the first failure is
usually the cause of the ones after it). ``proxy-hung`` only explains a job
that was killed while nothing else had failed: a CI timeout after a real
error, or a ``context deadline exceeded`` next to one, is a consequence, so
it is dropped when any other cause was found.
"""

from __future__ import annotations

from collections.abc import Iterable

from modgate.doctor.diagnose.causes import CauseId
from modgate.doctor.diagnose.finding import Finding

_WEAK = frozenset({CauseId.PROXY_HUNG, CauseId.UNKNOWN})


def rank(findings: Iterable[Finding]) -> list[Finding]:
    """``findings`` without the ones other findings explain, most likely first."""
    found = list(findings)
    if any(finding.cause not in _WEAK for finding in found):
        found = [finding for finding in found if finding.cause is not CauseId.PROXY_HUNG]
    return sorted(found, key=lambda finding: (-round(finding.confidence, 2), finding.line))
