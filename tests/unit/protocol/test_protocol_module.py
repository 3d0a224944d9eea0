"""module: path rules, major-version suffixes and module.Check."""

from __future__ import annotations

import pytest

from modgate.protocol.errors import InvalidRequestError
from modgate.protocol.module import (
    InvalidPathError,
    InvalidVersionError,
    ModuleVersion,
    canonical_version,
    check,
    check_file_path,
    check_import_path,
    check_path,
    check_path_major,
    match_path_major,
    path_major_prefix,
    split_path_version,
)

MOD, IMP, FILE = "module", "import", "file"

# path -> the kinds of path it is valid as.
PATHS: list[tuple[str, set[str]]] = [
    ("x.y/z", {MOD, IMP, FILE}),
    ("x.y", {MOD, IMP, FILE}),
    ("", set()),
    ("/x.y/z", set()),
    ("x./z", set()),
    (".x/z", {IMP, FILE}),
    ("-x/z", {FILE}),
    ("x..y/z", {MOD, IMP, FILE}),
    ("x.y/z/../../w", set()),
    ("x.y//z", set()),
    ("x.y/z//w", set()),
    ("x.y/z/", set()),
    ("x.y/z/v0", {IMP, FILE}),
    ("x.y/z/v1", {IMP, FILE}),
    ("x.y/z/v2", {MOD, IMP, FILE}),
    ("x.y/z/v02", {IMP, FILE}),
    ("x.y/z/v2.0", {IMP, FILE}),
    ("x.y/z/v1.2", {IMP, FILE}),
    ("x.y/z/v10", {MOD, IMP, FILE}),
    ("x.y/z/v", {MOD, IMP, FILE}),
    ("x.y/v2/z", {MOD, IMP, FILE}),
    ("X.y/z", {IMP, FILE}),
    ("x.Y/z", {IMP, FILE}),
    ("x.y/Z", {MOD, IMP, FILE}),
    ("!x.y/z", {FILE}),
    ("_x.y/z", {IMP, FILE}),
    ("x_y.z/w", {IMP, FILE}),
    ("localhost/z", {IMP, FILE}),
    ("x-.y/z", {MOD, IMP, FILE}),
    ("x.y/z/.hidden", {IMP, FILE}),
    ("x.y/-z", {MOD, IMP, FILE}),
    ("x.y/z~", {MOD, IMP, FILE}),
    ("x.y/z~1", {FILE}),
    ("x.y/z~1.go", {FILE}),
    ("x.y/z~a1", {MOD, IMP, FILE}),
    ("x.y/~1a", {MOD, IMP, FILE}),
    ("x.y/x.foo", {MOD, IMP, FILE}),
    ("x.y/aux.foo", set()),
    ("x.y/prn", set()),
    ("x.y/PRN", set()),
    ("x.y/nul.tar.gz", set()),
    ("x.y/prn2", {MOD, IMP, FILE}),
    ("x.y/com", {MOD, IMP, FILE}),
    ("x.y/com1", set()),
    ("x.y/Com1.txt", set()),
    ("x.y/lpt9", set()),
    ("x.y/com0", {MOD, IMP, FILE}),
    ("x.y/calm1", {MOD, IMP, FILE}),
    ("github.com/!123/logrus", {FILE}),
    ("github.com/user/unicode/испытание", {FILE}),
    ("../x", set()),
    ("./y", set()),
    ("x:y", set()),
    ("\\temp\\foo", set()),
    (".gitignore", {IMP, FILE}),
    (".github/ISSUE_TEMPLATE", {IMP, FILE}),
    ("x☺y", set()),
    ("x.y/a b", {FILE}),
    ("x.y/a\x00b", set()),
    ("x.y/a\tb", set()),
    ("x.y/\udcff", set()),  # not valid UTF-8
    ("gopkg.in/yaml.v2", {MOD, IMP, FILE}),
    ("gopkg.in/yaml.v0", {MOD, IMP, FILE}),
    ("gopkg.in/yaml.v1-unstable", {MOD, IMP, FILE}),
    ("gopkg.in/yaml", {IMP, FILE}),
    ("gopkg.in/yaml.v02", {IMP, FILE}),
    ("gopkg.in/user/yaml.v3", {MOD, IMP, FILE}),
]
# ASCII punctuation: the kinds of path that accept it inside an element.
PUNCTUATION: dict[str, set[str]] = {c: set() for c in "\"'*:;<>?\\`|"}
PUNCTUATION |= {c: {FILE} for c in "!#$%&(),=@[]^{}"}
PUNCTUATION |= {
    "+": {IMP, FILE},
    "-": {MOD, IMP, FILE},
    "_": {MOD, IMP, FILE},
    "~": {MOD, IMP, FILE},
}
for _c, _kinds in PUNCTUATION.items():
    PATHS.append((f"x.y/z{_c}", _kinds))
    # The first element of a module path is a domain name: a-z 0-9 - . only.
    PATHS.append((f"x.y{_c}/z", _kinds - ({MOD} if _c != "-" else set())))


