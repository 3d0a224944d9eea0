"""Checks of Go settings (GOPROXY, GOPRIVATE, GOSUMDB, GOFLAGS, ...) wherever they are set.

Every file kind turns its assignments into :class:`Setting` values (a
Dockerfile ``ENV``, a workflow ``env:``, a Kubernetes ``env`` entry, an
``export`` in a script) and groups the settings that are in effect together
into a :class:`Scope`. :func:`check_setting` judges one value on its own;
:func:`check_scope` judges combinations (GOPRIVATE with an internal proxy,
GOINSECURE against a proxy host, HTTPS_PROXY without NO_PROXY). A value
with an expansion that cannot be resolved (``$X``, ``${{ secrets.X }}``) is
``known=False`` and is never judged as text.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from modgate.doctor.catalog import (
    GM001_INSECURE_FLAG_REMOVED,
    GM002_GOPROXY_INVALID,
    GM003_GOPROXY_IGNORED_ENTRIES,
    GM004_GOPROXY_COMMA_FAILOVER,
    GM005_GOPROXY_NO_FALLBACK,
    GM006_GOPROXY_CREDENTIALS_HTTP,
    GM007_CREDENTIALS_IN_FILE,
    GM008_PATTERN_NEVER_MATCHES,
    GM009_WILDCARD_MISSES_BARE_DOMAIN,
    GM010_PATTERN_MATCHES_EVERYTHING,
    GM011_GOPRIVATE_BYPASSES_PROXY,
    GM012_GOSUMDB_MALFORMED,
    GM013_GOSUMDB_OFF_TOOLCHAIN,
    GM014_GOINSECURE_FOR_PROXY,
    GM015_MOD_MOD_IN_CI,
    GM016_GOFLAGS_INVALID,
    GM017_GO111MODULE_OFF,
    GM018_PROXY_WITHOUT_NO_PROXY,
    GM019_GIT_TERMINAL_PROMPT,
    GM020_GOVERSION_READONLY,
)
from modgate.doctor.parsers import goflags
from modgate.doctor.parsers.noproxy import bypasses_proxy, never_proxied, proxy_variable
from modgate.doctor.report import Reporter
from modgate.formats import gosumdb
from modgate.protocol.goproxy import EntryKind, ProxyList, parse_goproxy, redact_url
from modgate.protocol.patterns import BadPatternError, match_prefix_patterns, path_match

PATTERN_VARIABLES = ("GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
WATCHED = frozenset(
    {
        *PATTERN_VARIABLES,
        *PROXY_VARIABLES,
        "GOPROXY",
        "GOSUMDB",
        "GOFLAGS",
        "GO111MODULE",
        "GOTOOLCHAIN",
        "GOVERSION",
        "GIT_TERMINAL_PROMPT",
        "GOMODCACHE",
        "GOCACHE",
        "GOPATH",
        "HOME",
        "XDG_CACHE_HOME",
        "CGO_ENABLED",
    }
)
"""Variables that doctor collects from every file kind."""
PUBLIC_PROXY_HOSTS = frozenset(
    {
        "proxy.golang.org",
        "goproxy.io",
        "goproxy.cn",
        "proxy.golang.com.cn",
        "mirrors.aliyun.com",
        "mirrors.tencent.com",
    }
)
GO111MODULE_VALUES = ("", "on", "auto")
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_NO_DOWNLOAD_TOOLCHAINS = ("local", "path")
_PARSE_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    value: str
    file: str
    line: int
    known: bool = True
    """False when the value holds an expansion that cannot be resolved."""


@dataclass(frozen=True, slots=True)
class ModuleRef:
    """A module path named in a go.mod (module, require or replace line)."""

    path: str
    file: str
    line: int


@dataclass(slots=True)
class Scope:
    """Settings in effect together where go commands run."""

    settings: dict[str, Setting] = field(default_factory=dict)
    toolchain_local: bool = False
    """GOTOOLCHAIN=local is already in force (the official golang images set it)."""

    def known(self, name: str) -> str | None:
        s = self.settings.get(name)
        return s.value if s is not None and s.known else None

    def copy(self) -> Scope:
        return Scope(dict(self.settings), self.toolchain_local)


@functools.lru_cache(maxsize=_PARSE_CACHE_SIZE)
def _parsed_goproxy(value: str) -> ProxyList | str:
    """The parsed list, or the reason it is rejected (the same values recur in every file)."""
    try:
        return parse_goproxy(value)
    except ValueError as exc:
        return str(exc)


def _goproxy(s: Setting) -> ProxyList | None:
    parsed = _parsed_goproxy(s.value)
    return parsed if isinstance(parsed, ProxyList) else None


def _internal_hosts(proxies: ProxyList) -> list[tuple[str, str, str]]:
    """(scheme, host, port) of URL entries that are neither public mirrors nor loopback."""
    found = []
    for entry in proxies.entries:
        if entry.url is None:
            continue
        parts = urlsplit(entry.url)
        host = (parts.hostname or "").lower()
        if not host or host in PUBLIC_PROXY_HOSTS or never_proxied(host):
            continue
        default_port = "443" if parts.scheme == "https" else "80"
        found.append((parts.scheme, host, str(parts.port or default_port)))
    return found


# --------------------------------------------------------------------------- one value


def check_setting(s: Setting, modules: Sequence[ModuleRef], report: Reporter) -> None:
    if not s.known:
        return
    if s.name == "GOPROXY" and s.value.strip():
        _check_goproxy(s, report)
    elif s.name in PATTERN_VARIABLES:
        _check_patterns(s, modules, report)
    elif s.name == "GOSUMDB" and s.value:
        try:
            gosumdb.parse_gosumdb(s.value)
        except gosumdb.GoSumDBError as exc:
            report.emit(GM012_GOSUMDB_MALFORMED, s.file, s.line, f"GOSUMDB={s.value!r}: {exc}")
    elif s.name == "GOFLAGS":
        check_goflags(s, report)
    elif s.name == "GO111MODULE" and s.value not in GO111MODULE_VALUES:
        why = (
            "turns modules off: go.mod is ignored and packages are looked up in GOPATH"
            if s.value == "off"
            else "is not a value the go command accepts (on, off, auto or empty)"
        )
        report.emit(GM017_GO111MODULE_OFF, s.file, s.line, f"GO111MODULE={s.value} {why}")
    elif s.name == "GIT_TERMINAL_PROMPT" and s.value.strip().lower() in _TRUE_WORDS:
        report.emit(
            GM019_GIT_TERMINAL_PROMPT,
            s.file,
            s.line,
            "GIT_TERMINAL_PROMPT=1: with no terminal git fails anyway ('could not read "
            "Username'), only with a less clear message, and with a terminal the job hangs",
        )
    elif s.name == "GOVERSION":
        report.emit(
            GM020_GOVERSION_READONLY,
            s.file,
            s.line,
            f"GOVERSION={s.value} has no effect: the go command reports its own version there",
        )


def _check_goproxy(s: Setting, report: Reporter) -> None:
    proxies = _parsed_goproxy(s.value)
    if not isinstance(proxies, ProxyList):
        report.emit(
            GM002_GOPROXY_INVALID, s.file, s.line, f"GOPROXY={redact_url(s.value)!r}: {proxies}"
        )
        return
    if proxies.ignored:
        end = proxies.entries[-1].kind.value
        report.emit(
            GM003_GOPROXY_IGNORED_ENTRIES,
            s.file,
            s.line,
            f"GOPROXY entries after '{end}' are ignored: {', '.join(proxies.ignored)}",
        )
    urls = [e for e in proxies.entries if e.kind is EntryKind.URL]
    for entry in urls:
        parts = urlsplit(entry.url or "")
        if parts.username is None and parts.password is None:
            continue
        if parts.scheme == "http":
            report.emit(
                GM006_GOPROXY_CREDENTIALS_HTTP,
                s.file,
                s.line,
                f"GOPROXY entry {entry.redacted()} sends credentials over plain http: the go "
                "command refuses ('refusing to pass credentials to insecure URL')",
            )
        else:
            report.emit(
                GM007_CREDENTIALS_IN_FILE,
                s.file,
                s.line,
                f"GOPROXY entry {entry.redacted()} has its credentials written into this file",
            )
    pairs = zip(proxies.entries, proxies.entries[1:], strict=False)
    for first, second in pairs:
        if first.kind is EntryKind.URL and second.kind is EntryKind.URL:
            if not first.fall_through_on_any_error:
                report.emit(
                    GM004_GOPROXY_COMMA_FAILOVER,
                    s.file,
                    s.line,
                    f"GOPROXY tries {second.redacted()} only when {first.redacted()} answers "
                    "404 or 410; a 5xx, 403 or an outage stops the build",
                )
            break
    if len(proxies.entries) == 1 and len(urls) == 1 and not proxies.ignored:
        report.emit(
            GM005_GOPROXY_NO_FALLBACK,
            s.file,
            s.line,
            f"GOPROXY={urls[0].redacted()} has no fallback: any module it cannot serve fails",
        )


def _check_patterns(s: Setting, modules: Sequence[ModuleRef], report: Reporter) -> None:
    for raw in s.value.split(","):
        pattern = raw.removesuffix("/")
        if not pattern.strip():
            continue
        why = _never_matches(raw, pattern)
        if why is not None:
            report.emit(
                GM008_PATTERN_NEVER_MATCHES, s.file, s.line, f"{s.name} entry {raw!r} {why}"
            )
            continue
        if pattern == "*":
            report.emit(
                GM010_PATTERN_MATCHES_EVERYTHING,
                s.file,
                s.line,
                f"{s.name}=* {_EVERYTHING[s.name]}",
            )
    misses = list(_bare_domain_misses(s.value, modules))
    if misses:
        first = misses[0]
        more = f" and {len(misses) - 1} more" if len(misses) > 1 else ""
        bare = first.path.split("/", 1)[0]
        report.emit(
            GM009_WILDCARD_MISSES_BARE_DOMAIN,
            s.file,
            s.line,
            f"{s.name}={s.value} does not match {first.path} ({first.file}:{first.line}){more}: "
            f"'*.{bare}' covers subdomains only",
        )


_EVERYTHING = {
    "GOPRIVATE": "sends every module direct and skips the checksum database for all of them",
    "GONOPROXY": "sends every module direct: no proxy is ever used",
    "GONOSUMDB": "skips the checksum database for every module",
    "GOINSECURE": "allows plain http and unverified TLS for every direct fetch",
}


def _never_matches(raw: str, pattern: str) -> str | None:
    if "://" in pattern:
        return "is a URL; patterns match module paths, so it never matches"
    if pattern != pattern.strip():
        return "has spaces around it; the go command does not trim them, so it never matches"
    if "" in pattern.split("/"):
        return "has an empty path element, so it never matches"
    try:
        path_match(pattern, "")
    except BadPatternError:
        return "is not a valid glob; the go command skips it silently"
    return None


def _bare_domain_misses(value: str, modules: Sequence[ModuleRef]) -> Iterable[ModuleRef]:
    """Modules at a bare domain ``d`` when the list has ``*.d`` but nothing matching them."""
    wildcards = {
        p.strip().removesuffix("/")[2:]
        for p in value.split(",")
        if p.strip().startswith("*.") and "/" not in p.strip().removesuffix("/")
    }
    if not wildcards:
        return
    seen: set[str] = set()
    for module in modules:
        host = module.path.split("/", 1)[0]
        if module.path in seen or host not in wildcards:
            continue
        seen.add(module.path)
        if not match_prefix_patterns(value, module.path):
            yield module


def check_goflags(s: Setting, report: Reporter) -> None:
    try:
        flags = goflags.parse_goflags(s.value)
    except goflags.GoFlagsError as exc:
        words = s.value.split()
        if any(w in ("-insecure", "--insecure") for w in words):
            _insecure(s, report)
        report.emit(GM016_GOFLAGS_INVALID, s.file, s.line, f"GOFLAGS={s.value!r}: go: {exc}")
        return
    for flag in flags:
        if flag.name == "insecure":
            _insecure(s, report)
        problem = goflags.mod_value_problem(flag)
        if problem is not None:
            report.emit(
                GM016_GOFLAGS_INVALID, s.file, s.line, f"GOFLAGS={s.value!r}: go: {problem}"
            )
        elif flag.name == "mod" and flag.value == "mod":
            report.emit(
                GM015_MOD_MOD_IN_CI,
                s.file,
                s.line,
                "GOFLAGS=-mod=mod lets go build and go test change go.mod and go.sum "
                "instead of failing on a missing requirement",
            )


def _insecure(s: Setting, report: Reporter) -> None:
    report.emit(
        GM001_INSECURE_FLAG_REMOVED,
        s.file,
        s.line,
        f"{s.name}={s.value!r}: -insecure was removed in Go 1.17; go get fails with it and "
        "other commands ignore it",
    )


# --------------------------------------------------------------------------- combinations


def toolchain_download_possible(scope: Scope) -> bool:
    value = scope.known("GOTOOLCHAIN")
    if value is None:
        return "GOTOOLCHAIN" not in scope.settings and not scope.toolchain_local
    return not value.startswith(_NO_DOWNLOAD_TOOLCHAINS) and not value.endswith("+path")


def check_scope(scope: Scope, report: Reporter) -> None:
    settings = scope.settings
    goproxy_setting = settings.get("GOPROXY")
    proxies = _goproxy(goproxy_setting) if goproxy_setting and goproxy_setting.known else None
    internal = _internal_hosts(proxies) if proxies is not None else []
    private = settings.get("GOPRIVATE")
    if private is not None and private.value.strip() and internal and "GONOPROXY" not in settings:
        report.emit(
            GM011_GOPRIVATE_BYPASSES_PROXY,
            private.file,
            private.line,
            f"GOPRIVATE={private.value} also means GONOPROXY: those modules skip the internal "
            f"proxy {internal[0][1]} and are fetched directly with git",
        )
    sumdb = settings.get("GOSUMDB")
    if (
        sumdb is not None
        and sumdb.known
        and sumdb.value == gosumdb.OFF
        and toolchain_download_possible(scope)
    ):
        report.emit(
            GM013_GOSUMDB_OFF_TOOLCHAIN,
            sumdb.file,
            sumdb.line,
            "GOSUMDB=off while GOTOOLCHAIN may download a toolchain: that download always needs "
            "the checksum database and fails ('checksum database disabled by GOSUMDB=off')",
        )
    insecure = settings.get("GOINSECURE")
    if insecure is not None and insecure.known and proxies is not None:
        for entry in proxies.entries:
            host = urlsplit(entry.url).hostname if entry.url else None
            if host and match_prefix_patterns(insecure.value, host):
                report.emit(
                    GM014_GOINSECURE_FOR_PROXY,
                    insecure.file,
                    insecure.line,
                    f"GOINSECURE={insecure.value} matches the proxy host {host}, but GOINSECURE "
                    "only affects direct fetches: the proxy's TLS is still verified",
                )
                break
    _check_no_proxy(scope, internal, report)


def _check_no_proxy(scope: Scope, internal: list[tuple[str, str, str]], report: Reporter) -> None:
    settings = scope.settings
    no_proxy = next((settings[n] for n in ("NO_PROXY", "no_proxy") if n in settings), None)
    if no_proxy is not None and not no_proxy.known:
        return
    no_proxy_value = no_proxy.value if no_proxy is not None else ""
    for scheme, host, port in internal:
        names = proxy_variable(scheme)
        if names is None:
            continue
        proxy = next((settings[n] for n in names if n in settings and settings[n].value), None)
        if proxy is None or bypasses_proxy(no_proxy_value, host, port):
            continue
        report.emit(
            GM018_PROXY_WITHOUT_NO_PROXY,
            proxy.file,
            proxy.line,
            f"{proxy.name} is set and NO_PROXY does not cover {host}: requests to the internal "
            "GOPROXY go through the outbound proxy",
        )


def scope_from(settings: Iterable[Setting], *, toolchain_local: bool = False) -> Scope:
    scope = Scope(toolchain_local=toolchain_local)
    for s in settings:
        scope.settings[s.name] = s
    return scope


def merged(*layers: Mapping[str, Setting], toolchain_local: bool = False) -> Scope:
    """A scope from layers of settings, later layers overriding earlier ones."""
    scope = Scope(toolchain_local=toolchain_local)
    for layer in layers:
        scope.settings.update(layer)
    return scope
