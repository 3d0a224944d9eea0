"""Checksum-database pass-through: the go command verifies through modgate's /sumdb/<name>/.

With ``GOSUMDB`` naming a database but no URL, the go command asks its
GOPROXY for ``/sumdb/<name>/supported`` and then sends its lookups and tile
reads there. The local test database stands in for sum.golang.org.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.goenv import go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems
from helpers.servers import ModgateFactory, StaticProxyFactory
from helpers.sumdbserver import TestSumdb, proxy_gosum

pytestmark = pytest.mark.go


def test_go_verifies_through_the_sumdb_proxy(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    with TestSumdb(proxy_gosum(sample.proxy_root)) as public:
        server = modgate("--upstream", upstream.url, "--sumdb", public.spec)
        results = []
        for client in ("first", "second"):
            workdir = tmp_path / client
            workdir.mkdir()
            env = go_env(workdir, goproxy=server.url, gosumdb=public.vkey, gocache=gocache)
            proc = run_go(["mod", "download", "-json", *sample.download_args()], workdir, env)
            results.append(json_stream(proc.stdout))
        for got in results:
            problems = download_problems(got, sample.versions)
            assert not problems, "\n".join(problems)
        lookups = [p for p in public.requests if p.startswith("/lookup/")]
        assert len(lookups) == len(sample.versions), (
            f"lookups are cached by modgate, so the database sees each once: {lookups}"
        )
        assert server.get(f"/sumdb/{public.name}/supported").status == 200
        assert server.get("/sumdb/sum.golang.org/supported").status == 404, (
            "only configured databases are served"
        )
