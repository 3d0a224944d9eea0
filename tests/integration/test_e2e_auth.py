"""Authentication with the real go command over HTTPS: netrc, GOAUTH, OIDC, grants, refusals.

One modgate serves HTTPS (a test CA, trusted by the go command through
SSL_CERT_FILE) with a tokens file and an [auth] section that trusts a test
OIDC issuer on loopback (a Kubernetes-style service-account token). The
public sample modules come from a static upstream; ``corp.example.com/secret``
is private and comes from a local git repository. Every failure case checks
the exact lines the go command prints, since they are all a user sees.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers.gitfixtures import RepoBuilder, gomod
from helpers.goenv import describe, go_env, run_go
from helpers.modules import SampleProject
from helpers.oidc import AUDIENCE, TestIssuer
from helpers.servers import ModgateHandle, run_modgate, start_modgate, wait_for
from helpers.staticproxy import StaticProxy
from helpers.tlscerts import TestCA

pytestmark = pytest.mark.go

SECRET = "corp.example.com/secret"
LOG_NAME = "sumdb.corp.test"
PUBLIC = "example.com/liba@v1.1.0"
CONTACT = "#go-platform on chat"


@dataclass
class World:
    root: Path
    ca: TestCA
    issuer: TestIssuer
    server: ModgateHandle
    tokens: Path
    audit: Path
    repo: Path
    verifier: str
    secrets: dict[str, str] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def machine(self) -> str:
        return self.url.removeprefix("https://")

    def env(self, tmp: Path, **extra: str) -> dict[str, str]:
        env = go_env(tmp, goproxy=self.url, extra={"SSL_CERT_FILE": str(self.ca.pem), **extra})
        return env

    def netrc(self, tmp: Path, secret: str, machine: str | None = None) -> dict[str, str]:
        netrc = tmp / "netrc"
        netrc.write_text(f"machine {machine or self.machine} login build password {secret}\n")
        netrc.chmod(0o600)
        return self.env(tmp, NETRC=str(netrc))

    def goauth(self, tmp: Path, **variables: str) -> dict[str, str]:
        command = f"{sys.executable} -m modgate goauth --url {self.url}"
        return self.env(tmp, GOAUTH=command, **variables)

    def get(self, path: str, authorization: str | None = None) -> tuple[int, bytes]:
        host, port = self.machine.rsplit(":", 1)
        conn = http.client.HTTPSConnection(
            host, int(port), context=self.ca.client_context(), timeout=30
        )
        try:
            headers = {"Authorization": authorization} if authorization else {}
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
            self.bodies.append(body)
            return answer.status, body
        finally:
            conn.close()


def _create_token(tokens: Path, name: str, *args: str) -> str:
    proc = run_modgate("token", "create", "--tokens", str(tokens), "--name", name, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sample: SampleProject) -> Iterator[World]:
    root = tmp_path_factory.mktemp("auth")
    ca = TestCA(root / "ca")
    pair = ca.issue("modgate")
    issuer = TestIssuer()
    upstream = StaticProxy(sample.proxy_root)
    repo = RepoBuilder(root / "git" / "secret")
    repo.write({"go.mod": gomod(SECRET), "secret.go": "package secret\n\nconst FromGit = true\n"})
    repo.commit("v1")
    repo.tag("v1.0.0")
    tokens = root / "tokens"
    secrets = {
        "all": _create_token(tokens, "all"),
        "other": _create_token(tokens, "other", "--read", "corp.example.com/other"),
        "revoked": _create_token(tokens, "gone"),
        "expired": _create_token(tokens, "short", "--expires", "1s"),
    }
    assert run_modgate("token", "revoke", "--tokens", str(tokens), "gone").returncode == 0
    audit = root / "audit.jsonl"
    key = root / "sumdb.key"
    keygen = run_modgate("sumdb", "keygen", "--name", LOG_NAME, "--out", str(key))
    assert keygen.returncode == 0, keygen.stderr
    config = root / "modgate.toml"
    config.write_text(
        f"""
[auth]
contact = "{CONTACT}"
audit-log = "{audit}"
failed-auth-limit = 1000

[[auth.issuers]]
name = "k8s"
issuer = "{issuer.url}"
audience = "{AUDIENCE}"