@pytest.mark.parametrize(("path", "kinds"), PATHS)
def test_path_rules(path: str, kinds: set[str]) -> None:
    for kind, fn in ((MOD, check_path), (IMP, check_import_path), (FILE, check_file_path)):
        try:
            fn(path)
        except InvalidPathError as err:
            assert kind not in kinds, f"{kind} path {path!r} rejected: {err}"
            assert err.kind == kind and err.path == path, f"error fields for {path!r}"
            assert isinstance(err, InvalidRequestError) and err.status == 400
        else:
            assert kind in kinds, f"{kind} path {path!r} accepted, want an error"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("x", 'malformed module path "x": missing dot in first path element'),
        ("", 'malformed module path "": empty string'),
        ("-x.y", 'malformed module path "-x.y": leading dash'),
        ("x.y//z", 'malformed module path "x.y//z": double slash'),
        ("x.y/", 'malformed module path "x.y/": trailing slash'),
        ("x.y/../z", 'malformed module path "x.y/../z": invalid path element ".."'),
        ("x.y/.z", 'malformed module path "x.y/.z": leading dot in path element'),
        ("x.y/z.", 'malformed module path "x.y/z.": trailing dot in path element'),
        ("x.y/a b", "malformed module path \"x.y/a b\": invalid char ' '"),
        ("x.y/a\x00", "malformed module path \"x.y/a\\x00\": invalid char '\\x00'"),
        ("X.y/z", "malformed module path \"X.y/z\": invalid char 'X' in first path element"),
        ("x_y.z/w", "malformed module path \"x_y.z/w\": invalid char '_' in first path element"),
        ("x.y/v1", 'malformed module path "x.y/v1": invalid version'),
        (
            "x.y/con",
            'malformed module path "x.y/con": '
            '"con" disallowed as path element component on Windows',
        ),
        ("x.y/a~1", 'malformed module path "x.y/a~1": trailing tilde and digits in path element'),
        ("x.y/\udcff", 'malformed module path "x.y/\\xff": invalid UTF-8'),
    ],
)
def test_path_error_messages(path: str, message: str) -> None:
    with pytest.raises(InvalidPathError) as info:
        check_path(path)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("x.y/z", ("x.y/z", "", True)),
        ("x.y/z/v2", ("x.y/z", "/v2", True)),
        ("x.y/z/v3", ("x.y/z", "/v3", True)),
        ("x.y/z/v10", ("x.y/z", "/v10", True)),
        ("x.y/v", ("x.y/v", "", True)),
        ("x.y/zv2", ("x.y/zv2", "", True)),
        ("x.y/z/v1", ("x.y/z/v1", "", False)),
        ("x.y/z/v0", ("x.y/z/v0", "", False)),
        ("x.y/z/v02", ("x.y/z/v02", "", False)),
        ("x.y/z/v2.0", ("x.y/z/v2.0", "", False)),
        ("v2", ("v2", "", True)),
        ("/v2", ("", "/v2", True)),
        ("gopkg.in/yaml.v0", ("gopkg.in/yaml", ".v0", True)),
        ("gopkg.in/yaml.v1", ("gopkg.in/yaml", ".v1", True)),
        ("gopkg.in/yaml.v2", ("gopkg.in/yaml", ".v2", True)),
        ("gopkg.in/yaml.v3-unstable", ("gopkg.in/yaml", ".v3-unstable", True)),
        ("gopkg.in/yaml.v02", ("gopkg.in/yaml.v02", "", False)),
        ("gopkg.in/yaml", ("gopkg.in/yaml", "", False)),
        ("gopkg.in/yaml/v2", ("gopkg.in/yaml/v2", "", False)),
    ],
)
def test_split_path_version(path: str, want: tuple[str, str, bool]) -> None:
    got = split_path_version(path)
    assert got == want, f"split_path_version({path!r}) = {got}, want {want}"
    assert got[0] + got[1] == path


