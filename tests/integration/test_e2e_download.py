"""The go command downloads and builds through modgate, and the store stays a valid GOPROXY.

Every h1 is checked three ways: what go computed (``Sum``/``GoModSum``), what
modgate recorded (``.ziphash``), and what the test computed from the files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers.goenv import go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems
from helpers.servers import ModgateFactory, StaticProxyFactory, metric_total

pytestmark = pytest.mark.go

EXPECTED_OUTPUT = "liba v1.1.0 libb uses liba v1.1.0 Upper kit old 42"


def download_all(
    workdir: Path, goproxy: str, sample: SampleProject, gocache: Path
) -> list[dict[str, object]]:
    """``go mod download -json`` of every public sample version with a fresh module cache."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = go_env(workdir, goproxy=goproxy, gocache=gocache)
    proc = run_go(["mod", "download", "-json", *sample.download_args()], workdir, env)
    return json_stream(proc.stdout)


def build_main(workdir: Path, goproxy: str, sample: SampleProject, gocache: Path) -> str:
    """Build the sample's main module with a fresh module cache and return what it prints."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = go_env(workdir, goproxy=goproxy, gocache=gocache)
    binary = workdir / "app"
    run_go(["build", "-o", str(binary), "."], sample.main_dir, env)
    ran = subprocess.run([binary], capture_output=True, text=True, timeout=30, check=False)
    assert ran.returncode == 0, f"the built program failed: {ran}"
    return ran.stderr.strip()


@pytest.mark.slow  # the first go build compiles the runtime into the shared build cache
def test_download_build_and_file_proxy(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    server = modgate("--upstream", upstream.url)

    results = download_all(tmp_path / "download", server.url, sample, gocache)
    problems = download_problems(results, sample.versions, store=server.store)
    assert not problems, "through modgate:\n" + "\n".join(problems)

    before_build = upstream.seen()
    printed = build_main(tmp_path / "build", server.url, sample, gocache)
    assert printed == EXPECTED_OUTPUT, f"the built program printed {printed!r}"
    fetched_again = [
        p for p in upstream.seen()[len(before_build) :] if p.endswith((".mod", ".zip"))
    ]
    assert not fetched_again, f"immutable artifacts were fetched upstream again: {fetched_again}"

    file_results = download_all(tmp_path / "file", server.store.as_uri(), sample, gocache)
    problems = download_problems(file_results, sample.versions)
    assert not problems, f"with GOPROXY={server.store.as_uri()}:\n" + "\n".join(problems)


def test_modgate_chained_behind_modgate(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    upstream = static_proxy(sample.proxy_root)
    inner = modgate("--upstream", upstream.url)
    outer = modgate("--upstream", inner.url)

    results = download_all(tmp_path / "download", outer.url, sample, gocache)
    for server, role in ((outer, "outer"), (inner, "inner")):
        problems = download_problems(results, sample.versions, store=server.store)
        assert not problems, f"{role} modgate ({server.url}):\n" + "\n".join(problems)

    printed = build_main(tmp_path / "build", outer.url, sample, gocache)
    assert printed == EXPECTED_OUTPUT, f"the built program printed {printed!r}"


def test_repeated_downloads_are_answered_from_remembered_request_bytes(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    # The go command sends the same bytes for the same artifact: from the third
    # download on, hot answers come without parsing, and they are still right.
    upstream = static_proxy(sample.proxy_root)
    server = modgate("--upstream", upstream.url)
    for i in range(3):
        results = download_all(tmp_path / f"download-{i}", server.url, sample, gocache)
        problems = download_problems(results, sample.versions, store=server.store)
        assert not problems, f"download {i + 1} through modgate:\n" + "\n".join(problems)
    known = metric_total(server.metrics(), "modgate_hot_known_requests_total")
    assert known >= len(sample.versions), (
        f"only {known:.0f} requests were answered from remembered bytes; the third download "
        f"alone asks for {len(sample.versions)} versions' .info, .mod and .zip"
    )
