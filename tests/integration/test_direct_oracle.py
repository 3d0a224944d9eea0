"""The ``direct`` source against the real go command, on fixture repositories of every shape.

For each fixture module the go command resolves every query and downloads
every version twice: straight from git (``GOPROXY=direct``) and through
``modgate serve --upstream direct``. Both must agree on Version, Time,
Origin, Sum and GoModSum, fail for the same queries, and leave
byte-identical ``.info`` and ``.mod`` files in the module cache.
:class:`DirectSource` called in-process must produce those same bytes and
hashes. Git reaches the fixtures through ``insteadOf`` (no network).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.gitfixtures import Fixture, build_all, write_gitconfig
from helpers.goenv import go_env, json_stream, module_cache, run_go
from helpers.servers import ModgateHandle, start_modgate
from modgate.formats.dirhash import hash_zip
from modgate.formats.info import parse_time, render_info
from modgate.protocol.errors import InvalidModuleError, NotFoundError
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.module import ModuleVersion, canonical_version
from modgate.sources.direct import DirectSource
from modgate.sources.gitrepo import Origin

pytestmark = pytest.mark.go

DEAD_PROXY = "http://127.0.0.1:9"
"""Any HTTP(S) request that escapes the fixtures fails here, locally."""
# Queries the go command answers from the version list, not from a revision:
# through any proxy their answer carries no Origin (the list has none).
LIST_QUERIES = frozenset({"latest", "v1.3"})


@dataclass
class World:
    root: Path
    fixtures: dict[str, Fixture]
    gitconfig: Path

    @property
    def git_env(self) -> dict[str, str]:
        return {
            "GIT_CONFIG_GLOBAL": str(self.gitconfig),
            "HTTPS_PROXY": DEAD_PROXY,
            "HTTP_PROXY": DEAD_PROXY,
        }

    def queries(self) -> list[tuple[str, str]]:
        return [q for f in self.fixtures.values() for q in f.queries]

    def modules(self) -> list[str]:
        return [m for f in self.fixtures.values() for m in f.modules]


@dataclass
class Run:
    """What one go configuration answered."""

    queries: dict[tuple[str, str], dict[str, Any]]
    downloads: dict[tuple[str, str], dict[str, Any]]
    versions: dict[str, dict[str, Any]]
    cache: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("direct-oracle")
    fixtures = build_all(root / "repos")
    return World(root, fixtures, write_gitconfig(root / "gitconfig", root / "repos"))


def _by_query(
    objects: list[dict[str, Any]], asked: list[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    assert len(objects) == len(asked), f"go printed {len(objects)} results for {len(asked)} queries"
    return dict(zip(asked, objects, strict=True))


def _versions_to_download(
    world: World, queries: dict[tuple[str, str], dict[str, Any]]
) -> list[tuple[str, str]]:
    wanted: dict[tuple[str, str], None] = {}
    for (module, _), result in queries.items():
        version = result.get("Version", "")
        if "Error" not in result and version and canonical_version(version) == version:
            wanted[(module, version)] = None
    return list(wanted)


def _run_go(
    world: World,
    workdir: Path,
    goproxy: str,
    gocache: Path,
    downloads: list[tuple[str, str]] | None,
) -> Run:
    workdir.mkdir()
    env = go_env(workdir, goproxy=goproxy, gocache=gocache, extra=world.git_env)
    asked = world.queries()
    listed = run_go(["list", "-m", "-e", "-json", *(f"{m}@{q}" for m, q in asked)], workdir, env)
    queries = _by_query(json_stream(listed.stdout), asked)
    versions_out = run_go(
        ["list", "-m", "-e", "-json", "-versions", "-retracted", *world.modules()], workdir, env
    )
    versions = {obj["Path"]: obj for obj in json_stream(versions_out.stdout)}
    todo = downloads if downloads is not None else _versions_to_download(world, queries)
    # Downloads start from an empty module cache: the .info the go command caches
    # for a version depends on the query that first resolved it.
    (workdir / "dl").mkdir()
    env = go_env(workdir / "dl", goproxy=goproxy, gocache=gocache, extra=world.git_env)
    fetched = run_go(
        ["mod", "download", "-json", *(f"{m}@{v}" for m, v in todo)], workdir, env, check=False
    )
    objects = json_stream(fetched.stdout)
    got = {(o["Path"], o["Version"]): o for o in objects}
    assert set(got) == set(todo), (
        f"go mod download answered {sorted(got)} for {todo}\n{fetched.stderr}"
    )
    return Run(queries, got, versions, module_cache(env))


@pytest.fixture(scope="module")
def direct_run(world: World, gocache: Path) -> Run:
    return _run_go(world, world.root / "go-direct", "direct", gocache, None)


@pytest.fixture(scope="module")
def modgate_server(world: World) -> Iterator[ModgateHandle]:
    workdir = world.root / "modgate"
    workdir.mkdir()
    # The fixtures are private modules: no public checksum database knows them.
    handle = start_modgate(
        workdir, "--upstream", "direct", "--private", "github.com/fixture", env=world.git_env
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def proxy_run(world: World, gocache: Path, direct_run: Run, modgate_server: ModgateHandle) -> Run:
    return _run_go(
        world, world.root / "go-proxy", modgate_server.url, gocache, list(direct_run.downloads)
    )


def _fields(result: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: result.get(name) for name in names}


def test_queries_resolve_as_the_go_command_does(
    world: World, direct_run: Run, proxy_run: Run
) -> None:
    problems = []
    for key in world.queries():
        direct, proxied = direct_run.queries[key], proxy_run.queries[key]
        names = (
            ("Version", "Time", "Query")
            if key[1] in LIST_QUERIES
            else ("Version", "Time", "Query", "Origin")
        )
        if "Error" in direct or "Error" in proxied:
            if ("Error" in direct) != ("Error" in proxied):
                problems.append(
                    f"{key}: go error={direct.get('Error')}, modgate {proxied.get('Error')}"
                )
            continue
        want, got = _fields(direct, names), _fields(proxied, names)
        if want != got:
            problems.append(f"{key}:\n  go direct: {want}\n  modgate:   {got}")
    assert not problems, "queries differ:\n" + "\n".join(problems)


def test_errors_carry_the_go_commands_reason(world: World, direct_run: Run, proxy_run: Run) -> None:
    problems = []
    for key in world.queries():
        direct, proxied = direct_run.queries[key], proxy_run.queries[key]
        if "Error" not in direct or key[1] in LIST_QUERIES:
            continue
        reason = direct["Error"]["Err"].split(": ", 1)[-1].splitlines()[0]
        if reason not in proxied.get("Error", {}).get("Err", ""):
            problems.append(f"{key}: go says {reason!r}; modgate says {proxied.get('Error')}")
    assert not problems, "\n".join(problems)


def test_downloads_match_the_go_command(direct_run: Run, proxy_run: Run) -> None:
    problems = []
    names = ("Version", "Sum", "GoModSum", "Origin")
    for key, direct in direct_run.downloads.items():
        proxied = proxy_run.downloads[key]
        if "Error" in direct or "Error" in proxied:
            if ("Error" in direct) != ("Error" in proxied):
                problems.append(
                    f"{key}: go error={direct.get('Error')}, modgate {proxied.get('Error')}"
                )
            continue
        if _fields(direct, names) != _fields(proxied, names):
            want, got = _fields(direct, names), _fields(proxied, names)
            problems.append(f"{key}:\n  go direct: {want}\n  modgate:   {got}")
        for kind in ("info", "mod"):
            rel = f"{escape_path(key[0])}/@v/{escape_version(key[1])}.{kind}"
            want, got = (direct_run.cache / rel).read_bytes(), (proxy_run.cache / rel).read_bytes()
            if want != got:
                problems.append(
                    f"{key} .{kind} differs:\n  go direct: {want!r}\n  modgate:   {got!r}"
                )
    assert not problems, "downloads differ:\n" + "\n".join(problems)


def test_version_lists_match(world: World, direct_run: Run, proxy_run: Run) -> None:
    problems = []
    for module in world.modules():
        want = direct_run.versions[module].get("Versions")
        got = proxy_run.versions[module].get("Versions")
        if want != got:
            problems.append(f"{module}: go direct lists {want}, modgate {got}")
    assert not problems, "\n".join(problems)


def test_direct_source_writes_what_the_go_command_caches(
    world: World, direct_run: Run, tmp_path: Path
) -> None:
    async def check_all() -> list[str]:
        source = DirectSource(tmp_path / "mirrors", environ=world.git_env | _base_env())
        problems: list[str] = []
        try:
            for (module, version), direct in direct_run.downloads.items():
                mv = ModuleVersion(module, version)
                rel = f"{escape_path(module)}/@v/{escape_version(version)}"
                info = as_cached(await source.info(module, version))
                want_info = (direct_run.cache / f"{rel}.info").read_bytes()
                if info != want_info:
                    problems.append(f"{mv} .info:\n  go:      {want_info!r}\n  modgate: {info!r}")
                mod = await source.mod(mv)
                if mod != (direct_run.cache / f"{rel}.mod").read_bytes():
                    problems.append(f"{mv} .mod differs: {mod!r}")
                dest = tmp_path / "out.zip"
                try:
                    await source.zip(mv, dest, 500 << 20)
                except InvalidModuleError as exc:
                    if "Error" not in direct:
                        problems.append(f"{mv} zip failed but go succeeded: {exc}")
                    continue
                if "Error" in direct:
                    problems.append(f"{mv} zip succeeded but go failed: {direct['Error']}")
                    continue
                with dest.open("rb") as f:
                    h1 = hash_zip(f)
                if h1 != direct["Sum"]:
                    problems.append(f"{mv} zip hash {h1}, go {direct['Sum']}")
        finally:
            await source.aclose()
        return problems

    problems = asyncio.run(check_all())
    assert not problems, "\n".join(problems)


def as_cached(info: bytes) -> bytes:
    """An .info as the go command writes it into its cache (modfetch writeDiskStat)."""
    parsed = json.loads(info)
    version = parsed["Version"]
    origin = Origin(**{_FIELD_NAMES[k]: v for k, v in parsed["Origin"].items()})
    return render_info(version, parse_time(parsed["Time"]), origin.for_cache(version).to_json())


_FIELD_NAMES = {
    "VCS": "vcs",
    "URL": "url",
    "Subdir": "subdir",
    "Hash": "hash",
    "TagPrefix": "tag_prefix",
    "TagSum": "tag_sum",
    "Ref": "ref",
    "RepoSum": "repo_sum",
}


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}


def test_invalid_file_name_fails_only_the_zip(world: World, tmp_path: Path) -> None:
    module = "github.com/fixture/badname"

    async def run() -> None:
        source = DirectSource(tmp_path / "mirrors", environ=world.git_env | _base_env())
        try:
            info = json.loads(await source.info(module, "v1.0.0"))
            assert info["Version"] == "v1.0.0"
            assert (await source.mod(ModuleVersion(module, "v1.0.0"))).startswith(b"module ")
            with pytest.raises(InvalidModuleError, match=r"bad:name\.txt"):
                await source.zip(ModuleVersion(module, "v1.0.0"), tmp_path / "z.zip", 500 << 20)
            with pytest.raises(NotFoundError, match=r"unknown revision v9\.9\.9"):
                await source.info(module, "v9.9.9")
        finally:
            await source.aclose()

    asyncio.run(run())
    shutil.rmtree(tmp_path / "mirrors", ignore_errors=True)
