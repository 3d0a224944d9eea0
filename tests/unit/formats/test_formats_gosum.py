"""go.sum lines, go.mod requirements and checksum records."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.formats.gomod_syntax import GoModError
from modgate.formats.gosum import parse_gosum, parse_requirements
from modgate.formats.sumrecord import RecordError, SumRecord, parse_sum_record
from modgate.protocol.module import ModuleVersion

H1 = "h1:" + "A" * 43 + "="
H2 = "h1:" + "B" * 43 + "="
MV = ModuleVersion("example.com/a", "v1.0.0")


def test_parse_gosum_lines_and_bad_lines() -> None:
    text = f"example.com/a v1.0.0 {H1}\n\nexample.com/a v1.0.0/go.mod {H2}\n  bad line  \nx y z w\n"
    lines, bad = parse_gosum(text)
    assert [(s.mv, s.gomod, s.hash, s.line) for s in lines] == [
        (MV, False, H1, 1),
        (MV, True, H2, 3),
    ]
    assert [b.line for b in bad] == [4, 5]


GOMOD = b"""module example.com/app

go 1.21

require (
\texample.com/a v1.0.0
\texample.com/b v1.2.0 // indirect
\t"example.com/c" v0.1.0
)

require example.com/d v2.0.0+incompatible

replace example.com/b => example.com/fork/b v1.2.1
replace example.com/c v0.1.0 => ../c
replace example.com/c v0.0.9 => example.com/other v1.0.0
"""


def test_parse_requirements_and_replacements() -> None:
    req = parse_requirements(GOMOD)
    assert (req.module, req.go) == ("example.com/app", "1.21")
    assert [(r.mv.path, r.mv.version, r.indirect) for r in req.require] == [
        ("example.com/a", "v1.0.0", False),
        ("example.com/b", "v1.2.0", True),
        ("example.com/c", "v0.1.0", False),
        ("example.com/d", "v2.0.0+incompatible", False),
    ]
    effective = {r.mv.path: req.effective(r.mv) for r in req.require}
    assert effective["example.com/a"] == ModuleVersion("example.com/a", "v1.0.0")
    assert effective["example.com/b"] == ModuleVersion("example.com/fork/b", "v1.2.1")
    assert effective["example.com/c"] is None, "a local directory replacement has no sums"


@pytest.mark.parametrize(
    "bad",
    [b"require example.com/a\n", b"replace example.com/a v1.0.0\n", b"replace a b => c d e\n"],
)
def test_parse_requirements_rejects(bad: bytes) -> None:
    with pytest.raises(GoModError):
        parse_requirements(bad)


RECORD_CASES = [
    (f"example.com/a v1.0.0 {H1}\nexample.com/a v1.0.0/go.mod {H2}\n", (H1, H2)),
    (f"other v1 x\nexample.com/a v1.0.0/go.mod {H2}\nexample.com/a v1.0.0 {H1}\n", (H1, H2)),
    (f"example.com/a v1.0.0 {H1}\n", None),
    (
        f"example.com/a v1.0.0 {H1}\nexample.com/a v1.0.0 {H1}\nexample.com/a v1.0.0/go.mod {H2}\n",
        None,
    ),
    (f"example.com/a v1.0.0 h2:x\nexample.com/a v1.0.0/go.mod {H2}\n", None),
    (f"example.com/a v1.0.1 {H1}\nexample.com/a v1.0.1/go.mod {H2}\n", None),
]


@pytest.mark.parametrize(("text", "want"), RECORD_CASES)
def test_parse_sum_record(text: str, want: tuple[str, str] | None) -> None:
    if want is None:
        with pytest.raises(RecordError):
            parse_sum_record(MV, text.encode())
        return
    record = parse_sum_record(MV, text.encode())
    assert (record.zip_hash, record.gomod_hash) == want


@given(
    path=st.sampled_from(["example.com/a", "example.com/Upper/b/v2", "golang.org/toolchain"]),
    version=st.sampled_from(["v1.0.0", "v2.0.0+incompatible", "v0.0.1-go1.21.0.linux-amd64"]),
    zip_hash=st.binary(min_size=32, max_size=32),
    mod_hash=st.binary(min_size=32, max_size=32),
)
def test_sum_record_round_trip(path: str, version: str, zip_hash: bytes, mod_hash: bytes) -> None:
    record = SumRecord(
        ModuleVersion(path, version),
        "h1:" + base64.b64encode(zip_hash).decode(),
        "h1:" + base64.b64encode(mod_hash).decode(),
    )
    assert parse_sum_record(record.mv, record.text()) == record
