"""Dockerfile syntax: instructions with their flags, line numbers and heredocs.

Follows the BuildKit front end where it matters for doctor: the ``escape``
parser directive, line continuations (comment and empty lines inside a
continued instruction are dropped), ``--flag=value`` words after the
keyword (also on continuation lines), exec-form JSON arrays, and heredocs
(``RUN <<EOF`` ... ``EOF``, ``<<-`` strips leading tabs; several per line).
Variable substitution follows the Dockerfile rules: ``$NAME``,
``${NAME}``, ``${NAME:-word}``, ``${NAME:+word}``; nothing inside single
quotes. A name whose value is not known here (an ``ARG`` without default, a
variable of the base image) makes the result unknown rather than empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_DIRECTIVE_RE = re.compile(r"#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$")
_HEREDOC_RE = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG_RE = re.compile(r"--([A-Za-z][A-Za-z0-9-]*)(?:=((?:\"[^\"]*\"|'[^']*'|\S)*))?")
_VAR_RE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
_HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})
_KEYWORD_RE = re.compile(r"[A-Za-z]+")
_GAP_RE = re.compile(r"(?:[ \t]|[\\`][ \t]*\n)*")


@dataclass(frozen=True, slots=True)
class Heredoc:
    delimiter: str
    body: str
    first_line: int
    command: str
    """What stands before ``<<`` on the instruction line (``""`` for ``RUN <<EOF``)."""


@dataclass(slots=True)
class Instruction:
    keyword: str
    line: int
    flags: dict[str, list[str]]
    rest: str
    """The text after the flags; continuation lines keep their escape and newline."""
    rest_line: int
    heredocs: list[Heredoc] = field(default_factory=list)

    def flag(self, name: str) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else None

    def exec_form(self) -> list[str] | None:
        text = self.rest.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(_join(text, "\\"))
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None

    def joined(self, escape: str = "\\") -> str:
        """The rest as one logical line, as BuildKit joins it."""
        return _join(self.rest, escape)


def _join(text: str, escape: str) -> str:
    return re.sub(re.escape(escape) + r"[ \t]*\n", "", text)


@dataclass(slots=True)
class Dockerfile:
    instructions: list[Instruction]
    escape: str = "\\"


def _ends_with_escape(line: str, escape: str) -> bool:
    stripped = line.rstrip()
    return stripped.endswith(escape) and not stripped.endswith(escape * 2)


def _split_flags(rest: str) -> tuple[dict[str, list[str]], str, int]:
    """Leading ``--name[=value]`` words; returns flags, the remaining text and newlines skipped."""
    flags: dict[str, list[str]] = {}
    position, newlines = 0, 0
    while True:
        m = _GAP_RE.match(rest, position)
        skipped = m.group(0) if m else ""
        candidate = position + len(skipped)
        flag = _FLAG_RE.match(rest, candidate)
        if flag is None or not rest.startswith("--", candidate):
            newlines += skipped.count("\n")
            return flags, rest[candidate:], newlines
        newlines += skipped.count("\n")
        value = flag.group(2) if flag.group(2) is not None else ""
        flags.setdefault(flag.group(1).lower(), []).append(value.strip("\"'"))
        position = flag.end()


def parse_dockerfile(text: str) -> Dockerfile:
    lines = text.splitlines()
    escape = "\\"
    index = 0
    # parser directives: only at the very top, before any other line
    while index < len(lines):
        m = _DIRECTIVE_RE.fullmatch(lines[index].strip())
        if m is None:
            break
        if m.group(1).lower() == "escape" and m.group(2) in ("\\", "`"):
            escape = m.group(2)
        index += 1
    instructions: list[Instruction] = []
    while index < len(lines):
        raw = lines[index]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        start = index
        parts = [raw.lstrip()]
        last = raw
        while _ends_with_escape(last, escape) and index + 1 < len(lines):
            index += 1
            nxt = lines[index]
            if not nxt.strip() or nxt.strip().startswith("#"):
                parts.append(escape)  # dropped by BuildKit; kept as a continuation
                continue
            parts.append(nxt)
            last = nxt
        index += 1
        logical = "\n".join(parts)
        m = _KEYWORD_RE.match(logical)
        keyword = m.group(0).upper() if m else ""
        rest = logical[m.end() :] if m else logical
        flags, body, newlines = _split_flags(rest)
        instruction = Instruction(keyword, start + 1, flags, body, start + 1 + newlines)
        if keyword in _HEREDOC_KEYWORDS and "<<" in body:
            index = _read_heredocs(instruction, lines, index)
        instructions.append(instruction)
    return Dockerfile(instructions, escape)


def _read_heredocs(instruction: Instruction, lines: list[str], index: int) -> int:
    first_line_text = instruction.rest.split("\n", 1)[0]
    for m in _HEREDOC_RE.finditer(instruction.rest):
        strip_tabs, delimiter = m.group(1) == "-", m.group(3)
        command = (
            first_line_text[: first_line_text.find("<<")].strip() if "<<" in first_line_text else ""
        )
        body: list[str] = []
        first = index + 1
        while index < len(lines):
            line = lines[index]
            index += 1
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                break
            body.append(line)
        instruction.heredocs.append(Heredoc(delimiter, "\n".join(body) + "\n", first, command))
    return index


# --------------------------------------------------------------------------- words and variables


def substitute(text: str, variables: Mapping[str, str | None]) -> tuple[str, bool]:
    """Expand ``$NAME`` forms; returns (text, known). Unknown names make it unknown."""
    known = True

    def one(m: re.Match[str]) -> str:
        nonlocal known
        name = m.group(1) or m.group(4)
        operator, word = m.group(2), m.group(3) or ""
        present = name in variables
        value = variables.get(name)
        if operator is None:
            if value is None:
                known = False
                return ""
            return value
        if not present or (value is None and operator.startswith(":")):
            if not present and name not in variables:
                known = known and operator in (":-", "-")
            return word if operator.endswith("-") else ""
        if value is None:
            known = False
            return ""
        empty = value == "" and operator.startswith(":")
        if operator.endswith("-"):
            return word if empty else value
        return "" if empty else word

    return _VAR_RE.sub(one, text), known


def split_words(text: str, variables: Mapping[str, str | None]) -> list[tuple[str, bool]]:
    """Dockerfile words (ENV, ARG, FROM): quotes removed, variables expanded; (word, known)."""
    words: list[tuple[str, bool]] = []
    chunk: list[str] = []
    known = True
    in_word = False
    i = 0
    text = _join(text, "\\")
    while i < len(text):
        c = text[i]
        if c.isspace():
            if in_word:
                words.append(("".join(chunk), known))
            chunk, known, in_word = [], True, False
            i += 1
            continue
        in_word = True
        if c == "'":
            end = text.find("'", i + 1)
            end = len(text) if end < 0 else end
            chunk.append(text[i + 1 : end])
            i = end + 1
        elif c == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            inner = re.sub(r"\\(.)", r"\1", text[i + 1 : end])
            value, ok = substitute(inner, variables)
            chunk.append(value)
            known = known and ok
            i = end + 1
        elif c == "\\" and i + 1 < len(text):
            chunk.append(text[i + 1])
            i += 2
        elif c == "$":
            m = _VAR_RE.match(text, i)
            if m is None:
                chunk.append(c)
                i += 1
            else:
                value, ok = substitute(m.group(0), variables)
                chunk.append(value)
                known = known and ok
                i = m.end()
        else:
            chunk.append(c)
            i += 1
    if in_word:
        words.append(("".join(chunk), known))
    return words


def key_values(
    text: str, variables: Mapping[str, str | None], *, legacy: bool = True
) -> list[tuple[str, str | None, bool]]:
    """``ENV``/``ARG`` pairs: ``A=1 B="x y"``, or the legacy ``ENV A x y``.

    The value is None for a bare name (``ARG A``: declared, value from the build).
    """
    words = split_words(text, variables)
    if not words:
        return []
    if legacy and "=" not in words[0][0] and len(words) > 1:
        rest = " ".join(w for w, _ in words[1:])
        return [(words[0][0], rest, all(k for _, k in words[1:]))]
    pairs: list[tuple[str, str | None, bool]] = []
    for word, known in words:
        name, eq, value = word.partition("=")
        pairs.append((name, value, known) if eq else (name, None, True))
    return pairs


def referenced_names(text: str) -> set[str]:
    """Names referenced as ``$NAME`` or ``${NAME...}``."""
    return {m.group(1) or m.group(4) for m in _VAR_RE.finditer(text)}
