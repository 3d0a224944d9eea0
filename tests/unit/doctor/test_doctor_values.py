"""Go settings judged on their own and together: GOFLAGS, GOSUMDB, patterns, NO_PROXY, versions."""

from __future__ import annotations

import base64
import hashlib

import pytest

from modgate.doctor.analyzers import goenv
from modgate.doctor.analyzers.goenv import ModuleRef, Setting
from modgate.doctor.parsers.goflags import GoFlagsError, parse_goflags, split_goflags
from modgate.doctor.parsers.goimage import (
    go_version_key,
    is_floating,
    newest_in_tag,
    parse_image,
    tag_version,
)
from modgate.doctor.parsers.noproxy import bypasses_proxy
from modgate.doctor.report import Reporter
from modgate.formats.gosumdb import GoSumDBError, parse_gosumdb

# --------------------------------------------------------------------------- GOFLAGS


def test_goflags_split_like_the_go_command() -> None:
    assert split_goflags(" -a  '-ldflags=-s -w'\t\"-tags=x y\" ") == [
        "-a",
        "-ldflags=-s -w",
        "-tags=x y",
    ]
    with pytest.raises(GoFlagsError, match="unterminated ' string"):
        split_goflags("-x '-ldflags=-s")


GOFLAGS_ERRORS = [
    ("-mod readonly", 'non-flag "readonly"'),
    ("-foo", "unknown flag -foo"),
    ("--=x", 'non-flag "--=x"'),
    ("-", 'non-flag "-"'),
]


@pytest.mark.parametrize(("value", "message"), GOFLAGS_ERRORS)
def test_goflags_errors(value: str, message: str) -> None:
    with pytest.raises(GoFlagsError, match=message):
        parse_goflags(value)


def test_goflags_accepts_known_flags_in_every_spelling() -> None:
    flags = parse_goflags("-mod=readonly --trimpath -tags=a,b -modcacherw -insecure")
    assert [(f.name, f.value) for f in flags] == [
        ("mod", "readonly"),
        ("trimpath", None),
        ("tags", "a,b"),
        ("modcacherw", None),
        ("insecure", None),
    ]


# --------------------------------------------------------------------------- GOSUMDB

PUBLIC_KEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"


def _verifier_key(name: str, key: bytes) -> str:
    data = b"\x01" + key
    digest = hashlib.sha256(name.encode() + b"\n" + data).digest()
    return f"{name}+{digest[:4].hex()}+{base64.b64encode(data).decode()}"


def test_gosumdb_accepted_forms() -> None:
    assert parse_gosumdb("off") is None
    public = parse_gosumdb("sum.golang.org")
    assert public is not None and (public.name, public.url) == ("sum.golang.org", None)
    assert parse_gosumdb(PUBLIC_KEY) is not None
    mirror = parse_gosumdb("sum.golang.org https://mirror.example/sumdb/sum.golang.org")
    assert mirror is not None and mirror.url == "https://mirror.example/sumdb/sum.golang.org"
    alias = parse_gosumdb("sum.golang.google.cn")
    assert alias is not None and alias.url == "https://sum.golang.google.cn"
    own = parse_gosumdb(_verifier_key("sum.corp.example", bytes(32)) + " http://127.0.0.1:9")
    assert own is not None and own.name == "sum.corp.example"


GOSUMDB_ERRORS = [
    ("sum.golang.org+https://mirror.example", "malformed verifier id"),
    ("sum.corp.example", "malformed verifier id"),
    ("sum.golang.org https://a https://b", "too many fields"),
    ("   ", "missing GOSUMDB"),
    (PUBLIC_KEY.replace("033de0ae", "033de0af"), "invalid verifier hash"),
    (_verifier_key("db.example", bytes(31)), "malformed verifier id"),
]


@pytest.mark.parametrize(("value", "message"), GOSUMDB_ERRORS)
def test_gosumdb_errors(value: str, message: str) -> None:
    with pytest.raises(GoSumDBError, match=message):
        parse_gosumdb(value)


# --------------------------------------------------------------------------- NO_PROXY

NO_PROXY_CASES = [
    ("", "goproxy.corp.example.com", "443", False),
    ("corp.example.com", "goproxy.corp.example.com", "443", True),
    ("corp.example.com", "corp.example.com", "443", True),
    (".corp.example.com", "corp.example.com", "443", False),
    ("*.corp.example.com", "a.corp.example.com", "443", True),
    ("corp.example.com:8443", "goproxy.corp.example.com", "443", False),
    ("10.0.0.0/8", "10.1.2.3", "443", True),
    ("10.0.0.0/8", "goproxy.corp.example.com", "443", False),
    ("*", "anything.example", "80", True),
    ("", "127.0.0.1", "8080", True),
    ("", "localhost", "8080", True),
    (" example.org , corp.example.com ", "x.corp.example.com", "443", True),
]


@pytest.mark.parametrize(("no_proxy", "host", "port", "bypass"), NO_PROXY_CASES)
def test_no_proxy_matching(no_proxy: str, host: str, port: str, bypass: bool) -> None:
    assert bypasses_proxy(no_proxy, host, port) is bypass


# --------------------------------------------------------------------------- versions and images

ORDER = ["1.20", "1.21", "1.21rc1", "1.21rc2", "1.21.0", "1.21.1", "1.22.0", "1.100.0"]


def test_go_versions_are_ordered_like_gover() -> None:
    keys = [go_version_key(v) for v in ORDER]
    assert all(k is not None for k in keys)
    assert keys == sorted(keys), f"order broken: {list(zip(ORDER, keys, strict=True))}"
    assert go_version_key("1.22.x") is None
    assert go_version_key("go1.23.4") == go_version_key("1.23.4")


