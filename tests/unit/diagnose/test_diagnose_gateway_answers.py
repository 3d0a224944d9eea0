"""Every error answer modgate can send is explained with modgate's own cause.

The inventory is read from modgate's source, not written by hand: every
error a client can receive (a ``ModgateError`` subclass raised with its
reason, ``error_reply``/``StopParsing`` messages of the HTTP server, and the
authentication bodies of ``server/auth/messages.py``) is turned into the
lines the go command prints for such an answer (``reading URL: STATUS``
and ``server response:`` with the body, as cmd/go/internal/web does for a
text/plain answer) and diagnosed. A new message that diagnose does not
recognize as modgate's fails here, with its file and line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from modgate.diagnose import diagnose_lines
from modgate.server.auth import messages

SRC = Path(__file__).resolve().parents[3] / "src" / "modgate"
SCANNED = ("service", "sources", "store", "server", "formats", "protocol/request.py")
STATUS = {
    "NotFoundError": 404, "GoneError": 410, "InvalidModuleError": 404,
    "ChecksumMismatchError": 404, "RetaggedError": 404, "NotInDatabaseError": 404,
    "UpstreamError": 502, "DatabaseMisbehaviorError": 502, "UpstreamTimeoutError": 504,
    "StoreError": 500, "KeyMismatchError": 500, "InvalidRequestError": 400,
    "InvalidPathError": 400, "InvalidVersionError": 400, "ModgateError": 500,
}  # fmt: skip
STATUS_TEXT = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 410: "Gone", 414: "URI Too Long",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}  # fmt: skip
MIN_LITERAL = 12
"""Reasons with less fixed text than this are composed elsewhere (listed in COMPOSED)."""
FILLER = "x1"
MODULE = "example.com/foo@v1.0.0"
URL = "https://gw.corp.example/example.com/foo/@v/v1.0.0.zip"


@dataclass(frozen=True)
class Message:
    where: str
    status: int
    text: str


MAX_VARIANTS = 16
Texts = list[str]


def _texts(node: ast.expr | None, names: dict[str, list[ast.expr]], depth: int = 0) -> Texts:
    """The texts a message expression can have, placeholders filled (none if it has no text).

    Names are resolved to every string assigned to them in the same function or
    module (a message built as ``reason = ...`` in one of several branches).
    """
    if node is None or depth > 4:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        variants = [""]
        for part in node.values:
            if isinstance(part, ast.Constant):
                options = [str(part.value)]
            else:
                assert isinstance(part, ast.FormattedValue)
                options = _texts(part.value, names, depth + 1) or [FILLER]
            variants = [v + o for v in variants for o in options][:MAX_VARIANTS]
        return variants
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = _texts(node.left, names, depth + 1) or [FILLER]
        right = _texts(node.right, names, depth + 1) or [FILLER]
        return [a + b for a in left for b in right][:MAX_VARIANTS]
    if isinstance(node, ast.IfExp):
        return (_texts(node.body, names, depth + 1) + _texts(node.orelse, names, depth + 1))[
            :MAX_VARIANTS
        ]
    if isinstance(node, ast.Name) and node.id in names:
        found: Texts = []
        for value in names[node.id]:
            found += _texts(value, names, depth + 1)
        return found[:MAX_VARIANTS]
    return []


def _assignments(scope: ast.AST) -> dict[str, list[ast.expr]]:
    found: dict[str, list[ast.expr]] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                found.setdefault(target.id, []).append(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                for name, value in zip(target.elts, node.value.elts, strict=False):
                    if isinstance(name, ast.Name):
                        found.setdefault(name.id, []).append(value)
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
            # ("tls", f"TLS handshake ... failed: {detail}", False): a reason returned in a tuple
            for value in node.value.elts:
                found.setdefault("_returned", []).append(value)
    return found


def _status_of(call: ast.Call, name: str) -> int | None:
    if name in STATUS:
        return STATUS[name]
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Constant) and isinstance(first.value, int) and first.value >= 400:
        return first.value
    return None


def _calls(tree: ast.Module) -> list[tuple[ast.Call, dict[str, list[ast.expr]]]]:
    """Every call with the names visible to it (its function's assignments, then the module's)."""
    module_names = _assignments(
        ast.Module(body=[n for n in tree.body if isinstance(n, ast.Assign)], type_ignores=[])
    )
    found = []
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    seen: set[int] = set()
    for function in functions:
        names = {**module_names, **_assignments(function)}
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and id(node) not in seen:
                seen.add(id(node))
                found.append((node, names))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and id(node) not in seen:
            found.append((node, module_names))
    return found


def _inventory() -> tuple[list[Message], list[str]]:
    messages_found: list[Message] = []
    composed: list[str] = []
    paths = [path for part in SCANNED for path in sorted((SRC / part).rglob("*.py"))]
    paths += [SRC / part for part in SCANNED if part.endswith(".py")]
    for path in paths:
        tree = ast.parse(path.read_text())
        for node, names in _calls(tree):
            if len(node.args) < 2:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in STATUS and name not in {"error_reply", "StopParsing", "_stop"}:
                continue
            status = _status_of(node, name)
            if status is None:
                continue
            where = f"{path.relative_to(SRC.parent)}:{node.lineno}"
            texts = [
                text for text in _texts(node.args[1], names)
                if len(text.replace(FILLER, "").strip(" ;:")) >= MIN_LITERAL
            ]  # fmt: skip
            if not texts:
                composed.append(
                    f"{path.relative_to(SRC)}: {name}(..., {ast.unparse(node.args[1])})"
                )
            for index, text in enumerate(dict.fromkeys(texts)):
                messages_found.append(Message(f"{where}#{index}", status, text))
    return messages_found, composed


def _auth_bodies() -> list[Message]:
    host, contact = b"gw.corp.example:8443", "platform-team@corp.example"
    replies = [
        messages.challenge(subject=MODULE, private=True, host=host, tls=True, contact=contact,
                           route="zip"),
        messages.challenge(subject=MODULE, private=False, host=host, tls=False, contact=contact,
                           route="zip"),
        messages.refused(subject=MODULE, problem="token 'ci' expired", host=host, tls=True,
                         contact=contact, route="zip"),
        messages.forbidden(subject=MODULE, module="example.com/foo", who="token ci",
                           pattern_note="no grant matches", contact=contact, route="zip"),
        messages.rate_limited(3.0, "zip"),
        messages.unavailable("the identity provider did not answer", "zip"),
    ]  # fmt: skip
    return [
        Message(f"server/auth/messages.py ({reply.status})", reply.status, reply.body.decode())
        for reply in replies
    ]


MESSAGES, COMPOSED = _inventory()
ALL = MESSAGES + _auth_bodies()


def _go_lines(message: Message) -> list[str]:
    """What the go command prints for this answer (first lines of a text/plain body)."""
    body = [line for line in message.text.splitlines() if line.strip()][:8]
    subject_line = (
        body[0]
        if body[0].startswith(("example.com", "sum.golang.org"))
        else (f"{MODULE}: {body[0]}")
    )
    lines = [f"go: {MODULE}: reading {URL}: {message.status} {STATUS_TEXT[message.status]}"]
    lines.append(f"\tserver response: {subject_line}")
    lines += [f"\t{line}" for line in body[1:]]
    return lines


FORWARDED = {
    # These pass on another component's words (git, the go-get resolver, an upstream
    # proxy's answer, a parse error): diagnose judges them by those words, as it
    # judges any proxy's answer (an upstream's "unknown revision" is unknown-revision).
    "service/projectcheck.py: NotFoundError(..., f'{self.source.name} has no {mv}')",
    "service/sumdb.py: NotFoundError(..., self._private_help(request.name, request.mv))",
    "service/sumdbproxy.py: NotFoundError(..., reason)",
    "service/sumdbproxy.py: GoneError(..., reason)",
    "sources/direct.py: NotFoundError(..., str(exc))",
    "sources/direct.py: NotFoundError(..., _without_subject(str(exc), subject))",
    "sources/direct.py: NotFoundError(..., exc.reason)",
    "sources/fileproxy.py: NotFoundError(..., f'{self._url(path)} not found')",
    "sources/fileproxy.py: NotFoundError(..., f'{self._url(src)} not found')",
    "sources/upstream.py: NotFoundError(..., reason)",
    "sources/upstream.py: GoneError(..., reason)",
    "sources/upstream.py: UpstreamError(..., reason)",
    "store/filesystem.py: StoreError(..., str(exc))",
    "protocol/request.py: NotFoundError(..., err.reason)",
}
"""Error sites whose text is composed elsewhere; a new one must be reviewed and listed."""


def test_the_inventory_finds_modgate_messages() -> None:
    assert len(MESSAGES) >= 100, f"only {len(MESSAGES)} messages found in {SCANNED}"
    assert len(ALL) - len(MESSAGES) == 6
    unlisted = sorted(set(COMPOSED) - FORWARDED)
    assert not unlisted, f"error sites whose text the inventory cannot read: {unlisted}"


@pytest.mark.parametrize("message", ALL, ids=lambda message: message.where)
def test_every_modgate_answer_gets_a_modgate_cause(message: Message) -> None:
    findings = diagnose_lines(_go_lines(message))
    got = [str(finding.cause) for finding in findings]
    assert got and got[0].startswith("modgate-"), (
        f"{message.where}: {message.text!r} gave {got}, want a modgate-* cause"
    )


OTHER_PROXIES = [
    # proxy.golang.org, Athens, goproxy, Artifactory, Nexus and a corporate proxy's bodies.
    (404, "not found: example.com/foo@v1.0.0: invalid version: unknown revision v1.0.0"),
    (410, "not found: example.com/foo@v1.0.0: invalid version: git ls-remote -q origin in "
          "/tmp/gopath/pkg/mod/cache/vcs/x: exit status 128:"),
    (404, "module not found"),
    (500, "internal server error"),
    (401, '{"errors":[{"status":401,"message":"Bad credentials"}]}'),
    (404, "Not Found"),
    (403, "Access denied by policy: request path blocked"),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body"), OTHER_PROXIES)
def test_other_proxies_answers_are_not_taken_for_modgates(status: int, body: str) -> None:
    findings = diagnose_lines(_go_lines(Message("other proxy", status, body)))
    got = [str(finding.cause) for finding in findings]
    assert got and not got[0].startswith("modgate-"), f"{body!r} gave {got}"
