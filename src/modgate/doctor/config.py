"""Doctor's configuration file and inline suppressions.

``.modgate-doctor.toml`` at the root of the scanned tree (or ``--config
FILE``)::

    disable = ["GM005"]                 # rules that never report
    exclude = ["testdata/**", "vendor/**"]  # paths (globs, from the root) never scanned

    [severity]
    GM004 = "warning"                   # error, warning or note

A bad file fails loudly with the bad value echoed (:class:`ConfigError`).

Inline: a comment ``modgate-ignore GM012`` (``#`` or ``//``) on the line of a
finding or on the line before silences that rule there; several IDs may be
separated by commas or spaces. A bare ``modgate-ignore`` silences every rule.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modgate.doctor.catalog import RULES
from modgate.doctor.findings import Severity

CONFIG_NAME = ".modgate-doctor.toml"
_KEYS = frozenset({"disable", "exclude", "severity"})
_IGNORE_MARK = "modgate-ignore"
_IGNORE_RE = re.compile(r"modgate-ignore\b((?:[\s,:]*GM\d{3})*)")
_RULE_ID_RE = re.compile(r"GM\d{3}")
ALL_RULES = "*"
"""Stands for every rule in a suppression set."""


class ConfigError(ValueError):
    """A bad configuration file; the message names the file, the key and the value."""


@dataclass(frozen=True, slots=True)
class DoctorConfig:
    disable: frozenset[str] = frozenset()
    severity: Mapping[str, Severity] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()

    def severity_of(self, rule_id: str) -> Severity:
        return self.severity.get(rule_id, RULES[rule_id].severity)


def _rule_id(source: str, key: str, value: object) -> str:
    if not isinstance(value, str) or value not in RULES:
        raise ConfigError(f"{source}: {key}: unknown rule {value!r} (rules are GM001...)")
    return value


def parse_config(data: Mapping[str, object], source: str) -> DoctorConfig:
    """Validate a decoded TOML table; ConfigError echoing the first bad value."""
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    disable_raw = data.get("disable", [])
    if not isinstance(disable_raw, list):
        raise ConfigError(f"{source}: disable must be a list of rule IDs, not {disable_raw!r}")
    disable = frozenset(_rule_id(source, "disable", v) for v in disable_raw)
    exclude_raw = data.get("exclude", [])
    if not isinstance(exclude_raw, list) or not all(isinstance(v, str) for v in exclude_raw):
        raise ConfigError(f"{source}: exclude must be a list of path globs, not {exclude_raw!r}")
    severity_raw = data.get("severity", {})
    if not isinstance(severity_raw, dict):
        raise ConfigError(f"{source}: [severity] must be a table, not {severity_raw!r}")
    severity: dict[str, Severity] = {}
    for key, value in severity_raw.items():
        rule_id = _rule_id(source, "severity", key)
        if not isinstance(value, str):
            raise ConfigError(f"{source}: severity.{rule_id}: {value!r} is not a severity")
        try:
            severity[rule_id] = Severity.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{source}: severity.{rule_id}: {exc}") from None
    return DoctorConfig(disable, severity, tuple(exclude_raw))


def load_config(path: Path) -> DoctorConfig:
    """Read and validate a TOML configuration file; ConfigError when unreadable or bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, str(path))


def find_config(root: Path) -> Path | None:
    """``.modgate-doctor.toml`` in ``root`` (a directory), if there is one."""
    candidate = root / CONFIG_NAME
    return candidate if candidate.is_file() else None


def suppressions(text: str) -> dict[int, frozenset[str]]:
    """Line number -> rule IDs silenced by a ``modgate-ignore`` comment on that line.

    The set holds :data:`ALL_RULES` for a bare ``modgate-ignore``.
    """
    if _IGNORE_MARK not in text:
        return {}
    found: dict[int, frozenset[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if _IGNORE_MARK not in line:
            continue
        m = _IGNORE_RE.search(line)
        if m is None:
            continue
        ids = frozenset(_RULE_ID_RE.findall(m.group(1)))
        found[number] = ids or frozenset({ALL_RULES})
    return found


def is_suppressed(rule_id: str, line: int, ignores: Mapping[int, frozenset[str]]) -> bool:
    """Whether a comment on ``line`` or the line before silences ``rule_id``."""
    for candidate in (line, line - 1):
        ids = ignores.get(candidate)
        if ids is not None and (rule_id in ids or ALL_RULES in ids):
            return True
    return False
