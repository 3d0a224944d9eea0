"""request: routing raw GOPROXY request-targets, and keeping them inside the store."""

from __future__ import annotations

import posixpath
from urllib.parse import quote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from modgate.protocol.errors import InvalidRequestError, ModgateError, NotFoundError
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.module import ModuleVersion, check
from modgate.protocol.request import MAX_TARGET_LENGTH, Endpoint, ProxyRequest, parse_proxy_path

LIST, INFO, MOD, ZIP, LATEST = (
    Endpoint.LIST,
    Endpoint.INFO,
    Endpoint.MOD,
    Endpoint.ZIP,
    Endpoint.LATEST,
)

ACCEPTED = [
    # (target, module, endpoint, version, canonical)
    (
        "/github.com/%21azure/x/@v/v1.0.0-%21r%21c1+incompatible.info",
        "github.com/Azure/x",
        INFO,
        "v1.0.0-RC1+incompatible",
        True,
    ),
    ("/github.com/!azure/x/@v/list", "github.com/Azure/x", LIST, None, False),
    ("/example.com/m/@v/list", "example.com/m", LIST, None, False),
    ("/example.com/m/@latest", "example.com/m", LATEST, None, False),
    ("/example.com/m/@v/v1.2.3.info", "example.com/m", INFO, "v1.2.3", True),
    ("/example.com/m/@v/v1.2.3.mod", "example.com/m", MOD, "v1.2.3", True),
    ("/example.com/m/@v/v1.2.3.zip", "example.com/m", ZIP, "v1.2.3", True),
    (
        "/example.com/m/@v/v0.0.0-20240203030506-abcdefabcdef.zip",
        "example.com/m",
        ZIP,
        "v0.0.0-20240203030506-abcdefabcdef",
        True,
    ),
    ("/example.com/m/v2/@v/v2.0.0.zip", "example.com/m/v2", ZIP, "v2.0.0", True),
    (
        "/example.com/m/@v/v2.0.0+incompatible.zip",
        "example.com/m",
        ZIP,
        "v2.0.0+incompatible",
        True,
    ),
    (
        "/example.com/m/@v/v2.0.0%2Bincompatible.mod",
        "example.com/m",
        MOD,
        "v2.0.0+incompatible",
        True,
    ),
    ("/gopkg.in/yaml.v2/@v/v2.4.0.mod", "gopkg.in/yaml.v2", MOD, "v2.4.0", True),
    (
        "/gopkg.in/check.v1/@v/v0.0.0-20161208181325-20d25e280405.mod",
        "gopkg.in/check.v1",
        MOD,
        "v0.0.0-20161208181325-20d25e280405",
        True,
    ),
    ("/example.com/m/@v/master.info", "example.com/m", INFO, "master", False),
    ("/example.com/m/@v/v1.2.info", "example.com/m", INFO, "v1.2", False),
    (
        "/example.com/m/@v/v2.0.0.info",
        "example.com/m",
        INFO,
        "v2.0.0",
        True,
    ),  # a query: .info decides
    ("/example.com/m/@v/abc1234.info", "example.com/m", INFO, "abc1234", False),
    ("/example.com/m/@v/my%20branch.info", "example.com/m", INFO, "my branch", False),
    ("/example.com/m/@v/list.info", "example.com/m", INFO, "list", False),
    ("/example.com/%6d/@v/list", "example.com/m", LIST, None, False),
]


@pytest.mark.parametrize(("target", "module", "endpoint", "version", "canonical"), ACCEPTED)
def test_accepted(
    target: str, module: str, endpoint: Endpoint, version: str | None, canonical: bool
) -> None:
    req = parse_proxy_path(target)
    assert req == ProxyRequest(module, endpoint, version), f"parse_proxy_path({target!r})"
    assert req.canonical == canonical, f"canonical of {target!r}"
    if version is None:
        assert req.subject == module
        with pytest.raises(ValueError, match="no version"):
            req.module_version()
    else:
        assert req.subject == f"{module}@{version}"
        assert req.module_version() == ModuleVersion(module, version)


