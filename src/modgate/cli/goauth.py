"""``modgate goauth``: a GOAUTH command that hands the go command a token for modgate.

The go command runs a GOAUTH command before its first HTTPS request, with
no argument, and prints nothing of what it does; on a 4xx answer it runs it
again with the request URL as an argument and the response on stdin. Each
time this command finds a token, the first source that has one winning:

1. ``MODGATE_TOKEN``: a modgate token (or any bearer token) in the environment;
2. ``--token-file`` or ``MODGATE_TOKEN_FILE``: a file holding one, such as a
   Kubernetes projected service-account token (read again every time, since
   the kubelet rotates it);
3. ``MODGATE_ID_TOKEN``: a GitLab CI ID token (``id_tokens:`` in .gitlab-ci.yml);
4. GitHub Actions: ``ACTIONS_ID_TOKEN_REQUEST_URL`` and
   ``ACTIONS_ID_TOKEN_REQUEST_TOKEN`` (``permissions: id-token: write``), asked
   for a token with ``--audience``;
5. ``/var/run/secrets/modgate/token``: where the README's pod example mounts
   a projected token for modgate's audience. The pod's default service-account
   token is never used: its audience is the API server, and a service that
   accepted it could replay it there.

It prints the URL prefix, a blank line, ``Authorization: Bearer <token>`` and
a blank line (the format of ``go help goauth``), and never writes a token to
stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import click
import httpx

from modgate.protocol.goproxy import parse_goproxy

DEFAULT_POD_TOKEN = Path("/var/run/secrets/modgate/token")
MAX_TOKEN = 16 * 1024
GITHUB_TIMEOUT = 10.0


class NoToken(Exception):
    pass


def _modgate_url(given: str | None) -> str:
    if given:
        url = given
    elif os.environ.get("MODGATE_URL"):
        url = os.environ["MODGATE_URL"]
    else:
        url = ""
        try:
            proxies = parse_goproxy(os.environ.get("GOPROXY", ""))
        except ValueError:
            proxies = None
        for entry in proxies.entries if proxies is not None else ():
            if entry.url is not None and entry.url.startswith("https://"):
                url = entry.url
                break
        if not url:
            raise click.UsageError(
                "no modgate URL: give --url https://HOST:PORT (or set MODGATE_URL, or an "
                "https:// entry in GOPROXY)"
            )
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise click.UsageError(
            f"--url {url!r}: the go command sends credentials only to https:// URLs"
        )
    return url.rstrip("/")


def _read_file(path: Path) -> str:
    try:
        data = path.read_bytes()[:MAX_TOKEN]
    except OSError as exc:
        raise NoToken(f"cannot read token file {path}: {exc.strerror}") from None
    token = data.decode("ascii", "replace").strip()
    if not token:
        raise NoToken(f"token file {path} is empty")
    return token


def _github(audience: str) -> str:
    request_url = os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"]
    bearer = os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    sep = "&" if "?" in request_url else "?"
    url = request_url + sep + urlencode({"audience": audience})
    try:
        response = httpx.get(
            url, headers={"Authorization": f"bearer {bearer}"}, timeout=GITHUB_TIMEOUT
        )
    except httpx.HTTPError as exc:
        raise NoToken(f"GitHub Actions ID token request failed: {type(exc).__name__}") from None
    if response.status_code != httpx.codes.OK:
        raise NoToken(
            f"GitHub Actions ID token request answered {response.status_code}; does the job "
            "have 'permissions: id-token: write'?"
        )
    try:
        value = response.json()["value"]
    except (ValueError, KeyError, TypeError):
        raise NoToken("GitHub Actions ID token answer holds no 'value'") from None
    if not isinstance(value, str) or not value:
        raise NoToken("GitHub Actions ID token answer holds no token")
    return value


def find_token(token_file: Path | None, audience: str) -> tuple[str, str]:
    """(token, where it came from); NoToken naming everything tried."""
    env = os.environ
    if env.get("MODGATE_TOKEN", "").strip():
        return env["MODGATE_TOKEN"].strip(), "MODGATE_TOKEN"
    path = token_file or (
        Path(env["MODGATE_TOKEN_FILE"]) if env.get("MODGATE_TOKEN_FILE") else None
    )
    if path is not None:
        return _read_file(path), str(path)
    if env.get("MODGATE_ID_TOKEN", "").strip():
        return env["MODGATE_ID_TOKEN"].strip(), "MODGATE_ID_TOKEN"
    if env.get("ACTIONS_ID_TOKEN_REQUEST_URL") and env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
        return _github(audience), "GitHub Actions"
    if DEFAULT_POD_TOKEN.is_file():
        return _read_file(DEFAULT_POD_TOKEN), str(DEFAULT_POD_TOKEN)
    raise NoToken(
        "no token found: set MODGATE_TOKEN, MODGATE_TOKEN_FILE or MODGATE_ID_TOKEN (GitLab "
        "id_tokens), run in GitHub Actions with 'permissions: id-token: write', or mount a "
        f"projected service-account token at {DEFAULT_POD_TOKEN}"
    )


@click.command("goauth")
@click.option(
    "--url",
    metavar="URL",
    help="modgate's https URL [MODGATE_URL, else the first https entry of GOPROXY].",
)
@click.option(
    "--token-file",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the token from FILE (a Kubernetes projected token) [MODGATE_TOKEN_FILE].",
)
@click.option(
    "--audience",
    metavar="AUD",
    help="Audience asked for a GitHub Actions ID token [modgate's URL].",
)
@click.argument("request_url", required=False)
def goauth_command(
    url: str | None, token_file: Path | None, audience: str | None, request_url: str | None
) -> None:
    """A GOAUTH command: print credentials for modgate in the go command's format.

    \b
    Use it as:
      export GOAUTH='modgate goauth --url https://modgate.corp.example.com:8443'
    The go command runs it before its first request and again, with the
    request URL as REQUEST_URL and the response on stdin, after a 4xx.

    \b
    On a laptop a .netrc line does the same without a command; its machine
    must carry the port, as the go command matches host and port:
      machine modgate.corp.example.com:8443 login token password <token>
    """
    base = _modgate_url(url)
    if request_url is not None:
        # the retry after a 4xx: the response is on stdin; read it so the go command
        # never blocks writing it, and look for a fresh token (it may have rotated)
        sys.stdin.read(1 << 16)
    try:
        token, _source = find_token(token_file, audience or base)
    except NoToken as exc:
        click.echo(f"modgate goauth: {exc}", err=True)
        sys.exit(1)
    if any(c in token for c in "\r\n") or not token.isprintable():
        click.echo("modgate goauth: the token holds control characters; refusing it", err=True)
        sys.exit(1)
    sys.stdout.write(f"{base}/\n\nAuthorization: Bearer {token}\n\n")
