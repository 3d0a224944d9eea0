"""Mirrors: one per repository, reused across versions, fetched once per burst, kept current."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers.gitfixtures import RepoBuilder, build_root, git, write_gitconfig
from modgate.metrics import Metrics
from modgate.protocol.errors import NotFoundError
from modgate.protocol.module import ModuleVersion
from modgate.sources.direct import DirectSource
from modgate.sources.git_cmd import GitRunner

MODULE = "github.com/fixture/root"
LOCK_HELD = 0.8


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    build_root(tmp_path / "repos")
    gitconfig = write_gitconfig(tmp_path / "gitconfig", tmp_path / "repos")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return tmp_path, env | {"GIT_CONFIG_GLOBAL": str(gitconfig)}


def _mirrors(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def test_second_version_reuses_the_mirror(
    world: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env = world
    form2 = git(root / "repos" / "root", "rev-parse", "main~2")
    source = DirectSource(root / "mirrors", environ=env)

    async def run() -> None:
        try:
            await source.info(MODULE, "v1.0.0")
            mirror = source.mirror_for("https://github.com/fixture/root")
            await source.mod(ModuleVersion(MODULE, "v1.0.0"))
            await source.zip(ModuleVersion(MODULE, "v1.0.0"), root / "z.zip", 1 << 30)
            await asyncio.to_thread(source.wait_background)
            assert mirror.complete(), "the mirror was not completed in the background"
            assert mirror.fetches == 2, f"one tag fetch and one full fetch, not {mirror.fetches}"
            # The background fetch read the new refs: the next request runs no git for them.
            ran: list[str] = []
            real_run = GitRunner.run

            def counting(self: GitRunner, args: list[str], **kwargs: Any) -> Any:
                ran.append(args[0])
                return real_run(self, args, **kwargs)

            with monkeypatch.context() as patched:
                patched.setattr(GitRunner, "run", counting)
                mirror.refs()
            assert ran == [], f"refs re-read in the request path: {ran}"
            for version in ("v1.1.0", "v1.2.0-pre", "v1.1.1-0.20240102060405-" + form2[:12]):
                await source.info(MODULE, version)
                await source.mod(ModuleVersion(MODULE, version))
                await source.zip(ModuleVersion(MODULE, version), root / "z.zip", 1 << 30)
            assert mirror.fetches == 2, f"known versions fetched again ({mirror.fetches} fetches)"
            await source.list(MODULE)
            assert mirror.fetches == 3, "a list must refresh the mirror"
        finally:
            await source.aclose()

    asyncio.run(run())
    assert len(_mirrors(root / "mirrors")) == 1, (
        f"more than one mirror: {_mirrors(root / 'mirrors')}"
    )


def test_a_burst_of_requests_fetches_once(world: tuple[Path, dict[str, str]]) -> None:
    root, env = world
    source = DirectSource(root / "mirrors", environ=env)
    versions = ["v1.0.0", "v1.1.0", "v1.2.0-pre", "main", "dev", "v1.0.0", "latest"]

    mirror = source.mirror_for("https://github.com/fixture/root")

    async def run() -> list[bytes]:
        try:
            return await asyncio.gather(
                *(source.info(MODULE, v) for v in versions), source.list(MODULE)
            )
        finally:
            await source.aclose()

    answers = asyncio.run(run())
    assert len(answers) == len(versions) + 1
    # at most the first version's tag, then one full fetch for everything else
    assert mirror.fetches <= 2, f"{len(answers)} concurrent requests made {mirror.fetches} fetches"


def test_new_tags_and_commits_are_seen(world: tuple[Path, dict[str, str]]) -> None:
    root, env = world
    source = DirectSource(root / "mirrors", environ=env)
    repo = RepoBuilder.__new__(RepoBuilder)
    repo.path, repo.clock, repo.commits = root / "repos" / "root", 50, {}

    async def run() -> None:
        try:
            before = (await source.list(MODULE)).decode().split()
            assert "v1.4.0" not in before
            repo.write({"new.go": "package root\n"})
            repo.commit("c-new")
            repo.tag("v1.4.0")
            info = json.loads(await source.info(MODULE, "v1.4.0"))
            assert info["Version"] == "v1.4.0", f"a new tag was not fetched: {info}"
            assert "v1.4.0" in (await source.list(MODULE)).decode().split()
            main = json.loads(await source.info(MODULE, "main"))
            assert main["Version"] == "v1.4.0", f"main should now be the new tag: {main}"
        finally:
            await source.aclose()

    asyncio.run(run())


def test_fetch_waits_for_another_process(world: tuple[Path, dict[str, str]]) -> None:
    root, env = world
    source = DirectSource(root / "mirrors", environ=env)
    mirror = source.mirror_for("https://github.com/fixture/root")
    mirror.lock_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            f"time.sleep({LOCK_HELD})\n",
            str(mirror.lock_path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        started = time.monotonic()
        assert mirror.fetch(time.time())
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
        asyncio.run(source.aclose())
    assert waited >= LOCK_HELD / 2, f"the fetch did not wait for the other process ({waited:.2f} s)"


def test_a_missing_repository_leaves_no_mirror(world: tuple[Path, dict[str, str]]) -> None:
    root, env = world
    source = DirectSource(root / "mirrors", environ=env)

    async def run() -> None:
        try:
            for _ in range(2):
                with pytest.raises(NotFoundError, match="not found"):
                    await source.info("github.com/fixture/nosuchrepo", "v1.0.0")
                with pytest.raises(NotFoundError, match="not found"):
                    await source.list("github.com/fixture/nosuchrepo")
        finally:
            await source.aclose()

    asyncio.run(run())
    assert _mirrors(root / "mirrors") == [], "a mirror of a missing repository was kept"


def test_git_remote_commands_are_counted_like_upstream_requests(
    world: tuple[Path, dict[str, str]],
) -> None:
    root, env = world
    metrics = Metrics()
    source = DirectSource(root / "mirrors", environ=env, metrics=metrics)

    async def run() -> None:
        try:
            await source.info(MODULE, "v1.0.0")
            with pytest.raises(NotFoundError):
                await source.info("github.com/fixture/absent", "v1.0.0")
            await asyncio.to_thread(source.wait_background)
        finally:
            await source.aclose()

    asyncio.run(run())
    labels = (("upstream", "direct"),)
    fetches = metrics.value("modgate_upstream_fetches_total", labels)
    assert fetches >= 2, metrics.render().decode()
    timed = metrics.histograms[("modgate_upstream_latency_seconds", labels)].n
    assert timed == fetches, f"{fetches} remote commands but {timed} timed"
    # a repository that does not exist is an answer (not found), not an upstream error
    assert metrics.total("modgate_upstream_errors_total") == 0, metrics.render().decode()
