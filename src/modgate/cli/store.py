"""``modgate store backup|restore``: copies of a store that keep the private checksum log sound."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from modgate.config import default_store
from modgate.protocol.errors import StoreError
from modgate.service.backup import BackupError, backup, restore
from modgate.store.filesystem import FilesystemStore

STORE_EPILOG = """\b
A backup is a tar archive (gzip when the name ends in .gz) of the store's
artifacts and modgate's state, with each private checksum log captured at
a consistent tree head. Git mirrors are left out unless --include-git
(they are fetched again on demand). Backups can be taken while modgate
serves; restore into a stopped modgate.

\b
restore never moves a private checksum log backwards: if the store's log
is ahead of the backup's, was signed with another key, or forked, it
refuses, because every go command that saw the newer tree would then fail
with 'SECURITY ERROR' until its $GOPATH/pkg/sumdb/<name>/ is removed.
--force restores anyway and prints what clients must do. Artifacts already
in the store are never overwritten; one with other bytes is a conflict
(exit 1).

\b
Examples:
    modgate store backup --store /var/lib/modgate/store /backup/modgate-$(date +%F).tar.gz
    systemctl stop modgate
    modgate store restore --store /var/lib/modgate/store /backup/modgate-2026-12-01.tar.gz
"""

STORE_OPTION = click.option(
    "--store",
    metavar="PATH",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MODGATE_STORE",
    help="Store directory [MODGATE_STORE or ~/.local/share/modgate/store].",
)


def _open(store: Path | None) -> FilesystemStore:
    root = store or default_store()
    if str(root).startswith("s3:"):
        raise click.UsageError(
            "modgate store works on a filesystem store; back up an s3:// store with the "
            "object store's own tools (bucket versioning, replication, aws s3 sync)"
        )
    try:
        return FilesystemStore(root)
    except StoreError as exc:
        raise click.UsageError(f"cannot use --store {str(root)!r}: {exc.reason}") from exc


@click.group("store", epilog=STORE_EPILOG)
def store_command() -> None:
    """Back up and restore a store."""


@store_command.command("backup")
@STORE_OPTION
@click.option("--include-git", is_flag=True, help="Also back up the git mirrors of 'direct'.")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(store: Path | None, include_git: bool, out: Path) -> None:
    """Write a backup of the store to OUT (.tar or .tar.gz)."""
    target = _open(store)
    with tqdm(desc="backing up", unit=" files", file=sys.stderr, disable=None) as bar:
        try:
            manifest = backup(
                target, out, include_git=include_git, progress=lambda _name: bar.update(1)
            )
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
    logs = manifest["logs"]
    click.echo(f"backed up {manifest['files']} files to {out}")
    for name, log in sorted(logs.items()):
        size = log["tree"]["size"] if log["tree"] else 0
        click.echo(f"private log {name}: {size} records, verifier {log['verifier']}")


@store_command.command("restore")
@STORE_OPTION
@click.option(
    "--force",
    is_flag=True,
    help="Restore even if a private checksum log would move backwards (clients must then reset).",
)
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore_command(store: Path | None, force: bool, source: Path) -> None:
    """Restore the backup SOURCE into the store (stop modgate first)."""
    target = _open(store)
    with tqdm(desc="restoring", unit=" files", file=sys.stderr, disable=None) as bar:
        try:
            report = restore(target, source, force=force, progress=lambda _name: bar.update(1))
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"restored {report.written} files, {report.unchanged} already identical")
    for forced in report.forced:
        click.echo(f"forced: {forced}", err=True)
    if report.conflicts:
        for relative in report.conflicts:
            click.echo(f"conflict: {relative} exists with other bytes; kept the store's", err=True)
        sys.exit(1)
