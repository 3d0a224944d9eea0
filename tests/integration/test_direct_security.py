"""The direct source under hostile input and failing remotes.

Module paths, queries and repository URLs never reach git as options or
transports; a remote that hangs is stopped after the timeout; a remote that
wants credentials gives a not-found answer that says authentication failed
and never shows the credential.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers.gitfixtures import build_root, write_gitconfig
from helpers.servers import start_modgate
from modgate.protocol.errors import InvalidRequestError, NotFoundError
from modgate.sources.direct import DirectSource
from modgate.sources.git_cmd import (
    GitAuthError,
    GitError,
    GitRemoteNotFoundError,
    GitRunner,
    GitTransportError,
    scrub,
    summarize,
)
from modgate.sources.git_mirror import Mirror

PASSWORD = "s3cretPassw0rd-do-not-show"
HANG_TIMEOUT = 1.5
LOOPBACK = "127.0.0.1"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    base["GIT_CONFIG_GLOBAL"] = os.devnull
    return base | (extra or {})


# --------------------------------------------------------------------------- hostile input


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("direct-security")
    build_root(root / "repos")
    write_gitconfig(root / "gitconfig", root / "repos")
    return root


HOSTILE_PATHS = [
    "-oProxyCommand=touch MARKER",
    "--upload-pack=touch MARKER",
    "ext::sh -c touch% MARKER",
    "github.com/fixture/-oProxyCommand=touch MARKER",
    "github.com/--upload-pack=touch MARKER/x",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_module_paths_never_reach_git(repos: Path, tmp_path: Path, path: str) -> None:
    marker = tmp_path / "pwned"
    path = path.replace("MARKER", str(marker))
    source = DirectSource(
        tmp_path / "mirrors", environ=_env({"GIT_CONFIG_GLOBAL": str(repos / "gitconfig")})
    )

    async def run() -> None:
        try:
            with pytest.raises((InvalidRequestError, NotFoundError)):
                await source.info(path, "v1.0.0")
            with pytest.raises((InvalidRequestError, NotFoundError)):
                await source.list(path)
        finally:
            await source.aclose()

    asyncio.run(run())
    assert not marker.exists(), f"a hostile module path {path!r} ran a command"


HOSTILE_QUERIES = [
    "--output=MARKER",
    "-oProxyCommand=touch MARKER",
    "HEAD --output=MARKER",
    "v1\n--output=MARKER",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_queries_never_become_git_options(repos: Path, tmp_path: Path, query: str) -> None:
    marker = tmp_path / "written"
    query = query.replace("MARKER", str(marker))
    source = DirectSource(
        tmp_path / "mirrors", environ=_env({"GIT_CONFIG_GLOBAL": str(repos / "gitconfig")})
    )

    async def run() -> None:
        try:
            with pytest.raises(NotFoundError, match="unknown revision"):
                await source.info("github.com/fixture/root", query)
        finally:
            await source.aclose()

    asyncio.run(run())
    assert not marker.exists(), f"query {query!r} reached git as an option"


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ext::sh -c touch% MARKER", GitTransportError),
        ("fd::17", GitTransportError),
        ("-oProxyCommand=touch MARKER", GitTransportError),
        ("--upload-pack=touch MARKER", GitTransportError),
        ("ssh://-oProxyCommand=touch%20MARKER/x", GitTransportError),
    ],
)
def test_git_refuses_dangerous_urls(tmp_path: Path, url: str, error: type[GitError]) -> None:
    marker = tmp_path / "pwned"
    mirror = Mirror(tmp_path / "mirrors", url.replace("MARKER", str(marker)), GitRunner(_env()))
    with pytest.raises(error):
        mirror.fetch(time.time())
    assert not marker.exists(), f"git ran a command for URL {url!r}"


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        (
            b"fatal: could not read Username for 'https://h': terminal prompts disabled\n",
            GitAuthError,
        ),
        (b"fatal: Authentication failed for 'https://h/r.git/'\n", GitAuthError),
        (
            b"git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.",
            GitAuthError,
        ),
        (
            b"remote: Repository not found.\nfatal: repository 'https://h/r/' not found\n",
            GitRemoteNotFoundError,
        ),
        (b"fatal: '/x/y' does not appear to be a git repository\n", GitRemoteNotFoundError),
        (b"fatal: transport 'ext' not allowed\n", GitTransportError),
        (b"fatal: unable to access 'https://h/': Could not resolve host: h\n", GitError),
    ],
)
def test_git_failures_are_classified(stderr: bytes, kind: type[GitError]) -> None:
    err = GitRunner(_env()).classify("fetch", stderr, remote=True)
    assert type(err) is kind, f"{stderr!r} classified as {type(err).__name__}, want {kind.__name__}"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (
            "fatal: unable to access 'https://bob:hunter2@h/r.git/'",
            "fatal: unable to access 'https://xxxxx@h/r.git/'",
        ),
        ("ssh://tok@h/r and http://a:b@c/", "ssh://xxxxx@h/r and http://xxxxx@c/"),
        (f"password {PASSWORD} echoed", "password xxxxx echoed"),
    ],
)
def test_credentials_are_scrubbed(text: str, want: str) -> None:
    assert scrub(text, (PASSWORD,)) == want


def test_summary_is_one_line() -> None:
    text = summarize("hint: x\nfatal: one\nerror: two\n\nremote: three\n")
    assert text == "one; two; three"


# --------------------------------------------------------------------------- failing remotes


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A TCP server that accepts connections and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((LOOPBACK, 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in accepted:
        conn.close()
    server.close()


def test_hung_remote_times_out(tmp_path: Path, hung_port: int) -> None:
    rewrites = {"github.com/fixture/hang": f"http://{LOOPBACK}:{hung_port}/hang.git"}
    source = DirectSource(
        tmp_path / "mirrors", rewrites=rewrites, timeout=HANG_TIMEOUT, environ=_env()
    )

    async def run() -> None:
        try:
            await source.list("github.com/fixture/hang")
        finally:
            await source.aclose()

    started = time.monotonic()
    with pytest.raises(NotFoundError, match="timed out") as caught:
        asyncio.run(run())
    elapsed = time.monotonic() - started
    assert elapsed < HANG_TIMEOUT + 10, f"the hung fetch took {elapsed:.1f} s"
    assert caught.value.status in (404, 410)


class _AuthHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"authentication required\n"
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="modgate-test"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def auth_server() -> Iterator[str]:
    server = ThreadingHTTPServer((LOOPBACK, 0), _AuthHandler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize("with_password", [True, False])
def test_auth_failure_says_so_without_credentials(
    tmp_path: Path, auth_server: str, with_password: bool
) -> None:
    host = auth_server.removeprefix("http://")
    url = (
        f"http://robot:{PASSWORD}@{host}/secret.git"
        if with_password
        else f"{auth_server}/secret.git"
    )
    source = DirectSource(
        tmp_path / "mirrors", rewrites={"corp.example.com/secret": url}, environ=_env()
    )

    async def run() -> None:
        try:
            await source.info("corp.example.com/secret", "v1.0.0")
        finally:
            await source.aclose()

    with pytest.raises(NotFoundError) as caught:
        asyncio.run(run())
    text = str(caught.value)
    assert caught.value.status in (404, 410)
    assert "authentication failed" in text, f"the error does not say what failed: {text}"
    assert PASSWORD not in text, f"the error shows the password: {text}"
    assert "robot:" not in text, f"the error shows the credentials: {text}"


def test_served_auth_failure_is_404_without_credentials(tmp_path: Path, auth_server: str) -> None:
    host = auth_server.removeprefix("http://")
    rewrite = f"corp.example.com/secret=http://robot:{PASSWORD}@{host}/secret.git"
    server = start_modgate(tmp_path, "--upstream", "direct", "--git-rewrite", rewrite, env=_env())
    try:
        answers = [
            server.get(p)
            for p in ("/corp.example.com/secret/@v/v1.0.0.info", "/corp.example.com/secret/@v/list")
        ]
    finally:
        server.stop()
    for answer in answers:
        body = answer.body.decode(errors="replace")
        assert answer.status in (404, 410), f"auth failure answered {answer}"
        assert "authentication failed" in body, f"the body does not say what failed: {body}"
        assert PASSWORD not in body, f"the body shows the password: {body}"
    assert PASSWORD not in server.stderr_text(), "the server log shows the password"
