"""The S3 server stopped in the middle of a zip's upload: nothing partial, then a clean recovery.

moto keeps its objects in the memory of the process that runs it: a moto
server in a child process that is killed and started again comes back with
no bucket at all, which is not what a restarted object store does. So moto
runs in this process (:class:`helpers.s3server.S3Server`, which keeps the
objects over ``stop``/``start``) behind a TCP relay (:class:`CutRelay`):
once the upload of the large zip has sent 1 MiB of its 4 MiB, the relay
resets the connection and refuses new ones, the test stops the moto server
itself, then starts it again on the same port and lets the relay pass
connections again.
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import pytest

from helpers.goenv import go_env, json_stream, run_go
from helpers.modules import download_problems, write_big_module
from helpers.s3server import S3Server, client, s3_env, s3_store
from helpers.servers import ModgateFactory, StaticProxyFactory
from helpers.tcprelay import CutRelay

BUCKET = "modgate-outage"
PREFIX = "mirror"
BIG_ZIP = 4 << 20
CUT_AFTER = 1 << 20
"""Bytes of an upload that reach the S3 server before it stops (only the zip is that big)."""
WAIT = 30.0


@pytest.mark.go
def test_s3_stopped_mid_upload_leaves_no_partial_object_and_recovers(
    tmp_path: Path,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    big = write_big_module(tmp_path / "upstream", BIG_ZIP)
    upstream = static_proxy(tmp_path / "upstream")
    s3 = S3Server()
    relay = CutRelay(s3.port, cut_after=CUT_AFTER)
    try:
        s3.create_bucket(BUCKET)
        replica = modgate(
            *s3_store(BUCKET, PREFIX, tmp_path / "cache"), "--upstream", upstream.url,
            env=s3_env(relay.url),
        )  # fmt: skip
        first = tmp_path / "first"
        first.mkdir()
        env = go_env(first, goproxy=replica.url, gocache=gocache)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            download = pool.submit(
                run_go, ["mod", "download", "-json", str(big.mv)], first, env, check=False
            )
            assert relay.cut.wait(WAIT), "the zip's upload never passed 1 MiB"
            s3.stop()
            proc = download.result(WAIT * 2)
        # fails cleanly: an error from the go command, nothing of the zip in its cache
        results = list(json_stream(proc.stdout))
        assert proc.returncode != 0 and results and results[0].get("Error"), (
            f"go succeeded while the object store was down: {proc.stdout[-800:]}"
        )
        assert "500" in str(results[0]["Error"]), f"go's error: {results[0]['Error']}"
        cached = list((first / "gohome").rglob("*.zip"))
        assert not cached, f"the go command kept a zip from the failed download: {cached}"

        s3.start()  # the same port and objects; the relay still refuses: modgate sees nothing
        keys = _keys(s3)
        zip_key = f"{PREFIX}{big.url_path('zip')}"
        assert zip_key not in keys, f"a zip object appeared from a cut upload: {keys}"
        assert not [k for k in keys if k.endswith((".part", ".tmp"))], keys

        relay.refusing = False
        second = tmp_path / "second"
        second.mkdir()
        env = go_env(second, goproxy=replica.url, gocache=gocache)
        # modgate fails at once for 2 s after the object store last did not answer
        deadline = time.monotonic() + WAIT
        while True:
            proc = run_go(["mod", "download", "-json", str(big.mv)], second, env, check=False)
            if proc.returncode == 0:
                break
            assert time.monotonic() < deadline, f"still failing after the restart: {proc.stdout}"
            time.sleep(0.5)
        problems = download_problems(json_stream(proc.stdout), [big])
        assert not problems, "after the restart:\n" + "\n".join(problems)
        stored = client(s3.url).get_object(Bucket=BUCKET, Key=zip_key)  # type: ignore[attr-defined]
        assert stored["Body"].read() == big.zip, "the bucket holds other bytes than published"
        assert upstream.count(big.url_path("zip")) == 2, upstream.seen()
    finally:
        relay.close()
        s3.close()


def _keys(s3: S3Server) -> list[str]:
    listed = client(s3.url).list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")  # type: ignore[attr-defined]
    return [item["Key"] for item in listed.get("Contents", ())]
