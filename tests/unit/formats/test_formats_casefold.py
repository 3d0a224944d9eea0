"""fold_key: the go command's case folding for zip file name collisions."""

from __future__ import annotations

import pytest

from modgate.formats.casefold import fold_key


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("m.go", "M.GO", True),
        ("kelvin", "\u212aelvin", True),  # KELVIN SIGN folds to k
        ("s", "\u017f", True),  # LATIN SMALL LETTER LONG S folds to s
        ("Å", "\u212b", True),  # ANGSTROM SIGN
        ("σ", "ς", True),  # final sigma is in sigma's orbit
        ("Σ", "ς", True),
        ("µ", "μ", True),  # MICRO SIGN and GREEK SMALL LETTER MU
        ("ß", "\u1e9e", True),  # sharp s and capital sharp s (simple folding)
        ("\u0390", "\u1fd3", True),  # two lowercase letters that fold together
        ("\ufb05", "\ufb06", True),
        ("ǅ", "ǆ", True),  # titlecase digraph
        ("ß", "ss", False),  # full folding, which Go never applies
        ("ı", "i", False),  # dotless i folds only to itself in Go
        ("İ", "i", False),
        ("İ", "ı", False),
        ("a.go", "a.go ", False),
        ("é", "e", False),
    ],
)
def test_fold_key_pairs(a: str, b: str, equal: bool) -> None:
    got = fold_key(a) == fold_key(b)
    assert got == equal, f"fold_key({a!r})={fold_key(a)!r}, fold_key({b!r})={fold_key(b)!r}"


@pytest.mark.parametrize("s", ["", "go.mod", "a/b/c_d-e.txt", "0123"])
def test_lowercase_ascii_is_its_own_key(s: str) -> None:
    assert fold_key(s) == s, f"fold_key changed {s!r} to {fold_key(s)!r}"


def test_ascii_uppercase_folds_to_lowercase() -> None:
    assert fold_key("ABC/Go.Mod") == "abc/go.mod"