def test_split_path_version_always_adds_up() -> None:
    for path, _ in PATHS:
        prefix, major, _ok = split_path_version(path)
        assert prefix + major == path, f"split_path_version({path!r}) = {prefix!r}, {major!r}"


@pytest.mark.parametrize(
    ("version", "path_major", "ok"),
    [
        ("v0.0.0", "", True),
        ("v1.5.0", "", True),
        ("v2.0.0", "", False),
        ("v2.0.0+incompatible", "", True),
        ("v0.0.0", "/v2", False),
        ("v1.0.0", "/v2", False),
        ("v2.0.0", "/v2", True),
        ("v2.0.0+incompatible", "/v2", True),
        ("v3.0.0", "/v2", False),
        ("v0.0.0", ".v0", True),
        ("v1.0.0", ".v0", False),
        ("v1.0.0", ".v1", True),
        ("v0.8.0", ".v1", False),
        ("v0.0.0-20190510104115-cbcb75029529", ".v1", True),
        ("v0.0.0-anything", ".v1", True),
        ("v1.0.0", ".v1-unstable", True),
        ("v2.0.0", ".v2", True),
        ("v2.0.0", ".v2-unstable", True),
        ("bad", "", False),
        ("bad", "/v2", False),
    ],
)
def test_check_path_major(version: str, path_major: str, ok: bool) -> None:
    assert match_path_major(version, path_major) == ok, f"({version!r}, {path_major!r})"
    if not ok:
        with pytest.raises(InvalidVersionError):
            check_path_major(version, path_major)


def test_check_path_major_message_says_what_fits() -> None:
    with pytest.raises(InvalidVersionError) as info:
        check_path_major("v2.0.0", "")
    assert str(info.value) == 'version "v2.0.0" invalid: should be v0 or v1, not v2'
    with pytest.raises(InvalidVersionError) as info:
        check_path_major("v1.0.0", "/v3")
    assert str(info.value) == 'version "v1.0.0" invalid: should be v3, not v1'


@pytest.mark.parametrize(
    ("path_major", "want"),
    [("", ""), ("/v2", "v2"), (".v1", "v1"), (".v1-unstable", "v1"), (".v0", "v0")],
)
def test_path_major_prefix(path_major: str, want: str) -> None:
    assert path_major_prefix(path_major) == want


@pytest.mark.parametrize("bad", ["v2", "/v", "/vx"])
def test_path_major_prefix_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match="path major"):
        path_major_prefix(bad)


