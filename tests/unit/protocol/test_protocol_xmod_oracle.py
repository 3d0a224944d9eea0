"""Differential tests: the protocol layer against golang.org/x/mod itself.

The Go toolchain carries x/mod (semver, module) in its source tree for the go
command. We build a small Go program against that copy in a temporary
directory (offline: GOPROXY=off) and compare its answers with ours for
generated inputs. Skipped when no Go toolchain is installed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.xmod import xmod_program
from modgate.protocol import escape, module, patterns, pseudo, semver

pytestmark = [pytest.mark.go]

_ORACLE_GO = r"""
package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

type request struct{ Op, A, B string }

type answer struct {
	S   string `json:"s"`
	S2  string `json:"s2"`
	I   int    `json:"i"`
	OK  bool   `json:"ok"`
	Err string `json:"err"`
}

func msg(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(os.Stdout)
	commit := time.Date(2024, 2, 3, 4, 5, 6, 0, time.FixedZone("", 3600))
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			panic(err)
		}
		var a answer
		var err error
		switch r.Op {
		case "semver":
			a.OK = semver.IsValid(r.A)
			a.S = strings.Join([]string{semver.Canonical(r.A), semver.Major(r.A),
				semver.MajorMinor(r.A), semver.Prerelease(r.A), semver.Build(r.A),
				module.CanonicalVersion(r.A)}, "|")
			a.I = semver.Compare(r.A, r.B)
			a.S2 = semver.Max(r.A, r.B)
		case "path":
			a.S = strings.Join([]string{msg(module.CheckPath(r.A)),
				msg(module.CheckImportPath(r.A)), msg(module.CheckFilePath(r.A))}, "|")
			p, m, ok := module.SplitPathVersion(r.A)
			a.S2, a.OK = p+"|"+m, ok
			var esc, unesc string
			esc, err = module.EscapePath(r.A)
			if err != nil {
				esc = "!error"
			}
			unesc, err = module.UnescapePath(r.A)
			if err != nil {
				unesc = "!error"
			}
			a.Err = esc + "|" + unesc
		case "pathmajor":
			a.Err = msg(module.CheckPathMajor(r.A, r.B))
		case "pseudo":
			a.OK = module.IsPseudoVersion(r.A)
			t, err1 := module.PseudoVersionTime(r.A)
			rev, err2 := module.PseudoVersionRev(r.A)
			base, err3 := module.PseudoVersionBase(r.A)
			if err1 != nil {
				t = time.Time{}
			}
			a.S = t.UTC().Format("20060102150405") + "|" + rev + "|" + base
			a.Err = msg(err1) + "|" + msg(err2) + "|" + msg(err3)
			a.S2 = module.PseudoVersion(r.B, r.A, commit, "abcdefabcdef")
		case "version":
			var esc, unesc string
			esc, err = module.EscapeVersion(r.A)
			if err != nil {
				esc = "!error"
			}
			unesc, err = module.UnescapeVersion(r.A)
			if err != nil {
				unesc = "!error"
			}
			a.S = esc + "|" + unesc
		case "match":
			a.OK, err = path.Match(r.A, r.B)
			a.Err = msg(err)
			a.S = "false"
			if module.MatchPrefixPatterns(r.A, r.B) {
				a.S = "true"
			}
		default:
			panic("unknown op " + r.Op)
		}
		if err := enc.Encode(a); err != nil {
			panic(err)
		}
	}
}
"""

_COMMIT = datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
_XMOD_PACKAGES = ("semver", "module", "internal")


class _Oracle:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def ask(self, op: str, a: str, b: str = "") -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"Op": op, "A": a, "B": b}) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer


@pytest.fixture(scope="module")
def oracle(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[_Oracle]:
    work = tmp_path_factory.mktemp("xmod-oracle")
    gocache = request.config.cache.mkdir("go-build")
    with xmod_program(work, _ORACLE_GO, _XMOD_PACKAGES, "module/module.go", gocache) as proc:
        yield _Oracle(proc)


def _msg(fn: Any, *args: str) -> str:
    try:
        fn(*args)
    except (module.InvalidPathError, module.InvalidVersionError) as err:
        return str(err)
    return ""


def _value_or_error(fn: Any, arg: str) -> str:
    try:
        return str(fn(arg))
    except (module.InvalidPathError, module.InvalidVersionError):
        return "!error"


def _joined(atoms: list[str], max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(atoms), max_size=max_size).map("".join)


_VERSION_ATOMS = [
    "v",
    "0",
    "1",
    "2",
    "01",
    "10",
    ".",
    "-",
    "+",
    "pre",
    "RC1",
    "a",
    "0.",
    "incompatible",
    "20240203040506",
    "abcdefabcdef",
    "x",
    "V",
    "00",
    "-0.",
    ".0.",
    "v1.2.3",
    "v0.0.0-",
    "!",
]
_PATH_ATOMS = [
    "x.com",
    "gopkg.in",
    "/",
    "a",
    "A",
    "!a",
    "v2",
    "v1",
    "v0",
    "v02",
    "v2.0",
    ".v1",
    ".v0",
    ".v2",
    "-unstable",
    ".",
    "..",
    "-",
    "_",
    "~",
    "~1",
    "+",
    "!",
    "con",
    "COM1",
    "aux.go",
    "é",
    " ",
    "@",
    "%",
    "\\",
    ":",
    "yaml",
    "z.",
    "\x00",
    "中",
]
_GLOB_ATOMS = [
    "*",
    "?",
    "[",
    "]",
    "^",
    "!",
    "-",
    "a",
    "b",
    "/",
    "\\",
    ".",
    "x",
    "é",
    "€",
    ",",
    "[a-c]",
]
_versions = _joined(_VERSION_ATOMS, 8)
_paths = _joined(_PATH_ATOMS, 8)
_pseudo_versions = st.builds(
    lambda major, middle, stamp, rev, build: f"{major}{middle}{stamp}-{rev}{build}",
    st.sampled_from(["v0", "v1", "v2", "v01"]),
    st.sampled_from(
        [".0.0-", ".2.4-0.", ".2.0-0.", ".2.3-pre.0.", ".2.3-0.0.", ".2.3-pre.", ".1.0-"]
    ),
    st.sampled_from(
        [
            "20240203040506",
            "00010101000000",
            "20241301000000",
            "20240229235959",
            "20230229000000",
            "2024020304050",
            "20240101240000",
        ]
    ),
    st.sampled_from(["abcdefabcdef", "ABC", "0", "", "a-b"]),
    st.sampled_from(["", "+incompatible", "+meta", "+", "+a..b"]),
)
_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.one_of(_versions, _pseudo_versions), st.one_of(_versions, _pseudo_versions))
def test_semver_agrees(oracle: _Oracle, v: str, w: str) -> None:
    got = oracle.ask("semver", v, w)
    ours = "|".join(
        [
            semver.canonical(v),
            semver.major(v),
            semver.major_minor(v),
            semver.prerelease(v),
            semver.build(v),
            module.canonical_version(v),
        ]
    )
    assert (semver.is_valid(v), ours) == (got["ok"], got["s"]), v
    assert semver.compare(v, w) == got["i"], (v, w)
    assert semver.max_version(v, w) == got["s2"], (v, w)


@_SETTINGS
@given(_paths)
def test_paths_agree(oracle: _Oracle, path: str) -> None:
    got = oracle.ask("path", path)
    ours = "|".join(
        [
            _msg(module.check_path, path),
            _msg(module.check_import_path, path),
            _msg(module.check_file_path, path),
        ]
    )
    assert ours == got["s"], path
    prefix, major, ok = module.split_path_version(path)
    assert (f"{prefix}|{major}", ok) == (got["s2"], got["ok"]), path
    escaped = (
        _value_or_error(escape.escape_path, path)
        + "|"
        + _value_or_error(escape.unescape_path, path)
    )
    assert escaped == got["err"], path


@_SETTINGS
@given(
    st.one_of(_versions, _pseudo_versions),
    st.sampled_from(["", "/v2", "/v3", ".v0", ".v1", ".v2", ".v1-unstable", "v2"]),
)
def test_path_major_agrees(oracle: _Oracle, v: str, path_major: str) -> None:
    assert (
        _msg(module.check_path_major, v, path_major)
        == oracle.ask("pathmajor", v, path_major)["err"]
    )


@_SETTINGS
@given(st.one_of(_pseudo_versions, _versions), st.sampled_from(["", "v0", "v2"]))
def test_pseudo_versions_agree(oracle: _Oracle, v: str, major: str) -> None:
    got = oracle.ask("pseudo", v, major)
    assert pseudo.is_pseudo_version(v) == got["ok"], v
    try:
        t = pseudo.pseudo_version_time(v)
        stamp = f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}"
        time_err = False
    except module.InvalidVersionError:
        stamp, time_err = "00010101000000", True
    rev = _value_or_error(pseudo.pseudo_version_rev, v)
    base = _value_or_error(pseudo.pseudo_version_base, v)
    go_stamp, go_rev, go_base = got["s"].split("|")
    go_errs = [e != "" for e in got["err"].split("|")]
    assert (stamp, time_err) == (go_stamp, go_errs[0]), v
    assert rev == ("!error" if go_errs[1] else go_rev), v
    assert base == ("!error" if go_errs[2] else go_base), v
    assert pseudo.pseudo_version(major, v, _COMMIT, "abcdefabcdef") == got["s2"], (major, v)


@_SETTINGS
@given(st.one_of(_versions, _joined(_PATH_ATOMS, 4)))
def test_version_escaping_agrees(oracle: _Oracle, v: str) -> None:
    ours = (
        _value_or_error(escape.escape_version, v)
        + "|"
        + _value_or_error(escape.unescape_version, v)
    )
    assert ours == oracle.ask("version", v)["s"], v


@_SETTINGS
@given(_joined(_GLOB_ATOMS, 6), _joined([*_GLOB_ATOMS, "x.com", "a.io/b"], 6))
def test_globs_agree(oracle: _Oracle, pattern: str, name: str) -> None:
    got = oracle.ask("match", pattern, name)
    try:
        ours, bad = patterns.path_match(pattern, name), False
    except patterns.BadPatternError:
        ours, bad = False, True
    assert (ours, bad) == (got["ok"], got["err"] != ""), (pattern, name)
    assert str(patterns.match_prefix_patterns(pattern, name)).lower() == got["s"], (pattern, name)
