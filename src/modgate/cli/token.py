"""``modgate token create|list|revoke``: modgate's own tokens, kept as hashes in a file."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from modgate.protocol.patterns import PatternList, parse_patterns
from modgate.server.auth.tokens import TokenFile, TokenFileError, format_time, parse_duration

TOKENS_OPTION = click.option(
    "--tokens",
    "tokens_file",
    required=True,
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The token file (created with mode 0600 if missing); 'modgate serve --tokens' reads it.",
)


@click.group("token")
def token_command() -> None:
    """Create, list and revoke modgate tokens.

    A token is printed once, by 'create'; the file keeps only its SHA-256.
    Clients send it as the password of Basic auth (a .netrc line, any login)
    or as 'Authorization: Bearer' (GOAUTH, 'modgate goauth'). A running
    'modgate serve --tokens FILE' picks up changes within seconds (or at
    once on SIGHUP).
    """


@token_command.command("create")
@TOKENS_OPTION
@click.option("--name", required=True, help="Unique name; shown in logs, audit and 403 answers.")
@click.option(
    "--read",
    "read",
    metavar="PATTERNS",
    help=(
        "GOPRIVATE patterns of the private modules this token may read (public modules stay "
        "readable); '' for public modules only. Without --read: every module."
    ),
)
@click.option(
    "--expires",
    metavar="DURATION",
    help="Lifetime such as 90d, 12h or 1h30m (units s, m, h, d, w). Default: no expiry.",
)
def create_command(tokens_file: Path, name: str, read: str | None, expires: str | None) -> None:
    """Create a token and print it on stdout, once.

    \b
    Example:
      modgate token create --tokens /etc/modgate/tokens --name ci-app \\
          --read 'corp.example.com/app,corp.example.com/lib' --expires 90d
    """
    patterns: PatternList | None = None
    if read is not None:
        try:
            patterns = parse_patterns(read)
        except ValueError as exc:
            raise click.UsageError(f"invalid --read value {read!r}: {exc}") from None
    now = time.time()
    lifetime = None
    if expires is not None:
        try:
            lifetime = parse_duration(expires)
        except ValueError as exc:
            raise click.UsageError(f"invalid --expires value: {exc}") from None
    try:
        secret, record = TokenFile(tokens_file).create(
            name, patterns, None if lifetime is None else now + lifetime, now
        )
    except TokenFileError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(secret)
    scope = (
        "every module"
        if record.read is None
        else f"public modules and {record.read or 'no private module'}"
    )
    until = "never" if record.expires is None else format_time(record.expires)
    click.echo(
        f"token {name!r} created: reads {scope}; expires {until}. It is shown only now: "
        "store it in a secret store or .netrc (machine HOST:PORT login token password TOKEN).",
        err=True,
    )


@token_command.command("list")
@TOKENS_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def list_command(tokens_file: Path, fmt: str) -> None:
    """List the tokens of FILE (names, scopes, dates, status; never a secret)."""
    try:
        records = TokenFile(tokens_file).load()
    except TokenFileError as exc:
        raise click.UsageError(str(exc)) from None
    now = time.time()
    if fmt == "json":
        rows = []
        for r in records:
            rows.append(
                {
                    "name": r.name,
                    "read": None if r.read is None else str(r.read),
                    "created": format_time(r.created),
                    "expires": None if r.expires is None else format_time(r.expires),
                    "revoked": None if r.revoked is None else format_time(r.revoked),
                    "status": r.status(now),
                }
            )
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    if not records:
        click.echo(f"no tokens in {tokens_file}")
        return
    header = ("NAME", "STATUS", "CREATED", "EXPIRES", "READ")
    table = [header]
    for r in records:
        table.append(
            (
                r.name,
                r.status(now),
                format_time(r.created),
                "-" if r.expires is None else format_time(r.expires),
                "*" if r.read is None else (str(r.read) or "(public only)"),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]))


@token_command.command("revoke")
@TOKENS_OPTION
@click.argument("name")
def revoke_command(tokens_file: Path, name: str) -> None:
    """Revoke the token NAME (kept in the file, marked revoked). Exit 1 if there is none."""
    try:
        count = TokenFile(tokens_file).revoke(name, time.time())
    except TokenFileError as exc:
        raise click.UsageError(str(exc)) from None
    if not count:
        click.echo(f"no active token named {name!r} in {tokens_file}", err=True)
        sys.exit(1)
    click.echo(
        f"token {name!r} revoked; a running modgate stops accepting it within seconds", err=True
    )
