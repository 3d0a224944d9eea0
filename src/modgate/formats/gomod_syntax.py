"""The syntax of go.mod files: tokens, lines and blocks (after x/mod/modfile's read.go).

A go.mod is a list of statements. A statement is a line of tokens, or a
block: ``verb (`` at the end of a line, then lines of tokens, then a line
holding only ``)``. Tokens are identifiers (runs of printable characters
other than space and ``()[]{},``), ``"quoted"`` or backquoted strings, and
the punctuation ``()[]{},``. ``//`` comments run to the end of the line; a
comment alone on its line is kept for the statement that follows it, and a
comment after tokens for the line it ends. ``/* */`` comments are an error.
Bytes that are not UTF-8 are carried as surrogate escapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modgate.protocol.module import go_quote

_PUNCT = "\n()[]{},"
_NOT_IDENT = " ()[]{},"
_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34}
_NUMERIC_ESCAPES = {"x": 2, "u": 4, "U": 8}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_OCT_DIGITS = frozenset("01234567")
_MAX_RUNE = 0x10FFFF
_QUOTES = "\"'`"

# Token kinds besides single punctuation characters.
_EOF, _EOLCOMMENT, _IDENT, _STRING, _COMMENT = "EOF", "EOLCOMMENT", "IDENT", "STRING", "COMMENT"


class GoModError(ValueError):
    """A go.mod file the go command would refuse; ``line`` is 1-based."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"go.mod:{line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(slots=True)
class _Token:
    kind: str
    text: str
    line: int


@dataclass(slots=True)
class Line:
    tokens: list[str]
    line: int
    before: list[str] = field(default_factory=list)
    suffix: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Block:
    tokens: list[str]
    line: int
    lines: list[Line]
    before: list[str] = field(default_factory=list)


def _is_ident(c: str) -> bool:
    if c in _NOT_IDENT:
        return False
    # Undecodable bytes read as U+FFFD in Go, which is printable.
    return c.isprintable() or "\udc80" <= c <= "\udcff"


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def _error(self, reason: str, line: int | None = None) -> GoModError:
        return GoModError(self.line if line is None else line, reason)

    def _advance(self) -> str:
        c = self.text[self.pos]
        self.pos += 1
        if c == "\n":
            self.line += 1
        return c

    def tokens(self) -> list[_Token]:
        out: list[_Token] = []
        while True:
            tok = self._next()
            out.append(tok)
            if tok.kind == _EOF:
                return out

    def _comment(self) -> _Token:
        start, line = self.pos, self.line
        before = self.text[self.text.rfind("\n", 0, start) + 1 : start]
        while self.pos < len(self.text) and self._advance() != "\n":
            pass
        body = self.text[start : self.pos]
        body = body[:-2] if body.endswith("\r\n") else body.removesuffix("\n")
        return _Token(_EOLCOMMENT if before.strip() else _COMMENT, body, line)

    def _next(self) -> _Token:
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t\r":
                self.pos += 1
            elif text.startswith("//", self.pos):
                return self._comment()
            elif text.startswith("/*", self.pos):
                raise self._error("mod files must use // comments (not /* */ comments)")
            else:
                break
        start, line = self.pos, self.line
        if self.pos >= len(text):
            return _Token(_EOF, "", line)
        c = text[self.pos]
        if c in _PUNCT:
            self._advance()
            return _Token(c, c, line)
        if c in '"`':
            self._advance()
            while True:
                if self.pos >= len(text):
                    raise self._error("unexpected EOF in string", line)
                if text[self.pos] == "\n":
                    raise self._error("unexpected newline in string")
                d = self._advance()
                if d == c:
                    break
                if d == "\\" and c == '"':
                    if self.pos >= len(text):
                        raise self._error("unexpected EOF in string", line)
                    self._advance()
            return _Token(_STRING, text[start : self.pos], line)
        if not _is_ident(c):
            raise self._error(f"unexpected input character {go_quote(c)}")
        while self.pos < len(text) and _is_ident(text[self.pos]):
            if text.startswith("//", self.pos):
                break
            if text.startswith("/*", self.pos):
                raise self._error("mod files must use // comments (not /* */ comments)")
            self.pos += 1
        return _Token(_IDENT, text[start : self.pos], line)


def _is_eol(kind: str) -> bool:
    return kind in (_EOF, _EOLCOMMENT, "\n")


class _Parser:
    """modfile's grammar: lines of tokens, and ``verb (`` blocks of lines."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.toks = tokens
        self.i = 0
        self.stmts: list[Line | Block] = []

    def _peek(self) -> _Token:
        return self.toks[self.i]

    def _lex(self) -> _Token:
        tok = self.toks[self.i]
        if tok.kind != _EOF:
            self.i += 1
        return tok

    def parse(self) -> list[Line | Block]:
        comments: list[str] = []
        while True:
            kind = self._peek().kind
            if kind == "\n":
                self._lex()
                comments = []
            elif kind == _COMMENT:
                comments.append(self._lex().text)
            elif kind == _EOF:
                return self.stmts
            else:
                self._stmt(comments)
                comments = []

    def _stmt(self, before: list[str]) -> None:
        first = self._lex()
        tokens = [first.text]
        while True:
            tok = self._lex()
            if _is_eol(tok.kind):
                suffix = [tok.text] if tok.kind == _EOLCOMMENT else []
                self.stmts.append(Line(tokens, first.line, before, suffix))
                return
            if tok.kind == "(":
                if _is_eol(self._peek().kind):
                    self.stmts.append(self._block(first.line, tokens, before))
                    return
                if self._peek().kind == ")":
                    self._lex()
                    if _is_eol(self._peek().kind):
                        self._lex()
                        self.stmts.append(Block(tokens, first.line, [], before))
                        return
                    tokens += ["(", ")"]
                    continue
            tokens.append(tok.text)

    def _block(self, line: int, tokens: list[str], before: list[str]) -> Block:
        block = Block(tokens, line, [], before)
        comments: list[str] = []
        while True:
            tok = self._peek()
            if tok.kind == _EOLCOMMENT:
                self._lex()
            elif tok.kind == "\n":
                # A blank line between lines is kept as an empty comment: it
                # stops the block's comment from standing in for the line's.
                self._lex()
                if (block.lines and not comments) or (comments and comments[-1]):
                    comments.append("")
            elif tok.kind == _COMMENT:
                comments.append(self._lex().text)
            elif tok.kind == _EOF:
                raise GoModError(
                    tok.line, f"syntax error (unterminated block started at line {line})"
                )
            elif tok.kind == ")":
                self._lex()
                after = self._peek()
                if not _is_eol(after.kind):
                    raise GoModError(
                        after.line, "syntax error (expected newline after closing paren)"
                    )
                self._lex()
                return block
            else:
                first = self._lex()
                words = [first.text]
                while not _is_eol(self._peek().kind):
                    words.append(self._lex().text)
                end = self._lex()
                suffix = [end.text] if end.kind == _EOLCOMMENT else []
                block.lines.append(Line(words, first.line, comments, suffix))
                comments = []


def _escape_value(body: str, i: int, e: str) -> tuple[int, int]:
    """The value of the numeric escape ``\\e...`` whose digits start at ``body[i]``."""
    if e in _NUMERIC_ESCAPES:
        width, base, allowed = _NUMERIC_ESCAPES[e], 16, _HEX_DIGITS
        digits, end = body[i : i + width], i + width
    else:
        width, base, allowed = 3, 8, _OCT_DIGITS
        digits, end = e + body[i : i + 2], i + 2
    if len(digits) != width or not set(digits) <= allowed:
        raise ValueError("invalid syntax")
    return int(digits, base), end


def go_unquote(token: str) -> str:
    """Go's ``strconv.Unquote`` of a double-quoted token; ValueError if malformed.

    As in Go, undecodable input bytes come out as U+FFFD, while ``\\x``
    and octal escapes give raw bytes (kept as surrogate escapes).
    """
    if len(token) < 2 or token[0] != '"' or token[-1] != '"':
        raise ValueError("invalid syntax")
    body, out, i = token[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        i += 1
        if c in '"\n':
            raise ValueError("invalid syntax")
        if c != "\\":
            out += ("\ufffd" if "\udc80" <= c <= "\udcff" else c).encode("utf-8")
            continue
        if i >= len(body):
            raise ValueError("invalid syntax")
        e = body[i]
        i += 1
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            continue
        if e not in _NUMERIC_ESCAPES and e not in _OCT_DIGITS:
            raise ValueError("invalid syntax")
        value, i = _escape_value(body, i, e)
        if e in "uU":
            if value > _MAX_RUNE or 0xD800 <= value <= 0xDFFF:
                raise ValueError("invalid syntax")
            out += chr(value).encode("utf-8")
        elif value > 0xFF:
            raise ValueError("invalid syntax")
        else:
            out.append(value)
    return out.decode("utf-8", "surrogateescape")


def parse_string(token: str) -> str:
    """A token as a string value (modfile parseString): quoted or bare, never with quotes."""
    if token.startswith('"'):
        return go_unquote(token)
    if any(q in token for q in _QUOTES):
        raise ValueError("unquoted string cannot contain quote")
    return token


def parse_syntax(data: bytes) -> list[Line | Block]:
    """The statements of a go.mod; raises :class:`GoModError` for a syntax error."""
    text = data.decode("utf-8", "surrogateescape")
    return _Parser(_Lexer(text).tokens()).parse()
