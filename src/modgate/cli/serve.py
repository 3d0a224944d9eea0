"""``modgate serve``: the composition root of the proxy.

Wiring, from the bottom up: the filesystem store; one shared HTTP client
(pooling, proxies from the environment, CA bundle); one source per GOPROXY
entry (upstream proxy, file://, direct, off) in a chain with the go
command's fall-through rules; the router that sends --private modules only
to direct; the gateway (singleflight, TTLs, stale-if-error, verification);
the HTTP server with its hot set in front.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit
from urllib.request import url2pathname

import click

from modgate.cli.jsonlog import setup as setup_logging
from modgate.cli.serve_auth import build_access, warn_if_open
from modgate.cli.sumdb import load_signer
from modgate.config import ConfigError, ServeSettings, describe, offline_chain, resolve
from modgate.formats.zipentry import InflateMemo
from modgate.metrics import Metrics
from modgate.protocol.errors import StoreError
from modgate.protocol.goproxy import EntryKind
from modgate.server.app import run_server
from modgate.server.forwarded import TrustedProxies
from modgate.server.runtime_metrics import (
    certificate_collector,
    declare_build_info,
    process_collector,
    store_collector,
)
from modgate.server.settings import ServerSettings
from modgate.server.tls import TlsCertificate, TlsError
from modgate.service.gateway import Gateway, GatewayOptions
from modgate.service.routing import ChainEntry, OffSource, SourceRouter
from modgate.service.security import declare_security_events
from modgate.service.sumdb import SumdbGateway
from modgate.service.sumdbproxy import SumdbProxy
from modgate.service.sumlog import SumLog
from modgate.service.sumverify import PublicChecker, SumVerifier
from modgate.sources.base import Source
from modgate.sources.direct import DirectSource
from modgate.sources.fileproxy import FileProxy
from modgate.sources.hostguard import HostGuard
from modgate.sources.httpclient import make_client
from modgate.sources.upstream import UpstreamProxy
from modgate.store.base import Store
from modgate.store.diskcache import CachedStore
from modgate.store.filesystem import STATE_DIR, FilesystemStore
from modgate.store.locking import Locks, ProcessLocks
from modgate.store.redislease import RedisLocks
from modgate.store.redisrefusals import RedisRefusals
from modgate.store.s3 import S3Store
from modgate.store.s3 import parse_url as parse_s3_url

log = logging.getLogger("modgate.serve")
MAX_UPSTREAM_CONNECTIONS = 100
GIT_MIRRORS_DIR = "git"
"""Folder of the direct source's git mirrors, under the store's state folder."""
CACHE_DIR = "cache"
"""Folder of an object store's local disk cache, under its local directory."""


def open_locks(settings: ServeSettings, metrics: Metrics) -> RedisLocks | None:
    """The Redis leases of an object store given --redis (their link also shares refusals)."""
    if not settings.redis:
        return None
    if not settings.store_url:
        log.warning(
            "--redis is used with --store s3:// only; a filesystem store's file locks "
            "coordinate the processes that share its filesystem",
            extra={"event": "config_notice"},
        )
        return None
    namespace = f"modgate:{settings.store_url}"
    locks = RedisLocks(settings.redis, namespace, metrics, lease_seconds=settings.redis_lease)
    reason = locks.ping()
    if reason is not None:
        log.warning("starting with per-process coordination: %s", reason)
    return locks


def open_store(settings: ServeSettings, locks: Locks | None) -> Store:
    """The filesystem store, or an object store behind its local disk cache."""
    if not settings.store_url:
        return FilesystemStore(settings.store)
    bucket, prefix = parse_s3_url(settings.store_url)
    remote = S3Store(bucket, prefix, settings.store, locks=locks or ProcessLocks())
    unreachable = remote.check()  # a missing bucket or refused credentials stop the start
    if unreachable is not None:
        log.warning("starting without the object store: %s", unreachable)
    return CachedStore(remote, remote.root / CACHE_DIR, settings.store_cache_bytes)


