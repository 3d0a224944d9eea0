"""extract_module: the module@version a go error line names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.diagnose.extract import extract_module
from modgate.protocol.module import ModuleVersion

CASES = [
    ("go: example.com/foo@v1.0.0: reading https://p/example.com/foo/@v/v1.0.0.mod: 404 Not Found",
     "example.com/foo@v1.0.0"),
    ("verifying example.com/foo@v1.0.0/go.mod: checksum mismatch", "example.com/foo@v1.0.0"),
    ("go: corp.example.com/private@v1.0.0: verifying go.mod: corp.example.com/private@v1.0.0/x",
     "corp.example.com/private@v1.0.0"),
    ("go: download go1.99.0: golang.org/toolchain@v0.0.1-go1.99.0.linux-amd64: Get ...",
     "golang.org/toolchain@v0.0.1-go1.99.0.linux-amd64"),
    ("go: example.com/old@v2.0.0+incompatible: x", "example.com/old@v2.0.0+incompatible"),
    ("go: example.com/p@v0.0.0-20240102030405-abcdefabcdef: x",
     "example.com/p@v0.0.0-20240102030405-abcdefabcdef"),
    ("go: example.com/libb/v2@v2.0.0: x", "example.com/libb/v2@v2.0.0"),
    ("go: github.com/Azure/go-autorest@v14.2.0+incompatible: x",
     "github.com/Azure/go-autorest@v14.2.0+incompatible"),
    ('go.mod:6:2: require example.com/foo: version "v9.9.9" invalid: should be v0 or v1, not v9',
     "example.com/foo@v9.9.9"),
    ("go: downloading example.com/foo v1.0.0", "example.com/foo@v1.0.0"),
    ("#7 0.5 go: finding module for package example.com/foo", None),
    ("go: example.com/foo@latest: module example.com/foo: reading ...: 500", None),
    ("go: go.mod requires go >= 1.99.0 (running go 1.27.3; GOTOOLCHAIN=local)", None),
    ("user@v1.0.0 is not a module path", None),
    ("mail me at dev@acme.example", None),
    ("main.go:4:2: missing go.sum entry for module providing package example.com/foo", None),
    ("go: example.com/foo@v1.0: invalid version", None),
]  # fmt: skip


@pytest.mark.parametrize(("line", "module"), CASES)
def test_extract_module(line: str, module: str | None) -> None:
    found = extract_module(line)
    assert (str(found) if found is not None else None) == module, f"in {line!r}"


_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_ELEM = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~",
                min_size=1, max_size=10).filter(lambda e: e.strip(".") == e)  # fmt: skip
_PATH = st.builds(
    lambda host, tld, elems: "/".join([f"{host}.{tld}", *elems]),
    _LABEL,
    st.sampled_from(["com", "org", "io", "example"]),
    st.lists(_ELEM, max_size=3),
)
_VERSION = st.builds(
    lambda major, minor, patch, pre: f"v{major}.{minor}.{patch}{pre}",
    st.integers(0, 30),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["", "-rc.1", "-0.20240102030405-abcdefabcdef", "+incompatible"]),
)


@given(_PATH, _VERSION, st.sampled_from(["go: {m}: reading x: 404 Not Found",
                                         "verifying {m}/go.mod: checksum mismatch",
                                         "\tfatal: x for {m}: boom"]))  # fmt: skip
def test_extract_round_trip(path: str, version: str, template: str) -> None:
    line = template.format(m=f"{path}@{version}")
    assert extract_module(line) == ModuleVersion(path, version), f"in {line!r}"
