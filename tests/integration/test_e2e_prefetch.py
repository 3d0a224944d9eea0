"""Zips fetched ahead, with the real go command: ``go mod download`` on a cold store, and
``go list -m -json all``, which asks for .info files and must cause no zip fetch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from helpers.goenv import go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems
from helpers.servers import ModgateFactory, StaticProxyFactory, metric_values
from modgate.protocol.escape import escape_path

pytestmark = pytest.mark.go

METRIC = "modgate_zip_prefetches_total"


def test_go_list_fetches_no_zip_and_go_mod_download_gets_them_ahead(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    server = modgate("--upstream", upstream.url)

    listing = tmp_path / "list"
    listing.mkdir()
    env = go_env(listing, goproxy=server.url, gocache=gocache)
    run_go(["list", "-m", "-json", "all"], sample.main_dir, env)
    infos = [p for p in upstream.seen() if p.endswith(".info")]
    assert infos, "go list -m -json all asked for no .info; the test proves nothing"
    zips = [p for p in upstream.seen() if p.endswith(".zip")]
    assert not zips, f"go list -m -json all made modgate fetch zips: {zips}"

    download = tmp_path / "download"
    download.mkdir()
    env = go_env(download, goproxy=server.url, gocache=gocache)
    proc = run_go(["mod", "download", "-json", *sample.download_args()], download, env)
    problems = download_problems(json_stream(proc.stdout), sample.versions, store=server.store)
    assert not problems, "through modgate with zips fetched ahead:\n" + "\n".join(problems)

    outcomes = metric_values(server.metrics(), METRIC)
    stored = sum(v for labels, v in outcomes.items() if 'outcome="stored"' in labels)
    assert stored >= 1, f"no zip was fetched ahead: {outcomes}"
    fetched = Counter(p for p in upstream.seen() if p.endswith(".zip"))
    again = {path: n for path, n in fetched.items() if n > 1}
    assert not again, f"zips fetched from the upstream more than once: {again}"
    asked = {f"{b.mv.path}@{b.mv.version}" for b in sample.versions}
    assert len(fetched) == len(asked), f"zips fetched {sorted(fetched)} for {sorted(asked)}"


def test_prefetch_off_fetches_only_the_zips_asked_for(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    server = modgate("--upstream", upstream.url, "--prefetch-zips", "off")
    env = go_env(tmp_path, goproxy=server.url, gocache=gocache)
    first = sample.versions[0].mv
    run_go(["mod", "download", "-json", f"{first.path}@{first.version}"], tmp_path, env)
    for built in sample.versions[1:]:  # .info only, then one more zip
        server.get(f"/{escape_path(built.mv.path)}/@v/{built.mv.version}.info")
    run_go(["mod", "download", "-json", f"{first.path}@{first.version}"], tmp_path, env)
    zips = [p for p in upstream.seen() if p.endswith(".zip")]
    assert len(zips) == 1, f"with --prefetch-zips off, zips fetched: {zips}"
    outcomes = metric_values(server.metrics(), METRIC)
    assert not any(outcomes.values()), f"prefetch counters moved: {outcomes}"
