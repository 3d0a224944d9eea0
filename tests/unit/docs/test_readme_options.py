"""The README's option tables for ``modgate serve`` agree with ``modgate serve --help``.

Every option the command has is in a table with its metavar and its
``MODGATE_*`` variable, every table row is an option the command has, and
the default a row states is the default ``--help`` states (or both state
none).
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from modgate.cli.serve import serve_command

README = Path(__file__).resolve().parents[3] / "README.md"
ROW = re.compile(r"^\| `(--[a-z0-9-]+)(?: ([^`]*))?` \| `(MODGATE_[A-Z0-9_]+)` \| ([^|]*) \|")
NO_DEFAULT = {"none", "empty"}
ENV_PREFIX = "MODGATE_"


def _rows() -> dict[str, tuple[str, str, str]]:
    rows: dict[str, tuple[str, str, str]] = {}
    for line in README.read_text().splitlines():
        m = ROW.match(line.replace("\\|", "|"))
        if m:
            flag, metavar, variable, default = m.groups()
            rows[flag] = (metavar or "", variable, default.strip())
    return rows


def _options() -> dict[str, click.Option]:
    return {
        p.opts[0]: p
        for p in serve_command.params
        if isinstance(p, click.Option) and p.opts[0] not in ("--help", "-h")
    }


def _help_default(option: click.Option) -> str | None:
    """What ``[...]`` in the option's help says, up to the first ';', ': ' or ' = '."""
    # a default ends a sentence ("[60]." or "[...]; more"); "[auth] section" is no default
    found = re.findall(r"\[([^\[\]]*)\](?=[.;]|$)", option.help or "")
    if not found:
        return None
    return re.split(r";|: | = ", found[-1], maxsplit=1)[0].strip()


def _readme_default(text: str) -> str | None:
    """A README default cell: its leading code span, or its words before a parenthesis."""
    if text.split(" ", maxsplit=1)[0].lower() in NO_DEFAULT:
        return None
    if text.startswith("`"):
        return text[1:].split("`", 1)[0]
    return text.split(" (", 1)[0].replace("`", "").strip()


def test_every_serve_option_is_in_the_readme_and_every_row_is_an_option() -> None:
    rows, options = _rows(), _options()
    assert sorted(set(options) - set(rows)) == [], "options missing from the README table"
    assert sorted(set(rows) - set(options)) == [], "README rows for options serve lacks"


@pytest.mark.parametrize("flag", sorted(_options()))
def test_a_row_names_the_metavar_variable_and_default_of_help(flag: str) -> None:
    option = _options()[flag]
    metavar, variable, default = _rows()[flag]
    shown_metavar = option.metavar or ""
    assert metavar == shown_metavar, f"{flag}: README {metavar!r}, --help {shown_metavar!r}"
    expected = ENV_PREFIX + flag.removeprefix("--").replace("-", "_").upper()
    assert variable == expected, f"{flag}: README names {variable}, not {expected}"
    readme, shown = _readme_default(default), _help_default(option)
    assert readme == shown, f"{flag}: README default {readme!r}, --help default {shown!r}"
