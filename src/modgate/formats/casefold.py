"""Case folding as the go command's module zip check does it.

x/mod's zip package finds two paths equal when they fold to the same string:
each rune is replaced by the smallest member of its Unicode simple
case-folding orbit, and A-Z are then lowered. That is not Python's
``str.casefold``, which applies full folding (``"ß"`` becomes ``"ss"``, which
Go never equates with ``"ß"``).

Python's ``lower()`` and ``upper()`` give the same orbits once the Turkic
dotted and dotless i are kept apart (Go folds each only to itself), plus the
pairs in ``_EXTRA_FOLD_RUNS``: simple foldings between two lowercase letters,
which no case mapping expresses, and pairs from Unicode versions newer than
Python's own tables.
"""

from __future__ import annotations

from functools import cache

_SELF_FOLDING = frozenset("\u0130\u0131")
# (first of one side, first of the other, how many consecutive pairs)
_EXTRA_FOLD_RUNS = (
    (0x0390, 0x1FD3, 1),
    (0x03B0, 0x1FE3, 1),
    (0xFB05, 0xFB06, 1),
    (0x0264, 0xA7CB, 1),
    (0x019B, 0xA7DC, 1),
    (0x1C89, 0x1C8A, 1),
    (0xA7CC, 0xA7CD, 1),
    (0xA7CE, 0xA7CF, 1),
    (0xA7D2, 0xA7D3, 1),
    (0xA7D4, 0xA7D5, 1),
    (0xA7DA, 0xA7DB, 1),
    (0x10D50, 0x10D70, 22),
    (0x16EA0, 0x16EBB, 25),
)
_CASED_LIMIT = 0x20000  # no cased letters exist above this


@cache
def _fold_table() -> dict[str, str]:
    parent: dict[str, str] = {}

    def find(c: str) -> str:
        while (p := parent.get(c, c)) != c:
            parent[c] = parent.get(p, p)
            c = p
        return c

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for cp in range(_CASED_LIMIT):
        c = chr(cp)
        if c in _SELF_FOLDING:
            continue
        for m in (c.lower(), c.upper()):
            if len(m) == 1 and m != c and m not in _SELF_FOLDING:
                union(c, m)
    for a, b, count in _EXTRA_FOLD_RUNS:
        for k in range(count):
            union(chr(a + k), chr(b + k))
    table: dict[str, str] = {}
    for c in set(parent) | set(parent.values()):
        root = find(c)
        rep = root.lower() if "A" <= root <= "Z" else root
        if rep != c:
            table[c] = rep
    return table


def fold_key(s: str) -> str:
    """A key equal for two strings exactly when the go command's zip check finds them equal."""
    if s.isascii():
        return s.lower()  # ASCII letters fold only with each other and with non-ASCII letters
    table = _fold_table()
    return "".join(table.get(c, c) for c in s)
