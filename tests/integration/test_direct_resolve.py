"""From module path to repository: the static table, VCS qualifiers, rewrites, go-get discovery.

Discovery runs against an in-memory transport (no sockets): each case
lists the pages a server would answer and what the resolver must conclude.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from modgate.config import ConfigError, describe, resolve
from modgate.protocol.patterns import parse_patterns
from modgate.sources.vcs_resolve import (
    RepoRoot,
    ResolveError,
    Resolver,
    parse_meta_go_imports,
    parse_rewrites,
    static_root,
)

STATIC_CASES = [
    ("github.com/user/repo", ("github.com/user/repo", "https://github.com/user/repo")),
    ("github.com/user/repo/sub/v2", ("github.com/user/repo", "https://github.com/user/repo")),
    ("bitbucket.org/team/repo/x", ("bitbucket.org/team/repo", "https://bitbucket.org/team/repo")),
    (
        "hub.jazz.net/git/user/proj/pkg",
        ("hub.jazz.net/git/user/proj", "https://hub.jazz.net/git/user/proj"),
    ),
    (
        "git.apache.org/thrift.git/lib/go",
        ("git.apache.org/thrift.git", "https://git.apache.org/thrift.git"),
    ),
    (
        "git.openstack.org/openstack/swift",
        ("git.openstack.org/openstack/swift", "https://git.openstack.org/openstack/swift"),
    ),
    ("gitlab.com/group/project", None),
    ("example.com/anything", None),
]


@pytest.mark.parametrize(("path", "want"), STATIC_CASES)
def test_static_hosting_sites(path: str, want: tuple[str, str] | None) -> None:
    assert static_root(path) == want


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("github.com/user", "invalid github.com import path"),
        ("github.com/user/repo.git", "invalid version control suffix"),
        ("chiselapp.com/user/kyle/repository/fossilgg", "fetches only from git"),
    ],
)
def test_static_sites_refuse_what_they_cannot_serve(path: str, message: str) -> None:
    with pytest.raises(ResolveError, match=message):
        static_root(path)


def _resolve(
    path: str, pages: Mapping[str, tuple[int, str] | tuple[int, str, str]], **kw: object
) -> RepoRoot:
    """Resolve ``path`` with a transport answering ``pages`` (URL -> (status, body[, location]))."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        seen.append(url)
        if url not in pages:
            if url.startswith("https://plain."):
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(404, text="not found")
        page = pages[url]
        headers = {"Location": page[2]} if len(page) == 3 else {}
        return httpx.Response(page[0], text=page[1], headers=headers)

    async def run() -> RepoRoot:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            resolver = Resolver(client=client, **kw)  # type: ignore[arg-type]
            return await resolver.resolve(path)

    return asyncio.run(run())


def meta(*contents: str, body_first: bool = False) -> str:
    tags = "".join(f'<meta name="go-import" content="{c}">' for c in contents)
    if body_first:
        return f"<html><head></head><body>{tags}</body></html>"
    return f"<html><head>{tags}</head><body>hello</body></html>"


def test_vanity_path_at_the_repository_root() -> None:
    pages = {
        "https://go.example.com/tool?go-get=1": (
            200,
            meta("go.example.com/tool git https://code.example.com/tool.git"),
        )
    }
    assert _resolve("go.example.com/tool", pages) == RepoRoot(
        "go.example.com/tool", "https://code.example.com/tool.git"
    )


def test_shorter_prefix_is_confirmed_on_its_own_page() -> None:
    tag = meta("go.example.com/tool git https://code.example.com/tool.git")
    pages = {
        "https://go.example.com/tool/sub/v2?go-get=1": (200, tag),
        "https://go.example.com/tool?go-get=1": (200, tag),
    }
    assert _resolve("go.example.com/tool/sub/v2", pages).root == "go.example.com/tool"


def test_prefix_page_that_disagrees_is_refused() -> None:
    pages = {
        "https://go.example.com/tool/sub?go-get=1": (
            200,
            meta("go.example.com/tool git https://evil.example.com/tool.git"),
        ),
        "https://go.example.com/tool?go-get=1": (
            200,
            meta("go.example.com/tool git https://code.example.com/tool.git"),
        ),
    }
    with pytest.raises(ResolveError, match="disagree about go-import"):
        _resolve("go.example.com/tool/sub", pages)


