"""``modgate import``: fill a store from module caches and trees of module zips."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from modgate.config import default_store
from modgate.metrics import Metrics
from modgate.protocol.errors import StoreError
from modgate.service.importer import import_paths
from modgate.service.ingest import Ingest
from modgate.store.filesystem import FilesystemStore

IMPORT_EPILOG = """\b
SOURCE is a module cache download directory (for example
$(go env GOMODCACHE)/cache/download), another modgate store, or any
directory tree of module zips (module and version are read from the zip's
<module>@<version>/ entry prefix). Each artifact is verified exactly as an
upstream fetch is: module zip rules, go.mod consistent with the .mod, h1
hash recorded. Versions already in the store are left alone, so import can
be run again safely.

\b
Exit codes: 0 all imported or already present, 1 some artifacts refused
(listed on stdout), 2 usage error.
"""


@click.command("import", epilog=IMPORT_EPILOG)
@click.option(
    "--store",
    metavar="PATH",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MODGATE_STORE",
    help="Store directory [MODGATE_STORE or ~/.local/share/modgate/store].",
)
@click.argument(
    "sources",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
def import_command(store: Path | None, sources: tuple[Path, ...]) -> None:
    """Verify and import module versions from SOURCE directories into the store."""
    root = store or default_store()
    try:
        target = FilesystemStore(root)
    except StoreError as exc:
        raise click.UsageError(f"cannot use --store {str(root)!r}: {exc.reason}") from exc
    ingest = Ingest(target, Metrics())
    with tqdm(desc="importing", unit=" versions", file=sys.stderr, disable=None) as bar:

        def progress(item: str) -> None:
            bar.update(1)

        try:
            report = import_paths(target, ingest, sources, progress)
        except StoreError as exc:
            click.echo(f"modgate import: {exc}", err=True)
            sys.exit(2)
    for subject, why in report.refused:
        click.echo(f"refused  {subject}: {why}")
    for path, why in report.unusable:
        click.echo(f"skipped  {path}: {why}")
    click.echo(
        f"imported {report.stored}, already stored {report.already}, "
        f"refused {len(report.refused)}, skipped {len(report.unusable)} into {root}"
    )
    if report.refused:
        sys.exit(1)