[[auth.grants]]
name = "build-pods"
issuer = "k8s"
claims = {{ "kubernetes.io/namespace" = "build" }}
read = ["corp.example.com/secret"]

[[auth.grants]]
name = "app-ci"
issuer = "k8s"
claims = {{ repository = "corp/app" }}
read = ["corp.example.com/secret"]
"""
    )
    server = start_modgate(
        root,
        "--tls-cert", str(pair.cert), "--tls-key", str(pair.key),
        "--tokens", str(tokens), "--config", str(config),
        "--upstream", upstream.url,
        "--private", "corp.example.com",
        "--git-rewrite", f"{SECRET}={repo.path.as_uri()}",
        "--sumdb-key", str(key),
        "--access-log", "off",
    )  # fmt: skip
    assert server.url.startswith("https://"), server.url
    world = World(
        root, ca, issuer, server, tokens, audit, repo.path, keygen.stdout.strip(), secrets
    )
    time.sleep(1.1)  # the 1s token has expired
    yield world
    server.stop()
    upstream.close()
    issuer.close()


def go_download(tmp: Path, env: dict[str, str], module: str, *, ok: bool):  # type: ignore[no-untyped-def]
    args = ["mod", "download", "-json", module] if ok else ["mod", "download", module]
    proc = run_go(args, tmp, env, check=False)
    if ok:
        assert proc.returncode == 0, f"{module} should download\n{describe(proc)}"
    else:
        assert proc.returncode != 0, f"{module} must be refused\n{describe(proc)}"
    return proc


def server_response(proc) -> str:  # type: ignore[no-untyped-def]
    """What the go command printed: its error, with the server's body after ``server response:``."""
    return proc.stderr


def test_netrc_basic_reads_private_and_public_modules(world: World, tmp_path: Path) -> None:
    env = world.netrc(tmp_path, world.secrets["all"])
    proc = go_download(tmp_path, env, f"{SECRET}@v1.0.0", ok=True)
    assert '"Version": "v1.0.0"' in proc.stdout
    go_download(tmp_path, env, PUBLIC, ok=True)


def test_a_netrc_machine_without_the_port_sends_nothing(world: World, tmp_path: Path) -> None:
    env = world.netrc(tmp_path, world.secrets["all"], machine="127.0.0.1")
    proc = go_download(tmp_path, env, f"{SECRET}@v1.0.0", ok=False)
    text = server_response(proc)
    expected = [
        f"reading {world.url}/corp.example.com/secret/@v/v1.0.0.info: 401 Unauthorized",
        "server response:",
        f"{SECRET}@v1.0.0: authentication required (this module is private); "
        "no credentials were sent",
        f"laptop: add to ~/.netrc: machine {world.machine} login token password <token> "
        "(the machine must include the port)",
        f"CI and pods: GOAUTH='modgate goauth --url {world.url}'",
        f"tokens: ask {CONTACT}",
    ]
    missing = [line for line in expected if line not in text]
    assert not missing, f"missing {missing}\n{describe(proc)}"


def test_goauth_command_with_a_bearer_token(world: World, tmp_path: Path) -> None:
    env = world.goauth(tmp_path, MODGATE_TOKEN=world.secrets["all"])
    go_download(tmp_path, env, f"{SECRET}@v1.0.0", ok=True)


def test_the_private_checksum_log_is_read_with_the_same_credentials(
    world: World, tmp_path: Path
) -> None:
    # the go command sends the GOAUTH credentials to the checksum database's URL too,
    # and modgate decides its lookup of a private module like the module itself
    env = world.goauth(tmp_path, MODGATE_TOKEN=world.secrets["all"])
    env["GOSUMDB"] = f"{world.verifier} {world.url}/sumdb/{LOG_NAME}"
    go_download(tmp_path, env, f"{SECRET}@v1.0.0", ok=True)
    go_download(tmp_path, env, PUBLIC, ok=True)
    status, body = world.get(
        f"/sumdb/{LOG_NAME}/lookup/{SECRET}@v1.0.0", f"Bearer {world.secrets['other']}"
    )
    assert status == 403 and b"may not read this module" in body, body
    assert (
        world.get(f"/sumdb/{LOG_NAME}/tile/8/data/000.p/1", f"Bearer {world.secrets['other']}")[0]
        == 403
    )
    assert world.get(f"/sumdb/{LOG_NAME}/latest", f"Bearer {world.secrets['other']}")[0] == 200


