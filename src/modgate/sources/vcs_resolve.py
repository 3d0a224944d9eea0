"""From a module path to its git repository (after cmd/go internal/vcs).

Three ways, tried in this order:

1. the operator's rewrite map: a module path prefix names a repository URL
   (``corp.example.com/lib=https://git.corp.example.com/lib.git``), longest
   prefix first; for air-gapped mirrors and hosts without discovery pages;
2. the hosting sites the go command knows without asking (github.com,
   bitbucket.org, ...), and paths that name their repository with a VCS
   qualifier (``example.com/repo.git/sub``);
3. ``https://<path>?go-get=1`` discovery: the ``<meta name="go-import">``
   tag whose prefix matches the path, checked against the page of that
   prefix when it is shorter than the path, with the go command's rules for
   redirects (at most 10, never from https to http) and repository URLs
   (a scheme is required, ``file`` is refused).

With a :class:`HostGuard`, every page URL (the first and each redirect) must
name an allowed host before it is asked for, and the client's transport
connects only to checked addresses; a refusal says that the host is not
allowed and nothing about what answered there.

Only git is supported; a module that lives in another VCS, or that a
go-import tag sends to a module proxy (``mod``), is refused with a message
that says what to do instead.
"""

from __future__ import annotations

import http
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

from modgate.protocol.goproxy import redact_url
from modgate.protocol.patterns import PatternList
from modgate.sources.hostguard import HostGuard, HostNotAllowedError

MAX_REDIRECTS = 10
MAX_DISCOVERY_BODY = 1 << 20
DISCOVERY_TTL = 600.0
DISCOVERY_CACHE_ENTRIES = 10_000
"""Module paths whose discovered repository is remembered at most."""
"""Seconds a discovered repository is remembered."""
GIT = "git"
KNOWN_VCS = ("git", "hg", "svn", "bzr", "fossil")
GIT_SCHEMES_SECURE = ("https", "git+ssh", "ssh")
GIT_SCHEMES_ALL = ("git", "https", "http", "git+ssh", "ssh")
"""The go command's order for git; only the secure ones unless the path is insecure."""
ALLOWED_REPO_SCHEMES = frozenset({"https", "http", "ssh", "git+ssh", "git"})

Pinger = Callable[[str], Awaitable[bool]]
"""Checks that a git URL answers (``git ls-remote``); used for VCS-qualified paths."""


class ResolveError(Exception):
    """The repository of a module path cannot be found; ``str()`` says why and what to do."""


@dataclass(frozen=True, slots=True)
class RepoRoot:
    root: str
    """Import path of the repository root (or of ``subdir`` in it)."""
    url: str
    """Repository URL for git, as configured or discovered (may carry credentials)."""
    subdir: str = ""
    """Subdirectory of the repository that ``root`` names (go-import's fourth field)."""

    @property
    def origin_url(self) -> str:
        """The URL as recorded in ``.info`` Origin: without credentials."""
        return redact_url(self.url) if "@" in urlsplit(self.url).netloc else self.url


@dataclass(frozen=True, slots=True)
class _Site:
    prefix: str
    pattern: re.Pattern[str]
    vcs: str
    check_suffix: bool


_W = r"[A-Za-z0-9_.\-]"
_SITES = (
    _Site(
        "github.com", re.compile(rf"(?P<root>github\.com/{_W}+/{_W}+)(/{_W}+)*", re.A), GIT, True
    ),
    _Site(
        "bitbucket.org",
        re.compile(rf"(?P<root>bitbucket\.org/{_W}+/{_W}+)(/{_W}+)*", re.A),
        GIT,
        True,
    ),
    _Site(
        "hub.jazz.net/git",
        re.compile(rf"(?P<root>hub\.jazz\.net/git/[a-z0-9]+/{_W}+)(/{_W}+)*", re.A),
        GIT,
        True,
    ),
    _Site(
        "git.apache.org",
        re.compile(rf"(?P<root>git\.apache\.org/[a-z0-9_.\-]+\.git)(/{_W}+)*", re.A),
        GIT,
        False,
    ),
    _Site(
        "git.openstack.org",
        re.compile(rf"(?P<root>git\.openstack\.org/{_W}+/{_W}+)(\.git)?(/{_W}+)*", re.A),
        GIT,
        False,
    ),
    _Site(
        "chiselapp.com",
        re.compile(rf"(?P<root>chiselapp\.com/user/[A-Za-z0-9]+/repository/{_W}+)", re.A),
        "fossil",
        False,
    ),
)
_QUALIFIED = re.compile(
    rf"(?P<root>(?P<repo>([a-z0-9.\-]+\.)+[a-z0-9.\-]+(:[0-9]+)?(/~?{_W}+)+?)"
    rf"\.(?P<vcs>fossil|git|hg|svn))(/~?{_W}+)*$",
    re.A,
)


def has_path_prefix(path: str, prefix: str) -> bool:
    if not prefix:
        return True
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _not_git(path: str, vcs: str) -> ResolveError:
    return ResolveError(
        f"{path} is kept in {vcs}, and modgate fetches only from git; publish the module "
        "to a module proxy listed in --upstream, or import it with 'modgate import'"
    )


