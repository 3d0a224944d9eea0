"""Dockerfile syntax: continuations, flags, heredocs, directives, words and variables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.doctor.parsers.dockerparse import key_values, parse_dockerfile, split_words, substitute
from modgate.doctor.parsers.shellparse import parse_script


def test_instructions_lines_flags_and_rest() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "FROM --platform=$BUILDPLATFORM golang:1.23 AS build\n"
        "\n"
        "run --mount=type=cache,target=/go/pkg/mod \\\n"
        "    --mount=type=bind,source=go.sum,target=go.sum \\\n"
        "    # a comment inside the continuation\n"
        "    go mod download && \\\n"
        "    go build .\n"
        'CMD ["/app", "serve"]\n'
    )
    ins = parse_dockerfile(text).instructions
    assert [(i.keyword, i.line) for i in ins] == [("FROM", 2), ("RUN", 4), ("CMD", 9)]
    assert ins[0].flags == {"platform": ["$BUILDPLATFORM"]}
    assert ins[1].flags["mount"] == [
        "type=cache,target=/go/pkg/mod",
        "type=bind,source=go.sum,target=go.sum",
    ]
    assert ins[2].exec_form() == ["/app", "serve"]
    lines = [(c.line, c.texts()) for c in parse_script(ins[1].rest, ins[1].rest_line)]
    assert lines == [(7, ["go", "mod", "download"]), (8, ["go", "build", "."])]


def test_escape_directive_and_backtick_continuation() -> None:
    text = "# escape=`\nFROM mcr.microsoft.com/windows\nRUN echo a `\n    b\n"
    dockerfile = parse_dockerfile(text)
    assert dockerfile.escape == "`"
    run = dockerfile.instructions[1]
    assert (run.keyword, run.line) == ("RUN", 3)
    assert run.joined("`").split() == ["echo", "a", "b"]


def test_heredocs() -> None:
    text = (
        "FROM golang:1.23\n"
        "RUN <<EOF\n"
        "set -e\n"
        "go test ./...\n"
        "EOF\n"
        "RUN python3 <<-'PY'\n"
        "\tprint('go get -insecure x')\n"
        "\tPY\n"
        "COPY <<EOF /etc/go.env\n"
        "GOPROXY=direct\n"
        "EOF\n"
        "ENV A=1\n"
    )
    ins = parse_dockerfile(text).instructions
    assert [(i.keyword, i.line) for i in ins] == [
        ("FROM", 1),
        ("RUN", 2),
        ("RUN", 6),
        ("COPY", 9),
        ("ENV", 12),
    ]
    (shell,) = ins[1].heredocs
    assert (shell.body, shell.first_line, shell.command) == ("set -e\ngo test ./...\n", 3, "")
    assert ins[2].heredocs[0].command == "python3"


VARIABLES: dict[str, str | None] = {"V": "1.23", "EMPTY": "", "UNSET_ARG": None}
SUBSTITUTIONS = [
    ("golang:${V}-alpine", ("golang:1.23-alpine", True)),
    ("golang:$V", ("golang:1.23", True)),
    ("${MISSING:-fallback}", ("fallback", True)),
    ("${EMPTY:-fallback}", ("fallback", True)),
    ("${V:+set}", ("set", True)),
    ("${UNSET_ARG}", ("", False)),
    ("$MISSING", ("", False)),
]


@pytest.mark.parametrize(("text", "expected"), SUBSTITUTIONS)
def test_substitute(text: str, expected: tuple[str, bool]) -> None:
    assert substitute(text, VARIABLES) == expected


def test_words_and_key_values() -> None:
    assert split_words("golang:${V} AS 'build x'", VARIABLES) == [
        ("golang:1.23", True),
        ("AS", True),
        ("build x", True),
    ]
    assert key_values('A=1 B="two words" C=$V', VARIABLES) == [
        ("A", "1", True),
        ("B", "two words", True),
        ("C", "1.23", True),
    ]
    assert key_values("GOPROXY https://a,direct", VARIABLES) == [
        ("GOPROXY", "https://a,direct", True)
    ]
    assert key_values("GOPROXY GOFLAGS=-x", VARIABLES, legacy=False) == [
        ("GOPROXY", None, True),
        ("GOFLAGS", "-x", True),
    ]


@given(st.text(alphabet=st.sampled_from(list("RUN FROMENV\\\n#<>-$'\"{}=`")), max_size=120))
def test_the_parser_never_fails(text: str) -> None:
    lines = text.count("\n") + 1
    for ins in parse_dockerfile(text).instructions:
        assert 1 <= ins.line <= ins.rest_line <= lines + 1, (text, ins)
