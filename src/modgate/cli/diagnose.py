"""``modgate diagnose``: explain a failed CI, docker build or go log."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import BinaryIO

import click

from modgate.diagnose import diagnose_report, render_json, render_text

STDIN = "-"
EXIT_CLEAN = 0
EXIT_FINDINGS = 1

DIAGNOSE_EPILOG = """\b
LOG is a file, or '-' (the default) for standard input. CI prefixes
(GitHub Actions, GitLab CI, Jenkins timestamps), BuildKit and docker build
step output, and ANSI colors are understood. Each distinct failure is
reported with its cause (a stable identifier, see docs/diagnose.md), the
module@version involved, the evidence lines, a fix and a confidence, most
likely root cause first; a failure that follows from an earlier one (a
fallback after a TLS or proxy error) is ranked after it and the text
report explains the chain. A log whose build failed for another reason
(a compile error, go vet, a failing test) reports "no module failure
found" and names that kind of failure.

\b
Exit codes: 0 no module failure found (even if the build failed for
another reason), 1 module failures found, 2 usage error (for example an
unreadable LOG).
"""


def _use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def _open(log: str) -> BinaryIO:
    if log == STDIN:
        return sys.stdin.buffer
    try:
        return Path(log).open("rb")
    except OSError as exc:
        raise click.UsageError(f"cannot read LOG {log!r}: {exc.strerror}") from exc


@click.command("diagnose", epilog=DIAGNOSE_EPILOG)
@click.argument(
    "log",
    required=False,
    default=STDIN,
    type=click.Path(dir_okay=False, allow_dash=True),
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Report format; json is a list of {cause, module, evidence, fix, confidence}.",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Color the text report (auto: on a terminal, unless NO_COLOR is set).",
)
def diagnose_command(log: str, output_format: str, color: str) -> None:
    """Explain why the build in LOG failed: causes, modules, evidence and fixes."""
    stream = _open(log)
    try:
        report = diagnose_report(stream)
    except OSError as exc:
        raise click.UsageError(f"cannot read LOG {log!r}: {exc.strerror or exc}") from exc
    finally:
        if log != STDIN:
            stream.close()
    findings = report.findings
    if output_format == "json":
        click.echo(render_json(findings))
    else:
        text = render_text(findings, color=_use_color(color), others=report.others)
        click.echo(text, color=True)
    sys.exit(EXIT_FINDINGS if findings else EXIT_CLEAN)
