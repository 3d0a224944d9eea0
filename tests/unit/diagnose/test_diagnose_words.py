"""words: prefix-tree patterns find exactly what testing each word would find."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from modgate.diagnose.rules import RULE_WORDS
from modgate.diagnose.scan import KEYWORDS
from modgate.diagnose.words import essential_words, longest_word_pattern, word_pattern

_LETTERS = "ab.: \\("
_WORDS = st.lists(st.text(alphabet=_LETTERS, min_size=1, max_size=4), min_size=1, max_size=8)
_TEXT = st.text(alphabet=_LETTERS, max_size=30)


def _occurrences(words: list[str], text: str) -> set[tuple[int, str]]:
    return {
        (start, word)
        for word in set(words)
        for start in range(len(text))
        if text.startswith(word, start)
    }


@given(_WORDS, _TEXT)
def test_word_pattern_finds_a_word_with_none_wholly_before_it(words: list[str], text: str) -> None:
    found = re.search(word_pattern(words), text)
    occurrences = _occurrences(words, text)
    assert (found is not None) == bool(occurrences), (
        f"words {words!r} in {text!r}: found {found}, occurrences {sorted(occurrences)}"
    )
    if found is not None:
        assert (found.start(), found.group()) in occurrences, f"{found} is no word of {words!r}"
        before = [
            (start, word) for start, word in occurrences if start + len(word) <= found.start()
        ]
        assert not before, f"words {words!r} in {text!r}: {before} lie before {found}"


@given(_WORDS, _TEXT)
def test_longest_word_pattern_finds_every_occurrence(words: list[str], text: str) -> None:
    pattern = re.compile(longest_word_pattern(words))
    seen: set[tuple[int, str]] = set()
    found = pattern.search(text)
    while found is not None:
        longest = found.group()
        seen |= {(found.start(), word) for word in words if longest.startswith(word)}
        found = pattern.search(text, found.start() + 1)
    want = _occurrences(words, text)
    assert seen == want, f"words {words!r} in {text!r}: found {sorted(seen)}, want {sorted(want)}"


def test_essential_words_drop_only_words_holding_another() -> None:
    kept = essential_words(["go: ", "go: download go", "go.mod", "x", "x"])
    assert kept == ["x", "go: ", "go.mod"], f"kept {kept}"


def test_patterns_of_the_real_word_lists_start_every_branch_with_a_literal() -> None:
    # The speed depends on it: the engine then skips positions no word starts at.
    for words in (KEYWORDS, RULE_WORDS):
        for pattern in (word_pattern(words), longest_word_pattern(words)):
            branches = re.split(r"\|(?![^(]*\))", pattern)
            assert all(not branch.startswith("(") for branch in branches), pattern