def parse_rewrites(entries: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Validate a rewrite map (module prefix -> repository URL); longest prefix first."""
    out: list[tuple[str, str]] = []
    for raw_prefix, raw_url in entries.items():
        prefix = raw_prefix.strip().rstrip("/")
        url = raw_url.strip()
        if not prefix or "://" in prefix or prefix.startswith("-"):
            raise ValueError(f"rewrite prefix {prefix!r} must be a module path prefix")
        problem = repo_url_problem(url, allow_file=True)
        if problem:
            raise ValueError(f"rewrite URL for {prefix!r} is not usable: {problem}")
        out.append((prefix, url))
    return tuple(sorted(out, key=lambda pair: len(pair[0]), reverse=True))


def repo_url_problem(url: str, *, allow_file: bool) -> str:
    """Why git must not be given ``url`` ("" if it may)."""
    if any(c.isspace() for c in url) or not url:
        return "empty or contains spaces"
    if url.startswith("-"):
        return "leading hyphen"
    parts = urlsplit(url)
    if not parts.scheme:
        return "no scheme"
    if parts.scheme == "file":
        return "" if allow_file else "file scheme disallowed"
    if parts.scheme not in ALLOWED_REPO_SCHEMES:
        return f"scheme {parts.scheme!r} is not one of {', '.join(sorted(ALLOWED_REPO_SCHEMES))}"
    if not parts.hostname or parts.hostname.startswith("-"):
        return "missing or invalid host"
    return ""


def static_root(path: str) -> tuple[str, str] | None:
    """``(root, url)`` from the go command's table of hosting sites, or None for unknown sites.

    Raises ResolveError for a path a known site cannot serve.
    """
    for site in _SITES:
        if not has_path_prefix(path, site.prefix):
            continue
        m = site.pattern.fullmatch(path)
        if m is None:
            raise ResolveError(f'invalid {site.prefix} import path "{path}"')
        root = m.group("root")
        if site.check_suffix and any(root.endswith("." + v) for v in KNOWN_VCS):
            raise ResolveError(f"invalid version control suffix in {site.prefix}/ path")
        if site.vcs != GIT:
            raise _not_git(path, site.vcs)
        return root, f"https://{root}"
    return None


@dataclass(frozen=True, slots=True)
class MetaImport:
    prefix: str
    vcs: str
    repo_root: str
    subdir: str = ""


class _MetaParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.imports: list[MetaImport] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if tag == "body":
            self.done = True
            return
        if tag != "meta":
            return
        values = {k: v or "" for k, v in attrs}
        if values.get("name") != "go-import":
            return
        fields = values.get("content", "").split()
        if len(fields) in (3, 4):
            self.imports.append(MetaImport(*fields))

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.done = True


def parse_meta_go_imports(html: str) -> list[MetaImport]:
    """The go-import tags of a page (before ``<body>``), ``mod`` entries first."""
    parser = _MetaParser()
    parser.feed(html)
    imports = parser.imports
    mod = [m for m in imports if m.vcs == "mod"]
    have = {m.prefix for m in mod}
    return mod + [m for m in imports if m.vcs != "mod" and m.prefix not in have]


def match_go_import(imports: list[MetaImport], path: str) -> MetaImport:
    match: MetaImport | None = None
    mismatches: list[str] = []
    for im in imports:
        if not has_path_prefix(path, im.prefix):
            mismatches.append(im.prefix)
            continue
        if match is not None:
            if match.vcs == "mod" and im.vcs != "mod":
                break
            raise ResolveError(f'multiple meta tags match import path "{path}"')
        match = im
    if match is None:
        text = ", ".join(f"meta tag {p} did not match import path {path}" for p in mismatches)
        raise ResolveError(f"no go-import meta tags ({text})")
    return match


class Resolver:
    """Finds the repository of a module path; discovery answers are cached for a while."""

    def __init__(
        self,
        *,
        rewrites: tuple[tuple[str, str], ...] = (),
        client: httpx.AsyncClient | None = None,
        insecure: PatternList | None = None,
        ping: Pinger | None = None,
        guard: HostGuard | None = None,
    ) -> None:
        self.rewrites = rewrites
        self.guard = guard
        self.client = client
        self.insecure = insecure or PatternList(())
        self.ping = ping
        self._cache: OrderedDict[str, tuple[float, RepoRoot]] = OrderedDict()
        """Discovery answers by module path, oldest first: bounded, expired ones dropped."""

    async def resolve(self, path: str) -> RepoRoot:
        for prefix, url in self.rewrites:
            if has_path_prefix(path, prefix):
                return RepoRoot(prefix, url)
        static = static_root(path)
        if static is not None:
            return RepoRoot(*static)
        cached = self._cache.get(path)
        if cached is not None and time.monotonic() - cached[0] < DISCOVERY_TTL:
            return cached[1]
        root = await self._qualified(path)
        if root is None:
            try:
                root = await self._discover(path)
            except ResolveError as exc:
                raise ResolveError(f'unrecognized import path "{path}": {exc}') from None
        self._remember(path, root)
        return root

    def _remember(self, path: str, root: RepoRoot) -> None:
        now = time.monotonic()
        cache = self._cache
        cache.pop(path, None)
        cache[path] = (now, root)
        while cache:
            oldest, (stamp, _) = next(iter(cache.items()))
            if now - stamp < DISCOVERY_TTL and len(cache) <= DISCOVERY_CACHE_ENTRIES:
                break
            del cache[oldest]

    async def _qualified(self, path: str) -> RepoRoot | None:
        m = _QUALIFIED.search(path)
        if m is None:
            return None
        if m.group("vcs") != GIT:
            raise _not_git(path, m.group("vcs"))
        repo = m.group("repo") + ".git"
        schemes: tuple[str, ...] = GIT_SCHEMES_SECURE
        if self.insecure.matches(path):
            schemes = GIT_SCHEMES_ALL
        for scheme in schemes:
            url = f"{scheme}://{repo}"
            if self.ping is None or await self.ping(url):
                return RepoRoot(m.group("root"), url)
        raise ResolveError(
            f'unrecognized import path "{path}": no secure protocol found for repository'
        )

    async def _discover(self, path: str) -> RepoRoot:
        page_url, imports = await self._meta_imports(path)
        mmi = match_go_import(imports, path)
        if mmi.prefix != path:
            prefix_url, imports2 = await self._meta_imports(mmi.prefix)
            try:
                again = match_go_import(imports2, path)
            except ResolveError:
                again = None
            if again != mmi:
                raise ResolveError(
                    f"{page_url} and {prefix_url} disagree about go-import for {mmi.prefix}"
                )
        if mmi.subdir and mmi.subdir[0] in "/-":
            why = "leading slash" if mmi.subdir[0] == "/" else "leading hyphen"
            raise ResolveError(f'{page_url}: invalid subdirectory "{mmi.subdir}": {why}')
        if mmi.vcs == "mod":
            raise ResolveError(
                f"{page_url} says {mmi.prefix} is served by the module proxy {mmi.repo_root}; "
                "add that proxy to --upstream"
            )
        if mmi.vcs != GIT:
            if mmi.vcs in KNOWN_VCS:
                raise _not_git(path, mmi.vcs)
            raise ResolveError(f'{page_url}: unknown vcs "{mmi.vcs}"')
        problem = repo_url_problem(mmi.repo_root, allow_file=False)
        if problem:
            raise ResolveError(f'{page_url}: invalid repo root "{mmi.repo_root}": {problem}')
        return RepoRoot(mmi.prefix, mmi.repo_root, mmi.subdir)

    async def _meta_imports(self, path: str) -> tuple[str, list[MetaImport]]:
        host, _, rest = path.partition("/")
        if "." not in host:
            raise ResolveError("import path does not begin with hostname")
        target = f"{host}/{rest}?go-get=1"
        schemes = ("https", "http") if self.insecure.matches(path) else ("https",)
        failure = ""
        for scheme in schemes:
            url = f"{scheme}://{target}"
            try:
                status, final_url, body = await self._get(url, secure=scheme == "https")
            except ResolveError as exc:
                failure = str(exc)
                continue
            imports = parse_meta_go_imports(body)
            if not imports:
                if status != httpx.codes.OK:
                    raise ResolveError(f"reading {final_url}: {status} {_reason(status)}")
                raise ResolveError(f"fetching {path}: no go-import meta tag found in {final_url}")
            return final_url, imports
        prefix = "https fetch" if len(schemes) == 1 else "http/https fetch"
        raise ResolveError(f"{prefix}: {failure}")

    async def _get(self, url: str, *, secure: bool) -> tuple[int, str, str]:
        if self.client is None:
            raise ResolveError(f"Get {url!r}: discovery is not configured")
        for _ in range(MAX_REDIRECTS + 1):
            try:
                if self.guard is not None:
                    self.guard.check_name(urlsplit(url).hostname or "")
                async with self.client.stream("GET", url, follow_redirects=False) as resp:
                    if resp.is_redirect and "location" in resp.headers:
                        nxt = urljoin(url, resp.headers["location"])
                        if secure and urlsplit(nxt).scheme != "https":
                            raise ResolveError(
                                f"redirected from secure URL {url} to insecure URL {nxt}"
                            )
                        url = nxt
                        continue
                    body = b""
                    async for chunk in resp.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_DISCOVERY_BODY:
                            break
                    return resp.status_code, url, body.decode("utf-8", "replace")
            except HostNotAllowedError as exc:
                raise ResolveError(str(exc)) from exc
            except httpx.HTTPError as exc:
                raise ResolveError(
                    f"Get {redact_url(url)!r}: {type(exc).__name__}: {exc}"
                ) from None
        raise ResolveError(f"Get {url!r}: stopped after {MAX_REDIRECTS} redirects")


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""