def test_modgate_goauth_with_a_kubernetes_service_account_token(
    world: World, tmp_path: Path
) -> None:
    token_file = tmp_path / "sa-token"
    token_file.write_text(world.issuer.token(namespace="build"))
    env = world.goauth(tmp_path, MODGATE_TOKEN_FILE=str(token_file))
    go_download(tmp_path, env, f"{SECRET}@v1.0.0", ok=True)
    go_download(tmp_path, env, PUBLIC, ok=True)
    # another namespace is authenticated (public modules) but not granted the private one
    token_file.write_text(world.issuer.token(namespace="web"))
    fresh = tmp_path / "web"
    fresh.mkdir()
    env = world.goauth(fresh, MODGATE_TOKEN_FILE=str(token_file))
    go_download(fresh, env, PUBLIC, ok=True)
    proc = go_download(fresh, env, f"{SECRET}@v1.0.0", ok=False)
    text = server_response(proc)
    assert ": 403 Forbidden" in text, describe(proc)
    line = (
        f"{SECRET}@v1.0.0: k8s:system:serviceaccount:web:builder may not read this module "
        "(private: pattern corp.example.com)"
    )
    assert line in text and f"ask {CONTACT} for a grant that covers {SECRET}" in text, text


class _ActionsTokenService:
    """GitHub Actions' ID token endpoint on loopback: a JWT for the audience asked for."""

    def __init__(self, issuer: TestIssuer, repository: str) -> None:
        service = self
        self.audiences: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != "bearer request-token":
                    self.send_error(403)
                    return
                audience = parse_qs(urlsplit(self.path).query)["audience"][0]
                service.audiences.append(audience)
                claims = {"repository": repository, "sub": f"repo:{repository}:ref:refs/heads/main"}
                # not a pod: no namespace grant may apply
                token = issuer.token(audience=audience, extra=claims, namespace="actions")
                body = json.dumps({"value": token})
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token?api-version=2.0"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(("repository", "ok"), [("corp/app", True), ("corp/other", False)])
def test_modgate_goauth_in_github_actions(
    world: World, tmp_path: Path, repository: str, ok: bool
) -> None:
    service = _ActionsTokenService(world.issuer, repository)
    try:
        command = f"{sys.executable} -m modgate goauth --url {world.url} --audience {AUDIENCE}"
        env = world.env(
            tmp_path,
            GOAUTH=command,
            ACTIONS_ID_TOKEN_REQUEST_URL=service.url,
            ACTIONS_ID_TOKEN_REQUEST_TOKEN="request-token",
        )
        proc = go_download(tmp_path, env, f"{SECRET}@v1.0.0", ok=ok)
        assert service.audiences and set(service.audiences) == {AUDIENCE}
        if not ok:
            line = (
                f"{SECRET}@v1.0.0: k8s:repo:corp/other:ref:refs/heads/main may not read "
                "this module (private: pattern corp.example.com)"
            )
            assert line in server_response(proc), describe(proc)
    finally:
        service.close()


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("revoked", "401 Unauthorized", "credentials refused: token gone was revoked"),
        ("expired", "401 Unauthorized", "credentials refused: token short expired at "),
        ("other", "403 Forbidden", "token:other may not read this module"),
        ("audience", "401 Unauthorized", "credentials refused: issuer k8s: the token's "
         f"audience is not accepted; request the token for audience '{AUDIENCE}'"),
        ("jwt-expired", "401 Unauthorized", "credentials refused: issuer k8s: the token has "
         "expired; get a new one"),
    ],
)  # fmt: skip
def test_refused_credentials_and_what_the_go_command_shows(
    world: World, tmp_path: Path, case: str, status: str, reason: str
) -> None:
    if case == "audience":
        secret = world.issuer.token(audience="kubernetes.default.svc")
    elif case == "jwt-expired":
        secret = world.issuer.token(lifetime=-600)
    else:
        secret = world.secrets[case]
    world.secrets[f"jwt-{case}"] = secret
    env = world.goauth(tmp_path, MODGATE_TOKEN=secret)
    proc = go_download(tmp_path, env, f"{SECRET}@v1.0.0", ok=False)
    text = server_response(proc)
    head = f"reading {world.url}/corp.example.com/secret/@v/v1.0.0.info: {status}"
    assert head in text and f"{SECRET}@v1.0.0: {reason}" in text, describe(proc)
    assert secret not in text


