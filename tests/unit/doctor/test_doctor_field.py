"""Cases taken from running doctor on public repositories (docs/doctor-field-evaluation.md).

Each directory under ``tests/data/doctor/field/`` is a small repository written
to reproduce one false finding or one miss seen in the field; its
``expected.txt`` lists every finding doctor must report there (``file:line RULE``
per line, any severity), and nothing else may be reported. An empty file
means the case was a false finding: doctor must stay silent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modgate.doctor.scan import scan

FIELD = Path(__file__).resolve().parents[2] / "data" / "doctor" / "field"
CASES = sorted(p.name for p in FIELD.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_field_case_reports_exactly_what_expected_lists(case: str) -> None:
    tree = FIELD / case
    result = scan(tree)
    found = sorted(f"{f.location} {f.rule}" for f in result.findings)
    expected = sorted((tree / "expected.txt").read_text().split("\n"))
    expected = [line for line in expected if line.strip()]
    unexpected = [str(f) for f in result.findings if f"{f.location} {f.rule}" not in expected]
    assert found == expected, (
        f"{case}: missing {sorted(set(expected) - set(found))}, unexpected {unexpected}"
    )
    assert not result.skipped, f"{case}: files were reported as skipped: {result.skipped}"


def test_templates_that_stay_unreadable_are_counted_not_reported() -> None:
    result = scan(FIELD / "helm-chart")
    assert result.templates == 2
    assert result.skipped == []
