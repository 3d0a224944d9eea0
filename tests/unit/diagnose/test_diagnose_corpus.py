"""diagnose on the labelled corpus of real go failures (tests/data/diagnose).

The logs were produced by running go1.27 into each failure class
(scripts/gen_diagnose_corpus.py); ``labels.json`` holds each log's expected
top cause and module. Top-1 accuracy (cause and module of the first finding
both right) must stay at or above 95 %.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from modgate.doctor.diagnose import (
    CauseId,
    Finding,
    classify,
    diagnose_lines,
    diagnose_stream,
    stream,
)
from modgate.doctor.diagnose.normalize import normalize
from modgate.doctor.diagnose.rules import RULES

CORPUS = Path(__file__).resolve().parents[2] / "data" / "diagnose"
LABELS: dict[str, dict[str, str | None]] = json.loads((CORPUS / "labels.json").read_text())
MIN_ACCURACY = 0.95
MIN_LOGS = 60
NAMES = sorted(LABELS)


def _log(name: str) -> Path:
    return CORPUS / f"{name}.log"


def _top(findings: list[Finding]) -> tuple[str | None, str | None]:
    if not findings:
        return None, None
    first = findings[0]
    return str(first.cause), str(first.module) if first.module is not None else None


def _json(findings: list[Finding]) -> list[dict[str, object]]:
    return [finding.to_json() for finding in findings]


def test_corpus_is_large_and_covers_every_cause() -> None:
    assert len(LABELS) >= MIN_LOGS, f"only {len(LABELS)} labelled logs, want {MIN_LOGS}"
    missing = [name for name in NAMES if not _log(name).is_file()]
    assert not missing, f"labels without a log: {missing}"
    covered = {label["cause"] for label in LABELS.values()}
    uncovered = sorted(str(cause) for cause in CauseId if str(cause) not in covered)
    assert not uncovered, f"causes without a corpus log: {uncovered}"


def test_top1_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    total: dict[str, int] = defaultdict(int)
    right: dict[str, int] = defaultdict(int)
    wrong = []
    for name in NAMES:
        label = LABELS[name]
        with _log(name).open("rb") as handle:
            got = _top(diagnose_stream(handle))
        expected = (label["cause"], label["module"])
        key = str(label["cause"])
        total[key] += 1
        if got == expected:
            right[key] += 1
        else:
            wrong.append(f"  {name}: expected {expected[0]} {expected[1]}, got {got[0]} {got[1]}")
    report = ["top-1 accuracy per cause:"]
    report += [f"  {cause:34} {right[cause]:3}/{total[cause]:<3}" for cause in sorted(total)]
    accuracy = sum(right.values()) / len(NAMES)
    report.append(f"  {'all':34} {sum(right.values()):3}/{len(NAMES):<3} = {accuracy:.1%}")
    with capsys.disabled():
        print("\n" + "\n".join(report))
    assert accuracy >= MIN_ACCURACY, (
        f"top-1 accuracy {accuracy:.1%} < {MIN_ACCURACY:.0%}; misclassified:\n" + "\n".join(wrong)
    )


@pytest.mark.parametrize("name", NAMES)
def test_line_by_line_equals_block_reading(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = _log(name).read_text(encoding="utf-8", errors="replace")
    by_line = _json(diagnose_lines(text.splitlines(keepends=True)))
    with _log(name).open("rb") as handle:
        by_block = _json(diagnose_stream(handle))
    assert by_block == by_line, f"{name}: block reading differs from reading line by line"
    monkeypatch.setattr(stream, "BLOCK_BYTES", 61)
    with _log(name).open("rb") as handle:
        small_blocks = _json(diagnose_stream(handle))
    assert small_blocks == by_line, f"{name}: 61-byte blocks differ from reading line by line"


@pytest.mark.parametrize("name", NAMES)
def test_keyword_prefilter_hides_nothing(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _log(name).read_text(encoding="utf-8", errors="replace").splitlines()
    filtered = _json(diagnose_lines(lines))
    monkeypatch.setattr(classify, "is_interesting", lambda raw: True)
    everything = _json(diagnose_lines(lines))
    assert filtered == everything, f"{name}: a line without keywords changed the findings"


def test_rule_words_are_necessary_for_their_patterns() -> None:
    problems = []
    for name in NAMES:
        for raw in _log(name).read_text(encoding="utf-8", errors="replace").splitlines():
            text = normalize(raw).text
            for rule in RULES:
                if rule.pattern.search(text) and not any(word in text for word in rule.words):
                    problems.append(f"{name}: {rule.cause} matches {text!r} but none of its words")
    assert not problems, "\n".join(problems)
