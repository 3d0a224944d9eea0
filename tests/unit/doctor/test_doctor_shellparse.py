"""The shell lexer: commands, words, lines, expansions, heredocs, go invocations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.doctor.parsers.shellparse import (
    exported_assignments,
    github_env_writes,
    go_call,
    is_exported_by,
    parse_script,
    sets_allexport,
    sourced_file,
    wrapper_assignments,
)

COMMANDS = [
    # script, [(line, words)]
    ("go build ./...", [(1, ["go", "build", "./..."])]),
    (
        "a && b || c; d | e & f",
        [(1, ["a"]), (1, ["b"]), (1, ["c"]), (1, ["d"]), (1, ["e"]), (1, ["f"])],
    ),
    ("go build \\\n  -o out .", [(1, ["go", "build", "-o", "out", "."])]),
    ("echo 'a b' \"c d\" e\\ f", [(1, ["echo", "a b", "c d", "e f"])]),
    ("# comment\ngo test # trailing\n", [(2, ["go", "test"])]),
    ("x=1\n\n\ny=2", [(1, ["x=1"]), (4, ["y=2"])]),
    ("cat <<EOF\ngo get -insecure x\nEOF\ngo vet", [(1, ["cat"]), (4, ["go", "vet"])]),
    ("cat <<-'END' > f\n\tbody\n\tEND\nnext", [(1, ["cat", ">", "f"]), (4, ["next"])]),
    ("go build 2>&1 | tee log", [(1, ["go", "build", "2>&1"]), (1, ["tee", "log"])]),
    # a command substitution runs first, so its commands come before the one holding it
    ("v=$(go env GOMODCACHE)", [(1, ["go", "env", "GOMODCACHE"]), (1, ["v=$(go env GOMODCACHE)"])]),
    (
        'echo "$(go list -m)"\nx',
        [(1, ["go", "list", "-m"]), (1, ["echo", "$(go list -m)"]), (2, ["x"])],
    ),
    ("n=$((1 + 2))", [(1, ["n=$((1 + 2))"])]),
    ("if true; then go test; fi", [(1, ["if", "true"]), (1, ["then", "go", "test"]), (1, ["fi"])]),
    ("echo 'multi\nline'\ngo version", [(1, ["echo", "multi\nline"]), (3, ["go", "version"])]),
]


@pytest.mark.parametrize(("script", "expected"), COMMANDS)
def test_commands_words_and_lines(script: str, expected: list[tuple[int, list[str]]]) -> None:
    got = [(c.line, c.texts()) for c in parse_script(script)]
    assert got == expected, f"{script!r}: expected {expected}, got {got}"


def test_first_line_offsets_every_line() -> None:
    commands = parse_script("a\nb\\\n c\nd", first_line=10)
    assert [(c.line, c.texts()) for c in commands] == [(10, ["a"]), (11, ["b", "c"]), (13, ["d"])]


EXPANSIONS = [
    ("A=$X", True),
    ("A=${X:-y}", True),
    ('A="$X"', True),
    ("A='$X'", False),
    ("A=`date`", True),
    ("A=plain", False),
    ('A="a\\$b"', False),
]


@pytest.mark.parametrize(("script", "expands"), EXPANSIONS)
def test_expansions_are_marked(script: str, expands: bool) -> None:
    cmd = parse_script(script)[-1]
    assert cmd.words[0].expands is expands, f"{script!r}: expands should be {expands}"


GO_CALLS = [
    ("go mod download -x", "mod download", ["-x"]),
    ("/usr/local/go/bin/go build -o x .", "build", ["-o", "x", "."]),
    ("sudo -E env A=1 go get -insecure x", "get", ["-insecure", "x"]),
    ("timeout 10m go test ./...", "test", ["./..."]),
    ("GOFLAGS=-mod=mod go -C sub install x@v1", "install", ["x@v1"]),
    ("go env -w GOPROXY=direct", "env", ["-w", "GOPROXY=direct"]),
    ("go work sync", "work sync", []),
]


@pytest.mark.parametrize(("script", "subcommand", "args"), GO_CALLS)
def test_go_calls(script: str, subcommand: str, args: list[str]) -> None:
    (cmd,) = parse_script(script)
    call = go_call(cmd)
    assert call is not None, f"{script!r} is a go command"
    assert (call.subcommand, [a.text for a in call.args]) == (subcommand, args)


@pytest.mark.parametrize("script", ["gofmt -l .", "echo go build", "golangci-lint run"])
def test_not_go_calls(script: str) -> None:
    assert all(go_call(c) is None for c in parse_script(script)), script


def test_assignments_that_persist() -> None:
    commands = parse_script(
        "export A=1 B=2\nC=3\nD=4 go build\ngo env -w E=5\ndeclare -x F=6\n"
        'echo "G=7" >> "$GITHUB_ENV"\n'
    )
    persisted = [[w.text for w in exported_assignments(c)] for c in commands]
    assert persisted == [["A=1", "B=2"], ["C=3"], [], ["E=5"], ["F=6"], []]
    assert [w.text for w in wrapper_assignments(commands[2])] == ["D=4"]
    assert [w.text for w in github_env_writes(commands[5])] == ["G=7"]
    assert [is_exported_by(c) for c in commands[:2]] == [True, False]


def test_allexport_and_source() -> None:
    commands = parse_script("set -a\n. ./env\nset +a\nsource ci/x.env\nset -o allexport\nset -e")
    assert [sets_allexport(c) for c in commands] == [True, None, False, None, True, None]
    assert [w.text for c in commands if (w := sourced_file(c)) is not None] == ["./env", "ci/x.env"]


@given(st.text(alphabet=st.sampled_from(list("ab $'\"\\\n;&|()<>#`{}=-")), max_size=80))
def test_the_lexer_never_fails_and_lines_stay_in_range(script: str) -> None:
    last = 5 + script.count("\n")
    for cmd in parse_script(script, first_line=5):
        assert cmd.words, "no empty commands"
        for word in cmd.words:
            assert 5 <= word.line <= last, f"line {word.line} outside 5..{last} for {script!r}"
