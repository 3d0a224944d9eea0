"""Regular expressions that find any of many literal words, fast.

``diagnose`` asks of nearly every line "does it hold one of these words?".
Testing the words one by one costs a Python step per word; a plain
alternation ``w1|w2|...`` makes the regular expression engine try every
word at every position. The patterns built here are prefix trees instead
(``go(?:\\.mod|: )``), written as a bare alternation whose branches all
start with a literal character, so the engine skips in C every position
whose character starts no word, and elsewhere follows one branch per
character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_END = ""
"""Marks the end of a word in the prefix tree (no character is empty)."""
_NEVER = "(?!)"

_Tree = dict[str, "_Tree"]


def essential_words(words: Iterable[str]) -> list[str]:
    """``words`` without those that contain another of them (and without duplicates)."""
    kept: list[str] = []
    for word in sorted(set(words), key=lambda word: (len(word), word)):
        if not any(shorter in word for shorter in kept):
            kept.append(word)
    return kept


def word_pattern(words: Iterable[str]) -> str:
    """A regular expression that matches where one of ``words`` starts.

    ``re.search(word_pattern(words), text)`` finds something if and only if
    some word occurs in ``text``. It matches the leftmost occurrence of a
    word that contains no other word, so no word lies wholly before it (the
    line it is on is the first line holding a word). Keep the result at the
    top level of a pattern (appending other branches that start with a
    literal character with ``|``) or wrap it in ``(?:...)``.
    """
    return _pattern(essential_words(words))


def longest_word_pattern(words: Iterable[str]) -> str:
    """A regular expression that matches the longest of ``words`` starting where it matches.

    Every word that starts at the same position is a prefix of that longest
    one, so searching again from one position further after each match
    finds every occurrence of every word.
    """
    return _pattern(sorted(set(words)))


def _pattern(words: list[str]) -> str:
    if "" in words:
        return ""  # the empty word occurs everywhere
    tree: _Tree = {}
    for word in words:
        node = tree
        for char in word:
            node = node.setdefault(char, {})
        node[_END] = {}
    return "|".join(_branches(tree)) if tree else _NEVER


def _branches(node: _Tree) -> list[str]:
    """One alternative per character that continues a word from ``node``."""
    return [_tail(re.escape(char), child) for char, child in sorted(node.items()) if char]


def _tail(head: str, node: _Tree) -> str:
    branches = _branches(node)
    if not branches:
        return head
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    if _END in node:
        # A word ends here and longer ones go on: try the longer ones first.
        return f"{head}(?:{body})?"
    return head + body