IMAGES = [
    ("golang", None, True),
    ("golang:latest", None, True),
    ("golang:alpine", None, True),
    ("golang:1", None, True),
    ("golang:1.23", "1.23", False),
    ("golang:1.23.4-bookworm", "1.23.4", False),
    ("golang:1.24rc1-alpine3.21", "1.24rc1", False),
    ("docker.io/library/golang:1.23-alpine", "1.23", False),
    ("golang@sha256:0123", None, False),
]


@pytest.mark.parametrize(("reference", "version", "floating"), IMAGES)
def test_golang_image_tags(reference: str, version: str | None, floating: bool) -> None:
    image = parse_image(reference)
    assert tag_version(image.tag) == version
    assert is_floating(image) is floating


def test_an_image_without_patch_holds_every_patch() -> None:
    newest = newest_in_tag("1.23")
    assert newest is not None
    assert go_version_key("1.23.99")  # type narrowing for the comparisons below
    assert go_version_key("1.23.99") <= newest < go_version_key("1.24.0")  # type: ignore[operator]


# --------------------------------------------------------------------------- settings


def _rules(*settings: Setting, modules: tuple[ModuleRef, ...] = ()) -> list[str]:
    report = Reporter()
    for s in settings:
        goenv.check_setting(s, modules, report)
    goenv.check_scope(goenv.scope_from(settings), report)
    return sorted({f.rule for f in report.findings()})


def S(name: str, value: str, *, known: bool = True) -> Setting:
    return Setting(name, value, "f", 1, known=known)


SETTINGS = [
    ([S("GOPROXY", "https://proxy.golang.org,direct")], []),
    ([S("GOPROXY", "off")], []),
    ([S("GOPROXY", "https://a.example,fallback")], ["GM002"]),
    ([S("GOPROXY", "off,https://a.example")], ["GM003"]),
    ([S("GOPROXY", "https://a.example|https://b.example|direct")], []),
    ([S("GOPROXY", "https://a.example,https://b.example")], ["GM004"]),
    ([S("GOPROXY", "http://u:p@a.example,direct")], ["GM006"]),
    ([S("GOPROXY", "https://u:p@a.example,direct")], ["GM007"]),
    ([S("GOPROXY", "${{ secrets.P }}", known=False)], []),
    ([S("GOPRIVATE", "a.example, b.example")], ["GM008"]),
    ([S("GOPRIVATE", "corp[.example")], ["GM008"]),
    ([S("GONOPROXY", "*")], ["GM010"]),
    ([S("GONOPROXY", "none")], []),
    ([S("GOSUMDB", "sum.golang.org+https://m.example")], ["GM012"]),
    ([S("GOFLAGS", "-insecure")], ["GM001"]),
    ([S("GOFLAGS", "-mod=mod")], ["GM015"]),
    ([S("GOFLAGS", "-mod=bogus")], ["GM016"]),
    ([S("GOFLAGS", "-mod")], ["GM016"]),
    ([S("GO111MODULE", "off")], ["GM017"]),
    ([S("GO111MODULE", "true")], ["GM017"]),
    ([S("GO111MODULE", "auto")], []),
    ([S("GIT_TERMINAL_PROMPT", "1")], ["GM019"]),
    ([S("GOVERSION", "go1.23")], ["GM020"]),
    ([S("GOSUMDB", "off")], ["GM013"]),
    ([S("GOSUMDB", "off"), S("GOTOOLCHAIN", "local")], []),
    ([S("GOSUMDB", "off"), S("GOTOOLCHAIN", "go1.23.4+path")], []),
    ([S("GOSUMDB", "off"), S("GOTOOLCHAIN", "go1.23.4+auto")], ["GM013"]),
    (
        [S("GOPROXY", "https://goproxy.corp.example,direct"), S("GOPRIVATE", "corp.example")],
        ["GM011"],
    ),
    (
        [
            S("GOPROXY", "https://goproxy.corp.example,direct"),
            S("GOPRIVATE", "corp.example"),
            S("GONOPROXY", "none"),
        ],
        [],
    ),
    ([S("GOPROXY", "https://proxy.golang.org,direct"), S("GOPRIVATE", "corp.example")], []),
    ([S("GOPROXY", "https://g.corp.example,direct"), S("GOINSECURE", "*.corp.example")], ["GM014"]),
    (
        [S("GOPROXY", "https://g.corp.example,direct"), S("HTTPS_PROXY", "http://egress:3128")],
        ["GM018"],
    ),
    (
        [
            S("GOPROXY", "https://g.corp.example,direct"),
            S("HTTPS_PROXY", "http://egress:3128"),
            S("no_proxy", "corp.example"),
        ],
        [],
    ),
    ([S("GOPROXY", "http://127.0.0.1:3000,direct"), S("HTTP_PROXY", "http://egress:3128")], []),
]


@pytest.mark.parametrize(("settings", "rules"), SETTINGS)
def test_settings(settings: list[Setting], rules: list[str]) -> None:
    found = _rules(*settings)
    assert found == rules, f"{[(s.name, s.value) for s in settings]}: expected {rules}, got {found}"


def test_bare_domain_needs_evidence_from_go_mod() -> None:
    wildcard = S("GOPRIVATE", "*.corp.example")
    assert _rules(wildcard) == []
    bare = (ModuleRef("corp.example/lib", "go.mod", 5),)
    assert _rules(wildcard, modules=bare) == ["GM009"]
    sub = (ModuleRef("git.corp.example/lib", "go.mod", 5),)
    assert _rules(wildcard, modules=sub) == []
    assert _rules(S("GOPRIVATE", "corp.example,*.corp.example"), modules=bare) == []