def test_subdirectory_field_is_kept() -> None:
    pages = {
        "https://go.example.com/m?go-get=1": (
            200,
            meta("go.example.com/m git https://code.example.com/mono.git go/m"),
        )
    }
    assert _resolve("go.example.com/m", pages) == RepoRoot(
        "go.example.com/m", "https://code.example.com/mono.git", "go/m"
    )


def test_meta_tag_on_a_404_page_still_counts() -> None:
    pages = {
        "https://gitlab.example.com/g/p?go-get=1": (
            404,
            meta("gitlab.example.com/g/p git https://gitlab.example.com/g/p.git"),
        )
    }
    assert _resolve("gitlab.example.com/g/p", pages).url == "https://gitlab.example.com/g/p.git"


@pytest.mark.parametrize(
    ("pages", "message"),
    [
        ({}, "404 Not Found"),
        (
            {"https://a.example.com/x?go-get=1": (200, "<html><head></head></html>")},
            "no go-import meta tag",
        ),
        (
            {
                "https://a.example.com/x?go-get=1": (
                    200,
                    meta("a.example.com/x git https://a/x", body_first=True),
                )
            },
            "no go-import meta tag",
        ),
        (
            {"https://a.example.com/x?go-get=1": (200, meta("a.example.com/y git https://a/y"))},
            "did not match import path",
        ),
        (
            {
                "https://a.example.com/x?go-get=1": (
                    200,
                    meta("a.example.com/x git https://a/1", "a.example.com/x git https://a/2"),
                )
            },
            "multiple meta tags",
        ),
        (
            {"https://a.example.com/x?go-get=1": (200, meta("a.example.com/x hg https://a/x"))},
            "fetches only from git",
        ),
        (
            {"https://a.example.com/x?go-get=1": (200, meta("a.example.com/x svn https://a/x"))},
            "fetches only from git",
        ),
        (
            {
                "https://a.example.com/x?go-get=1": (
                    200,
                    meta("a.example.com/x mod https://proxy.example.com"),
                )
            },
            "module proxy",
        ),
        (
            {"https://a.example.com/x?go-get=1": (200, meta("a.example.com/x cvs https://a/x"))},
            "unknown vcs",
        ),
        (
            {
                "https://a.example.com/x?go-get=1": (
                    200,
                    meta("a.example.com/x git file:///etc/repo"),
                )
            },
            "file scheme disallowed",
        ),
        (
            {
                "https://a.example.com/x?go-get=1": (
                    200,
                    meta("a.example.com/x git ext::sh%20-c%20touch%20x"),
                )
            },
            "invalid repo root",
        ),
        (
            {"https://a.example.com/x?go-get=1": (200, meta("a.example.com/x git /local/path"))},
            "no scheme",
        ),
        (
            {
                "https://a.example.com/x?go-get=1": (
                    200,
                    meta("a.example.com/x git ssh://-oProxyCommand=x/r"),
                )
            },
            "invalid host",
        ),
        (
            {
                "https://a.example.com/x?go-get=1": (
                    200,
                    meta("a.example.com/x git https://a/x -sub"),
                )
            },
            "leading hyphen",
        ),
        (
            {"https://a.example.com/x?go-get=1": (302, "", "http://a.example.com/x?go-get=1")},
            "to insecure URL",
        ),
    ],
)
def test_discovery_failures(
    pages: Mapping[str, tuple[int, str] | tuple[int, str, str]], message: str
) -> None:
    with pytest.raises(ResolveError, match=message) as caught:
        _resolve("a.example.com/x", pages)
    assert "unrecognized import path" in str(caught.value)


def test_redirects_are_followed_up_to_ten() -> None:
    pages: dict[str, tuple[int, str] | tuple[int, str, str]] = {
        f"https://r.example.com/{i}?go-get=1": (302, "", f"https://r.example.com/{i + 1}?go-get=1")
        for i in range(10)
    }
    pages["https://r.example.com/10?go-get=1"] = (
        200,
        meta("r.example.com/0 git https://code.example.com/r.git"),
    )
    assert _resolve("r.example.com/0", pages).url == "https://code.example.com/r.git"
    pages["https://r.example.com/10?go-get=1"] = (302, "", "https://r.example.com/11?go-get=1")
    with pytest.raises(ResolveError, match="stopped after 10 redirects"):
        _resolve("r.example.com/0", pages)


