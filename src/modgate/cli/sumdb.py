"""``modgate sumdb``: keys for the private checksum database.

``modgate sumdb keygen --name NAME --out KEYFILE`` writes a new signer key
(``PRIVATE+KEY+NAME+HASH+KEY``) to KEYFILE, readable by its owner only, and
prints the verifier key (``NAME+HASH+KEY``) that developers put in GOSUMDB::

    GOSUMDB="NAME+HASH+KEY https://<modgate>/sumdb/NAME"

``modgate sumdb verifier --key KEYFILE`` prints the verifier key again.
The signer key is never printed or logged. Keep it (and the store) safe and
backed up: the log and its key belong together for their whole life, and a
new key for the same name makes every client that saw the old one fail.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import click

from modgate.formats.note import NoteError, Signer, generate_signer, parse_signer

KEY_FILE_MODE = 0o600
MAX_KEY_FILE = 4096
LOG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A log name: what follows /sumdb/ in its URL, so a host-like name."""


def load_signer(path: Path) -> Signer:
    """The signer key in ``path``; a usage error (without the key text) when unusable."""
    try:
        info = path.stat()
        if info.st_size > MAX_KEY_FILE:
            raise click.UsageError(f"--sumdb-key {str(path)!r} is not a key file (too large)")
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else "not ASCII"
        raise click.UsageError(f"cannot read --sumdb-key {str(path)!r}: {detail}") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise click.UsageError(
            f"--sumdb-key {str(path)!r} can be read by others; run: chmod 600 {path}"
        )
    try:
        signer = parse_signer(text)
    except NoteError as exc:
        raise click.UsageError(f"--sumdb-key {str(path)!r}: {exc}") from None
    if LOG_NAME.fullmatch(signer.name) is None:
        raise click.UsageError(
            f"--sumdb-key {str(path)!r} names the log {signer.name!r}; "
            "use a key whose name is a host name (letters, digits, '.', '-', '_')"
        )
    return signer


@click.group("sumdb")
def sumdb_command() -> None:
    """The private checksum database: keys (serve it with 'modgate serve --sumdb-key')."""


@sumdb_command.command("keygen")
@click.option(
    "--name",
    required=True,
    metavar="NAME",
    help="The log's name, usually modgate's host name (e.g. sumdb.corp.example.com).",
)
@click.option(
    "--out",
    "out",
    required=True,
    metavar="KEYFILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the signer key (mode 0600); must not exist.",
)
def keygen_command(name: str, out: Path) -> None:
    """Create a signer key; print the verifier key for GOSUMDB."""
    if LOG_NAME.fullmatch(name) is None:
        raise click.UsageError(
            f"invalid --name {name!r}: use a host name (letters, digits, '.', '-', '_')"
        )
    signer = generate_signer(name)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, KEY_FILE_MODE)
    except FileExistsError:
        raise click.UsageError(
            f"--out {str(out)!r} exists; keygen never replaces a key (a log keeps its key)"
        ) from None
    except OSError as exc:
        raise click.UsageError(f"cannot create --out {str(out)!r}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="ascii") as f:
        os.fchmod(f.fileno(), KEY_FILE_MODE)
        f.write(signer.signer_key() + "\n")
    click.echo(str(signer.verifier()))


@sumdb_command.command("verifier")
@click.option(
    "--key",
    "key",
    required=True,
    metavar="KEYFILE",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The signer key file of the private log (from keygen, the --sumdb-key of serve).",
)
def verifier_command(key: Path) -> None:
    """Print the verifier key of an existing private log again, for GOSUMDB."""
    click.echo(str(load_signer(key).verifier()))