def test_a_denied_private_module_stops_the_chain(world: World, tmp_path: Path) -> None:
    # 403, not 404: the go command must not fall through to the next GOPROXY entry
    # (with ',direct' it would fetch from the VCS with the developer's own credentials)
    env = world.goauth(tmp_path, MODGATE_TOKEN=world.secrets["other"])
    env["GOPROXY"] = f"{world.url},off"
    proc = go_download(tmp_path, env, f"{SECRET}@v1.0.0", ok=False)
    text = server_response(proc)
    assert "403 Forbidden" in text and "disabled by GOPROXY=off" not in text, describe(proc)


def test_anonymous_reads_are_refused_unless_public_reads_are_allowed(
    world: World, tmp_path: Path
) -> None:
    env = world.env(tmp_path)
    proc = go_download(tmp_path, env, PUBLIC, ok=False)
    text = server_response(proc)
    assert (
        "example.com/liba@v1.1.0: authentication required (anonymous reads are off here)" in text
    ), describe(proc)
    anon_root = world.root / "anon"
    anon_root.mkdir(exist_ok=True)
    pair = world.ca.issue("anon", anon_root)
    open_server = start_modgate(
        anon_root,
        "--tls-cert", str(pair.cert), "--tls-key", str(pair.key),
        "--tokens", str(world.tokens), "--anonymous", "public",
        "--upstream", f"file://{world.server.store}",
        "--private", "corp.example.com",
        "--access-log", "off", "--audit-log", "off",
    )  # fmt: skip
    try:
        env = go_env(
            tmp_path / "anon",
            goproxy=open_server.url,
            extra={"SSL_CERT_FILE": str(world.ca.pem)},
        )
        go_download(tmp_path, env, PUBLIC, ok=True)
        proc = go_download(tmp_path, env, f"{SECRET}@v1.0.0", ok=False)
        assert "authentication required (this module is private)" in server_response(proc)
    finally:
        open_server.stop()


def test_nothing_modgate_writes_holds_a_secret(world: World, tmp_path: Path) -> None:
    jwt = world.issuer.token(namespace="build")
    bad_jwt = world.issuer.token(audience="elsewhere")
    world.secrets.update({"jwt": jwt, "bad-jwt": bad_jwt})
    for secret in world.secrets.values():
        for header in (f"Bearer {secret}", f"Bearer {secret}x"):
            world.get(f"/{SECRET}/@v/v1.0.0.info", header)
            world.get("/sumdb/sum.golang.org/lookup/corp.example.com/secret@v1.0.0", header)
    status, _ = world.get(f"/{SECRET}/@v/v1.0.0.info", f"Bearer {jwt}")
    assert status == 200
    status, metrics = world.get("/metrics")
    assert status == 200
    wait_for(lambda: world.audit.exists() and world.audit.stat().st_size > 0, 10, "the audit log")
    time.sleep(1.2)  # one audit flush interval
    written = {
        "stderr": world.server.stderr_text().encode(),
        "audit": world.audit.read_bytes(),
        "metrics": metrics,
        "bodies": b"\n".join(world.bodies),
        "tokens file": world.tokens.read_bytes(),
    }
    leaks = [
        f"{name} holds the {what} secret"
        for what, secret in world.secrets.items()
        for name, data in written.items()
        if secret.encode() in data or secret.split(".")[-1].encode() in data
    ]
    assert not leaks, leaks
    assert b'"decision":"deny"' in written["audit"] and b'"decision":"allow"' in written["audit"]
    assert b'modgate_auth_decisions_total{decision="allowed_private"}' in metrics


