"""Every rule against its fixtures: ``tests/data/doctor/rules/<ID>/{bad,good}/``.

Each rule is linked from its catalog entry: the constant that the analyzers
report it with (:attr:`Rule.constant`), its page (:attr:`Rule.doc_page`) and
its fixtures (:attr:`Rule.fixtures`); the tests below check that all exist
and that no analyzer names a rule by a bare string.

A ``bad`` tree must produce the rule exactly at the places listed in its
``expected.txt`` (``file:line`` per line); a ``good`` tree must not produce
it at all. Rules about the live environment (GM1xx) take their environment
from ``env.json`` in the fixture, with ``{placeholders}`` filled in with
local servers (see ``doctor_servers``); proxies are forced to a dead local
port so that nothing can leave the machine.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest
from doctor_servers import fill, serving

from modgate.doctor import catalog
from modgate.doctor.catalog import RULES, Rule
from modgate.doctor.env.envcheck import EnvOptions
from modgate.doctor.scan import ScanResult, scan

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / catalog.FIXTURES_PATH
DOCS = ROOT / catalog.DOCS_PATH
DOCTOR_SRC = ROOT / "src" / "modgate" / "doctor"
PROBE_TIMEOUT = 0.5
ENV_RULES = sorted(r for r in RULES if r >= "GM100")
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _scan_env_fixture(tree: Path, tmp_path: Path) -> ScanResult:
    spec = json.loads((tree / "env.json").read_text())
    with serving(tmp_path) as values:
        environ = {
            # nothing may leave the machine: any proxied request hits a dead local port
            "HTTPS_PROXY": values["refused"],
            "HTTP_PROXY": values["refused"],
            "PATH": "/usr/bin:/bin",
        }
        environ.update({k: fill(v, values) for k, v in spec["env"].items()})
        private = tuple(spec.get("private", ()))
        options = EnvOptions(environ, private, PROBE_TIMEOUT, use_go=False)
        return scan(tree, env=options)


def _found(rule_id: str, tree: Path, tmp_path: Path) -> list[str]:
    result = _scan_env_fixture(tree, tmp_path) if rule_id in ENV_RULES else scan(tree)
    assert not result.skipped, f"{tree}: files were skipped: {result.skipped}"
    return [f.location for f in result.findings if f.rule == rule_id]


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_bad_fixture_triggers_the_rule_where_expected(rule_id: str, tmp_path: Path) -> None:
    tree = DATA / rule_id / "bad"
    found = _found(rule_id, tree, tmp_path)
    expected_file = tree.parent / "expected.txt"
    if UPDATE:
        expected_file.write_text("".join(f"{loc}\n" for loc in found))
    expected = expected_file.read_text().split()
    assert found, f"{rule_id} did not fire on {tree}"
    assert found == expected, (
        f"{rule_id} on {tree}: expected at {expected}, found at {found} "
        "(UPDATE_GOLDEN=1 rewrites expected.txt after a deliberate change)"
    )


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_good_fixture_does_not_trigger_the_rule(rule_id: str, tmp_path: Path) -> None:
    tree = DATA / rule_id / "good"
    found = _found(rule_id, tree, tmp_path)
    assert found == [], f"{rule_id} fired on the good fixture {tree} at {found}"


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_rule_has_a_constant_fixtures_and_a_docs_page(rule_id: str) -> None:
    rule = RULES[rule_id]
    assert getattr(catalog, rule.constant, None) is rule, (
        f"{rule_id} has no constant catalog.{rule.constant} (named <ID>_<NAME>)"
    )
    fixtures = ROOT / rule.fixtures
    assert fixtures == DATA / rule_id, f"{rule_id}: fixtures at {rule.fixtures}"
    for kind in ("bad", "good"):
        assert (fixtures / kind).is_dir(), f"{rule_id} has no {kind} fixture in {rule.fixtures}"
    page = ROOT / rule.doc_page
    assert page == DOCS / f"{rule_id}.md", f"{rule_id}: page at {rule.doc_page}"
    assert page.is_file(), f"{rule_id} has no page {page}"
    text = page.read_text()
    for heading in ("## What breaks", "## Why", "## Fix", "## Go versions"):
        assert heading in text, f"{page} lacks the section {heading!r}"
    assert rule_id in text.splitlines()[0], f"{page} must start with a title naming {rule_id}"


def test_no_fixture_without_a_rule() -> None:
    assert sorted(p.name for p in DATA.iterdir()) == sorted(RULES)


def test_catalog_constants_are_the_rules_in_id_order() -> None:
    constants = {name: v for name, v in vars(catalog).items() if isinstance(v, Rule)}
    assert [r.constant for r in RULES.values()] == list(constants), "a constant per rule"
    misnamed = [name for name, rule in constants.items() if name != rule.constant]
    assert misnamed == [], f"constants not named <ID>_<NAME>: {misnamed}"
    assert list(RULES) == sorted(RULES), "rules are defined in ID order"


def _rule_id_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in RULES
    ]


def test_doctor_code_names_rules_by_constant_not_by_string() -> None:
    sources = sorted(p for p in DOCTOR_SRC.rglob("*.py") if p.name != "catalog.py")
    assert len(sources) > 10, f"no doctor sources under {DOCTOR_SRC}"
    literals = [hit for path in sources for hit in _rule_id_literals(path)]
    assert literals == [], f"rule IDs written as strings (use the catalog constant): {literals}"
