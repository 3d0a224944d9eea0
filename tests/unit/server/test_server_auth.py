"""Access control in the running server: 401/403/429 answers, the hot path, audit and metrics."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from server_support import INFO_PATH, MODULE, Client, FakeGateway, run, serving

from helpers.oidc import AUDIENCE, TestIssuer
from modgate.protocol.grants import Anonymous, parse_grants
from modgate.protocol.identity import token_identity
from modgate.protocol.patterns import parse_patterns
from modgate.server.app import ServerHandle
from modgate.server.auth.oidc import IssuerConfig
from modgate.server.auth.settings import AuthSettings
from modgate.server.auth.setup import Access, load_tokens
from modgate.server.auth.tokens import TokenFile

PUBLIC_INFO = "/example.org/pub/@v/v1.0.0.info"
PRIVATE_OTHER = "/example.com/mod/other/@v/v1.0.0.info"
LOOKUP = "/sumdb/sum.golang.org/lookup/example.com/mod@v1.0.0"
CONTACT = "#go-platform"


class Setup:
    def __init__(self, tmp_path: Path, anonymous: Anonymous = Anonymous.NONE,
                 issuer: TestIssuer | None = None, limit: int = 30,
                 refresh: float = 0.2) -> None:  # fmt: skip
        self.tokens = TokenFile(tmp_path / "tokens")
        self.all, _ = self.tokens.create("all", None, None, 1e9)
        self.other, _ = self.tokens.create(
            "other", parse_patterns("example.com/mod/other"), None, 1e9
        )
        self.public, _ = self.tokens.create("pub", parse_patterns(""), None, 1e9)
        self.audit = tmp_path / "audit.jsonl"
        issuers = ()
        grants: list[dict[str, object]] = []
        if issuer is not None:
            issuers = (IssuerConfig("k8s", issuer.url, (AUDIENCE,), refresh_interval=refresh),)
            grants = [{"name": "build", "issuer": "k8s",
                       "claims": {"kubernetes.io/namespace": "build"}, "read": MODULE}]  # fmt: skip
        self.settings = AuthSettings(
            tokens=self.tokens.path,
            issuers=issuers,
            grants=parse_grants(grants),
            anonymous=anonymous,
            contact=CONTACT,
            audit_log=str(self.audit),
            failed_auth_limit=limit,
        )
        self.access = Access(self.settings, parse_patterns(MODULE))

    def audit_records(self) -> list[dict[str, object]]:
        self.access.gate.audit.flush()
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines()]


def bearer(secret: str) -> str:
    return f"Authorization: Bearer {secret}\r\n"


def basic(secret: str, user: str = "token") -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode() + "\r\n"


def serve_auth(setup: Setup, body: Callable[[ServerHandle, FakeGateway], Awaitable[None]]) -> None:
    async def main() -> None:
        async with serving() as (handle, gateway):
            handle.state.access = setup.access.gate
            setup.access.gate.register_metrics(gateway.metrics)
            try:
                await body(handle, gateway)
            finally:
                await setup.access.aclose()

    run(main())


def test_no_credentials_get_401_with_a_challenge_and_the_netrc_line(tmp_path: Path) -> None:
    setup = Setup(tmp_path)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for path in (INFO_PATH, PUBLIC_INFO, LOOKUP):
            answer = await client.get(path)
            assert answer.status == 401, f"{path}: {answer}"
            assert 'Basic realm="modgate"' in answer.raw_head.decode(), answer.raw_head
            text = answer.body.decode()
            assert "machine test login token password <token>" in text, text
            assert "GOAUTH='modgate goauth" in text and CONTACT in text, text
            assert "only over https" in text, "a plain-HTTP 401 must say credentials need https"
            assert len(answer.body) <= 648 and text.count("\n") <= 8, text
        assert gw.calls == [], "nothing may reach the gateway before authentication"

    serve_auth(setup, body)


def test_tokens_read_what_they_are_granted_and_403_names_module_and_contact(tmp_path: Path) -> None:
    setup = Setup(tmp_path)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        assert (await client.get(INFO_PATH, headers=basic(setup.all))).status == 200
        assert (await client.get(PUBLIC_INFO, headers=bearer(setup.public))).status == 200
        assert (await client.get(PRIVATE_OTHER, headers=bearer(setup.other))).status == 200
        for secret in (setup.public, setup.other):
            denied = await client.get(INFO_PATH, headers=bearer(secret))
            assert denied.status == 403, denied
            text = denied.body.decode()
            assert "example.com/mod@v1.0.0: token:" in text and CONTACT in text, text
            assert "pattern example.com/mod" in text, text
        lookup = await client.get(LOOKUP, headers=bearer(setup.public))
        assert lookup.status == 403, f"a private module's checksum lookup must be refused: {lookup}"

    serve_auth(setup, body)


def test_the_hot_path_never_serves_a_private_module_to_credentials_not_granted_it(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        owner = await Client.connect(handle.port)
        for _ in range(3):  # the first fills the hot set, the next are hot hits
            assert (await owner.get(INFO_PATH, headers=bearer(setup.all))).status == 200
        assert INFO_PATH.encode() in handle.state.hot.entries, "the answer should be hot now"
        calls = len(gw.calls)
        # the same connection, other credentials, and no credentials
        assert (await owner.get(INFO_PATH, headers=bearer(setup.public))).status == 403
        assert (await owner.get(INFO_PATH)).status == 401
        assert (await owner.get(INFO_PATH, headers=bearer(setup.all))).status == 200
        # HEAD, and a second connection
        head = await owner.get(INFO_PATH, method="HEAD", headers=bearer(setup.other))
        assert head.status == 403
        stranger = await Client.connect(handle.port)
        assert (await stranger.get(INFO_PATH, headers=bearer(setup.other))).status == 403
        # pipelined: allowed, denied, allowed, anonymous on one connection in one write
        await stranger.send(
            b"".join(
                f"GET {INFO_PATH} HTTP/1.1\r\nHost: t\r\n{h}\r\n".encode()
                for h in (bearer(setup.all), bearer(setup.public), bearer(setup.all), "")
            )
        )
        statuses = [(await stranger.read_response()).status for _ in range(4)]
        assert statuses == [200, 403, 200, 401], statuses
        assert len(gw.calls) == calls, "hot answers must not call the gateway"

    serve_auth(setup, body)


def test_a_revoked_token_stops_working_on_an_open_connection(tmp_path: Path) -> None:
    setup = Setup(tmp_path)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        # miss, hot hit (remembered by its bytes), then answered from its bytes
        for _ in range(3):
            assert (await client.get(INFO_PATH, headers=bearer(setup.all))).status == 200
        setup.tokens.revoke("all", 2e9)
        setup.access.reload_tokens()
        answer = await client.get(INFO_PATH, headers=bearer(setup.all))
        assert answer.status == 401, answer
        assert b"token all was revoked" in answer.body, answer.body

    serve_auth(setup, body)


def test_anonymous_public_reads_public_modules_only(tmp_path: Path) -> None:
    setup = Setup(tmp_path, Anonymous.PUBLIC)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(2):
            assert (await client.get(PUBLIC_INFO)).status == 200
        answer = await client.get(INFO_PATH)
        assert answer.status == 401 and b"this module is private" in answer.body, answer
        assert (await client.get("/sumdb/sum.golang.org/supported")).status != 401

    serve_auth(setup, body)


def test_failed_authentications_are_limited_per_address(tmp_path: Path) -> None:
    setup = Setup(tmp_path, limit=3)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        wrong = "mgt_" + "W" * 43
        statuses = [(await client.get(INFO_PATH, headers=bearer(wrong))).status for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429], statuses
        limited = await client.get(INFO_PATH, headers=bearer(setup.all))
        assert limited.status == 429 and limited.header("retry-after"), limited
        assert (await client.get("/healthz")).status == 200

    serve_auth(setup, body)


def test_audit_and_metrics_record_decisions_without_secrets(tmp_path: Path) -> None:
    setup = Setup(tmp_path)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        metrics = (await client.get("/metrics")).body.decode()
        for decision in ("allowed_private", "denied", "unauthenticated", "rate_limited"):
            line = f'modgate_auth_decisions_total{{decision="{decision}"}} 0'
            assert line in metrics, f"{line!r} must be present from the start"
        for _ in range(3):
            await client.get(INFO_PATH, headers=bearer(setup.all))
        await client.get(INFO_PATH, headers=bearer(setup.public))
        await client.get(INFO_PATH, headers=bearer("mgt_" + "Z" * 43))
        await client.get(PUBLIC_INFO, headers=bearer(setup.public))
        metrics = (await client.get("/metrics")).body.decode()
        assert 'modgate_auth_decisions_total{decision="allowed_private"} 3' in metrics, metrics
        assert 'modgate_auth_decisions_total{decision="denied"} 1' in metrics
        assert 'modgate_auth_decisions_total{decision="invalid_credentials"} 1' in metrics
        assert 'modgate_auth_failures_total{reason="unknown_token"} 1' in metrics
        records = setup.audit_records()
        reads = [r for r in records if r["decision"] == "allow"]
        assert sum(int(r["count"]) for r in reads) == 3, (  # type: ignore[call-overload]
            f"every private read is audited, hot ones too: {records}"
        )
        assert (
            reads[0]["identity"] == "token:all" and reads[0]["module"] == "example.com/mod@v1.0.0"
        )
        assert reads[0]["rule"] == "token-unrestricted"
        deny = [r for r in records if r["decision"] == "deny"]
        assert deny and deny[0]["rule"] == "no-grant" and deny[0]["status"] == 403, records
        assert not [r for r in records if r["module"] == "example.org/pub@v1.0.0"], (
            "public reads are not audited"
        )
        text = setup.audit.read_text() + metrics
        for secret in (setup.all, setup.public, setup.other, "Z" * 43):
            assert secret not in text

    serve_auth(setup, body)


@pytest.fixture
def issuer() -> TestIssuer:
    started = TestIssuer()
    yield started  # type: ignore[misc]
    started.close()


def test_oidc_tokens_are_verified_once_and_cached(tmp_path: Path, issuer: TestIssuer) -> None:
    setup = Setup(tmp_path, issuer=issuer)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        good = issuer.token(namespace="build")
        for _ in range(3):
            answer = await client.get(INFO_PATH, headers=bearer(good))
            assert answer.status == 200, answer
        assert issuer.jwks_hits == 1 and issuer.discovery_hits == 1
        cases = {
            "expired": issuer.token(lifetime=-3600),
            "audience": issuer.token(audience="someone-else"),
            "namespace": issuer.token(namespace="web"),
            "issuer": issuer.token(issuer="https://evil.example.com"),
            "forged": issuer.token(key=__import__(
                "cryptography.hazmat.primitives.asymmetric.rsa", fromlist=["rsa"]
            ).generate_private_key(public_exponent=65537, key_size=2048)),
        }  # fmt: skip
        expected = {
            "expired": (401, "the token has expired"),
            "audience": (401, f"request the token for audience '{AUDIENCE}'"),
            "namespace": (403, "k8s:system:serviceaccount:web:builder may not read"),
            "issuer": (401, "tokens of issuer 'https://evil.example.com' are not accepted"),
            "forged": (401, "signature does not verify"),
        }
        for name, token in cases.items():
            answer = await client.get(INFO_PATH, headers=bearer(token))
            status, text = expected[name]
            assert answer.status == status and text in answer.body.decode(), f"{name}: {answer}"
            assert token not in answer.body.decode()

    serve_auth(setup, body)


def test_an_unknown_key_id_refetches_the_key_set_at_a_limited_rate(
    tmp_path: Path, issuer: TestIssuer
) -> None:
    setup = Setup(tmp_path, issuer=issuer)

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        assert (await client.get(INFO_PATH, headers=bearer(issuer.token()))).status == 200
        hits = issuer.jwks_hits
        # made-up key ids in a burst: at most one refetch per refresh interval
        unpublished = issuer.rotate(publish=False)
        for _ in range(5):
            answer = await client.get(INFO_PATH, headers=bearer(issuer.token(kid=unpublished)))
            assert answer.status == 401 and b"not in the issuer's key set" in answer.body
        assert issuer.jwks_hits - hits <= 1, issuer.jwks_hits - hits
        # a rotation the issuer publishes is picked up on the next token that uses it
        await asyncio.sleep(0.3)
        rotated = issuer.rotate()
        answer = await client.get(INFO_PATH, headers=bearer(issuer.token(kid=rotated)))
        assert answer.status == 200, answer

    serve_auth(setup, body)


def test_load_tokens_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="modgate token create"):
        load_tokens(tmp_path / "missing")


CREDENTIALS = ("all", "other", "pub", "anonymous", "bad")
PATHS = (INFO_PATH, PRIVATE_OTHER, PUBLIC_INFO, "/example.com/mod/@v/list")


@settings(max_examples=30)
@given(
    requests=st.lists(
        st.tuples(st.sampled_from(CREDENTIALS), st.sampled_from(PATHS), st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_every_answer_matches_the_pure_decision_hot_or_not(
    tmp_path_factory: pytest.TempPathFactory, requests: list[tuple[str, str, bool]]
) -> None:
    setup = Setup(tmp_path_factory.mktemp("prop"), limit=0)
    secrets = {"all": setup.all, "other": setup.other, "pub": setup.public}
    policy = setup.access.gate.policy
    identities = {
        "all": token_identity("all", None),
        "other": token_identity("other", parse_patterns("example.com/mod/other")),
        "pub": token_identity("pub", parse_patterns("")),
    }

    def expected(who: str, path: str) -> int:
        if who == "bad":
            return 401
        module = path[1:].split("/@v/", maxsplit=1)[0]
        decision = policy.decide(identities.get(who), module)
        return {"allow": 200, "deny": 403, "challenge": 401}[decision.outcome.value]

    def header(who: str) -> str:
        if who == "anonymous":
            return ""
        return bearer(secrets.get(who, "mgt_" + "B" * 43))

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        i = 0
        while i < len(requests):
            # a run of requests flagged True goes out in one write (pipelined)
            batch = [requests[i]]
            while batch[-1][2] and i + len(batch) < len(requests):
                batch.append(requests[i + len(batch)])
            await client.send(
                b"".join(
                    f"GET {path} HTTP/1.1\r\nHost: t\r\n{header(who)}\r\n".encode()
                    for who, path, _ in batch
                )
            )
            for who, path, _ in batch:
                answer = await client.read_response()
                assert answer.status == expected(who, path), (
                    f"{who} GET {path}: {answer.status}, expected {expected(who, path)} "
                    f"(sequence {requests})"
                )
            i += len(batch)

    serve_auth(setup, body)


def test_an_unreachable_identity_provider_is_a_503_not_the_clients_fault(
    tmp_path: Path, issuer: TestIssuer
) -> None:
    setup = Setup(tmp_path, issuer=issuer, limit=2, refresh=60)
    token = issuer.token(namespace="build")
    issuer.close()

    async def body(handle: ServerHandle, gw: FakeGateway) -> None:
        client = await Client.connect(handle.port)
        for _ in range(3):  # more than the failure limit: a 503 is not a failed authentication
            answer = await client.get(INFO_PATH, headers=bearer(token))
            assert answer.status == 503, answer
            assert answer.header("retry-after"), answer
            text = answer.body.decode()
            assert text == (
                "cannot verify the credentials now: the signing keys of issuer k8s cannot be "
                "fetched; retry later\n"
            ), text
        verifier = setup.access.gate.resolver.verifier
        assert verifier is not None
        assert verifier.keysets[issuer.url].fetches == 1, "one attempt per refresh interval"
        assert (await client.get(INFO_PATH, headers=bearer(setup.all))).status == 200
        metrics = (await client.get("/metrics")).body.decode()
        assert 'modgate_auth_failures_total{reason="jwks_unavailable"} 3' in metrics, metrics

    serve_auth(setup, body)
