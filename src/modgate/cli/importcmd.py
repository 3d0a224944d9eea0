"""``modgate import``: fill a store from module caches and trees of module zips."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from tqdm import tqdm

from modgate.config import default_store
from modgate.metrics import Metrics
from modgate.protocol.errors import StoreError
from modgate.protocol.patterns import PatternList, parse_patterns
from modgate.service.importer import ImportReport, import_paths
from modgate.service.ingest import Ingest
from modgate.service.sumdbproxy import (
    DEFAULT_DATABASES,
    Database,
    SumdbProxy,
    parse_databases,
)
from modgate.service.sumverify import PublicChecker, SumVerifier
from modgate.sources.httpclient import make_client
from modgate.store.filesystem import FilesystemStore

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
MAX_CONNECTIONS = 8
CACHE_DOWNLOAD = ("cache", "download")

IMPORT_EPILOG = """\b
SOURCE is a module cache download directory (for example
$(go env GOMODCACHE)/cache/download), another modgate store, or any
directory tree of module zips (module and version are read from the zip's
<module>@<version>/ entry prefix). Each artifact is verified exactly as an
upstream fetch is: module zip rules, go.mod consistent with the .mod, h1
hash recorded, and for public modules (not matching --private) the hashes
of the checksum database --verify-sumdb (sum.golang.org by default). A
public version whose record cannot be fetched is refused and listed with
the reason; --verify-sumdb off imports without the database. Versions
already in the store are left alone, so import can be run again safely.

\b
Exit codes: 0 all imported or already present, 1 some artifacts refused
(listed on stdout) or a SOURCE with nothing to import, 2 usage error.
"""


@click.command("import", epilog=IMPORT_EPILOG)
@click.option(
    "--store",
    metavar="PATH",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MODGATE_STORE",
    help="Store directory [MODGATE_STORE or ~/.local/share/modgate/store].",
)
@click.option(
    "--private",
    metavar="PATTERNS",
    envvar="MODGATE_PRIVATE",
    default="",
    help="GOPRIVATE-style patterns of private modules (never looked up in a public database).",
)
@click.option(
    "--sumdb",
    metavar="NAME[+HASH+KEY][=URL],...",
    envvar="MODGATE_SUMDB",
    default=DEFAULT_DATABASES,
    show_default=True,
    help="Public checksum databases, as for serve.",
)
@click.option(
    "--verify-sumdb",
    metavar="NAME|off",
    envvar="MODGATE_VERIFY_SUMDB",
    default="",
    help="Verify public modules against this --sumdb database [the first with a known key].",
)
@click.option(
    "--ca-bundle",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="MODGATE_CA_BUNDLE",
    help="Extra PEM CA certificates for reaching the checksum database.",
)
@click.argument(
    "sources",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
def import_command(  # noqa: PLR0917 - one parameter per option, as click passes them
    store: Path | None,
    private: str,
    sumdb: str,
    verify_sumdb: str,
    ca_bundle: Path | None,
    sources: tuple[Path, ...],
) -> None:
    """Verify and import module versions from SOURCE directories into the store."""
    root = store or default_store()
    try:
        patterns = parse_patterns(private)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--private") from None
    try:
        databases = parse_databases(sumdb)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sumdb") from None
    keyed = [db.name for db in databases if db.verifier is not None]
    verify = verify_sumdb.strip() or (keyed[0] if keyed else "off")
    if verify != "off" and verify not in keyed:
        raise click.BadParameter(
            f"{verify!r}: use off or a --sumdb database with a known key "
            f"({', '.join(keyed) or 'none'})",
            param_hint="--verify-sumdb",
        )
    if str(root).startswith("s3:"):
        raise click.UsageError(
            "modgate import writes to a filesystem store; import into a directory, then copy "
            "it into the bucket (aws s3 sync DIR s3://BUCKET/PREFIX): the layout is the same"
        )
    try:
        target = FilesystemStore(root)
    except StoreError as exc:
        raise click.UsageError(f"cannot use --store {str(root)!r}: {exc.reason}") from exc
    if verify == "off":
        click.echo("import: public modules are not checked against a checksum database", err=True)
    report = asyncio.run(
        _import(
            target,
            sources,
            private=patterns,
            databases=databases,
            verify=verify,
            ca_bundle=ca_bundle,
        )
    )
    for subject, why in report.refused:
        click.echo(f"refused  {subject}: {why}")
    for path, why in report.unusable:
        click.echo(f"skipped  {path}: {why}")
    for empty in report.empty:
        click.echo(f"nothing to import in {empty}: {_expected(empty)}", err=True)
    click.echo(
        f"imported {report.stored}, already stored {report.already}, "
        f"refused {len(report.refused)}, skipped {len(report.unusable)} into {root}"
    )
    if report.refused or report.empty:
        sys.exit(1)


def _expected(folder: Path) -> str:
    download = folder.joinpath(*CACHE_DOWNLOAD)
    if download.is_dir():
        return f"this looks like a module cache root; import {download} instead"
    return (
        "expected a module cache's download folder ($(go env GOMODCACHE)/cache/download), "
        "a modgate store, or a tree of <module>/@v/<version>.zip files"
    )


async def _import(
    target: FilesystemStore,
    sources: tuple[Path, ...],
    *,
    private: PatternList,
    databases: tuple[Database, ...],
    verify: str,
    ca_bundle: Path | None,
) -> ImportReport:
    metrics = Metrics()
    client = make_client(
        ca_bundle=ca_bundle,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_connections=MAX_CONNECTIONS,
    )
    try:
        verifier = None
        if verify != "off":
            proxy = SumdbProxy(target, client, databases, metrics)
            database = proxy.database(verify)
            assert database is not None  # checked against the keyed names above
            public = PublicChecker(proxy, database, target, metrics)
            verifier = SumVerifier(metrics, private, public, None)
        ingest = Ingest(target, metrics, verifier)
        with tqdm(desc="importing", unit=" versions", file=sys.stderr, disable=None) as bar:
            try:
                return await import_paths(target, ingest, sources, lambda _item: bar.update(1))
            except StoreError as exc:
                click.echo(f"modgate import: {exc}", err=True)
                sys.exit(2)
    finally:
        await client.aclose()
