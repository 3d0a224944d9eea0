"""The readers added for field repositories: templates, netrc entries, Makefiles, global ARGs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.doctor.analyzers import netrc
from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.analyzers.dockerfile import check_dockerfile
from modgate.doctor.analyzers.makefile import _logical_lines
from modgate.doctor.parsers import helm
from modgate.doctor.report import Reporter

TEMPLATE_TEXT = st.text(alphabet=st.sampled_from(list("ab: -\n{}%.$\"'")), max_size=200)


@given(TEMPLATE_TEXT)
def test_rendering_keeps_every_line_where_it_was(text: str) -> None:
    rendered = helm.render_unknown(text)
    assert rendered.count("\n") == text.count("\n"), (text, rendered)
    if "{{" not in text and "{%" not in text:
        assert rendered == text, "text without template actions must not change"


def test_actions_become_unknown_values_and_lines_of_actions_disappear() -> None:
    text = 'a: "{{ .Values.x }}"\n{{- if .Values.y }}\nb: 1\n{{- end }}\n'
    assert helm.render_unknown(text) == f'a: "{helm.UNKNOWN}"\n\nb: 1\n\n'


@pytest.mark.parametrize(
    ("text", "netrc_file", "expected"),
    [
        ("machine proxy.corp login a password b", True, [("proxy.corp", None, 1)]),
        ("x\nmachine proxy.corp:8443\nlogin a", True, [("proxy.corp", 8443, 2)]),
        ('echo "machine $HOST login a" > ~/.netrc', False, []),
        ("this machine learning script", False, []),
        ('printf "machine goproxy.corp\\n" >> "$NETRC"', False, [("goproxy.corp", None, 1)]),
    ],
)
def test_machine_entries(
    text: str, netrc_file: bool, expected: list[tuple[str, int | None, int]]
) -> None:
    found = netrc.machines("f", text, netrc_file=netrc_file)
    assert [(m.host, m.port, m.line) for m in found] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("export GOPROXY=https://p.corp:8443,direct", [("https", "p.corp", 8443)]),
        ("GOPROXY: http://p.corp|https://proxy.golang.org", [("http", "p.corp", None),
                                                           ("https", "proxy.golang.org", None)]),
        ("- name: GOPROXY\n  value: https://p.corp:9000", [("https", "p.corp", 9000)]),
        ("GOPROXY=https://user:pw@p.corp", []),
        ("GOPROXY=$PROXY", []),
    ],
)  # fmt: skip
def test_goproxy_urls(text: str, expected: list[tuple[str, str, int | None]]) -> None:
    assert [(u.scheme, u.host, u.port) for u in netrc.proxy_urls("f", text)] == expected


def test_makefile_continuations_join_and_keep_the_first_line() -> None:
    text = "a := 1 \\\n  2\n\tgo build \\\n\t  ./...\nb := 3\n"
    assert _logical_lines(text) == [
        (1, "a := 1    2"),
        (3, "\tgo build \n\t  ./..."),
        (5, "b := 3"),
    ]


@pytest.mark.parametrize(
    ("dockerfile", "reported"),
    [
        # the image comes from global ARG defaults, expanded in order
        ("ARG V=1.22\nARG IMG=golang:${V}\nFROM $IMG\nCOPY . .\nRUN go build .\n", True),
        # an ARG without a default is unknown: nothing is guessed
        ("ARG V\nFROM golang:${V}\nCOPY . .\nRUN go build .\n", False),
        # a later global ARG does not reach an earlier one
        ("ARG IMG=golang:${V}\nARG V=1.22\nFROM $IMG\nCOPY . .\nRUN go build .\n", False),
    ],
)
def test_global_args_choose_the_image_like_buildkit(
    dockerfile: str, reported: bool, tmp_path: Path
) -> None:
    ctx = RepoContext(tmp_path, Reporter())
    check_dockerfile("Dockerfile", dockerfile, ctx)
    assert bool(ctx.golang_images) is reported, ctx.golang_images
    if reported:
        assert ctx.golang_images[0].reference == "golang:1.22"