def build_gateway(settings: ServeSettings, metrics: Metrics) -> Gateway:
    locks = open_locks(settings, metrics)
    store = open_store(settings, locks)
    client = make_client(
        ca_bundle=settings.ca_bundle,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.upstream_timeout,
        max_connections=MAX_UPSTREAM_CONNECTIONS,
    )
    # What zips built from git inflate to, learnt while building them: their check
    # then hashes the compressed bytes instead of inflating them again.
    inflated = InflateMemo()
    # direct mode reaches only public hosts, the ones the operator allowed, and
    # the hosts of the operator's own --git-rewrite URLs; go-get discovery has a
    # client of its own that connects only to the addresses the guard checked
    guard = HostGuard.trusting_urls(
        settings.direct_allow_hosts, (url for _, url in settings.git_rewrite), metrics=metrics
    )
    discovery = make_client(
        ca_bundle=settings.ca_bundle,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.upstream_timeout,
        max_connections=MAX_UPSTREAM_CONNECTIONS,
        guard=guard,
    )
    direct = DirectSource(
        settings.store / STATE_DIR / GIT_MIRRORS_DIR,
        rewrites=dict(settings.git_rewrite),
        timeout=settings.git_timeout,
        client=discovery,
        guard=guard,
        inflated=inflated,
        metrics=metrics,
    )
    chain: list[ChainEntry] = []
    for entry in settings.upstream.entries:
        source: Source
        if entry.kind is EntryKind.DIRECT:
            source = direct
        elif entry.kind is EntryKind.OFF:
            source = OffSource()
        elif entry.url is not None and entry.url.startswith("file://"):
            source = FileProxy(Path(url2pathname(urlsplit(entry.url).path)))
        else:
            assert entry.url is not None
            source = UpstreamProxy(entry.url, client, metrics, retries=settings.upstream_retries)
        chain.append(ChainEntry(source, entry.fall_through_on_any_error))
        metrics.declare("modgate_verification_failures_total", (("source", source.name),))
    # a chain with no network source sends nothing out: --private modules are then
    # served from the store too, unless the operator named their repositories
    private_source: Source = direct
    if offline_chain(settings.upstream) and not settings.git_rewrite:
        private_source = OffSource()
    router = SourceRouter(tuple(chain), private_source, settings.private)
    options = GatewayOptions(
        list_ttl=settings.list_ttl,
        negative_ttl=settings.negative_ttl,
        list_max_age=int(settings.list_ttl),
        redirect_expiry=settings.s3_redirect_expiry,
        prefetch_zips=settings.prefetch_zips,
        remote_locks=locks is not None,
    )
    # checksum databases: the public ones proxied (and used to verify public
    # modules before they are stored), and the private log every stored version
    # is recorded in
    proxy = SumdbProxy(store, client, settings.sumdb, metrics) if settings.sumdb else None
    signer = load_signer(settings.sumdb_key) if settings.sumdb_key is not None else None
    sumlog = SumLog(store, signer, metrics) if signer is not None else None
    database = proxy.database(settings.verify_sumdb or "") if proxy is not None else None
    public = PublicChecker(proxy, database, store, metrics) if proxy and database else None
    verifier = SumVerifier(metrics, settings.private, public, sumlog) if public or sumlog else None
    # not-found answers shared by the replicas, through the leases' link to Redis
    refusals = RedisRefusals(locks.link, locks.namespace, metrics) if locks else None
    return SumdbGateway(
        store,
        router,
        metrics,
        options,
        closers=(client.aclose, discovery.aclose),
        verifier=verifier,
        proxy=proxy,
        log=sumlog,
        inflated=inflated,
        shared_negatives=refusals,
    )


def _open_access_log(value: str) -> TextIO | Path | None:
    """stderr, or a file path checked here and opened by each serving process (SIGUSR1 reopens)."""
    if value in {"off", "none", ""}:
        return None
    if value == "-":
        return sys.stderr
    path = Path(value)
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise click.UsageError(f"cannot open --access-log {value!r}: {exc.strerror}") from exc
    return path


SERVE_EPILOG = """\b
Every option can also be set with a MODGATE_* environment variable
(MODGATE_LISTEN, MODGATE_STORE, MODGATE_UPSTREAM, MODGATE_PRIVATE,
MODGATE_LIST_TTL, ...) or in a TOML file given with --config (keys as the
option names, at the top level or under [serve]). Flags win over variables,
variables over the file.

\b
Examples:
  modgate serve --listen 0.0.0.0:8080 --store /var/lib/modgate
  modgate serve --upstream 'https://proxy.golang.org|https://mirror.corp,direct' \\
                --private '*.corp.example.com,corp.example.com'
  GOPROXY=http://localhost:8080 go mod download
"""


