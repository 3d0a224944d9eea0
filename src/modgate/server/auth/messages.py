"""The bodies of 401, 403, 429 and 503 answers: what the go command shows the user.

On a 4xx the go command prints ``server response:`` and the first 8 lines
(648 bytes) of a text/plain body: the only hint a developer or a CI log
gets. So each body says what was refused, why, and the exact next step. The
``.netrc`` line names ``host:port`` because the go command matches a
``machine`` against the host and the port. No body ever contains a
credential: a token is named by its name, a JWT by its issuer.
"""

from __future__ import annotations

import re

from modgate.server.responses import CC_NO_STORE, CT_TEXT, Reply, render_fields

REALM = b'realm="modgate"'
CHALLENGES = (
    (b"WWW-Authenticate", b"Basic " + REALM + b', charset="UTF-8"'),
    (b"WWW-Authenticate", b"Bearer " + REALM),
)
INVALID_TOKEN = ((b"WWW-Authenticate", b"Bearer " + REALM + b', error="invalid_token"'),)
_HOST = re.compile(rb"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
DEFAULT_PORTS = {True: b"443", False: b"80"}


def netrc_machine(host: bytes | None, tls: bool) -> str:
    """What goes after ``machine`` in .netrc for this server, from the Host header.

    The go command matches host and port; a default port is not written.
    A Host header that is not a plain host[:port] is not echoed.
    """
    if host is None or not _HOST.fullmatch(host):
        return "HOST:PORT"
    if host.startswith(b"["):
        end = host.index(b"]")
        name, port = host[: end + 1], host[end + 2 :]
    else:
        name, _, port = host.partition(b":")
    if port == DEFAULT_PORTS[tls]:
        return name.decode("ascii")
    return host.decode("ascii")


def server_url(host: bytes | None, tls: bool) -> str:
    machine = netrc_machine(host, tls)
    return ("https://" if tls else "http://") + machine


def _reply(
    status: int, lines: list[str], route: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> Reply:
    body = ("\n".join(line.replace("\r", " ").replace("\n", " ") for line in lines) + "\n").encode(
        "utf-8", "replace"
    )
    head = render_fields(CT_TEXT, len(body), CC_NO_STORE, extra=extra)
    return Reply(status, head, body, size=len(body), route=route)


def _how_to(host: bytes | None, tls: bool) -> list[str]:
    machine = netrc_machine(host, tls)
    lines = [
        f"laptop: add to ~/.netrc: machine {machine} login token password <token> "
        "(the machine must include the port)",
        f"CI and pods: GOAUTH='modgate goauth --url {server_url(host, tls)}' "
        "(GitHub Actions, GitLab CI, Kubernetes)",
    ]
    if not tls:
        lines.append("the go command sends credentials only over https: use modgate's https:// URL")
    return lines


def challenge(
    *, subject: str, private: bool, host: bytes | None, tls: bool, contact: str, route: str
) -> Reply:
    what = "this module is private" if private else "anonymous reads are off here"
    lines = [f"{subject}: authentication required ({what}); no credentials were sent"]
    lines += _how_to(host, tls)
    lines.append(f"tokens: ask {contact}")
    return _reply(401, lines, route, CHALLENGES)


def refused(
    *, subject: str, problem: str, host: bytes | None, tls: bool, contact: str, route: str
) -> Reply:
    lines = [f"{subject}: credentials refused: {problem}"]
    lines += _how_to(host, tls)
    lines.append(f"new token or access: ask {contact}")
    return _reply(401, lines, route, INVALID_TOKEN + CHALLENGES)


def forbidden(
    *, subject: str, module: str, who: str, pattern_note: str, contact: str, route: str
) -> Reply:
    lines = [
        f"{subject}: {who} may not read this module ({pattern_note})",
        f"ask {contact} for a grant that covers {module} "
        f"(check with: modgate auth check --config FILE {who} {module})",
    ]
    return _reply(403, lines, route)


def rate_limited(wait: float, route: str) -> Reply:
    lines = [
        "too many failed authentications from this address; "
        f"retry in {max(1, int(wait + 0.999))} s with valid credentials"
    ]
    return _reply(429, lines, route, ((b"Retry-After", b"%d" % max(1, int(wait + 0.999))),))


def unavailable(problem: str, route: str) -> Reply:
    lines = [f"cannot verify the credentials now: {problem}; retry later"]
    return _reply(503, lines, route, ((b"Retry-After", b"30"),))
