"""Private module names never leave modgate, and ``--upstream off`` sends nothing anywhere.

Bounds: each test starts at most two modgate processes and sends at most
40 requests, all to 127.0.0.1; the recording upstreams and the recording
proxy show what would have left.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adversarial.conftest import RecordingListener, RecordingUpstreamFactory
from helpers.servers import ModgateFactory, run_modgate
from modgate.config import resolve

PRIVATE = "git.corp.example.com,*.corp.example.com"
SECRET_WORD = "corp.example.com"
PUBLIC_DB = "sum.golang.org"

PRIVATE_LOOKUPS = [
    "/git.corp.example.com/platform/lib@v1.0.1",
    "/git.corp.example.com%2Fplatform%2Flib@v1.0.1",
    "/ci.corp.example.com/tools/v2@v2.3.4",
    "/a.corp.example.com/x@v0.0.0-20200101000000-abcdefabcdef",
    "/git.corp.example.com/platform/lib@v1.0.1-rc.1",
]
PRIVATE_GOPROXY_ROUTES = [
    "/git.corp.example.com/platform/lib/@v/list",
    "/git.corp.example.com/platform/lib/@latest",
    "/git.corp.example.com/platform/lib/@v/v1.0.1.info",
    "/git.corp.example.com/platform/lib/@v/v1.0.1.mod",
    "/git.corp.example.com/platform/lib/@v/v1.0.1.zip",
    "/git.corp.example.com/platform/lib/@v/main.info",
]


def test_private_lookups_are_answered_locally_and_never_forwarded(
    modgate: ModgateFactory, recording_upstream: RecordingUpstreamFactory
) -> None:
    proxy = recording_upstream()
    sumdb = recording_upstream()
    server = modgate(
        "--upstream",
        proxy.url,
        "--private",
        PRIVATE,
        "--sumdb",
        f"{PUBLIC_DB}={sumdb.url}",
        "--verify-sumdb",
        "off",
    )
    for lookup in PRIVATE_LOOKUPS:
        answer = server.get(f"/sumdb/{PUBLIC_DB}/lookup{lookup}")
        assert answer.status == 404, f"lookup{lookup}: {answer}"
        body = answer.body.decode()
        assert "GONOSUMDB=" in body and "never looked up" in body, f"lookup{lookup}: {body}"
    for route in PRIVATE_GOPROXY_ROUTES:
        answer = server.get(route)
        assert 400 <= answer.status < 500, f"{route}: {answer}"
    # control: public lookups, latest and tiles do reach the recording database
    public = [
        f"/sumdb/{PUBLIC_DB}/lookup/example.com/public@v1.0.0",
        f"/sumdb/{PUBLIC_DB}/latest",
        f"/sumdb/{PUBLIC_DB}/tile/8/0/000",
    ]
    for route in public:
        server.get(route)
    forwarded = sumdb.seen()
    assert "/lookup/example.com/public@v1.0.0" in forwarded, forwarded
    assert "/latest" in forwarded, forwarded
    leaked = [p for p in (*forwarded, *proxy.seen()) if SECRET_WORD in p]
    assert leaked == [], f"private module names reached an upstream: {leaked}"


def test_with_a_private_log_its_name_answers_and_the_public_name_points_to_it(
    modgate: ModgateFactory, recording_upstream: RecordingUpstreamFactory, tmp_path: Path
) -> None:
    key = tmp_path / "sumdb.key"
    made = run_modgate("sumdb", "keygen", "--name", "sumdb.corp.test", "--out", str(key))
    assert made.returncode == 0, made.stderr
    sumdb = recording_upstream()
    server = modgate(
        "--upstream",
        "off",
        "--private",
        PRIVATE,
        "--sumdb",
        f"{PUBLIC_DB}={sumdb.url}",
        "--sumdb-key",
        str(key),
        "--verify-sumdb",
        "off",
    )
    public = server.get(f"/sumdb/{PUBLIC_DB}/lookup/git.corp.example.com/platform/lib@v1.0.1")
    assert public.status == 404, str(public)
    assert b"sumdb.corp.test" in public.body, f"the body should name the private log: {public}"
    own = server.get("/sumdb/sumdb.corp.test/lookup/git.corp.example.com/platform/lib@v1.0.1")
    assert own.status in (200, 404), str(own)
    assert [p for p in sumdb.seen() if SECRET_WORD in p] == []


def test_upstream_off_turns_the_public_checksum_database_off_and_says_so() -> None:
    settings = resolve({"upstream": "off"}, {}, None)
    assert settings.sumdb == ()
    assert settings.verify_sumdb is None
    assert any("no public checksum database is proxied" in n for n in settings.notices)
    assert any("--verify-sumdb is off" in n for n in settings.notices)
    # a file:// store is no network either; an explicit --sumdb is kept
    assert resolve({"upstream": "file:///srv/store,off"}, {}, None).sumdb == ()
    explicit = resolve({"upstream": "off", "sumdb": "sum.golang.org"}, {}, None)
    assert [db.name for db in explicit.sumdb] == [PUBLIC_DB]
    assert explicit.verify_sumdb == PUBLIC_DB
    assert resolve({}, {}, None).notices == (), "a networked chain changes nothing"


OFFLINE_ROUTES = [
    f"/sumdb/{PUBLIC_DB}/supported",
    f"/sumdb/{PUBLIC_DB}/latest",
    f"/sumdb/{PUBLIC_DB}/lookup/example.com/m@v1.0.0",
    f"/sumdb/{PUBLIC_DB}/tile/8/0/000",
    "/example.com/m/@v/list",
    "/example.com/m/@latest",
    "/example.com/m/@v/v1.0.0.info",
    "/example.com/m/@v/v1.0.0.zip",
    "/github.com/org/repo/@v/main.info",
]


def test_upstream_off_sends_nothing_anywhere(
    modgate: ModgateFactory, recording_listener: RecordingListener
) -> None:
    server = modgate("--upstream", "off", env=recording_listener.proxy_env())
    for route in OFFLINE_ROUTES:
        answer = server.get(route)
        assert 400 <= answer.status < 500, f"{route}: {answer}"
    assert recording_listener.seen() == [], "modgate --upstream off made outbound requests"
    assert "no public checksum database is proxied" in server.stderr_text(), "said at start"


def test_upstream_off_serves_private_modules_from_the_store_only(
    modgate: ModgateFactory, recording_listener: RecordingListener
) -> None:
    server = modgate(
        "--upstream", "off", "--private", PRIVATE, env=recording_listener.proxy_env()
    )  # fmt: skip
    for route in PRIVATE_GOPROXY_ROUTES:
        answer = server.get(route)
        assert 400 <= answer.status < 500, f"{route}: {answer}"
    assert b"fetching is disabled" in server.get(PRIVATE_GOPROXY_ROUTES[0]).body
    assert recording_listener.seen() == [], "a private module was fetched with --upstream off"


def test_upstream_off_with_an_explicit_sumdb_uses_it(
    modgate: ModgateFactory,
    recording_listener: RecordingListener,
    recording_upstream: RecordingUpstreamFactory,
) -> None:
    # control for the test above: the recording proxy does see what goes out
    sumdb = recording_upstream()
    server = modgate(
        "--upstream",
        "off",
        "--sumdb",
        f"{PUBLIC_DB}={sumdb.url}",
        "--verify-sumdb",
        "off",
        env=recording_listener.proxy_env(),
    )
    server.get(f"/sumdb/{PUBLIC_DB}/latest")
    seen = recording_listener.seen()
    assert any("/latest" in line for line in seen), f"expected the request at the proxy: {seen}"


@pytest.mark.parametrize("route", ["/sumdb/sum.golang.org/lookup/git.corp.example.com@v1.0.0"])
def test_private_patterns_cover_the_bare_host(modgate: ModgateFactory, route: str) -> None:
    server = modgate(
        "--upstream",
        "off",
        "--private",
        "git.corp.example.com",
        "--sumdb",
        f"{PUBLIC_DB}=http://127.0.0.1:9",
        "--verify-sumdb",
        "off",
    )
    answer = server.get(route)
    assert answer.status == 404 and b"GONOSUMDB=git.corp.example.com" in answer.body, str(answer)
