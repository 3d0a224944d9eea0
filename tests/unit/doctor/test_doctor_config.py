"""The configuration file and inline ``modgate-ignore`` suppressions."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from modgate.cli import cli
from modgate.doctor.config import ConfigError, load_config, parse_config, suppressions
from modgate.doctor.findings import Severity
from modgate.doctor.scan import scan

BAD_ENV = "GOPROXY=https://a.example,fallback\n"


def test_parse_a_full_configuration() -> None:
    config = parse_config(
        {"disable": ["GM005"], "exclude": ["testdata/**"], "severity": {"GM004": "Warning"}}, "t"
    )
    assert config.disable == frozenset({"GM005"})
    assert config.exclude == ("testdata/**",)
    assert config.severity_of("GM004") is Severity.WARNING
    assert config.severity_of("GM002") is Severity.ERROR


BAD_CONFIGS = [
    ({"disable": ["GM999"]}, "'GM999'"),
    ({"disable": "GM003"}, "'GM003'"),
    ({"severity": {"GM004": "fatal"}}, "'fatal'"),
    ({"severity": {"XX1": "note"}}, "'XX1'"),
    ({"severity": "note"}, "'note'"),
    ({"exclude": [1]}, "[1]"),
    ({"ignore": ["GM001"]}, "'ignore'"),
]


@pytest.mark.parametrize(("data", "echoed"), BAD_CONFIGS)
def test_bad_configuration_echoes_the_bad_value(data: dict[str, object], echoed: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.toml")
    assert echoed in str(info.value) and "cfg.toml" in str(info.value), str(info.value)


def test_unreadable_or_invalid_toml(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("disable = [GM001\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


SUPPRESSIONS = [
    ("x  # modgate-ignore GM012\n", {1: {"GM012"}}),
    ("# modgate-ignore GM001, GM002 GM003\nx\n", {1: {"GM001", "GM002", "GM003"}}),
    ("// modgate-ignore: GM040\n", {1: {"GM040"}}),
    ("a\n# modgate-ignore\n", {2: {"*"}}),
    ("nothing here\n", {}),
]


@pytest.mark.parametrize(("text", "expected"), SUPPRESSIONS)
def test_suppression_comments(text: str, expected: dict[int, set[str]]) -> None:
    assert {k: set(v) for k, v in suppressions(text).items()} == expected


def _found(tmp_path: Path, text: str) -> list[tuple[str, int]]:
    (tmp_path / "ci.env").write_text(text)
    return [(f.rule, f.line) for f in scan(tmp_path).findings]


def test_suppression_on_the_line_or_the_line_before(tmp_path: Path) -> None:
    assert _found(tmp_path, BAD_ENV) == [("GM002", 1)]
    assert _found(tmp_path, "# modgate-ignore GM002\n" + BAD_ENV) == []
    assert _found(tmp_path, BAD_ENV.rstrip() + "  # modgate-ignore GM001 GM002\n") == []
    assert _found(tmp_path, "# modgate-ignore GM003\n" + BAD_ENV) == [("GM002", 2)]
    assert _found(tmp_path, "# modgate-ignore GM002\n\n" + BAD_ENV) == [("GM002", 3)]


def test_config_file_at_the_root_and_by_flag(tmp_path: Path) -> None:
    (tmp_path / "ci.env").write_text(BAD_ENV)
    (tmp_path / ".modgate-doctor.toml").write_text('[severity]\nGM002 = "note"\n')
    runner = CliRunner()
    result = runner.invoke(cli, ["doctor", "--format", "json", str(tmp_path)])
    assert result.exit_code == 0, result.output  # a note is below the default --fail-on
    assert '"severity": "note"' in result.output
    other = tmp_path / "other.toml"
    other.write_text('disable = ["GM002"]\n')
    result = runner.invoke(cli, ["doctor", "--config", str(other), str(tmp_path)])
    assert result.exit_code == 0 and "no findings" in result.output, result.output


def test_bad_config_file_is_a_usage_error_echoing_the_value(tmp_path: Path) -> None:
    (tmp_path / ".modgate-doctor.toml").write_text('[severity]\nGM002 = "fatal"\n')
    result = CliRunner().invoke(cli, ["doctor", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "'fatal'" in result.output and "GM002" in result.output


def test_exclude_globs(tmp_path: Path) -> None:
    (tmp_path / "third_party").mkdir()
    (tmp_path / "third_party" / "ci.env").write_text(BAD_ENV)
    (tmp_path / "ci.env").write_text(BAD_ENV)
    config = parse_config({"exclude": ["third_party"]}, "t")
    assert [f.file for f in scan(tmp_path, config).findings] == ["ci.env"]