def test_insecure_paths_may_use_http() -> None:
    # As the go command: plain http only for --insecure paths, and only when https fails.
    pages = {
        "http://plain.example.com/x?go-get=1": (
            200,
            meta("plain.example.com/x git http://plain.example.com/x.git"),
        )
    }
    with pytest.raises(ResolveError):
        _resolve("plain.example.com/x", pages)
    got = _resolve("plain.example.com/x", pages, insecure=parse_patterns("plain.example.com"))
    assert got.url == "http://plain.example.com/x.git"


def test_mod_entries_win_over_vcs_entries() -> None:
    imports = parse_meta_go_imports(
        meta("a.example.com/x git https://a/x", "a.example.com/x mod https://p")
    )
    assert [m.vcs for m in imports] == ["mod"]


def test_rewrites_win_longest_prefix_first() -> None:
    rewrites = parse_rewrites(
        {
            "corp.example.com": "https://git.corp.example.com/all.git",
            "corp.example.com/lib": "file:///srv/git/lib.git",
        }
    )
    resolver = Resolver(rewrites=rewrites)
    got = asyncio.run(resolver.resolve("corp.example.com/lib/sub"))
    assert got == RepoRoot("corp.example.com/lib", "file:///srv/git/lib.git")
    got = asyncio.run(resolver.resolve("corp.example.com/other"))
    assert got == RepoRoot("corp.example.com", "https://git.corp.example.com/all.git")


@pytest.mark.parametrize(
    "url", ["ext::sh -c x", "fd::3", "-oProxyCommand=x", "/srv/git/lib.git", ""]
)
def test_rewrites_refuse_unsafe_urls(url: str) -> None:
    with pytest.raises(ValueError, match="not usable"):
        parse_rewrites({"corp.example.com/lib": url})


def test_origin_url_hides_credentials() -> None:
    root = RepoRoot("corp.example.com/lib", "https://robot:token@git.corp.example.com/lib.git")
    assert root.origin_url == "https://xxxxx@git.corp.example.com/lib.git"


def test_vcs_qualified_paths_probe_secure_schemes() -> None:
    probed: list[str] = []

    async def ping(url: str) -> bool:
        probed.append(url)
        return url.startswith("ssh://")

    resolver = Resolver(ping=ping)
    got = asyncio.run(resolver.resolve("example.com/repo.git/sub"))
    assert got == RepoRoot("example.com/repo.git", "ssh://example.com/repo.git")
    assert probed == [
        "https://example.com/repo.git",
        "git+ssh://example.com/repo.git",
        "ssh://example.com/repo.git",
    ]
    with pytest.raises(ResolveError, match="fetches only from git"):
        asyncio.run(resolver.resolve("example.com/repo.hg/sub"))


def test_git_rewrite_and_timeout_settings(tmp_path: Path) -> None:
    flags = {
        "git_rewrite": "a.example.com/x=https://git.example.com/x.git, b.example.com=file:///srv/b"
    }
    settings = resolve(flags, {"MODGATE_GIT_TIMEOUT": "12"}, None)
    assert settings.git_rewrite == (
        ("a.example.com/x", "https://git.example.com/x.git"),
        ("b.example.com", "file:///srv/b"),
    )
    assert settings.git_timeout == 12.0
    config = tmp_path / "modgate.toml"
    config.write_text('git-rewrite = ["c.example.com=https://u:tok@git.example.com/c.git"]\n')
    from_file = resolve({}, {}, config)
    assert from_file.git_rewrite == (("c.example.com", "https://u:tok@git.example.com/c.git"),)
    assert "tok" not in describe(from_file)["git_rewrite"], "credentials in the start-up log"
    assert resolve({}, {"MODGATE_GIT_REWRITE": "d.example.com=ssh://git@h/d"}, None).git_rewrite


@pytest.mark.parametrize(
    "value", ["no-equals-sign", "x.example.com=ext::sh -c id", "x.example.com=/plain/path"]
)
def test_bad_git_rewrite_is_refused_with_its_value(value: str) -> None:
    with pytest.raises(ConfigError, match="--git-rewrite"):
        resolve({"git_rewrite": value}, {}, None)
