"""Enough of POSIX shell to find go commands and variable assignments in scripts.

Scripts come from ``*.sh`` files, Dockerfile ``RUN`` lines, workflow
``run:`` blocks, GitLab ``script:`` lists and Jenkins ``sh`` steps. The
lexer knows quotes, backslash escapes and line continuations, comments,
``$(...)``, backticks, ``${...}``, heredocs (their bodies are skipped) and
the operators that separate commands (``;``, ``&&``, ``||``, ``|``, ``&``,
newlines, parentheses). It never fails: unbalanced input ends the word or
the script. Each word remembers its line and whether it holds an expansion
(``$x``, ``$(...)``, backticks) outside single quotes, so that a value like
``$GOPROXY_URL`` is recognised as unknown rather than checked as text.
The commands inside ``$(...)`` and backticks are returned too, before the
command that holds them (they run first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
_SEPARATORS = ";&|()\n"
_WORD_END = " \t" + _SEPARATORS
_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "time"})
_WRAPPERS = frozenset({"sudo", "env", "exec", "command", "nice", "nohup", "timeout", "time"})
_WRAPPER_ARGUMENT = frozenset({"timeout"})
"""Wrappers whose first non-option argument is theirs (a duration), not a command."""
_EXPORTERS = frozenset({"export", "declare", "typeset", "readonly", "local"})
_MOD_GROUPS = frozenset({"mod", "work", "env", "tool"})
FETCHING = frozenset(
    {
        "build",
        "install",
        "test",
        "run",
        "get",
        "list",
        "vet",
        "mod download",
        "mod tidy",
        "mod vendor",
        "mod graph",
        "mod why",
        "work sync",
        "work vendor",
    }
)
"""go subcommands that may download modules."""


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    line: int
    expands: bool = False
    """Holds ``$...`` or a backtick substitution outside single quotes."""


@dataclass(slots=True)
class Command:
    words: list[Word]
    line: int

    def texts(self) -> list[str]:
        return [w.text for w in self.words]


@dataclass(frozen=True, slots=True)
class GoCall:
    """One ``go`` invocation: ``subcommand`` is e.g. ``build`` or ``mod download``."""

    subcommand: str
    args: tuple[Word, ...]
    line: int

    @property
    def fetches(self) -> bool:
        return self.subcommand in FETCHING

    def flags(self) -> list[str]:
        return [a.text for a in self.args if a.text.startswith("-")]


@dataclass(slots=True)
class _Lexer:
    text: str
    line: int
    commands: list[Command] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    chars: list[str] = field(default_factory=list)
    word_line: int = 0
    expands: bool = False
    in_word: bool = False
    heredocs: list[tuple[str, bool]] = field(default_factory=list)
    inner: list[tuple[str, int]] = field(default_factory=list)
    """Bodies of ``$(...)`` and backticks in the current command, with their lines."""

    def start(self) -> None:
        if not self.in_word:
            self.in_word = True
            self.word_line = self.line

    def end_word(self) -> None:
        if self.in_word:
            self.words.append(Word("".join(self.chars), self.word_line, self.expands))
        self.chars, self.expands, self.in_word = [], False, False

    def end_command(self) -> None:
        self.end_word()
        if self.inner:
            # a command substitution runs before the command that holds it
            bodies, self.inner = self.inner, []
            for body, line in bodies:
                self.commands.extend(parse_script(body, line))
        if self.words:
            self.commands.append(Command(self.words, self.words[0].line))
        self.words = []


def _read_until(text: str, i: int, close: str) -> int:
    """Index just after ``close`` (or the end), honouring nesting of ``(``."""
    depth = 0
    opener = "(" if close == ")" else ""
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if opener and c == opener:
            depth += 1
        elif c == close:
            if depth == 0:
                return i + 1
            depth -= 1
        i += 1
    return i


def _skip_heredocs(lex: _Lexer, i: int) -> int:
    """Skip the bodies of pending heredocs; ``i`` is just after a newline."""
    text = lex.text
    for delimiter, strip_tabs in lex.heredocs:
        while i < len(text):
            end = text.find("\n", i)
            stop = len(text) if end < 0 else end
            body_line = text[i:stop]
            i = stop + 1
            lex.line += 1
            if (body_line.lstrip("\t") if strip_tabs else body_line) == delimiter:
                break
    lex.heredocs = []
    return i


def _heredoc(lex: _Lexer, i: int) -> int:
    """Register a heredoc starting at ``<<``; return the index after its delimiter word."""
    text = lex.text
    i += 2
    strip_tabs = i < len(text) and text[i] == "-"
    if strip_tabs:
        i += 1
    while i < len(text) and text[i] in " \t":
        i += 1
    start = i
    while i < len(text) and text[i] not in _WORD_END and text[i] not in "<>":
        i += 1
    delimiter = text[start:i].replace("'", "").replace('"', "").replace("\\", "")
    if delimiter:
        lex.heredocs.append((delimiter, strip_tabs))
    return i


def parse_script(text: str, first_line: int = 1) -> list[Command]:
    """Split a script into simple commands; line numbers start at ``first_line``."""
    lex = _Lexer(text, first_line)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                lex.line += 1
            else:
                lex.start()
                lex.chars.append(text[i + 1 : i + 2])
            i += 2
            continue
        if c == "\n":
            lex.end_command()
            lex.line += 1
            i = _skip_heredocs(lex, i + 1) if lex.heredocs else i + 1
            continue
        if c in " \t":
            lex.end_word()
            i += 1
            continue
        if c == "#" and not lex.in_word:
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c == "&" and (
            (lex.chars and lex.chars[-1] in "<>") or text.startswith("&>", i)
        ):  # 2>&1, &> file
            lex.start()
            lex.chars.append(c)
            i += 1
            continue
        if c in _SEPARATORS:
            lex.end_command()
            i += 1
            continue
        if c == "<" and text.startswith("<<", i) and not text.startswith("<<<", i):
            lex.end_word()
            i = _heredoc(lex, i)
            continue
        lex.start()
        if c == "'":
            end = text.find("'", i + 1)
            end = n if end < 0 else end
            chunk = text[i + 1 : end]
            lex.chars.append(chunk)
            lex.line += chunk.count("\n")
            i = end + 1
        elif c == '"':
            i = _double_quoted(lex, i + 1)
        elif c == "$" and i + 1 < n and text[i + 1] in "({":
            close = ")" if text[i + 1] == "(" else "}"
            end = _read_until(text, i + 2, close)
            chunk = text[i:end]
            if close == ")" and not text.startswith("$((", i):
                lex.inner.append((text[i + 2 : end - 1], lex.line))
            lex.chars.append(chunk)
            lex.line += chunk.count("\n")
            lex.expands = True
            i = end
        elif c == "$" and i + 1 < n and (text[i + 1].isalnum() or text[i + 1] in "_@*#?$!-"):
            m = _NAME_RE.match(text, i + 1)
            end = m.end() if m else i + 2
            lex.chars.append(text[i:end])
            lex.expands = True
            i = end
        elif c == "`":
            end = _read_until(text, i + 1, "`")
            chunk = text[i:end]
            lex.inner.append((text[i + 1 : end - 1], lex.line))
            lex.chars.append(chunk)
            lex.line += chunk.count("\n")
            lex.expands = True
            i = end
        else:
            lex.chars.append(c)
            i += 1
    lex.end_command()
    return lex.commands


def _double_quoted(lex: _Lexer, i: int) -> int:
    text, n = lex.text, len(lex.text)
    while i < n:
        c = text[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "\n":
                lex.line += 1
            else:
                lex.chars.append(nxt if nxt in '"\\$`' else c + nxt)
            i += 2
            continue
        if (c == "$" and i + 1 < n and (text[i + 1] in "({_" or text[i + 1].isalnum())) or c == "`":
            lex.expands = True
            if c == "`" or (text.startswith("$(", i) and not text.startswith("$((", i)):
                start = i + (1 if c == "`" else 2)
                end = _read_until(text, start, "`" if c == "`" else ")")
                lex.inner.append((text[start : end - 1], lex.line))
                lex.chars.append(text[i:end])
                lex.line += text.count("\n", i, end)
                i = end
                continue
        if c == "\n":
            lex.line += 1
        lex.chars.append(c)
        i += 1
    return i


# --------------------------------------------------------------------------- reading commands


def split_assignment(word: Word) -> tuple[str, str] | None:
    """``NAME=value`` as (name, value), else None."""
    m = _ASSIGNMENT_RE.fullmatch(word.text)
    return (m.group(1), m.group(2)) if m else None


def prefix_assignments(cmd: Command) -> list[Word]:
    """The ``NAME=value`` words before the command name."""
    out: list[Word] = []
    for word in cmd.words:
        if word.text in _KEYWORDS and not out:
            continue
        if split_assignment(word) is None:
            break
        out.append(word)
    return out


def argv(cmd: Command) -> list[Word]:
    """The command and its arguments: keywords, assignments and wrappers removed."""
    words = [w for w in cmd.words]
    while words and words[0].text in _KEYWORDS:
        words = words[1:]
    while words and split_assignment(words[0]) is not None:
        words = words[1:]
    while words and words[0].text.rsplit("/", 1)[-1] in _WRAPPERS:
        wrapper = words[0].text.rsplit("/", 1)[-1]
        words = words[1:]
        while words and (words[0].text.startswith("-") or split_assignment(words[0])):
            words = words[1:]
        if wrapper in _WRAPPER_ARGUMENT and words:
            words = words[1:]
    return words


def wrapper_assignments(cmd: Command) -> list[Word]:
    """``NAME=value`` words given to ``env`` or before the command (``A=1 env B=2 go``)."""
    found = prefix_assignments(cmd)
    words = cmd.words[len(found) :]
    for index, word in enumerate(words):
        if word.text.rsplit("/", 1)[-1] == "env":
            found.extend(w for w in words[index + 1 :] if split_assignment(w) is not None)
            break
    return found


def go_call(cmd: Command) -> GoCall | None:
    words = argv(cmd)
    if not words or words[0].text.rsplit("/", 1)[-1] != "go":
        return None
    rest = words[1:]
    # global flags before the subcommand: go -C dir build
    while rest and rest[0].text.startswith("-"):
        takes_value = rest[0].text == "-C"
        rest = rest[2:] if takes_value else rest[1:]
    if not rest:
        return GoCall("", (), words[0].line)
    sub = rest[0].text
    args = rest[1:]
    if sub in _MOD_GROUPS and args and not args[0].text.startswith("-"):
        sub = f"{sub} {args[0].text}"
        args = args[1:]
    return GoCall(sub, tuple(args), words[0].line)


def exported_assignments(cmd: Command) -> list[Word]:
    """Assignments that persist for later commands: ``export A=B``, ``A=B`` alone, ``go env -w``."""
    words = argv(cmd)
    if not words:
        # only assignments: shell variables for the rest of the script
        return [w for w in cmd.words if split_assignment(w) is not None]
    name = words[0].text
    if name in _EXPORTERS:
        return [w for w in words[1:] if split_assignment(w) is not None]
    call = go_call(cmd)
    if call is not None and call.subcommand == "env" and any(a.text == "-w" for a in call.args):
        return [a for a in call.args if split_assignment(a) is not None]
    return []


def is_exported_by(cmd: Command) -> bool:
    """Whether ``cmd`` exports what it assigns (``export``/``declare -x``), not a bare ``A=B``."""
    words = argv(cmd)
    return bool(words) and (
        words[0].text == "export"
        or (words[0].text in _EXPORTERS and any(w.text.startswith("-x") for w in words))
    )


def sets_allexport(cmd: Command) -> bool | None:
    """True for ``set -a``/``set -o allexport``, False for ``set +a``, None otherwise."""
    words = argv(cmd)
    if not words or words[0].text != "set":
        return None
    texts = [w.text for w in words[1:]]
    if "-o" in texts and "allexport" in texts:
        return True
    if "+o" in texts and "allexport" in texts:
        return False
    for t in texts:
        if t.startswith("-") and "a" in t[1:]:
            return True
        if t.startswith("+") and "a" in t[1:]:
            return False
    return None


def sourced_file(cmd: Command) -> Word | None:
    """The file of ``source FILE`` or ``. FILE``."""
    words = argv(cmd)
    if len(words) >= 2 and words[0].text in ("source", "."):
        return words[1]
    return None


def github_env_writes(cmd: Command) -> list[Word]:
    """``NAME=value`` payloads of ``echo ... >> $GITHUB_ENV`` (values for later steps)."""
    words = argv(cmd)
    texts = [w.text for w in words]
    if not words or words[0].text not in ("echo", "printf"):
        return []
    if not any("GITHUB_ENV" in t for t in texts):
        return []
    return [w for w in words[1:] if split_assignment(w) is not None]
