"""A repository whose full mirror cannot be completed still serves every version go can fetch.

Two remotes break the full fetch while depth-1 fetches of one version work,
as the go command's own fetches do: a repository whose history holds an
object that cannot be read (a corrupt loose object in an old commit), and a
smart-HTTP server that dies in the middle of every full fetch.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import time
import zipfile
from pathlib import Path

import pytest

from helpers.gitfixtures import HOST_PREFIX, MODULE_PREFIX, RepoBuilder, git, gomod
from helpers.githttp import GitHTTPServer
from helpers.goenv import go_env, json_stream, run_go
from helpers.servers import ModgateFactory, ModgateHandle, metric_total, metric_values
from modgate.metrics import Metrics
from modgate.protocol.module import ModuleVersion
from modgate.sources.direct import DirectSource
from modgate.sources.mirror_health import DEGRADED, FAILURES, FALLBACKS

REPO = "big"
ROOT_MODULE = MODULE_PREFIX + REPO
SUB_MODULE = ROOT_MODULE + "/sub"
GOOD = [
    (ROOT_MODULE, "v1.1.0"),
    (ROOT_MODULE, "v1.2.0"),
    (SUB_MODULE, "v0.1.0"),
    (SUB_MODULE, "v0.2.0"),
]
BACKOFF = 0.3
GIT_TIMEOUT = 1.5


def build_big(root: Path, *, noise: int = 0) -> tuple[RepoBuilder, str]:
    """Repository ``big``: v1.0.0 holds ``old.txt`` (later removed), then two modules.

    Returns the builder and the id of ``old.txt``'s blob. ``noise`` adds that
    many bytes of incompressible data to the first commit, so that a full
    fetch sends a pack large enough to be cut.
    """
    r = RepoBuilder(root / REPO)
    files: dict[str, str | bytes] = {
        "go.mod": gomod(ROOT_MODULE),
        "big.go": "package big\n",
        "old.txt": "only in v1.0.0\n",
    }
    if noise:
        files["noise.bin"] = random.Random(7).randbytes(noise)
    r.write(files).commit("c1")
    r.tag("v1.0.0")
    blob = git(r.path, "rev-parse", "v1.0.0:old.txt")
    r.remove(*(name for name in ("old.txt", "noise.bin") if name in files))
    r.write({"big.go": "package big\n\n// v1.1.0\n"}).commit("c2")
    r.tag("v1.1.0", annotated=True)
    r.write({"sub/go.mod": gomod(SUB_MODULE), "sub/sub.go": "package sub\n"}).commit("c3")
    r.tag("sub/v0.1.0")
    r.write({"big.go": "package big\n\n// v1.2.0\n", "sub/sub.go": "package sub\n\n// 2\n"})
    r.commit("c4")
    r.tag("v1.2.0")
    r.tag("sub/v0.2.0")
    return r, blob


def corrupt_object(repo: Path, oid: str) -> None:
    """Overwrite the loose object ``oid`` so that git cannot read it (the others stay readable)."""
    path = repo / ".git" / "objects" / oid[:2] / oid[2:]
    path.chmod(0o644)
    path.write_bytes(b"this is not a zlib stream\n")


def _gitconfig(path: Path, base: str) -> Path:
    path.write_text(
        f'[url "{base}"]\n\tinsteadOf = {HOST_PREFIX}\n[protocol "file"]\n\tallow = always\n',
        encoding="utf-8",
    )
    return path


def _git_env(gitconfig: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    return {k: v for k, v in os.environ.items() if k in keep} | {
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def _agrees_with_go(
    tmp_path: Path, gocache: Path, server: ModgateHandle, gitconfig: Path
) -> dict[str, str]:
    """Each good version, a branch query, ``@latest`` and the list: as the go command has them.

    Returns the go environment that goes through modgate.
    """
    queries = [f"{m}@{v}" for m, v in GOOD]
    # The ground truth: the go command fetching from git itself gets each version.
    direct = go_env(tmp_path / "direct", goproxy="direct", gocache=gocache)
    direct["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    fetched = run_go(["mod", "download", "-json", *queries], tmp_path, direct).stdout
    want = {(r["Path"], r["Version"]): (r["Sum"], r["GoModSum"]) for r in json_stream(fetched)}
    assert len(want) == len(GOOD), f"the go command itself could not fetch: {want}"

    env = go_env(tmp_path / "proxied", goproxy=server.url, gocache=gocache)
    for query in queries:  # one at a time: each later version meets the broken mirror
        results = json_stream(run_go(["mod", "download", "-json", query], tmp_path, env).stdout)
        for r in results:
            assert (r.get("Sum"), r.get("GoModSum")) == want[(r["Path"], r["Version"])], (
                f"{query}: modgate's sums {r.get('Sum')}, {r.get('GoModSum')} differ from "
                f"the go command's {want[(r['Path'], r['Version'])]}"
            )
    # a query and the list need no full mirror either
    for query in (f"{ROOT_MODULE}@main", f"{SUB_MODULE}@latest"):
        got = json.loads(run_go(["list", "-m", "-json", query], tmp_path, env).stdout)
        expected = json.loads(run_go(["list", "-m", "-json", query], tmp_path, direct).stdout)
        assert (got["Version"], got["Time"]) == (expected["Version"], expected["Time"]), (
            f"{query}: modgate answered {got}, the go command {expected}"
        )
    listed = run_go(["list", "-m", "-versions", ROOT_MODULE], tmp_path, env).stdout.split()
    expected = run_go(["list", "-m", "-versions", ROOT_MODULE], tmp_path, direct).stdout.split()
    assert listed == expected == [ROOT_MODULE, "v1.0.0", "v1.1.0", "v1.2.0"], (
        f"modgate listed {listed}, the go command {expected}"
    )
    return env


@pytest.mark.go
def test_unreadable_object_in_history(
    tmp_path: Path, gocache: Path, modgate: ModgateFactory
) -> None:
    repo, blob = build_big(tmp_path / "repos")
    corrupt_object(repo.path, blob)
    gitconfig = _gitconfig(tmp_path / "gitconfig", (tmp_path / "repos").resolve().as_uri() + "/")
    server = modgate("--upstream", "direct", env=_git_env(gitconfig))
    env = _agrees_with_go(tmp_path, gocache, server, gitconfig)

    metrics = server.metrics()
    assert metric_total(metrics, FAILURES) >= 1, "the failed full fetch was not counted"
    assert metric_values(metrics, DEGRADED) == {"": 1.0}, metrics
    assert metric_total(metrics, FALLBACKS) >= 1, "no depth-1 fallback fetch was counted"
    events = [json.loads(line) for line in server.stderr_lines if line.startswith("{")]
    degraded = [e for e in events if e.get("event") == "git_mirror_degraded"]
    assert degraded, f"no git_mirror_degraded log line in:\n{server.stderr_text()}"
    assert blob in degraded[0]["error"] and degraded[0]["retry_in"] > 0, degraded[0]
    # The one version whose tree holds the unreadable object fails, as it does for go.
    broken = run_go(["mod", "download", f"{ROOT_MODULE}@v1.0.0"], tmp_path, env, check=False)
    assert broken.returncode != 0 and f"{ROOT_MODULE}@v1.0.0" in broken.stderr, broken.stderr


@pytest.mark.go
def test_remote_killed_mid_fetch_with_the_go_command(
    tmp_path: Path, gocache: Path, modgate: ModgateFactory
) -> None:
    build_big(tmp_path / "repos", noise=200_000)
    remote = GitHTTPServer(tmp_path / "repos")
    remote.cut_full_fetches_at = 4096
    try:
        gitconfig = _gitconfig(tmp_path / "gitconfig", remote.url)
        server = modgate("--upstream", "direct", env=_git_env(gitconfig))
        _agrees_with_go(tmp_path, gocache, server, gitconfig)
        assert remote.cut >= 1, "no full fetch was cut: the test did not test anything"
        metrics = server.metrics()
        assert metric_values(metrics, DEGRADED) == {"": 1.0}, metrics
    finally:
        remote.close()


RECOVERY_TIMEOUT = 20.0


def test_remote_killed_mid_fetch_then_recovers(tmp_path: Path) -> None:
    build_big(tmp_path / "repos", noise=200_000)
    remote = GitHTTPServer(tmp_path / "repos")
    remote.cut_full_fetches_at = 4096
    gitconfig = _gitconfig(tmp_path / "gitconfig", remote.url)
    metrics = Metrics()
    source = DirectSource(
        tmp_path / "mirrors", environ=_git_env(gitconfig), metrics=metrics, mirror_backoff=BACKOFF
    )
    url = HOST_PREFIX + REPO

    async def fetch_all(versions: list[tuple[str, str]]) -> dict[str, list[str]]:
        names: dict[str, list[str]] = {}
        for module, version in versions:
            mv = ModuleVersion(module, version)
            await source.info(module, version)
            mod = await source.mod(mv)
            assert mod.startswith(f"module {module}\n".encode()), f"{mv}: .mod is {mod!r}"
            dest = tmp_path / f"{module.replace('/', '_')}@{version}.zip"
            await source.zip(mv, dest, 1 << 30)
            with zipfile.ZipFile(io.BytesIO(dest.read_bytes())) as archive:
                names[str(mv)] = sorted(archive.namelist())
        return names

    async def run() -> None:
        try:
            names = await fetch_all(GOOD[:1])  # new mirror: depth 1, completed in background
            await asyncio.to_thread(source.wait_background)
            mirror = source.mirror_for(url)
            assert remote.cut >= 1, "the server never cut a full fetch"
            assert not mirror.complete(), "a full fetch that was cut off completed the mirror"
            assert source.health.degraded(url), "the failed completion did not degrade the mirror"
            names |= await fetch_all([*GOOD[1:], (ROOT_MODULE, "v1.0.0")])
            assert names[f"{SUB_MODULE}@v0.2.0"] == [
                f"{SUB_MODULE}@v0.2.0/go.mod",
                f"{SUB_MODULE}@v0.2.0/sub.go",
            ], names
            assert f"{ROOT_MODULE}@v1.0.0/noise.bin" in names[f"{ROOT_MODULE}@v1.0.0"], names
            assert metrics.value(FALLBACKS) >= 4, f"fallbacks: {metrics.value(FALLBACKS)}"
            assert metrics.value(DEGRADED) == 1
            cut_before = remote.cut

            # The remote heals: after the backoff a request retries the full fetch. A
            # completion the new versions scheduled may still fail (moving the backoff
            # on) or already succeed, so requests come after each backoff until then.
            remote.cut_full_fetches_at = None
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            while True:
                state = source.health.state(url)
                if state is not None:
                    await asyncio.sleep(max(0.0, state.retry_at - time.monotonic()) + 0.05)
                listed = (await source.list(ROOT_MODULE)).decode().split()
                assert listed == ["v1.0.0", "v1.1.0", "v1.2.0"], listed
                await asyncio.to_thread(source.wait_background)
                if mirror.complete():
                    break
                assert time.monotonic() < deadline, "the retried full fetch did not complete"
            assert not source.health.degraded(url), "the mirror is still marked degraded"
            assert metrics.value(DEGRADED) == 0
            assert remote.cut == cut_before
        finally:
            await source.aclose()
            remote.close()

    asyncio.run(run())


def test_full_fetch_past_the_git_timeout(tmp_path: Path) -> None:
    build_big(tmp_path / "repos")
    remote = GitHTTPServer(tmp_path / "repos")
    remote.stall_full_fetches = GIT_TIMEOUT * 3
    metrics = Metrics()
    source = DirectSource(
        tmp_path / "mirrors",
        environ=_git_env(_gitconfig(tmp_path / "gitconfig", remote.url)),
        timeout=GIT_TIMEOUT,
        metrics=metrics,
    )
    url = HOST_PREFIX + REPO

    async def run() -> None:
        try:
            await source.info(ROOT_MODULE, "v1.1.0")  # a new mirror: depth 1
            await asyncio.to_thread(source.wait_background)  # the completion times out
            state = source.health.state(url)
            assert state is not None and "did not finish" in state.error, state
            started = time.monotonic()
            for module, version in GOOD[1:]:
                mv = ModuleVersion(module, version)
                await source.info(module, version)
                assert (await source.mod(mv)).startswith(b"module ")
                await source.zip(mv, tmp_path / "z.zip", 1 << 30)
            took = time.monotonic() - started
            # degraded: no request waits for another full fetch (the backoff is 60 s)
            assert took < GIT_TIMEOUT * 2, f"three versions took {took:.1f} s"
            assert remote.full_fetches == 1, f"{remote.full_fetches} full fetches"
            assert metrics.value(FAILURES) == 1 and metrics.value(DEGRADED) == 1
        finally:
            await source.aclose()
            remote.close()

    asyncio.run(run())
