"""normalize: CI, docker and terminal decorations stripped from log lines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.diagnose.normalize import (
    MARK_ERROR,
    MARK_GROUP,
    MARK_NONE,
    MARK_WARNING,
    normalize,
    strip_ansi,
)

ESC = "\x1b"
CASES = [
    # (raw line, text, mark, indented)
    ("go: downloading example.com/foo v1.0.0\n", "go: downloading example.com/foo v1.0.0",
     MARK_NONE, False),
    ("2024-05-14T09:21:03.1234567Z go: x", "go: x", MARK_NONE, False),
    ("2024-05-14T09:21:03.1234567Z \tserver response: y", "server response: y", MARK_NONE, True),
    ("2024-05-14T09:21:03.1234567Z ##[error]Process completed with exit code 1.",
     "Process completed with exit code 1.", MARK_ERROR, False),
    ("2024-05-14T09:21:03.1234567Z ##[warning]Restore cache failed", "Restore cache failed",
     MARK_WARNING, False),
    ("##[group]Run go mod download", "Run go mod download", MARK_GROUP, False),
    ("::error file=main.go,line=3::undefined: x", "undefined: x", MARK_ERROR, False),
    (f"{ESC}[36;1mgo mod download{ESC}[0m", "go mod download", MARK_NONE, False),
    (f"2024-05-14T09:21:03.719524Z 01E {ESC}[31;1mERROR: Job failed{ESC}[0;m",
     "ERROR: Job failed", MARK_NONE, False),
    ("2024-05-14T09:21:03.719524Z 00O+ partial", "partial", MARK_NONE, False),
    (f"section_start:1715678463:step_script\r{ESC}[0K{ESC}[36;1mExecuting{ESC}[0;m",
     "Executing", MARK_NONE, False),
    (f"section_end:1715678463:step_script\r{ESC}[0K", "", MARK_NONE, False),
    ("#7 0.595 go: example.com/foo@v1.0.0: x", "go: example.com/foo@v1.0.0: x", MARK_NONE, False),
    ("#7 0.613 \tserver response:", "server response:", MARK_NONE, True),
    ("#7 [builder 4/5] RUN go mod download", "[builder 4/5] RUN go mod download",
     MARK_NONE, False),
    ("2024-05-14T09:21:03.1234567Z #7 CANCELED", "CANCELED", MARK_NONE, False),
    ("0.613 \t\tfatal: could not read Username", "fatal: could not read Username",
     MARK_NONE, True),
    ("Step 4/7 : RUN go mod download", "RUN go mod download", MARK_GROUP, False),
    # Buildkite timestamps (an APC escape), TeamCity and Kubernetes container logs.
    (f"{ESC}_bk;t=1715678463123\x07go: example.com/foo@v1.0.0: x",
     "go: example.com/foo@v1.0.0: x", MARK_NONE, False),
    ("[09:21:03]E:\t [Step 2/3] go: example.com/foo@v1.0.0: x",
     "go: example.com/foo@v1.0.0: x", MARK_NONE, False),
    ("2024-05-14T09:21:03.123456789Z stderr F go: example.com/foo@v1.0.0: x",
     "go: example.com/foo@v1.0.0: x", MARK_NONE, False),
    ("[2024-05-14T09:21:03.123Z] go: x", "go: x", MARK_NONE, False),
    ("09:21:03 go: x", "go: x", MARK_NONE, False),
    ("Receiving objects:  1%\rReceiving objects: 100%\r\n", "Receiving objects: 100%",
     MARK_NONE, False),
    ("verifying example.com/foo@v1.0.0: checksum mismatch\r\n",
     "verifying example.com/foo@v1.0.0: checksum mismatch", MARK_NONE, False),
    ("SECURITY ERROR", "SECURITY ERROR", MARK_NONE, False),
    ("", "", MARK_NONE, False),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "text", "mark", "indented"), CASES)
def test_normalize(raw: str, text: str, mark: int, indented: bool) -> None:
    line = normalize(raw)
    assert (line.text, line.mark, line.indented) == (text, mark, indented), (
        f"normalize({raw!r}) = {line}, want text={text!r} mark={mark} indented={indented}"
    )


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        (f"{ESC}[1m{ESC}[31mred{ESC}[0m", "red"),
        (f"{ESC}]8;;https://x{ESC}\\link{ESC}]8;;{ESC}\\", "link"),
        (f"a{ESC}[2Kb", "ab"),
        ("no escapes", "no escapes"),
    ],
)
def test_strip_ansi(raw: str, plain: str) -> None:
    assert strip_ansi(raw) == plain


_CONTENT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80
).filter(lambda s: s[0] not in "0123456789[#:S \t" and s.strip() == s)


@given(_CONTENT)
def test_ci_prefixes_do_not_change_the_text(content: str) -> None:
    plain = normalize(content)
    for prefix in (
        "2024-05-14T09:21:03.1234567Z ",
        "2024-05-14T09:21:03.123456Z 01E ",
        "#12 3.456 ",
        f"{ESC}[0K{ESC}[32;1m",
        "2024-05-14T09:21:03.1234567Z #12 3.456 ",
    ):
        wrapped = normalize(prefix + content)
        assert wrapped.text == plain.text, f"prefix {prefix!r} changed {content!r}"


@given(st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=200))
def test_normalize_never_fails_and_leaves_a_stripped_line(raw: str) -> None:
    text = normalize(raw).text
    assert "\r" not in text, f"carriage return left in {text!r}"
    assert text == text.strip(), f"surrounding white space left in {text!r}"
