"""The README names exactly the doctor rules that no go-command test covers.

A rule is covered when a test in ``tests/integration/test_doctor_go_*.py``
(the tests that run the real go command) names its ID. The README's
"Rules with no such test" list and its counts must match the rule catalog
minus those rules, so a new rule, or a new test for an old one, updates it.
"""

from __future__ import annotations

import re
from pathlib import Path

from modgate.doctor.catalog import RULES

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
RULE_ID = re.compile(r"GM\d{3}")
UNCOVERED = re.compile(r"Rules with no such test(?: yet)?:((?:\s*`GM\d{3}`,?)+)")
COUNTS = re.compile(
    r"(\d+) of (\d+) rules have a test in\s+`tests/integration/test_doctor_go_\*\.py`"
)


def _covered() -> set[str]:
    named: set[str] = set()
    for test in (ROOT / "tests" / "integration").glob("test_doctor_go_*.py"):
        named |= set(RULE_ID.findall(test.read_text()))
    return named & set(RULES)


def test_the_readme_lists_the_rules_without_a_go_command_test() -> None:
    text = README.read_text()
    found = UNCOVERED.search(text)
    assert found is not None, "README.md has no 'Rules with no such test:' list"
    listed = RULE_ID.findall(found.group(1))
    want = sorted(set(RULES) - _covered())
    assert listed == want, (
        f"README lists {listed}, the rules no test_doctor_go_*.py names are {want}: "
        f"add {sorted(set(want) - set(listed))}, remove {sorted(set(listed) - set(want))}"
    )


def test_the_readme_counts_the_covered_rules() -> None:
    counts = COUNTS.search(README.read_text())
    assert counts is not None, "README.md does not say how many rules have a go-command test"
    stated = (int(counts.group(1)), int(counts.group(2)))
    actual = (len(_covered()), len(RULES))
    assert stated == actual, (
        f"README says {stated[0]} of {stated[1]}, actually {actual[0]} of {actual[1]}"
    )
