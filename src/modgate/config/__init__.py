"""Settings for ``modgate serve``: flags win over MODGATE_* variables, which win over TOML.

Every value is validated once, here, and a bad one stops modgate at start
with the value echoed (``ConfigError``). The result is one frozen
``ServeSettings`` that the CLI passes down; nothing else reads the
environment.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from modgate.config import values
from modgate.protocol.goproxy import EntryKind, ProxyList, parse_goproxy, redact_url
from modgate.protocol.patterns import PatternList, parse_patterns
from modgate.server.auth.settings import AuthConfigError, AuthSettings, auth_settings
from modgate.server.forwarded import Network
from modgate.server.settings import DEFAULT_MAX_CONNECTIONS_PER_CLIENT, DEFAULT_SHUTDOWN_GRACE
from modgate.server.tls import TlsError, check_key_permissions
from modgate.service.sumdbproxy import DEFAULT_DATABASES, Database, parse_databases
from modgate.sources.git_cmd import DEFAULT_REMOTE_TIMEOUT as DEFAULT_GIT_TIMEOUT
from modgate.store.redisurl import check_url as check_redis_url
from modgate.store.s3 import parse_url as parse_s3_url

ENV_PREFIX = "MODGATE_"
AUTH_TABLE = "auth"
DEFAULT_UPSTREAM = "https://proxy.golang.org,direct"
DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_S3_REDIRECT_EXPIRY = 300
"""Seconds a presigned zip URL is valid: the go command uses it at once, and 5 minutes
cover a clock that lags the object store's by a few minutes."""
MAX_S3_REDIRECT_EXPIRY = 7 * 24 * 3600
"""The longest validity a SigV4 presigned URL can have."""


class ConfigError(ValueError):
    """A bad setting; the message names the setting and echoes its value."""


