"""``modgate goauth``: where it finds a token, and the GOAUTH output format."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from modgate.cli import cli

URL = "https://modgate.corp.example.com:8443"
SOURCES = (
    "MODGATE_TOKEN",
    "MODGATE_TOKEN_FILE",
    "MODGATE_ID_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "MODGATE_URL",
    "GOPROXY",
)


def goauth(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    clean: dict[str, str | None] = dict.fromkeys(SOURCES)
    clean.update(env)
    result = CliRunner().invoke(cli, ["goauth", *args], env=clean, input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_a_token_from_the_environment_in_goauth_format() -> None:
    code, out, err = goauth({"MODGATE_TOKEN": "mgt_secret"}, "--url", URL)
    assert code == 0, err
    assert out == f"{URL}/\n\nAuthorization: Bearer mgt_secret\n\n"
    assert "mgt_secret" not in err


def test_a_projected_token_file_is_read_on_every_run(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("header.payload.one\n")
    env = {"MODGATE_TOKEN_FILE": str(token)}
    assert "Bearer header.payload.one\n" in goauth(env, "--url", URL)[1]
    token.write_text("header.payload.two")
    # the go command's retry after a 4xx: the request URL and the response on stdin
    code, out, _ = goauth(env, "--url", URL, f"{URL}/x/@v/list", stdin="HTTP/1.1 401 x\n\n")
    assert code == 0 and "Bearer header.payload.two\n" in out


def test_a_gitlab_id_token_variable() -> None:
    code, out, _ = goauth({"MODGATE_ID_TOKEN": "gl.jwt.token"}, "--url", URL)
    assert code == 0 and "Authorization: Bearer gl.jwt.token" in out


class _GitHub:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                outer.asked.append((query["audience"][0], self.headers["Authorization"]))
                body = json.dumps({"value": "gh.id.token"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token?api-version=2.0"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def github() -> Iterator[_GitHub]:
    server = _GitHub()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_github_actions_id_token_for_modgates_audience(github: _GitHub) -> None:
    env = {"ACTIONS_ID_TOKEN_REQUEST_URL": github.url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "rt"}
    code, out, err = goauth(env, "--url", URL)
    assert code == 0, err
    assert "Authorization: Bearer gh.id.token" in out
    assert github.asked == [(URL, "bearer rt")]
    goauth(env, "--url", URL, "--audience", "modgate")
    assert github.asked[-1][0] == "modgate"


def test_the_url_comes_from_modgate_url_or_goproxy() -> None:
    code, out, _ = goauth({"MODGATE_TOKEN": "t", "GOPROXY": f"{URL}/,direct"})
    assert code == 0 and out.startswith(f"{URL}/\n"), out
    code, out, _ = goauth({"MODGATE_TOKEN": "t", "MODGATE_URL": URL})
    assert code == 0 and out.startswith(f"{URL}/\n"), out


def test_plain_http_and_a_missing_url_are_usage_errors() -> None:
    code, _, err = goauth({"MODGATE_TOKEN": "t"}, "--url", "http://modgate:8080")
    assert code == 2 and "only to https://" in err
    code, _, err = goauth({"MODGATE_TOKEN": "t", "GOPROXY": "direct"})
    assert code == 2 and "--url" in err


def test_no_token_says_what_was_tried() -> None:
    code, out, err = goauth({}, "--url", URL)
    assert code == 1 and out == ""
    for source in ("MODGATE_TOKEN", "MODGATE_ID_TOKEN", "id-token: write"):
        assert source in err, err


def test_a_token_with_a_newline_inside_is_refused(tmp_path: Path) -> None:
    code, out, err = goauth({"MODGATE_TOKEN": "abc\nX-Injected: 1"}, "--url", URL)
    assert code == 1 and out == "" and "control characters" in err
