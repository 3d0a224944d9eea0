"""``modgate doctor``: find what will break ``go mod download`` in a repository."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from modgate.doctor.catalog import DOCS_BASE_URI, RULES
from modgate.doctor.config import ConfigError, DoctorConfig, find_config, load_config
from modgate.doctor.env.envcheck import EnvOptions
from modgate.doctor.findings import Finding, Severity
from modgate.doctor.output.render import render_json, render_text
from modgate.doctor.output.sarif import render_sarif
from modgate.doctor.scan import ScanResult, scan

FORMATS = ("text", "json", "sarif")
COLOR_CHOICES = ("auto", "always", "never")
DEFAULT_PROBE_TIMEOUT = 5.0

DOCTOR_EPILOG = """\b
PATH is a repository (default: the current directory) or one file. doctor
reads Dockerfiles and .dockerignore, GitHub Actions workflows, GitLab CI
files, Jenkinsfiles, Kubernetes manifests, shell scripts, env files and
go.mod, and reports settings that make the go command fail. --env also
checks this machine: the effective go env, cache directories, and every
GOPROXY entry and the checksum database, probed with a timeout.

\b
Silence a finding with a comment on its line or the line before:
    # modgate-ignore GM012
Configure rules in .modgate-doctor.toml at PATH, or with --config:
    disable = ["GM005"]
    [severity]
    GM004 = "warning"

\b
Exit codes: 0 no findings at or above --fail-on, 1 findings at or above
--fail-on, 2 usage error (bad path, flag or configuration file).
"""


def _config(root: Path, config_file: Path | None) -> DoctorConfig:
    return load_doctor_config(config_file or find_config(root if root.is_dir() else root.parent))


def load_doctor_config(path: Path | None) -> DoctorConfig:
    """The rule configuration in ``path`` (the defaults for None); a bad file is a usage error."""
    if path is None:
        return DoctorConfig()
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def _use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _list_rules() -> str:
    return "".join(f"{r.id}  {r.severity.label:<7}  {r.summary}\n" for r in RULES.values())


def _env_header(result: ScanResult) -> str:
    if result.go_env is None:
        return ""
    env = result.go_env
    names = ("GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOFLAGS",
             "GOTOOLCHAIN", "GOMODCACHE", "GOCACHE")  # fmt: skip
    lines = [f"go env ({env.source}):"]
    lines += [f"  {name}={env.get(name)}" for name in names]
    return "\n".join(lines) + "\n\n"


@click.command("doctor", epilog=DOCTOR_EPILOG)
@click.argument(
    "path",
    required=False,
    default=".",
    type=click.Path(exists=True, path_type=Path),
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Output format: text for people, json, or SARIF 2.1.0 for code scanning.",
)
@click.option(
    "--fail-on",
    type=click.Choice([s.label for s in sorted(Severity, reverse=True)]),
    default="warning",
    show_default=True,
    help="Exit 1 when a finding has this severity or a higher one.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Configuration file [default: PATH/.modgate-doctor.toml].",
)
@click.option("--env", "check_env", is_flag=True, help="Also check this machine's go environment.")
@click.option(
    "--private",
    multiple=True,
    metavar="PATTERNS",
    help="With --env: GOPRIVATE-style patterns of modules that are private (repeatable).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_PROBE_TIMEOUT,
    show_default=True,
    help="With --env: seconds to wait for each proxy before calling it hung.",
)
@click.option(
    "--color",
    type=click.Choice(COLOR_CHOICES),
    default="auto",
    show_default=True,
    help="Color text output (auto: when stdout is a terminal and NO_COLOR is unset).",
)
@click.option(
    "--docs-uri",
    default=DOCS_BASE_URI,
    metavar="URI",
    help=(
        "Base URI where the docs/rules/ pages are published (for example your internal "
        "copy of this repository), linked from SARIF helpUri."
    ),
)
@click.option("--list-rules", is_flag=True, help="Print every rule and exit.")
def doctor_command(
    *,
    path: Path,
    output_format: str,
    fail_on: str,
    config_file: Path | None,
    check_env: bool,
    private: tuple[str, ...],
    timeout: float,
    color: str,
    docs_uri: str,
    list_rules: bool,
) -> None:
    """Find what will break go mod download in a repository."""
    if list_rules:
        click.echo(_list_rules(), nl=False)
        return
    config = _config(path, config_file)
    env_options = None
    if check_env:
        patterns = tuple(p for value in private for p in value.split(",") if p.strip())
        env_options = EnvOptions(dict(os.environ), patterns, timeout)
    result = scan(path, config, env_options)
    for skipped in result.skipped:
        click.echo(f"modgate doctor: skipped {skipped}", err=True)
    if result.templates_unread:
        click.echo(
            f"modgate doctor: {result.templates_unread} of {result.templates} templated YAML "
            "files (Helm and other {{ }} templates) are not YAML until rendered; their settings "
            "are unknown",
            err=True,
        )
    findings: list[Finding] = result.findings
    if output_format == "json":
        click.echo(render_json(findings), nl=False)
    elif output_format == "sarif":
        click.echo(render_sarif(findings, docs_uri), nl=False)
    else:
        text = _env_header(result) + render_text(findings, result.files, color=_use_color(color))
        click.echo(text, nl=False, color=_use_color(color))
    threshold = Severity.parse(fail_on)
    if any(f.severity >= threshold for f in findings):
        sys.exit(1)
