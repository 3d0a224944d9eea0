"""``--s3-redirect``: zips answered with a 302 to a presigned URL of the stored object.

The bucket is served by moto's S3 server on loopback; the go command follows
the redirect to it. Only stored (so verified) zips are signed, only after
authentication and authorization, and the signature never reaches a log.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers.goenv import go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems
from helpers.s3server import S3Server, client, s3_store
from helpers.servers import ModgateFactory, StaticProxyFactory, http_get, run_modgate

BUCKET = "modgate-redirect"
SIGNATURE = "X-Amz-Signature"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    server.create_bucket(BUCKET)
    yield server
    server.close()


@pytest.mark.go
def test_go_follows_the_redirect_and_its_sums_match(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    replica = modgate(
        *s3_store(BUCKET, "go", tmp_path / "cache"), "--upstream", upstream.url, "--s3-redirect",
        "--s3-redirect-expiry", "120", env=s3.env(),
    )  # fmt: skip
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = go_env(workdir, goproxy=replica.url, gosumdb="off", gocache=gocache)
    proc = run_go(["mod", "download", "-json", *sample.download_args()], workdir, env)
    problems = download_problems(json_stream(proc.stdout), sample.versions)
    assert not problems, "go mod download through redirects:\n" + "\n".join(problems)

    built = sample.versions[0]
    answer = http_get(replica.url, built.url_path("zip"))
    assert answer.status == 302, f"a stored zip with --s3-redirect: {answer}"
    assert answer.headers.get("cache-control") == "no-store", answer.headers
    assert answer.body == b"", f"a redirect with a body: {answer.body[:200]!r}"
    location = urllib.parse.urlsplit(answer.headers["location"])
    query = urllib.parse.parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}" == s3.url, f"redirected to {location}"
    path = urllib.parse.unquote(location.path)
    assert path == f"/{BUCKET}/go{built.url_path('zip')}", location.path
    assert query.get("X-Amz-Expires") == ["120"], f"expiry in the URL: {query}"
    assert SIGNATURE in query, f"no signature in the presigned URL: {query}"
    assert httpx.get(answer.headers["location"]).content == built.zip, "the URL's bytes differ"
    for kind in ("info", "mod"):  # small: served directly, from memory once hot
        small = http_get(replica.url, built.url_path(kind))
        assert small.status == 200, f".{kind} with --s3-redirect: {small}"
    replica.wait_for_log(f'"path":"{built.url_path("zip")}","status":302')  # flushed each second
    logged = replica.stderr_text()
    assert SIGNATURE not in logged and "X-Amz-Credential" not in logged, (
        "the presigned URL's query reached the log"
    )
    assert s3.env()["AWS_SECRET_ACCESS_KEY"] not in logged, "the secret key reached the log"


def test_a_miss_is_fetched_verified_and_stored_before_the_redirect(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    replica = modgate(
        *s3_store(BUCKET, "miss", tmp_path / "cache"), "--upstream", upstream.url, "--s3-redirect",
        env=s3.env(),
    )  # fmt: skip
    built = sample.versions[1]
    key = f"miss{built.url_path('zip')}"
    answer = http_get(replica.url, built.url_path("zip"))
    assert answer.status == 302, f"a cold zip with --s3-redirect: {answer}"
    stored = client(s3.url).get_object(Bucket=BUCKET, Key=key)  # type: ignore[attr-defined]
    assert stored["Body"].read() == built.zip, "the redirect came before the zip was stored"
    assert upstream.count(built.url_path("zip")) == 1
    assert httpx.get(answer.headers["location"]).content == built.zip
    missing = http_get(replica.url, built.url_path("zip").replace(built.mv.version, "v9.9.9"))
    assert missing.status == 404, f"a version no source has: {missing}"
    assert "location" not in missing.headers


def test_without_the_flag_zips_are_served_as_before(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    replica = modgate(*s3_store(BUCKET, "plain", tmp_path / "cache"), "--upstream", upstream.url,
                      env=s3.env())  # fmt: skip
    built = sample.versions[0]
    for _ in range(2):  # cold, then from the disk cache
        answer = http_get(replica.url, built.url_path("zip"))
        assert (answer.status, answer.body == built.zip) == (200, True), f"{answer}"
        assert "location" not in answer.headers
        assert "immutable" in answer.headers.get("cache-control", ""), answer.headers


def test_clients_without_a_grant_get_401_or_403_never_a_redirect(
    tmp_path: Path,
    sample: SampleProject,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
    s3: S3Server,
) -> None:
    built = sample.versions[0]
    upstream = static_proxy(sample.proxy_root)
    filler = modgate(*s3_store(BUCKET, "auth", tmp_path / "fill"), "--upstream", upstream.url,
                     env=s3.env())  # fmt: skip
    assert http_get(filler.url, built.url_path("zip")).status == 200
    tokens = tmp_path / "tokens"
    granted = _token(tokens, "builder", "--read", built.mv.path)
    other = _token(tokens, "other", "--read", "corp.example.com/other")
    # the module is private here: served from the bucket only, to granted clients
    guarded = modgate(
        *s3_store(BUCKET, "auth", tmp_path / "cache"), "--upstream", "off",
        "--private", built.mv.path,
        "--tokens", str(tokens), "--anonymous", "public", "--audit-log", "off",
        "--s3-redirect", env=s3.env(),
    )  # fmt: skip
    url = guarded.url + built.url_path("zip")
    answers = {
        "no credentials": httpx.get(url),
        "a wrong token": httpx.get(url, headers={"Authorization": "Bearer mgt_wrong"}),
        "a token without a grant": httpx.get(url, headers={"Authorization": f"Bearer {other}"}),
    }
    for who, answer in answers.items():
        assert answer.status_code in (401, 403), f"{who}: {answer.status_code} {answer.text}"
        assert "location" not in answer.headers, f"{who} was redirected"
        assert SIGNATURE not in answer.text
    ok = httpx.get(url, headers={"Authorization": f"Bearer {granted}"})
    assert ok.status_code == 302, f"a granted client: {ok.status_code} {ok.text}"
    assert httpx.get(ok.headers["location"]).content == built.zip
    guarded.wait_for_log('"status":302')  # the access log is flushed each second
    logged = guarded.stderr_text()
    assert SIGNATURE not in logged and granted not in logged, "a secret reached the log"


def _token(tokens: Path, name: str, *args: str) -> str:
    proc = run_modgate("token", "create", "--tokens", str(tokens), "--name", name, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_a_filesystem_store_refuses_the_flag_in_one_line(tmp_path: Path) -> None:
    ran = run_modgate(
        "serve", "--listen", "127.0.0.1:0", "--store", str(tmp_path / "store"),
        "--upstream", "off", "--s3-redirect",
    )  # fmt: skip
    assert ran.returncode == 2, f"exit {ran.returncode}: {ran.stderr[-500:]}"
    errors = [line for line in ran.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: invalid --s3-redirect value 'true': only an object store can redirect "
        "(use --store s3://BUCKET)"
    ], ran.stderr
