"""Jenkinsfiles: ``environment { }`` blocks, ``withEnv([...]) { }`` and ``sh`` steps.

A small Groovy lexer (strings in all four quote styles, comments, braces)
finds the blocks. An ``environment`` block applies to every step inside the
block that contains it (the pipeline, or one stage); ``withEnv`` applies to
its own block. ``sh 'script'``, ``sh '''...'''``, ``sh(script: ...)`` and
``sh label: ..., script: ...`` are checked as shell scripts. Strings in
double quotes that hold ``$`` are interpolated by Groovy and are unknown;
``credentials('id')`` and other expressions are unknown too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modgate.doctor.analyzers import buildimage, goenv
from modgate.doctor.analyzers.context import RepoContext
from modgate.doctor.analyzers.goenv import Setting
from modgate.doctor.analyzers.shell import check_script
from modgate.doctor.parsers.shellparse import GoCall, Word, split_assignment

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTES = ("'''", '"""', "'", '"')


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "ident", "str", "punct"
    text: str
    line: int
    position: int
    interpolated: bool = False
    text_line: int = 0
    """For strings: the line where the content starts."""


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            line += text.count("\n", i, end)
            i = end
        elif c in "'\"":
            quote = next(q for q in _QUOTES if text.startswith(q, i))
            start = i + len(quote)
            end = start
            while end < n and not text.startswith(quote, end):
                end += 2 if text[end] == "\\" else 1
            body = text[start:end]
            content_line = line
            if len(quote) == 3 and body.startswith("\n"):
                body, content_line = body[1:], line + 1
            if len(quote) == 1:
                body = re.sub(r"\\(.)", r"\1", body)
            interpolated = quote.startswith('"') and "$" in body
            tokens.append(_Token("str", body, line, i, interpolated, content_line))
            line += text.count("\n", i, end + len(quote))
            i = end + len(quote)
        else:
            m = _IDENT_RE.match(text, i)
            if m is not None:
                tokens.append(_Token("ident", m.group(0), line, i))
                i = m.end()
            else:
                tokens.append(_Token("punct", c, line, i))
                i += 1
    return tokens


def _block_end(tokens: list[_Token], open_index: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_index`` (or the last token)."""
    depth = 0
    for index in range(open_index, len(tokens)):
        t = tokens[index]
        if t.kind == "punct" and t.text == "{":
            depth += 1
        elif t.kind == "punct" and t.text == "}":
            depth -= 1
            if depth == 0:
                return index
    return len(tokens) - 1


def _enclosing(tokens: list[_Token], index: int) -> tuple[int, int]:
    """Positions (start, end) of the innermost block around token ``index``."""
    depth = 0
    for back in range(index - 1, -1, -1):
        t = tokens[back]
        if t.kind == "punct" and t.text == "}":
            depth += 1
        elif t.kind == "punct" and t.text == "{":
            if depth == 0:
                return tokens[back].position, tokens[_block_end(tokens, back)].position
            depth -= 1
    return 0, tokens[-1].position if tokens else 0


def _environment(tokens: list[_Token], start: int, end: int, file: str) -> list[Setting]:
    found = []
    index = start
    while index + 2 <= end:
        t, eq = tokens[index], tokens[index + 1]
        if t.kind == "ident" and eq.text == "=" and t.text in goenv.WATCHED:
            value = tokens[index + 2]
            known = value.kind == "str" and not value.interpolated
            text = value.text if value.kind == "str" else ""
            found.append(Setting(t.text, text, file, t.line, known=known))
            index += 3
        else:
            index += 1
    return found


def _sh_script(tokens: list[_Token], index: int) -> _Token | None:
    """The script string of the ``sh`` step at ``index``."""
    following = tokens[index + 1 : index + 12]
    if following and following[0].kind == "str":
        return following[0]
    for offset, t in enumerate(following[:-2]):
        if t.kind == "ident" and t.text == "script" and following[offset + 1].text == ":":
            value = following[offset + 2]
            return value if value.kind == "str" else None
    if len(following) > 1 and following[0].text == "(" and following[1].kind == "str":
        return following[1]
    return None


def check_jenkinsfile(file: str, text: str, ctx: RepoContext) -> None:
    tokens = _lex(text)
    layers: list[tuple[int, int, list[Setting]]] = []
    steps: list[tuple[int, _Token]] = []
    for index, t in enumerate(tokens):
        if t.kind != "ident":
            continue
        nxt = tokens[index + 1] if index + 1 < len(tokens) else None
        if t.text == "environment" and nxt is not None and nxt.text == "{":
            end = _block_end(tokens, index + 1)
            settings = _environment(tokens, index + 2, end, file)
            start_pos, end_pos = _enclosing(tokens, index)
            layers.append((start_pos, end_pos, settings))
        elif t.text == "withEnv":
            settings = _with_env(tokens, index, file)
            brace = next((i for i in range(index, len(tokens)) if tokens[i].text == "{"), None)
            if brace is not None:
                layers.append(
                    (tokens[brace].position, tokens[_block_end(tokens, brace)].position, settings)
                )
        elif t.text == "sh":
            script = _sh_script(tokens, index)
            if script is not None:
                steps.append((t.position, script))
    for _, _, settings in layers:
        for s in settings:
            goenv.check_setting(s, ctx.modules, ctx.report)
    images = _docker_images(tokens)
    go_calls: list[GoCall] = []
    tools: set[str] = set()
    for position, script in steps:
        active = [
            s for start, end, settings in layers if start <= position <= end for s in settings
        ]
        scope = goenv.scope_from(active)
        goenv.check_scope(scope, ctx.report)
        # Groovy fills in ${...} of double-quoted strings; the shell lexer keeps them unknown
        run = check_script(script.text, script.text_line, file, scope, ctx)
        go_calls.extend(call for call, _ in run.go_calls)
        tools |= run.build_tools
        for _, call_scope in run.go_calls:
            goenv.check_scope(call_scope, ctx.report)
    if images and buildimage.builds_repository(go_calls, tools):
        every = goenv.scope_from(s for _, _, settings in layers for s in settings)
        for image in images:
            buildimage.record(ctx, file, image.line, image.text, every)


def _docker_images(tokens: list[_Token]) -> list[_Token]:
    """Images of ``agent { docker { image '...' } }``, ``docker '...'`` and
    ``docker.image('...')``; interpolated strings are unknown and left out."""
    found = []
    for index, t in enumerate(tokens[:-1]):
        if t.kind != "ident" or t.text not in ("image", "docker"):
            continue
        after = tokens[index + 1]
        if after.text == "(" and index + 2 < len(tokens):
            after = tokens[index + 2]
        if after.kind == "str" and not after.interpolated:
            found.append(after)
    return found


def _with_env(tokens: list[_Token], index: int, file: str) -> list[Setting]:
    found = []
    for t in tokens[index + 1 : index + 64]:
        if t.text in ("]", "{"):
            break
        if t.kind != "str":
            continue
        pair = split_assignment(Word(t.text, t.line))
        if pair is not None and pair[0] in goenv.WATCHED:
            found.append(Setting(pair[0], pair[1], file, t.line, known=not t.interpolated))
    return found