@pytest.mark.parametrize(
    ("v", "want"),
    [
        ("v1.2.3", "v1.2.3"),
        ("v1.2", "v1.2.0"),
        ("v1.2.3+meta", "v1.2.3"),
        ("v2.0.0+incompatible", "v2.0.0+incompatible"),
        ("v2+incompatible", ""),
        ("v1.0.0-RC1+incompatible", "v1.0.0-RC1+incompatible"),
        ("bad", ""),
    ],
)
def test_canonical_version(v: str, want: str) -> None:
    assert canonical_version(v) == want, f"canonical_version({v!r})"


CHECKS = [
    ("rsc.io/quote", "0.1.0", "not a semantic version"),
    ("rsc io/quote", "v1.0.0", "malformed module path"),
    ("github.com/go-yaml/yaml", "v0.8.0", None),
    ("github.com/go-yaml/yaml", "v1.0.0", None),
    ("github.com/go-yaml/yaml", "v2.0.0", "should be v0 or v1, not v2"),
    ("github.com/go-yaml/yaml", "v2.1.5", "should be v0 or v1, not v2"),
    ("github.com/go-yaml/yaml/v2", "v1.0.0", "should be v2, not v1"),
    ("github.com/go-yaml/yaml/v2", "v2.0.0", None),
    ("github.com/go-yaml/yaml/v2", "v2.1.5", None),
    ("github.com/go-yaml/yaml/v2", "v3.0.0", "should be v2, not v3"),
    ("gopkg.in/yaml.v0", "v0.8.0", None),
    ("gopkg.in/yaml.v0", "v1.0.0", "should be v0, not v1"),
    ("gopkg.in/yaml.v1", "v0.8.0", "should be v1, not v0"),
    ("gopkg.in/yaml.v1", "v1.0.0", None),
    ("gopkg.in/check.v1", "v0.0.0", "should be v1, not v0"),
    ("gopkg.in/check.v1", "v0.0.0-20160102150405-abcdef123456", None),
    ("gopkg.in/yaml.v2", "v2.1.5", None),
    ("gopkg.in/yaml.v2", "v3.0.0", "should be v2, not v3"),
    ("rsc.io/quote", "v17.0.0", "should be v0 or v1, not v17"),
    ("rsc.io/quote", "v17.0.0+incompatible", None),
    # Stricter than x/mod's Check: canonical spelling only, and +incompatible only
    # where it means something (the go command refuses the others when resolving).
    ("rsc.io/quote", "v1.2", "not a canonical version (use v1.2.0)"),
    ("rsc.io/quote", "v1.2.3+meta", "not a canonical version (use v1.2.3)"),
    ("rsc.io/quote", "v1.0.0+incompatible", "+incompatible suffix not allowed: major version v1"),
    ("rsc.io/quote", "v0.1.0+incompatible", "+incompatible suffix not allowed: major version v0"),
    (
        "rsc.io/quote/v2",
        "v2.0.0+incompatible",
        "+incompatible suffix not allowed: major version v2",
    ),
    ("gopkg.in/yaml.v2", "v2.0.0+incompatible", "+incompatible suffix not allowed"),
]


@pytest.mark.parametrize(("path", "version", "problem"), CHECKS)
def test_check(path: str, version: str, problem: str | None) -> None:
    if problem is None:
        check(path, version)
        return
    with pytest.raises(InvalidRequestError) as info:
        check(path, version)
    assert problem in str(info.value), f"check({path!r}, {version!r}): {info.value}"


def test_check_error_names_module_at_version() -> None:
    with pytest.raises(InvalidVersionError) as info:
        check("rsc.io/quote", "v2.0.0")
    err = info.value
    assert err.subject == "rsc.io/quote@v2.0.0"
    assert str(err) == "rsc.io/quote@v2.0.0: invalid version: should be v0 or v1, not v2"
    assert err.status == 400


def test_module_version_str_and_order() -> None:
    mv = ModuleVersion("example.com/m", "v1.0.0")
    assert str(mv) == "example.com/m@v1.0.0"
    assert ModuleVersion("a.com/x", "v1.0.0") < ModuleVersion("b.com/x", "v0.1.0")