BAD_REQUESTS = [
    "",
    "example.com/m/@v/list",
    "http://example.com/m/@v/list",
    "/",
    "/example.com/m",
    "/@latest",
    "/@v/list",
    "/example.com/m/@v/",
    "/example.com/m/@v/list?x=1",
    "/example.com/m/@v/list?",
    "/example.com/m/@v/list#x",
    "/example.com/../@v/list",
    "/example.com/m/../x/@v/list",
    "/example.com/m/%2e%2e/@v/list",
    "/example.com/m/%2E%2E/@v/list",
    "/example.com/./m/@v/list",
    "/example.com//m/@v/list",
    "/example.com/m//@v/list",
    "/example.com/m/%2f/@v/list",
    "/..%2f..%2fetc/@v/list",
    "/Github.com/x/@v/list",
    "/github.com/Azure/x/@v/list",
    "/github.com/!!azure/x/@v/list",
    "/github.com/azure!/x/@v/list",
    "/_modgate/x/@v/list",
    "/_modgate.example.com/x/@v/list",
    "/example.com/m/@v/list%00",
    "/example.com/m%00/@v/list",
    "/example.com/m/@v/v1.0.0%00.info",
    "/example.com/m/@v/v1.0.0%0a.info",
    "/example.com/m/@v/v1.0.0%7f.info",
    "/example.com/m%5c/@v/list",
    "/example.com/m\\x/@v/list",
    "/example.com/m/@v/v1%5c..%5c..info",
    "/example.com/m/@v/v1.0.0%zz.info",
    "/example.com/m/@v/v1.0.0%4.info",
    "/example.com/m/@v/v1.0.0.info%",
    "/example.com/m/@v/%ff.info",
    "/example.com/m/@v/%c3.info",
    "/example.com/m/@v/a b.info",
    "/example.com/m/@v/\u00e9.info",
    "/example.com/m/@v/%c3%a9.info",
    "/example.com/m/@v/foo/bar.info",
    "/example.com/m/@v/v1.0.0.info/../../x",
    "/example.com/m/@v/.info",
    "/example.com/m/@v/..info",
    "/example.com/m/@v/...info",
    "/example.com/m/@v/..%2f..%2fx.info",
    "/example.com/m/@v/bad!.mod",
    "/example.com/m/@v/v1.0.0-RC1.zip",
    "/example.com/m/@v/master.zip",
    "/example.com/m/@v/v1.2.3.4.mod",
    "/example.com/m/@v/con.info",
    "/example.com/m/@v/list/",
    "/example.com/m/@latest/",
    "/example.com/m/@v/a*b",
    "/x/@v/list",
    "/example.com/m/v1/@v/list",
    "/sumdb/sum.golang.org/supported",
    "/" + "a" * 10_000 + ".com/@v/list",
]