def default_s3_cache(bucket: str, prefix: str, environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CACHE_HOME/modgate/s3/<bucket>[/<prefix>]``, else under ``$HOME/.cache``."""
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")) / ".cache")
    return Path(base).expanduser() / "modgate" / "s3" / bucket / prefix


def default_store(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_DATA_HOME/modgate/store``, else ``$HOME/.local/share/modgate/store``."""
    home = environ.get("HOME")
    fallback = Path(home) if home else Path.home()
    base = environ.get("XDG_DATA_HOME") or str(fallback / ".local" / "share")
    return Path(base) / "modgate" / "store"


@dataclass(frozen=True, slots=True)
class ServeSettings:
    host: str
    port: int
    store: Path
    upstream: ProxyList
    upstream_text: str
    private: PatternList
    list_ttl: float
    negative_ttl: float
    upstream_timeout: float
    connect_timeout: float
    upstream_retries: int
    ca_bundle: Path | None
    hot_cache_bytes: int
    access_log: str
    log_level: str
    workers: int
    sumdb: tuple[Database, ...] = ()
    """Public checksum databases served at /sumdb/<name>/ (proxied)."""
    sumdb_key: Path | None = None
    """Signer key file of the private checksum log (None: no private log)."""
    verify_sumdb: str | None = None
    """The public database public modules are verified against before they are stored."""
    git_rewrite: tuple[tuple[str, str], ...] = ()
    """Module path prefix -> git repository URL, for the direct source (longest prefix first)."""
    git_timeout: float = DEFAULT_GIT_TIMEOUT
    """Seconds a git fetch may take before it is stopped."""
    direct_allow_hosts: PatternList = PatternList(())  # noqa: RUF009 (immutable)
    notices: tuple[str, ...] = ()
    """Defaults chosen from other settings, said at start (``--upstream off`` turns off sumdb)."""
    """Hosts direct mode may reach although they are IP literals or resolve to special addresses."""
    tls_cert: Path | None = None
    """PEM certificate chain served over HTTPS (None: plain HTTP); set with ``tls_key``."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``; only its owner may read it."""
    auth: AuthSettings | None = None
    """Authentication and read grants (None: off, every client reads everything)."""
    max_connections: int = 0
    """Client connections open at once per serving process (0: sized to the descriptor limit)."""
    max_connections_per_client: int = DEFAULT_MAX_CONNECTIONS_PER_CLIENT
    """Client connections open at once from one address, per serving process."""
    shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE
    """Seconds requests in flight get at SIGTERM before their git and upstream work is stopped."""
    trusted_proxies: tuple[Network, ...] = ()
    """Reverse proxies whose X-Forwarded-For/Forwarded headers name the client."""
    store_url: str = ""
    """``s3://BUCKET[/PREFIX]`` when the store is an object store ("": ``store`` is the store)."""
    store_cache_bytes: int = 1 << 30
    """Local disk cache of an object store's artifacts (under ``store``)."""
    redis: str = ""
    redis_lease: float = 30.0
    s3_redirect_expiry: int = 0
    """With an object store: zips answered with a 302 to a presigned URL valid this many
    seconds (--s3-redirect; 0: zips are served by modgate)."""
    prefetch_zips: bool = True
    """A client's first zip request fetches the zips of the .info files it asked for."""
    """Seconds a fetch lease lives without being extended (a dead holder's ends by then)."""
    """Redis URL that coordinates replicas ("": locks are the store's own)."""


# name -> (default, parser). Names are the flag names with '_' for '-',
# the TOML keys, and (upper-cased, prefixed) the environment variables.
def _raw_defaults(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    return {
        "listen": DEFAULT_LISTEN,
        "store": str(default_store(environ)),
        "upstream": DEFAULT_UPSTREAM,
        "private": "",
        "list_ttl": "60",
        "negative_ttl": "30",
        "upstream_timeout": "60",
        "connect_timeout": "10",
        "upstream_retries": "2",
        "ca_bundle": "",
        "hot_cache": "64MiB",
        "access_log": "-",
        "log_level": "info",
        "workers": "1",
        "sumdb": DEFAULT_DATABASES,
        "sumdb_key": "",
        "verify_sumdb": "",
        "git_rewrite": "",
        "git_timeout": str(DEFAULT_GIT_TIMEOUT),
        "direct_allow_hosts": "",
        "tls_cert": "",
        "tls_key": "",
        "tokens": "",
        "anonymous": "",
        "audit_log": "",
        "max_connections": "auto",
        "max_connections_per_client": str(DEFAULT_MAX_CONNECTIONS_PER_CLIENT),
        "shutdown_grace": f"{DEFAULT_SHUTDOWN_GRACE:g}",
        "trusted_proxies": "",
        "store_cache": "",
        "store_cache_size": "1GiB",
        "redis": "",
        "redis_lease": "30",
        "s3_redirect": "",
        "s3_redirect_expiry": str(DEFAULT_S3_REDIRECT_EXPIRY),
        "prefetch_zips": "on",
    }


SETTING_NAMES = tuple(_raw_defaults())


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc
    return data


def load_toml(path: Path) -> dict[str, str]:
    data = _read_toml(path)
    table: Any = data.get("serve", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {str(path)!r}: [serve] must be a table")
    out: dict[str, str] = {}
    for key, value in table.items():
        if key == AUTH_TABLE and table is data:
            continue  # the [auth] section, read by load_auth_table
        name = key.replace("-", "_")
        if name not in SETTING_NAMES:
            raise ConfigError(
                f"config file {str(path)!r}: unknown setting {key!r}; "
                f"known: {', '.join(SETTING_NAMES)}"
            )
        if isinstance(value, list):
            out[name] = ",".join(str(v) for v in value)
        else:
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def resolve(
    flags: Mapping[str, str | None],
    environ: Mapping[str, str],
    config_file: Path | None,
) -> ServeSettings:
    """Merge defaults < TOML < MODGATE_* < flags, then validate everything."""
    raw = _raw_defaults(environ)
    origin = dict.fromkeys(raw, "default")
    if config_file is not None:
        for name, value in load_toml(config_file).items():
            raw[name], origin[name] = value, f"{config_file}: {name.replace('_', '-')}"
    for name in SETTING_NAMES:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            raw[name], origin[name] = environ[env_name], env_name
    for name, flag in flags.items():
        if flag is not None:
            raw[name], origin[name] = flag, "--" + name.replace("_", "-")
    settings = _validate(raw, origin, environ)
    try:
        auth = auth_settings(
            load_auth_table(config_file) if config_file is not None else None,
            tokens=raw["tokens"].strip() or None,
            anonymous=raw["anonymous"].strip() or None,
            audit_log=raw["audit_log"].strip() or None,
            where=f"config file {str(config_file)!r} [auth]",
        )
    except AuthConfigError as exc:
        raise ConfigError(str(exc)) from None
    return replace(settings, auth=auth)


def load_auth_table(path: Path) -> dict[str, object] | None:
    """The ``[auth]`` table of a TOML file (None when it has none)."""
    data = _read_toml(path)
    table = data.get(AUTH_TABLE)
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"config file {str(path)!r}: [auth] must be a table")
    return table


def _fail(origin: str, value: str, why: str) -> ConfigError:
    return ConfigError(f"invalid {origin} value {value!r}: {why}")


def _validate(
    raw: dict[str, str], origin: dict[str, str], environ: Mapping[str, str] = os.environ
) -> ServeSettings:
    def bad(name: str, why: str) -> ConfigError:
        return _fail(origin[name], raw[name], why)

    host, port = values.parse_listen(raw["listen"], lambda why: bad("listen", why))
    try:
        upstream = parse_goproxy(raw["upstream"])
    except ValueError as exc:
        raise bad("upstream", str(exc)) from None
    try:
        private = parse_patterns(raw["private"])
    except ValueError as exc:
        raise bad("private", str(exc)) from None
    ca = raw["ca_bundle"].strip()
    ca_bundle = Path(ca) if ca else None
    if ca_bundle is not None and not ca_bundle.is_file():
        raise bad("ca_bundle", "no such file")
    access_log = raw["access_log"].strip()
    level = raw["log_level"].strip().lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise bad("log_level", "use debug, info, warning or error")
    store = raw["store"].strip()
    if not store:
        raise bad("store", "a directory path or s3://BUCKET[/PREFIX] is required")
    store_url = ""
    if store.startswith("s3:"):
        try:
            bucket, prefix = parse_s3_url(store)
        except ValueError as exc:
            raise bad("store", str(exc)) from exc
        store_url = f"s3://{bucket}/{prefix}".rstrip("/")
        store = raw["store_cache"].strip() or str(default_s3_cache(bucket, prefix, environ))
    elif raw["store_cache"].strip():
        raise bad("store_cache", "only an object store (--store s3://...) has a local cache")
    redirect_expiry = _redirect_expiry(raw, origin, store_url, bad)
    redis = raw["redis"].strip()
    if redis:
        try:
            check_redis_url(redis)
        except ValueError as exc:  # the URL's password stays out of the message
            raise _fail(origin["redis"], redact_url(redis), str(exc)) from None
    notices: list[str] = []
    if offline_chain(upstream):
        # no outbound traffic at all unless the operator asks for a database
        if origin["sumdb"] == "default":
            raw["sumdb"] = ""
            notices.append(
                "--upstream has no network source: no public checksum database is proxied "
                "at /sumdb/ (set --sumdb to proxy one)"
            )
        if origin["verify_sumdb"] == "default" and not raw["sumdb"].strip():
            raw["verify_sumdb"] = "off"
            notices.append(
                "--upstream has no network source: --verify-sumdb is off (public modules "
                "are not verified against a checksum database before they are stored)"
            )
    databases, sumdb_key, verify = _sumdb_settings(raw, bad)
    tls_cert, tls_key = _tls_pair(raw, bad)
    return ServeSettings(
        host=host,
        port=port,
        store=Path(store).expanduser(),
        upstream=upstream,
        upstream_text=raw["upstream"],
        private=private,
        list_ttl=values.seconds(raw["list_ttl"], lambda why: bad("list_ttl", why)),
        negative_ttl=values.seconds(raw["negative_ttl"], lambda why: bad("negative_ttl", why)),
        upstream_timeout=values.seconds(
            raw["upstream_timeout"], lambda w: bad("upstream_timeout", w)
        ),
        connect_timeout=values.seconds(raw["connect_timeout"], lambda w: bad("connect_timeout", w)),
        upstream_retries=int(
            values.seconds(raw["upstream_retries"], lambda w: bad("upstream_retries", w))
        ),
        ca_bundle=ca_bundle,
        hot_cache_bytes=values.parse_size(raw["hot_cache"], lambda why: bad("hot_cache", why)),
        access_log=access_log,
        log_level=level,
        workers=values.workers(raw["workers"], lambda why: bad("workers", why)),
        sumdb=databases,
        sumdb_key=sumdb_key,
        verify_sumdb=verify,
        git_rewrite=values.git_rewrites(raw["git_rewrite"], lambda why: bad("git_rewrite", why)),
        git_timeout=values.seconds(raw["git_timeout"], lambda w: bad("git_timeout", w)),
        direct_allow_hosts=values.host_patterns(raw["direct_allow_hosts"], bad),
        notices=tuple(notices),
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_connections=values.connections(
            raw["max_connections"], lambda w: bad("max_connections", w)
        ),
        max_connections_per_client=values.connections(
            raw["max_connections_per_client"],
            lambda w: bad("max_connections_per_client", w),
            auto=False,
        ),
        shutdown_grace=values.seconds(raw["shutdown_grace"], lambda w: bad("shutdown_grace", w)),
        trusted_proxies=values.networks(
            raw["trusted_proxies"], lambda w: bad("trusted_proxies", w)
        ),
        store_url=store_url,
        store_cache_bytes=values.parse_size(
            raw["store_cache_size"], lambda why: bad("store_cache_size", why)
        ),
        redis=redis,
        redis_lease=values.lease(raw["redis_lease"], lambda w: bad("redis_lease", w)),
        s3_redirect_expiry=redirect_expiry,
        prefetch_zips=values.on_off(raw["prefetch_zips"], lambda w: bad("prefetch_zips", w)),
    )


def _redirect_expiry(raw: dict[str, str], origin: dict[str, str], store_url: str, bad: Any) -> int:
    """--s3-redirect-expiry when --s3-redirect is on, else 0; refused without an object store."""
    flag = raw["s3_redirect"].strip().lower()
    if flag not in values.TRUE_WORDS | values.FALSE_WORDS:
        raise bad("s3_redirect", "use true or false (the flag alone means true)")
    on = flag in values.TRUE_WORDS
    if on and not store_url:
        raise bad("s3_redirect", "only an object store can redirect (use --store s3://BUCKET)")
    text = raw["s3_redirect_expiry"].strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_S3_REDIRECT_EXPIRY:
        why = f"a whole number of seconds from 1 to {MAX_S3_REDIRECT_EXPIRY}"
        raise bad("s3_redirect_expiry", why)
    if origin["s3_redirect_expiry"] != "default" and not on:
        raise bad("s3_redirect_expiry", "it needs --s3-redirect")
    return int(text) if on else 0


def _tls_pair(raw: dict[str, str], bad: Any) -> tuple[Path | None, Path | None]:
    """Both files or neither; the key readable by its owner only."""
    cert, key = raw["tls_cert"].strip(), raw["tls_key"].strip()
    if bool(cert) != bool(key):
        given, missing = ("tls_cert", "tls-key") if cert else ("tls_key", "tls-cert")
        raise bad(given, f"--tls-cert and --tls-key go together; give --{missing} as well")
    if not cert:
        return None, None
    cert_path, key_path = Path(cert).expanduser(), Path(key).expanduser()
    if not cert_path.is_file():
        raise bad("tls_cert", "no such file")
    if not key_path.is_file():
        raise bad("tls_key", "no such file")
    try:
        check_key_permissions(key_path)
    except TlsError as exc:
        raise bad("tls_key", str(exc)) from None
    return cert_path, key_path


def offline_chain(upstream: ProxyList) -> bool:
    """Whether the chain reaches no network (only ``off`` and ``file://`` entries)."""
    return all(
        entry.kind is EntryKind.OFF or (entry.url is not None and entry.url.startswith("file://"))
        for entry in upstream.entries
    )


def _sumdb_settings(
    raw: dict[str, str], bad: Any
) -> tuple[tuple[Database, ...], Path | None, str | None]:
    """The checksum databases; verify_sumdb "" means the first database with a known key."""
    try:
        off = raw["sumdb"].strip().lower() == "off"
        databases = () if off else parse_databases(raw["sumdb"])
    except ValueError as exc:
        raise bad("sumdb", str(exc)) from None
    key = raw["sumdb_key"].strip()
    sumdb_key = Path(key).expanduser() if key else None
    if sumdb_key is not None and not sumdb_key.is_file():
        raise bad("sumdb_key", "no such file; create one with 'modgate sumdb keygen'")
    verify = raw["verify_sumdb"].strip()
    keyed = [db.name for db in databases if db.verifier is not None]
    if verify == "off":
        return databases, sumdb_key, None
    if verify == "":
        return databases, sumdb_key, (keyed[0] if keyed else None)
    if verify not in keyed:
        raise bad(
            "verify_sumdb",
            f"use off or a --sumdb database with a known key ({', '.join(keyed) or 'none'})",
        )
    return databases, sumdb_key, verify


def describe(settings: ServeSettings) -> dict[str, object]:
    """Settings for the start-up log line, typed (numbers stay numbers), credentials redacted."""
    out: dict[str, object] = {}
    for f in fields(settings):
        if f.name in {"upstream", "private", "sumdb", "git_rewrite", "notices", "auth", "tokens",
                      "redis"}:  # fmt: skip
            continue
        value = getattr(settings, f.name)
        out[f.name] = value if isinstance(value, (int, float, bool, type(None))) else str(value)
    out["upstream_text"] = str(settings.upstream)  # "|" and "," as configured
    out["sumdb"] = ",".join(f"{db.name}={redact_url(db.url)}" for db in settings.sumdb)
    out["git_rewrite"] = ",".join(f"{p}={redact_url(u)}" for p, u in settings.git_rewrite)
    out["max_connections"] = settings.max_connections or "auto"
    out["redis"] = redact_url(settings.redis) if settings.redis else ""
    auth = settings.auth
    out["auth"] = (
        "off"
        if auth is None
        else f"tokens={auth.tokens or 'none'} issuers={','.join(i.name for i in auth.issuers)} "
        f"grants={len(auth.grants)} anonymous={auth.anonymous.value}"
    )
    return out
