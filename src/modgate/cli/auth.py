"""``modgate auth check``: which rule lets an identity read a module, or why none does."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from modgate.config import ConfigError, resolve
from modgate.protocol.errors import ModgateError
from modgate.protocol.grants import AccessPolicy
from modgate.protocol.identity import Identity, IdentityKind, token_identity
from modgate.protocol.module import check_path
from modgate.server.auth.setup import load_tokens
from modgate.server.auth.tokens import TokenFileError

CHECK_EPILOG = """\b
IDENTITY is one of:
  token:NAME          a modgate token of the tokens file
  ISSUER:SUBJECT      an OIDC identity: a configured issuer's name and the
                      token's 'sub' (add its claims with --claim)
  anonymous           a client without credentials

\b
Examples:
  modgate auth check --config modgate.toml token:ci-app corp.example.com/app
  modgate auth check --config modgate.toml \\
      github:repo:corp/app:ref:refs/heads/main corp.example.com/lib \\
      --claim repository=corp/app --claim repository_owner=corp
  modgate auth check --config modgate.toml \\
      k8s:system:serviceaccount:build:builder corp.example.com/lib \\
      --claim kubernetes.io/namespace=build

Exit codes: 0 allowed, 1 denied (or credentials needed), 2 usage error.
"""


@click.group("auth")
def auth_command() -> None:
    """Inspect authentication and read grants."""


def _identity(
    text: str, claims: tuple[str, ...], tokens: Path | None, issuers: list[str]
) -> Identity:
    if text == "anonymous":
        raise LookupError
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise click.UsageError(f"IDENTITY {text!r}: use token:NAME, ISSUER:SUBJECT or anonymous")
    if kind == "token":
        try:
            table = load_tokens(tokens)
        except TokenFileError as exc:
            raise click.UsageError(str(exc)) from None
        now = time.time()
        found = [r for r in table.by_hash.values() if r.name == rest]
        active = [r for r in found if r.status(now) == "active"]
        if not active:
            state = found[0].status(now) if found else "not in the tokens file"
            click.echo(f"deny   {text}: the token is {state}; it authenticates nobody")
            sys.exit(1)
        return token_identity(rest, active[0].read)
    if kind not in issuers:
        raise click.UsageError(
            f"IDENTITY {text!r}: {kind!r} is neither 'token' nor a configured issuer "
            f"({', '.join(issuers) or 'no [[auth.issuers]] configured'})"
        )
    pairs: dict[str, list[str]] = {}
    for claim in claims:
        name, eq, value = claim.partition("=")
        if not eq or not name:
            raise click.UsageError(f"--claim {claim!r}: use NAME=VALUE")
        pairs.setdefault(name, []).append(value)
    return Identity(
        IdentityKind.OIDC,
        rest,
        issuer=kind,
        claims=tuple(sorted((k, tuple(v)) for k, v in pairs.items())),
    )


@auth_command.command("check", epilog=CHECK_EPILOG)
@click.option(
    "--config",
    "config_file",
    required=True,
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The TOML file modgate serve uses ([serve] private patterns, [auth] grants).",
)
@click.option("--tokens", metavar="FILE", help="Token file (default: the configuration's).")
@click.option(
    "--claim",
    "claims",
    multiple=True,
    metavar="NAME=VALUE",
    help="A claim of an OIDC identity (repeatable; nested claims as a/b).",
)
@click.argument("identity")
@click.argument("module")
def check_command(
    config_file: Path, tokens: str | None, claims: tuple[str, ...], identity: str, module: str
) -> None:
    """Explain whether IDENTITY may read MODULE, and which rule decides."""
    try:
        settings = resolve({"tokens": tokens}, os.environ, config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    path = module.partition("@")[0]
    try:
        check_path(path)
    except ModgateError as exc:
        raise click.UsageError(f"MODULE {module!r}: {exc}") from None
    auth = settings.auth
    if auth is None:
        click.echo(
            f"allow  {path}: authentication is off in {config_file}: every client reads "
            "every module"
        )
        return
    policy = AccessPolicy(settings.private, auth.grants, auth.anonymous)
    try:
        who: Identity | None = _identity(
            identity, claims, auth.tokens, [i.name for i in auth.issuers]
        )
    except LookupError:
        who = None
    decision = policy.decide(who, path)
    label = {"allow": "allow ", "deny": "deny  ", "challenge": "deny  "}[decision.outcome.value]
    status = {"allow": "200", "deny": "403", "challenge": "401"}[decision.outcome.value]
    click.echo(f"{label} {who or 'anonymous'} -> {path} (HTTP {status}, rule {decision.rule})")
    click.echo(f"  {decision.why}")
    if not decision.allowed:
        sys.exit(1)