def _auth_config(path: Path, world: World, namespaces: list[str], extra: str = "") -> None:
    grants = "".join(
        f'\n[[auth.grants]]\nname = "ns-{ns}"\nissuer = "k8s"\n'
        f'claims = {{ "kubernetes.io/namespace" = "{ns}" }}\nread = "{SECRET}"\n'
        for ns in namespaces
    )
    path.write_text(
        f'[auth]\ncontact = "{CONTACT}"\n{extra}\n[[auth.issuers]]\nname = "k8s"\n'
        f'issuer = "{world.issuer.url}"\naudience = "{AUDIENCE}"\n{grants}'
    )


def test_sighup_reloads_grants_and_a_bad_file_keeps_the_old_ones(world: World) -> None:
    root = world.root / "reload"
    root.mkdir()
    pair = world.ca.issue("reload", root)
    config = root / "modgate.toml"
    _auth_config(config, world, ["build"])
    server = start_modgate(
        root,
        "--tls-cert", str(pair.cert), "--tls-key", str(pair.key),
        "--config", str(config),
        "--upstream", "off",
        "--private", "corp.example.com",
        "--git-rewrite", f"{SECRET}={world.repo.as_uri()}",
        "--access-log", "off", "--audit-log", "off",
    )  # fmt: skip
    try:
        probe = World(
            root, world.ca, world.issuer, server, world.tokens, world.audit, world.repo, ""
        )
        web = f"Bearer {world.issuer.token(namespace='web')}"
        path = f"/{SECRET}/@v/v1.0.0.info"
        assert probe.get(path, web)[0] == 403

        def reloaded(count: int) -> bool:
            lines = server.stderr_text().count('"what":"auth configuration"')
            return lines >= count

        _auth_config(config, world, ["build", "web"])
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: reloaded(1), 10, "the reload log line")
        assert probe.get(path, web)[0] == 200, "the new grant must apply after SIGHUP"
        config.write_text("[auth]\nanonymous = 'sometimes'\n")
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: reloaded(2), 10, "the refused reload log line")
        assert "reload of the auth configuration refused" in server.stderr_text()
        assert "use public or none" in server.stderr_text()
        assert probe.get(path, web)[0] == 200, "a refused reload keeps the previous grants"
    finally:
        server.stop()


def test_a_revoked_token_is_refused_within_seconds_without_a_signal(world: World) -> None:
    secret = _create_token(world.tokens, "soon-gone")
    path = f"/{SECRET}/@v/v1.0.0.info"
    wait_for(lambda: world.get(path, f"Bearer {secret}")[0] == 200, 10, "the new token to work")
    assert (
        run_modgate("token", "revoke", "--tokens", str(world.tokens), "soon-gone").returncode == 0
    )
    wait_for(lambda: world.get(path, f"Bearer {secret}")[0] == 401, 10, "the revocation")
    world.secrets["soon-gone"] = secret


def test_private_patterns_beyond_loopback_without_auth_are_warned_about(
    tmp_path: Path,
) -> None:
    server = start_modgate(
        tmp_path, "--listen", "0.0.0.0:0", "--private", "corp.example.com", "--upstream", "off"
    )
    try:
        text = server.stderr_text()
        assert '"warning":"private_without_auth"' in text, text
        assert "turn it on with --tokens FILE or an [auth] section" in text
    finally:
        server.stop()


def test_a_missing_or_writable_tokens_file_stops_modgate_at_start(tmp_path: Path) -> None:
    missing = run_modgate(
        "serve", "--listen", "127.0.0.1:0", "--store", str(tmp_path / "s"),
        "--upstream", "off", "--tokens", str(tmp_path / "nope"),
    )  # fmt: skip
    assert missing.returncode == 2, missing.stderr
    assert "does not exist; create a token with 'modgate token create" in missing.stderr
    tokens = tmp_path / "tokens"
    _create_token(tokens, "a")
    tokens.chmod(0o666)
    writable = run_modgate(
        "serve", "--listen", "127.0.0.1:0", "--store", str(tmp_path / "s"),
        "--upstream", "off", "--tokens", str(tokens),
    )  # fmt: skip
    assert writable.returncode == 2, writable.stderr
    assert f"run: chmod 600 {tokens}" in writable.stderr, writable.stderr