@pytest.mark.parametrize("target", BAD_REQUESTS)
def test_bad_requests_are_400(target: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_proxy_path(target)
    err = info.value
    assert err.status == 400, f"{target!r}: {err!r}"
    text = str(err)
    assert text.isprintable() and "\n" not in text, f"unsafe message for {target!r}: {text!r}"


def test_too_long_says_so() -> None:
    target = "/example.com/" + "a" * MAX_TARGET_LENGTH + "/@v/list"
    with pytest.raises(InvalidRequestError, match="request path too long"):
        parse_proxy_path(target)
    fits = "/example.com/" + "a" * (MAX_TARGET_LENGTH - len("/example.com//@v/list")) + "/@v/list"
    assert len(fits) == MAX_TARGET_LENGTH
    assert parse_proxy_path(fits).endpoint is Endpoint.LIST


NOT_FOUND = [
    # (target, subject, words the reason must hold)
    ("/example.com/m/@v/v1.2.mod", "example.com/m@v1.2", "not a canonical version"),
    ("/example.com/m/@v/v1.2.3+meta.zip", "example.com/m@v1.2.3+meta", "ask for v1.2.3"),
    ("/example.com/m/@v/v1.mod", "example.com/m@v1", "not a canonical version"),
    ("/example.com/m/@v/v2.0.0.zip", "example.com/m@v2.0.0", "should be v0 or v1, not v2"),
    ("/example.com/m/@v/v2.0.0.mod", "example.com/m@v2.0.0", "should be v0 or v1, not v2"),
    ("/example.com/m/v2/@v/v1.0.0.mod", "example.com/m/v2@v1.0.0", "should be v2, not v1"),
    (
        "/example.com/m/v2/@v/v2.0.0+incompatible.zip",
        "example.com/m/v2@v2.0.0+incompatible",
        "+incompatible suffix not allowed",
    ),
    (
        "/example.com/m/@v/v1.0.0+incompatible.zip",
        "example.com/m@v1.0.0+incompatible",
        "+incompatible suffix not allowed: major version v1 is compatible",
    ),
    ("/gopkg.in/yaml.v2/@v/v3.0.0.zip", "gopkg.in/yaml.v2@v3.0.0", "should be v2, not v3"),
    ("/example.com/m/@v/v1.0.0.ziphash", "example.com/m", "no such file @v/v1.0.0.ziphash"),
    ("/example.com/m/@v/lists", "example.com/m", "no such file"),
    ("/example.com/m/@v/v1.0.0", "example.com/m", "no such file"),
]


@pytest.mark.parametrize(("target", "subject", "words"), NOT_FOUND)
def test_well_formed_but_absent_is_404(target: str, subject: str, words: str) -> None:
    with pytest.raises(NotFoundError) as info:
        parse_proxy_path(target)
    err = info.value
    assert err.status == 404 and err.subject == subject, f"{target!r}: {err!r}"
    assert words in err.reason, f"{target!r}: reason {err.reason!r} lacks {words!r}"


def test_errors_name_their_subject() -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_proxy_path("/example.com/m/@v/bad!.info")
    assert info.value.subject == "example.com/m@bad!"
    with pytest.raises(InvalidRequestError) as info:
        parse_proxy_path("/Example.com/m/@v/list")
    assert info.value.subject == "Example.com/m"
    assert 'invalid escaped module path "Example.com/m"' in str(info.value)


# --- properties -------------------------------------------------------------

_PATH_TOKENS = [
    "example",
    ".com",
    "x",
    "m",
    "v2",
    "v1",
    ".v1",
    "-",
    "~",
    "_",
    ".",
    "..",
    "%2e",
    "%2E",
    "%2f",
    "%5c",
    "%00",
    "%0a",
    "%21a",
    "!b",
    "!",
    "A",
    "%",
    "%2",
    "%zz",
    "%ff",
    "%c3%a9",
    "+",
    "%2B",
    " ",
    "%20",
    "?",
    "#",
    "\\",
    "*",
    ":",
    "con",
    "@v",
    "@latest",
    "/",
    "",
]
_VERSION_TOKENS = [
    "v1",
    "v2",
    ".0",
    ".3",
    "-",
    "pre",
    "%21r",
    "!c",
    "+incompatible",
    "%2Bmeta",
    ".",
    "..",
    "%2e",
    "%2f",
    "/",
    "%5c",
    "%00",
    "A",
    "master",
    " ",
    "%20",
    "~",
    "_",
    "con",
    ".info",
    "",
]
_EXTENSIONS = [".info", ".mod", ".zip", ".ziphash", "", "/"]


def _joined(tokens: list[str], max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(tokens), min_size=1, max_size=max_size).map("".join)


_routes = st.one_of(
    st.sampled_from(["/@v/list", "/@latest", "/@v/", "/@v/list/", "/@latest/", ""]),
    st.builds(
        lambda v, ext: f"/@v/{v}{ext}",
        st.one_of(
            st.sampled_from(
                ["v1.0.0", "v2.0.0+incompatible", "v1.0.0-%21r%21c1", "master", "v1.2"]
            ),
            _joined(_VERSION_TOKENS, 5),
        ),
        st.sampled_from(_EXTENSIONS),
    ),
)
_targets = st.builds(
    lambda first, rest, route: "/" + "/".join([first, *rest]) + route,
    st.one_of(
        st.sampled_from(["example.com", "gopkg.in", "_modgate", "x.io"]), _joined(_PATH_TOKENS, 4)
    ),
    st.lists(
        st.one_of(st.sampled_from(["m", "%21x", "v2", "a.b", "yaml.v2"]), _joined(_PATH_TOKENS, 3)),
        max_size=3,
    ),
    _routes,
)


def _go_path_escape(s: str) -> str:
    """Percent-encoding as the go command applies it to proxy URL paths."""
    return quote(s, safe="$&+:=@/")


def _assert_inside_store(req: ProxyRequest) -> None:
    escaped = escape_path(req.module)
    elems = escaped.split("/")
    assert not elems[0].startswith("_"), escaped
    for elem in elems:
        assert elem not in ("", ".", ".."), escaped
        assert not any(c in elem for c in "\x00\\/"), escaped
        assert elem.isascii() and elem == elem.lower(), escaped
    parts = [escaped]
    if req.version is not None:
        ev = escape_version(req.version)
        assert "/" not in ev and "\\" not in ev and "\x00" not in ev, ev
        assert ev not in ("", ".", ".."), ev
        parts += ["@v", ev + "." + req.endpoint.value]
    joined = posixpath.join("/root", *parts)
    assert posixpath.normpath(joined) == joined, joined
    assert joined.startswith("/root/") and not joined.startswith("/root/_"), joined


@settings(max_examples=1000)
@given(_targets)
@example("/github.com/%21azure/x/@v/v1.0.0-%21r%21c1+incompatible.info")
@example("/example.com/%2e%2e/@v/list")
def test_accepted_targets_stay_inside_the_store(target: str) -> None:
    try:
        req = parse_proxy_path(target)
    except ModgateError as err:
        assert err.status in (400, 404), f"{target!r}: {err!r}"
        assert "\n" not in str(err), f"{target!r}: multi-line message"
        return
    _assert_inside_store(req)


@given(st.text(max_size=40).map(lambda s: "/" + s))
def test_arbitrary_text_is_accepted_only_if_safe(target: str) -> None:
    try:
        req = parse_proxy_path(target)
    except ModgateError as err:
        assert err.status in (400, 404), f"{target!r}: {err!r}"
        return
    _assert_inside_store(req)


_elem = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._~-]{0,8}[A-Za-z0-9_~-])?", fullmatch=True)
_modules = st.builds(
    lambda host, rest: "/".join([host + ".com", *rest]),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True),
    st.lists(_elem, max_size=3),
)
_versions = st.builds(
    lambda major, minor, patch, pre: f"v{major}.{minor}.{patch}" + (f"-{pre}" if pre else ""),
    st.integers(0, 1),
    st.integers(0, 30),
    st.integers(0, 30),
    st.one_of(
        st.just(""), st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,5}(\.[1-9][0-9]?)?", fullmatch=True)
    ),
)


@given(_modules, _versions, st.sampled_from([".info", ".mod", ".zip"]))
def test_go_command_requests_round_trip(module: str, version: str, ext: str) -> None:
    try:
        escaped_module = escape_path(module)
        check(module, version)
    except ModgateError:
        return  # e.g. a Windows reserved element, a /v1 suffix, v1.0.0 of a /v2 path
    target = (
        "/"
        + _go_path_escape(escaped_module)
        + "/@v/"
        + _go_path_escape(escape_version(version))
        + ext
    )
    req = parse_proxy_path(target)
    assert (req.module, req.version) == (module, version), target
    assert req.endpoint.value == ext[1:]
    assert req.canonical
    _assert_inside_store(req)
