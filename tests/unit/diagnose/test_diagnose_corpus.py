"""diagnose on the labelled corpus of real go failures (tests/data/diagnose).

The logs were produced by running go1.27 into each failure class
(scripts/gen_diagnose_corpus.py); ``labels.json`` holds each log's expected
top cause and module (or, for a build that failed for another reason, no
cause and the kind of that failure). Several logs are one go run wrapped the
way different CI systems print it (``name--github``, ``name--buildkit``...):
they are one *case*, and a case counts as right only when every wrapping of
it is. Accuracy is reported over distinct cases, and every case listed in
``passing.txt`` must stay right: a regression fails the test even while the
accuracy is above its floor. Rules were developed on this corpus, so it is a
development set; the held-out measurement is in test_diagnose_field.py.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from modgate.diagnose import (
    CauseId,
    DiagnosedFailure,
    classify,
    diagnose_lines,
    diagnose_report,
    diagnose_stream,
    stream,
)
from modgate.diagnose.normalize import normalize
from modgate.diagnose.rules import RULES

CORPUS = Path(__file__).resolve().parents[2] / "data" / "diagnose"
LABELS: dict[str, dict[str, str | None]] = json.loads((CORPUS / "labels.json").read_text())
MIN_ACCURACY = 0.95
MIN_LOGS = 60
MIN_CASES = 60
NAMES = sorted(LABELS)
PASSING = {
    line.strip()
    for line in (CORPUS / "passing.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
"""Cases that are right today; each must stay right."""
WRAPPING = "--"
NOT_IN_THE_CORPUS = frozenset({CauseId.UNKNOWN})
"""``unknown`` is what a log gets that no rule knows: the corpus has none by design."""


def _case(name: str) -> str:
    """The go run a log comes from: its name without the wrapping suffix."""
    return name.split(WRAPPING, 1)[0]


CASES: dict[str, list[str]] = defaultdict(list)
for _name in NAMES:
    CASES[_case(_name)].append(_name)


def _log(name: str) -> Path:
    return CORPUS / f"{name}.log"


def _top(findings: list[DiagnosedFailure]) -> tuple[str | None, str | None]:
    if not findings:
        return None, None
    first = findings[0]
    return str(first.cause), str(first.module) if first.module is not None else None


def _json(findings: list[DiagnosedFailure]) -> list[dict[str, object]]:
    return [finding.to_json() for finding in findings]


def test_corpus_is_large_and_covers_every_cause() -> None:
    assert len(LABELS) >= MIN_LOGS, f"only {len(LABELS)} labelled logs, want {MIN_LOGS}"
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} distinct cases, want {MIN_CASES}"
    missing = [name for name in NAMES if not _log(name).is_file()]
    assert not missing, f"labels without a log: {missing}"
    covered = {label["cause"] for label in LABELS.values()}
    uncovered = sorted(
        str(cause)
        for cause in CauseId
        if str(cause) not in covered
        and cause not in NOT_IN_THE_CORPUS
        and not str(cause).startswith("modgate-")
    )
    assert not uncovered, f"causes without a corpus log: {uncovered}"
    unknown = sorted(PASSING - set(CASES))
    assert not unknown, f"passing.txt names cases that are not in the corpus: {unknown}"


def _right(name: str) -> tuple[bool, str]:
    """Whether the log's top finding matches its label (and what differed)."""
    label = LABELS[name]
    with _log(name).open("rb") as handle:
        report = diagnose_report(handle)
    expected = (label["cause"], label["module"])
    got = _top(report.findings)
    if got != expected:
        return False, f"{name}: expected {expected[0]} {expected[1]}, got {got[0]} {got[1]}"
    kind = label.get("kind")
    if kind is not None:
        kinds = [other.kind for other in report.others]
        if kind not in kinds:
            return False, f"{name}: expected no module failure and a {kind} failure, got {kinds}"
    return True, ""


def test_top1_accuracy_over_distinct_cases(capsys: pytest.CaptureFixture[str]) -> None:
    total: dict[str, int] = defaultdict(int)
    right: dict[str, int] = defaultdict(int)
    wrong: list[str] = []
    failed_cases: set[str] = set()
    for case, names in sorted(CASES.items()):
        key = str(LABELS[names[0]]["cause"] or f"none ({LABELS[names[0]].get('kind')})")
        total[key] += 1
        problems = [problem for ok, problem in map(_right, names) if not ok]
        if problems:
            wrong += problems
            failed_cases.add(case)
        else:
            right[key] += 1
    report = ["top-1 accuracy per cause over distinct cases (all wrappings right):"]
    report += [f"  {cause:34} {right[cause]:3}/{total[cause]:<3}" for cause in sorted(total)]
    accuracy = sum(right.values()) / len(CASES)
    report.append(f"  {'all':34} {sum(right.values()):3}/{len(CASES):<3} = {accuracy:.1%}")
    with capsys.disabled():
        print("\n" + "\n".join(report))
    regressed = sorted(PASSING & failed_cases)
    assert not regressed, f"cases that passed before now fail: {regressed}\n" + "\n".join(wrong)
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
