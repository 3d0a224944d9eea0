"""``modgate verify [DIR]``: the CI precheck of a project's go.mod and go.sum.

Checks against modgate (``--proxy``, default: the first http(s) entry of
GOPROXY) and the checksum database (``--sumdb``, default: GOSUMDB, reached
through the proxy's ``/sumdb/<name>/`` unless it names a URL); see
``service/projectcheck.py`` for the rules. When DIR is in a git work tree,
a go.sum that differs from ``--base`` (default HEAD) while go.mod does not
is reported too.

Exit codes: 0 clean, 1 findings, 2 usage or environment errors (no go.mod,
no proxy, a proxy or database that cannot be reached).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from modgate import __version__
from modgate.formats.gosumdb import GoSumDBError, parse_gosumdb
from modgate.formats.sarif import SarifResult, SarifRule, render, sarif_log
from modgate.protocol.errors import ModgateError, UpstreamError
from modgate.protocol.goproxy import EntryKind, parse_goproxy
from modgate.protocol.patterns import PatternList, parse_patterns
from modgate.service.projectcheck import (
    GO_MOD,
    GO_SUM,
    RULES,
    CheckOptions,
    ProjectChecker,
    Report,
    VerifyFinding,
)
from modgate.service.sumdbproxy import Database
from modgate.sources.httpclient import make_client

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ENVIRONMENT = 2
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
MAX_CONNECTIONS = 16
DEFAULT_GOSUMDB = "sum.golang.org"
GIT_TIMEOUT = 60


def default_proxy(goproxy: str | None) -> str:
    """The first http(s) entry of GOPROXY; a usage error when there is none."""
    if not goproxy:
        raise click.UsageError("no --proxy and GOPROXY is not set; point it at modgate")
    try:
        entries = parse_goproxy(goproxy).entries
    except ValueError as exc:
        raise click.UsageError(f"invalid GOPROXY {goproxy!r}: {exc}") from None
    for entry in entries:
        if entry.kind is EntryKind.URL and entry.url and entry.url.startswith("http"):
            return entry.url
    raise click.UsageError(f"GOPROXY {goproxy!r} has no http(s) proxy; pass --proxy")


def database_for(gosumdb: str, proxy: str) -> Database | None:
    """The database GOSUMDB names (None for off), reached through ``proxy`` without a URL."""
    try:
        sumdb = parse_gosumdb(gosumdb)
    except GoSumDBError as exc:
        raise click.UsageError(f"--sumdb {gosumdb!r}: {exc}") from None
    if sumdb is None:
        return None
    url = sumdb.url or f"{proxy.rstrip('/')}/sumdb/{sumdb.name}"
    return Database(sumdb.name, url.rstrip("/"), sumdb.verifier)


def git_findings(directory: Path, base: str, explicit: bool) -> list[VerifyFinding]:
    """``gosum-without-gomod`` when DIR is in a git work tree; nothing otherwise."""

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )

    try:
        inside = git("rev-parse", "--is-inside-work-tree")
    except (OSError, subprocess.TimeoutExpired) as exc:
        if explicit:
            raise click.UsageError(f"--base {base!r} needs git: {exc}") from None
        return []
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        if explicit:
            raise click.UsageError(f"--base {base!r}: {directory} is not in a git work tree")
        return []
    diff = git("diff", "--name-only", "--relative", base, "--", GO_MOD, GO_SUM)
    if diff.returncode != 0:
        if explicit:
            raise click.UsageError(
                f"git diff against --base {base!r} failed: {diff.stderr.strip()}"
            )
        return []  # a repository without commits yet
    changed = set(diff.stdout.split())
    if GO_SUM in changed and GO_MOD not in changed:
        return [
            VerifyFinding(
                "gosum-without-gomod",
                GO_SUM,
                None,
                f"go.sum differs from {base} but go.mod does not: review every changed hash "
                "(a new hash for a version already listed means different content)",
            )
        ]
    return []


async def _check(directory: Path, options: CheckOptions) -> Report:
    gomod = (directory / GO_MOD).read_bytes()
    gosum_path = directory / GO_SUM
    gosum = gosum_path.read_text(encoding="utf-8", errors="replace") if gosum_path.exists() else ""
    client = make_client(
        ca_bundle=None,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_connections=MAX_CONNECTIONS,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="modgate-verify-") as scratch:
            return await ProjectChecker(client, options, Path(scratch)).run(gomod, gosum)
    finally:
        await client.aclose()


def render_text(report: Report, directory: Path) -> str:
    out = []
    for f in report.findings:
        where = f"{directory / f.file}" + (f":{f.line}" if f.line else "")
        out.append(f"{where}: {f.level} {f.rule}: {f.message}")
    if report.findings:
        errors = sum(1 for f in report.findings if f.level == "error")
        out.append(
            f"modgate verify: {len(report.findings)} findings "
            f"({errors} errors, {len(report.findings) - errors} warnings) in {directory}"
        )
    else:
        out.append(
            f"modgate verify: {directory} is clean ({report.lines} go.sum lines, "
            f"{report.modules} module versions in the graph)"
        )
    return "\n".join(out)


def render_json(report: Report, directory: Path) -> str:
    return json.dumps(
        {
            "dir": str(directory),
            "clean": not report.findings,
            "lines": report.lines,
            "modules": report.modules,
            "findings": [
                {
                    "rule": f.rule,
                    "level": f.level,
                    "file": f.file,
                    "line": f.line,
                    "subject": f.subject,
                    "message": f.message,
                }
                for f in report.findings
            ],
        },
        indent=2,
    )


def render_sarif(report: Report, directory: Path) -> str:
    """SARIF with file URIs relative to DIR (``%SRCROOT%``), like doctor's."""
    rules = [SarifRule(rule, level, text) for rule, (level, text) in RULES.items()]
    results = [
        SarifResult(f.rule, f.level, f.message, f.file, f.line or 0) for f in report.findings
    ]
    return render(sarif_log("modgate verify", __version__, rules, results))