@click.command("serve", epilog=SERVE_EPILOG)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Address to serve on [127.0.0.1:8080]; port 0 picks a free port.",
)
@click.option(
    "--store",
    metavar="PATH",
    help=(
        "Store directory (GOMODCACHE/cache/download layout), or s3://BUCKET[/PREFIX] for "
        "an S3-compatible object store [~/.local/share/modgate/store]."
    ),
)
@click.option(
    "--store-cache",
    metavar="DIR",
    help=(
        "With --store s3://: local directory of the disk cache, temp files and git "
        "mirrors [~/.cache/modgate/s3/BUCKET/PREFIX]."
    ),
)
@click.option(
    "--store-cache-size",
    metavar="SIZE",
    help="With --store s3://: disk space for hot artifacts [1GiB].",
)
@click.option(
    "--s3-redirect",
    is_flag=True,
    flag_value="true",
    default=None,
    help=(
        "With --store s3://: answer a zip request with a 302 to a short-lived presigned "
        "URL of the stored object, so clients download it from the object store [off]."
    ),
)
@click.option(
    "--prefetch-zips",
    metavar="on|off",
    help=(
        "When a client that asked for .info files asks for its first zip, fetch the zips of "
        "those versions in the background, in the order asked [on]."
    ),
)
@click.option(
    "--s3-redirect-expiry",
    metavar="SECONDS",
    help="With --s3-redirect: how long a presigned zip URL is valid [300].",
)
@click.option(
    "--redis-lease",
    metavar="SECONDS",
    help=(
        "With --redis: how long a fetch lease lives unless its holder extends it; a "
        "replica killed mid-fetch is replaced after this [30]."
    ),
)
@click.option(
    "--redis",
    metavar="URL",
    help=(
        "Redis that coordinates replicas (one upstream fetch per artifact, one private "
        "log writer, shared not-found answers): redis://[USER:PASS@]HOST[:PORT][/DB], "
        "rediss://... (TLS), unix://PATH, or "
        "redis+sentinel://[USER:PASS@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB] for the "
        "master that Sentinel names."
    ),
)
@click.option(
    "--upstream",
    metavar="GOPROXY",
    help=(
        "Upstream chain in GOPROXY syntax: URLs, file://, direct, off; ',' falls through "
        "on 404/410 only, '|' on any error [https://proxy.golang.org,direct]."
    ),
)
@click.option(
    "--private",
    metavar="PATTERNS",
    help=(
        "GOPRIVATE glob patterns; matching modules are fetched only directly "
        "and never sent upstream."
    ),
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file.",
)
@click.option(
    "--list-ttl",
    metavar="SECONDS",
    help="How long list, latest and query answers are reused before a refresh [60].",
)
@click.option(
    "--negative-ttl", metavar="SECONDS", help="How long a not-found answer is remembered [30]."
)
@click.option(
    "--upstream-timeout", metavar="SECONDS", help="Read timeout for upstream requests [60]."
)
@click.option(
    "--connect-timeout", metavar="SECONDS", help="Connect timeout for upstream requests [10]."
)
@click.option(
    "--upstream-retries",
    metavar="N",
    help="Retries of a transient upstream failure, with jittered backoff [2].",
)
@click.option(
    "--ca-bundle",
    metavar="FILE",
    help="Extra CA certificates (PEM) trusted for upstream TLS, added to the system ones.",
)
@click.option(
    "--hot-cache",
    metavar="SIZE",
    help="Memory for pre-rendered hot artifacts; 64MiB = 64×2^20 bytes, 64MB = 64×10^6 [64MiB].",
)
@click.option(
    "--access-log", metavar="PATH|-|off", help="JSON access log destination [- = stderr]."
)
@click.option("--log-level", metavar="LEVEL", help="debug, info, warning or error [info].")
@click.option("--workers", metavar="N", help="Server processes sharing the port [1].")
@click.option(
    "--git-rewrite",
    metavar="PREFIX=URL",
    multiple=True,
    help=(
        "Fetch modules under PREFIX from the git repository at URL (direct source); "
        "repeatable or comma-separated, for mirrors and hosts without go-get pages."
    ),
)
@click.option(
    "--git-timeout",
    metavar="SECONDS",
    help="Time limit of one remote git operation (fetch, ls-remote) of the direct source [300].",
)
@click.option(
    "--max-connections",
    metavar="N|auto",
    help=(
        "Client connections open at once per serving process; more are answered 503 "
        "[auto: the file-descriptor limit, raised to its hard limit, less a reserve]."
    ),
)
@click.option(
    "--max-connections-per-client",
    metavar="N",
    help="Client connections open at once from one address; more are answered 503 [256].",
)
@click.option(
    "--trusted-proxies",
    metavar="ADDRESSES",
    help=(
        "Reverse proxies (IP addresses or networks, comma-separated) whose "
        "X-Forwarded-For or Forwarded header names the client, for the access and "
        "audit logs and the per-client limits."
    ),
)
@click.option(
    "--shutdown-grace",
    metavar="SECONDS",
    help=(
        "At SIGTERM, how long requests in flight may finish before their git and "
        "upstream work is stopped [10]."
    ),
)
@click.option(
    "--direct-allow-hosts",
    metavar="PATTERNS",
    help=(
        "Hosts (GOPRIVATE-style globs) the direct source may reach although they are IP "
        "addresses, localhost or resolve to private, loopback or other special addresses."
    ),
)
@click.option(
    "--sumdb",
    metavar="NAME[+HASH+KEY][=URL],...",
    help=(
        "Public checksum databases served at /sumdb/NAME/ (forwarded and cached); "
        "off for none [sum.golang.org=https://sum.golang.org; none when --upstream has no "
        "network source]."
    ),
)
@click.option(
    "--sumdb-key",
    metavar="KEYFILE",
    help=(
        "Signer key (from 'modgate sumdb keygen') of the private checksum log, served at "
        "/sumdb/NAME/; every stored version is recorded in it."
    ),
)
@click.option(
    "--verify-sumdb",
    metavar="NAME|off",
    help=(
        "Verify public modules against this --sumdb database before storing them "
        "[the first --sumdb database with a known key: sum.golang.org; off to disable; off "
        "when --upstream has no network source]."
    ),
)
@click.option(
    "--tls-cert",
    metavar="FILE",
    help="Serve HTTPS with this PEM certificate chain (with --tls-key); SIGHUP reloads the pair.",
)
@click.option(
    "--tls-key",
    metavar="FILE",
    help=(
        "PEM private key of --tls-cert, readable by its owner only (chmod 600), "
        "or if root owns it also by its group (chmod 640)."
    ),
)
@click.option(
    "--tokens",
    metavar="FILE",
    help=(
        "Turn authentication on with modgate tokens from FILE ('modgate token create'); "
        "issuers and grants go in the [auth] section of --config."
    ),
)
@click.option(
    "--anonymous",
    metavar="public|none",
    help="With authentication on: may clients without credentials read public modules [none].",
)
@click.option(
    "--audit-log",
    metavar="PATH|-|off",
    help="JSON lines of every denied request and every private read [- = stderr].",
)
def serve_command(
    config_file: Path | None, git_rewrite: tuple[str, ...], **flags: str | None
) -> None:
    """Serve the GOPROXY protocol from the store, filling it from upstreams.

    Set GOPROXY=http://HOST:PORT for the go command. Health at /healthz,
    readiness at /readyz, Prometheus metrics at /metrics.
    """
    if config_file is None and os.environ.get("MODGATE_CONFIG"):
        config_file = Path(os.environ["MODGATE_CONFIG"])
    try:
        flags["git_rewrite"] = ",".join(git_rewrite) or None
        settings = resolve(flags, os.environ, config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    setup_logging(settings.log_level)
    for ignored in settings.upstream.ignored:
        log.warning(
            "upstream entries after direct/off are never used",
            extra={"event": "config_warning", "ignored": ignored},
        )
    for notice in settings.notices:
        log.warning(notice, extra={"event": "config_notice"})
    metrics = Metrics()
    declare_build_info(metrics)
    declare_security_events(metrics)
    metrics.collectors += [process_collector(), store_collector(settings.store)]
    try:
        gateway = build_gateway(settings, metrics)
    except StoreError as exc:
        where = settings.store_url or str(settings.store)
        raise click.UsageError(f"cannot use --store {where!r}: {exc.reason}") from exc
    tls = None
    if settings.tls_cert is not None and settings.tls_key is not None:
        try:
            tls = TlsCertificate(settings.tls_cert, settings.tls_key)
        except TlsError as exc:
            raise click.UsageError(str(exc)) from exc
        served = tls

        def not_after() -> float:
            return served.not_after.timestamp()  # read anew: a reload changes it

        metrics.collectors.append(certificate_collector(not_after))
    access_log = _open_access_log(settings.access_log)
    access, auth_hooks = build_access(settings, gateway, flags, config_file)
    warn_if_open(settings)
    scheme = "https" if tls is not None else "http"

    def on_listening(host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        log.info(
            "serving the GOPROXY protocol",
            extra={"event": "listening", "url": f"{scheme}://{shown}:{port}", **describe(settings)},
        )

    try:
        run_server(
            gateway,
            host=settings.host,
            port=settings.port,
            hot_cache_bytes=settings.hot_cache_bytes,
            access_log=access_log,
            workers=settings.workers,
            on_listening=on_listening,
            tls=tls,
            access=access,
            reload_hooks=auth_hooks,
            settings=ServerSettings(
                max_connections=settings.max_connections,
                max_connections_per_client=settings.max_connections_per_client,
                shutdown_grace=settings.shutdown_grace,
                trusted_proxies=TrustedProxies.of(settings.trusted_proxies),
                # the store's own disk (the disk cache of an object store)
                hot_file_dir=settings.store,
            ),
        )
    except OSError as exc:
        raise click.UsageError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
        ) from exc
    log.info("stopped", extra={"event": "stopped", "pid": os.getpid()})
