"""``modgate diagnose``: explain why a CI, docker build or go log failed.

Feed a log to :func:`diagnose_stream` (or :func:`diagnose_lines`) and get
:class:`DiagnosedFailure` values, most likely root cause first. Each has a stable
:class:`CauseId`, the module@version involved when the log names it, the
evidence lines, a fix and a confidence between 0 and 1. A log that failed
for another reason (compile, vet, test) has no findings; :func:`diagnose_report`
also names those failures.
"""

from __future__ import annotations

from modgate.diagnose.buildsteps import OtherFailure
from modgate.diagnose.causes import CAUSES, Cause, CauseId
from modgate.diagnose.classify import Diagnoser, diagnose_lines
from modgate.diagnose.finding import DiagnosedFailure
from modgate.diagnose.output import render_json, render_text
from modgate.diagnose.stream import Report, diagnose_report, diagnose_stream

__all__ = [
    "CAUSES",
    "Cause",
    "CauseId",
    "DiagnosedFailure",
    "Diagnoser",
    "OtherFailure",
    "Report",
    "diagnose_lines",
    "diagnose_report",
    "diagnose_stream",
    "render_json",
    "render_text",
]
