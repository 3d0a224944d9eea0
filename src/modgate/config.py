"""Settings for ``modgate serve``: flags win over MODGATE_* variables, which win over TOML.

Every value is validated once, here, and a bad one stops modgate at start
with the value echoed (``ConfigError``). The result is one frozen
``ServeSettings`` that the CLI passes down; nothing else reads the
environment.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from modgate.protocol.goproxy import ProxyList, parse_goproxy
from modgate.protocol.patterns import PatternList, parse_patterns

ENV_PREFIX = "MODGATE_"
DEFAULT_UPSTREAM = "https://proxy.golang.org,direct"
DEFAULT_LISTEN = "127.0.0.1:8080"
SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
}


class ConfigError(ValueError):
    """A bad setting; the message names the setting and echoes its value."""


def default_store() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "modgate" / "store"


@dataclass(frozen=True, slots=True)
class ServeSettings:
    host: str
    port: int
    store: Path
    upstream: ProxyList
    upstream_text: str
    private: PatternList
    private_text: str
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


# name -> (default, parser). Names are the flag names with '_' for '-',
# the TOML keys, and (upper-cased, prefixed) the environment variables.
def _raw_defaults() -> dict[str, str]:
    return {
        "listen": DEFAULT_LISTEN,
        "store": str(default_store()),
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
    }


SETTING_NAMES = tuple(_raw_defaults())


def load_toml(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc
    table: Any = data.get("serve", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {str(path)!r}: [serve] must be a table")
    out: dict[str, str] = {}
    for key, value in table.items():
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
    raw = _raw_defaults()
    origin = dict.fromkeys(raw, "default")
    if config_file is not None:
        for name, value in load_toml(config_file).items():
            raw[name], origin[name] = value, f"{config_file}"
    for name in SETTING_NAMES:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            raw[name], origin[name] = environ[env_name], env_name
    for name, flag in flags.items():
        if flag is not None:
            raw[name], origin[name] = flag, "--" + name.replace("_", "-")
    return _validate(raw, origin)


def _fail(origin: str, value: str, why: str) -> ConfigError:
    return ConfigError(f"invalid {origin} value {value!r}: {why}")


def _validate(raw: dict[str, str], origin: dict[str, str]) -> ServeSettings:
    def bad(name: str, why: str) -> ConfigError:
        return _fail(origin[name], raw[name], why)

    host, port = parse_listen(raw["listen"], lambda why: bad("listen", why))
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
        raise bad("store", "a directory path is required")
    return ServeSettings(
        host=host,
        port=port,
        store=Path(store).expanduser(),
        upstream=upstream,
        upstream_text=raw["upstream"],
        private=private,
        private_text=raw["private"],
        list_ttl=_seconds(raw["list_ttl"], lambda why: bad("list_ttl", why)),
        negative_ttl=_seconds(raw["negative_ttl"], lambda why: bad("negative_ttl", why)),
        upstream_timeout=_seconds(raw["upstream_timeout"], lambda w: bad("upstream_timeout", w)),
        connect_timeout=_seconds(raw["connect_timeout"], lambda w: bad("connect_timeout", w)),
        upstream_retries=int(
            _seconds(raw["upstream_retries"], lambda w: bad("upstream_retries", w))
        ),
        ca_bundle=ca_bundle,
        hot_cache_bytes=parse_size(raw["hot_cache"], lambda why: bad("hot_cache", why)),
        access_log=access_log,
        log_level=level,
        workers=_workers(raw["workers"], lambda why: bad("workers", why)),
    )


def parse_listen(value: str, bad: Any) -> tuple[str, int]:
    m = re.fullmatch(r"\s*(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]*):(\d{1,5})\s*", value)
    if not m:
        raise bad("use HOST:PORT, for example 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080")
    host, port = m.group(1).strip("[]") or "0.0.0.0", int(m.group(2))
    if port > 65535:
        raise bad("the port must be 0 to 65535")
    return host, port


def parse_size(value: str, bad: Any) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", value)
    if not m or m.group(2).upper() not in SIZE_UNITS:
        raise bad("use a byte count such as 67108864, 64MiB or 1GiB")
    return int(m.group(1)) * SIZE_UNITS[m.group(2).upper()]


def _seconds(value: str, bad: Any) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise bad("use a number of seconds") from None
    if not 0 <= seconds < float("inf"):
        raise bad("use a non-negative number of seconds")
    return seconds


def _workers(value: str, bad: Any) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= 256:
        raise bad("use a whole number of processes from 1 to 256")
    return int(value)


def describe(settings: ServeSettings) -> dict[str, str]:
    """Settings as strings for the start-up log line (credentials redacted)."""
    out: dict[str, str] = {}
    for f in fields(settings):
        if f.name in {"upstream", "private"}:
            continue
        out[f.name] = str(getattr(settings, f.name))
    out["upstream_text"] = ",".join(e.redacted() for e in settings.upstream.entries)
    return out
