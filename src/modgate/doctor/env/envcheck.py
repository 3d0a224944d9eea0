"""``doctor --env``: the live environment, checked the way the go command will use it.

1. The effective settings (``go env -json``, or computed when there is no go
   command) go through the same value rules as files do.
2. GOMODCACHE, GOCACHE and HOME must be set and writable by this user (a
   missing directory counts as writable when its nearest existing parent is).
3. Each GOPROXY entry is probed with ``GET <proxy>/<module>/@v/list`` for a
   module from go.mod, and judged with the go command's fall-through rules:
   after ``,`` only 404/410 move on; after ``|`` any error does; a proxy that
   accepts the connection but never answers blocks the go command forever,
   whatever the separator, because the go command has no timeout.
4. The checksum database is reached as the go command reaches it: the
   explicit URL of GOSUMDB, else each proxy's ``/sumdb/<name>/supported``
   (200: use it; 404/410, or any error after ``|``: next), else
   ``https://<name>``.
5. Private modules required in go.mod must be covered by GONOSUMDB (or
   GOPRIVATE). A module counts as private when it matches a ``--private``
   pattern, when its host has an internal-only suffix (``.internal``,
   ``.corp``, ``.local``, ``.lan``, ...), or when GONOPROXY or GOINSECURE
   names it (the user already treats it as private). Doctor does no DNS
   lookups to decide this.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from modgate.doctor.analyzers import goenv
from modgate.doctor.analyzers.goenv import ModuleRef, Setting
from modgate.doctor.catalog import (
    GM101_ENV_DIR_NOT_WRITABLE,
    GM102_ENV_PROXY_FAILS,
    GM103_ENV_PROXY_SKIPPED,
    GM104_ENV_PROXY_HUNG,
    GM105_ENV_TLS_UNTRUSTED,
    GM106_ENV_SUMDB_FAILS,
    GM107_ENV_PRIVATE_NOT_COVERED,
    GM108_ENV_DIRECT_WITHOUT_GIT,
    GM109_ENV_PRIVATE_SENT_TO_PROXY,
    Rule,
)
from modgate.doctor.env.effective import GoEnv, effective
from modgate.doctor.env.probe import DEFAULT_TIMEOUT, Outcome, Prober, ProbeResult
from modgate.doctor.findings import ENVIRONMENT
from modgate.doctor.report import Reporter
from modgate.formats import gosumdb
from modgate.protocol.escape import escape_path
from modgate.protocol.goproxy import EntryKind, ProxyEntry, ProxyList, parse_goproxy
from modgate.protocol.patterns import match_prefix_patterns

PROBE_MODULE = "golang.org/x/mod"
"""Asked of proxies when go.mod requires nothing that goes through them."""
INTERNAL_SUFFIXES = (
    ".internal",
    ".corp",
    ".local",
    ".lan",
    ".intranet",
    ".localdomain",
    ".home.arpa",
    ".home",
    ".private",
    ".priv",
    ".test",
    ".invalid",
    ".localhost",
)
_CHECKED_DIRS = ("GOMODCACHE", "GOCACHE", "HOME")
_OFF = "off"


@dataclass(frozen=True, slots=True)
class EnvOptions:
    environ: Mapping[str, str]
    private: tuple[str, ...] = ()
    """GOPRIVATE-style patterns of modules known to be private (``--private``)."""
    timeout: float = DEFAULT_TIMEOUT
    use_go: bool = True


def check_environment(options: EnvOptions, modules: Sequence[ModuleRef], report: Reporter) -> GoEnv:
    env = effective(options.environ, use_go=options.use_go)
    _value_checks(env, options.environ, modules, report)
    _check_dirs(env, options.environ, report)
    prober = Prober(options.environ, options.timeout)
    try:
        proxies = _check_proxies(
            env,
            environ=options.environ,
            modules=modules,
            hints=options.private,
            prober=prober,
            report=report,
        )
        _check_sumdb(env, proxies, prober, report)
    finally:
        prober.close()
    _check_private(env, modules, options.private, report)
    return env


def _emit(report: Reporter, rule: Rule, message: str) -> None:
    report.emit(rule, ENVIRONMENT, 0, message)


def _value_checks(
    env: GoEnv, environ: Mapping[str, str], modules: Sequence[ModuleRef], report: Reporter
) -> None:
    scope = goenv.Scope()
    for name in env.explicit:
        if name in goenv.WATCHED:
            scope.settings[name] = Setting(name, env.get(name), ENVIRONMENT, 0)
    for name in (*goenv.PROXY_VARIABLES, "GIT_TERMINAL_PROMPT"):
        if environ.get(name):
            scope.settings[name] = Setting(name, environ[name], ENVIRONMENT, 0)
    for setting in scope.settings.values():
        goenv.check_setting(setting, modules, report)
    goenv.check_scope(scope, report)


def _writable(path: Path) -> bool:
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _check_dirs(env: GoEnv, environ: Mapping[str, str], report: Reporter) -> None:
    values = {"GOMODCACHE": env.get("GOMODCACHE"), "GOCACHE": env.get("GOCACHE"),
              "HOME": environ.get("HOME", "")}  # fmt: skip
    missing = {
        "GOMODCACHE": "go: module cache not found: neither GOMODCACHE nor GOPATH is set",
        "GOCACHE": "build cache is required, but could not be located: GOCACHE is not defined "
        "and neither $XDG_CACHE_HOME nor $HOME are defined",
        "HOME": "HOME is not set: git and the go env file cannot be found",
    }
    for name in _CHECKED_DIRS:
        value = values[name]
        if not value:
            _emit(report, GM101_ENV_DIR_NOT_WRITABLE, missing[name])
        elif name == "GOCACHE" and value == _OFF:
            _emit(
                report,
                GM101_ENV_DIR_NOT_WRITABLE,
                "GOCACHE=off: the build cache is disabled, but go build requires it",
            )
        elif not _writable(Path(value)):
            _emit(
                report,
                GM101_ENV_DIR_NOT_WRITABLE,
                f"{name}={value} is not writable by this user: go fails with "
                "'permission denied' or 'read-only file system'",
            )
        elif name == "GOMODCACHE":
            download = Path(value) / "cache" / "download"
            if download.exists() and not _writable(download):
                _emit(
                    report,
                    GM101_ENV_DIR_NOT_WRITABLE,
                    f"{download} is not writable by this user: new downloads "
                    "fail with 'permission denied'",
                )


def _probe_module(env: GoEnv, modules: Sequence[ModuleRef], hints: Sequence[str]) -> str:
    """A module from go.mod that goes through the proxies; never one that looks private."""
    noproxy = env.get("GONOPROXY")
    for module in modules:
        if noproxy and match_prefix_patterns(noproxy, module.path):
            continue
        if not is_private(module.path, hints, env):
            return module.path
    return PROBE_MODULE


def _check_proxies(
    env: GoEnv,
    *,
    environ: Mapping[str, str],
    modules: Sequence[ModuleRef],
    hints: Sequence[str],
    prober: Prober,
    report: Reporter,
) -> ProxyList | None:
    try:
        proxies = parse_goproxy(env.get("GOPROXY"))
    except ValueError:
        return None  # reported by the value checks (GM002)
    module = escape_path(_probe_module(env, modules, hints))
    entries = proxies.entries
    has_git = shutil.which("git", path=environ.get("PATH", "")) is not None
    for position, entry in enumerate(entries):
        if entry.kind is EntryKind.DIRECT:
            if not has_git:
                _emit(
                    report,
                    GM108_ENV_DIRECT_WITHOUT_GIT,
                    "GOPROXY reaches 'direct' but git is not on PATH: direct "
                    "fetches fail with 'exec: \"git\": executable file not found in $PATH'",
                )
            break
        if entry.kind is EntryKind.OFF or entry.url is None:
            break
        nxt = entries[position + 1].redacted() if position + 1 < len(entries) else None
        if entry.url.startswith("file://"):
            _check_file_proxy(entry, nxt, report)
            continue
        result = prober.get(f"{entry.url}/{module}/@v/list")
        _judge(result, entry, nxt, "GOPROXY entry", report)
    if env.get("GONOPROXY") and not has_git and env.get("GOPROXY") != "direct":
        _emit(
            report,
            GM108_ENV_DIRECT_WITHOUT_GIT,
            f"GONOPROXY={env.get('GONOPROXY')} sends those modules direct, but git is not on PATH",
        )
    return proxies


def _check_file_proxy(entry: ProxyEntry, nxt: str | None, report: Reporter) -> None:
    directory = Path(urlsplit(entry.url or "").path)
    if directory.is_dir() and os.access(directory, os.R_OK | os.X_OK):
        return
    rule = (
        GM103_ENV_PROXY_SKIPPED
        if entry.fall_through_on_any_error and nxt
        else GM102_ENV_PROXY_FAILS
    )
    _emit(report, rule, f"GOPROXY entry {entry.redacted()} is not a readable directory")


def _judge(
    result: ProbeResult, entry: ProxyEntry, nxt: str | None, what: str, report: Reporter
) -> None:
    if result.outcome in (Outcome.OK, Outcome.NOT_FOUND):
        return
    falls = entry.fall_through_on_any_error and nxt is not None
    consequence = (
        f"the go command falls through to {nxt} ('|')"
        if falls
        else "the go command stops here (after ',' only 404 and 410 fall through)"
    )
    if result.outcome is Outcome.HUNG:
        _emit(
            report,
            GM104_ENV_PROXY_HUNG,
            f"{what} {entry.redacted()} accepted the connection but did not "
            f"answer {result.url}: the go command has no timeout and would wait forever",
        )
    elif result.outcome.is_tls:
        _emit(
            report,
            GM105_ENV_TLS_UNTRUSTED,
            f"{what} {entry.redacted()}: x509: {result.describe()}; "
            f"{consequence}. GOINSECURE does not apply to proxies",
        )
    else:
        rule = GM103_ENV_PROXY_SKIPPED if falls else GM102_ENV_PROXY_FAILS
        _emit(
            report,
            rule,
            f"{what} {entry.redacted()}: {result.describe()} for {result.url}; {consequence}",
        )


def _check_sumdb(env: GoEnv, proxies: ProxyList | None, prober: Prober, report: Reporter) -> None:
    try:
        db = gosumdb.parse_gosumdb(env.get("GOSUMDB"))
    except gosumdb.GoSumDBError:
        return  # reported by the value checks (GM012)
    if db is None:
        return
    if db.url is not None:
        _sumdb_result(prober.get(f"{db.url.rstrip('/')}/latest"), f"GOSUMDB URL {db.url}", report)
        return
    for entry in proxies.entries if proxies is not None else ():
        if entry.kind is not EntryKind.URL or entry.url is None:
            break
        result = prober.get(f"{entry.url}/sumdb/{db.name}/supported")
        if result.outcome is Outcome.OK:
            latest = prober.get(f"{entry.url}/sumdb/{db.name}/latest")
            _sumdb_result(latest, f"checksum database {db.name} through {entry.redacted()}", report)
            return
        if result.outcome is Outcome.NOT_FOUND or entry.fall_through_on_any_error:
            continue
        _sumdb_result(result, f"checksum database {db.name} through {entry.redacted()}", report)
        return
    _sumdb_result(prober.get(f"https://{db.name}/latest"), f"checksum database {db.name}", report)


def _sumdb_result(result: ProbeResult, what: str, report: Reporter) -> None:
    if result.outcome is Outcome.OK:
        return
    if result.outcome is Outcome.HUNG:
        _emit(
            report,
            GM104_ENV_PROXY_HUNG,
            f"{what}: connected but no answer from {result.url}; the go command would wait forever",
        )
    elif result.outcome.is_tls:
        _emit(report, GM105_ENV_TLS_UNTRUSTED, f"{what}: x509: {result.describe()} ({result.url})")
    else:
        _emit(
            report,
            GM106_ENV_SUMDB_FAILS,
            f"{what}: {result.describe()} for {result.url}: every module not "
            "in go.sum fails verification",
        )


def is_private(path: str, hints: Sequence[str], env: GoEnv) -> bool:
    host = path.split("/", 1)[0].lower()
    if any(match_prefix_patterns(hint, path) for hint in hints):
        return True
    if host.endswith(INTERNAL_SUFFIXES) or "." not in host:
        return True
    return any(
        env.get(name) and match_prefix_patterns(env.get(name), path)
        for name in ("GONOPROXY", "GOINSECURE")
        if name in env.explicit
    )


def _check_private(
    env: GoEnv, modules: Sequence[ModuleRef], hints: Sequence[str], report: Reporter
) -> None:
    nosumdb = env.get("GONOSUMDB")
    noproxy = env.get("GONOPROXY")
    sumdb_off = env.get("GOSUMDB") == _OFF
    public_first = _public_first_proxy(env)
    seen: set[str] = set()
    for module in modules:
        if module.path in seen or not is_private(module.path, hints, env):
            continue
        seen.add(module.path)
        if not sumdb_off and not (nosumdb and match_prefix_patterns(nosumdb, module.path)):
            report.emit(
                GM107_ENV_PRIVATE_NOT_COVERED,
                module.file,
                module.line,
                f"{module.path} looks private but GONOSUMDB/GOPRIVATE do not cover it: go looks "
                "it up in the public checksum database and fails (404/410, 'terminal prompts "
                "disabled' in the body)",
            )
        if public_first and not (noproxy and match_prefix_patterns(noproxy, module.path)):
            report.emit(
                GM109_ENV_PRIVATE_SENT_TO_PROXY,
                module.file,
                module.line,
                f"{module.path} looks private but is asked of {public_first} first: its path "
                "leaks to the public proxy before go falls back to direct",
            )


def _public_first_proxy(env: GoEnv) -> str | None:
    """The host of the first GOPROXY entry when it is a public mirror."""
    try:
        entries = parse_goproxy(env.get("GOPROXY")).entries
    except ValueError:
        return None
    url = entries[0].url if entries else None
    host = (urlsplit(url).hostname or "") if url else ""
    return host if host in goenv.PUBLIC_PROXY_HOSTS else None