RENDERERS = {"text": render_text, "json": render_json, "sarif": render_sarif}

VERIFY_EPILOG = """\b
Exit codes: 0 clean, 1 findings, 2 usage or environment errors.

\b
Examples:
  modgate verify --proxy http://modgate:8080
  GOPROXY=http://modgate:8080 modgate verify --format sarif --base origin/main > verify.sarif
"""


@click.command("verify", epilog=VERIFY_EPILOG)
@click.argument(
    "directory",
    required=False,
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option("--proxy", metavar="URL", help="modgate's URL [the first http(s) entry of GOPROXY].")
@click.option(
    "--sumdb",
    metavar="GOSUMDB",
    help=(
        "Checksum database as in GOSUMDB: off, NAME or NAME+HASH+KEY [URL] "
        "[GOSUMDB or sum.golang.org]."
    ),
)
@click.option(
    "--private",
    metavar="PATTERNS",
    help="Modules checked against the proxy instead of the database [GONOSUMDB or GOPRIVATE].",
)
@click.option("--base", metavar="REF", help="git revision go.sum changes are compared with [HEAD].")
@click.option(
    "--format",
    "output",
    type=click.Choice(sorted(RENDERERS)),
    default="text",
    show_default=True,
    help="Output format.",
)
def verify_command(  # noqa: PLR0917 - one parameter per option, as click passes them
    directory: Path,
    proxy: str | None,
    sumdb: str | None,
    private: str | None,
    base: str | None,
    output: str,
) -> None:
    """Check go.mod and go.sum in DIRECTORY against modgate and the checksum database."""
    if not (directory / GO_MOD).is_file():
        raise click.UsageError(f"no {GO_MOD} in {directory}")
    proxy_url = proxy or default_proxy(os.environ.get("GOPROXY"))
    database = database_for(sumdb or os.environ.get("GOSUMDB") or DEFAULT_GOSUMDB, proxy_url)
    patterns_text = private
    if patterns_text is None:
        patterns_text = os.environ.get("GONOSUMDB") or os.environ.get("GOPRIVATE") or ""
    try:
        patterns: PatternList = parse_patterns(patterns_text)
    except ValueError as exc:
        raise click.UsageError(f"invalid --private {patterns_text!r}: {exc}") from None
    try:
        report = asyncio.run(_check(directory, CheckOptions(proxy_url, database, patterns)))
    except (UpstreamError, OSError, ModgateError) as exc:
        click.echo(f"modgate verify: {exc}", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    report.findings.extend(git_findings(directory, base or "HEAD", explicit=base is not None))
    click.echo(RENDERERS[output](report, directory))
    sys.exit(EXIT_FINDINGS if report.findings else EXIT_CLEAN)
