"""Modules matching --private are fetched only directly: no upstream ever hears of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.gitfixtures import RepoBuilder, gomod
from helpers.goenv import describe, go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems
from helpers.servers import ModgateFactory, StaticProxyFactory

pytestmark = pytest.mark.go

PRIVATE_PATTERN = "corp.example.com"
SECRET = "corp.example.com/secret"

# Requests a go command (or anything else) could send for a private module.
PRIVATE_REQUESTS = [
    f"/{SECRET}/@v/list",
    f"/{SECRET}/@latest",
    f"/{SECRET}/@v/v1.0.0.info",
    f"/{SECRET}/@v/v1.0.0.mod",
    f"/{SECRET}/@v/v1.0.0.zip",
    f"/{SECRET}/@v/main-work.info",
    f"/{SECRET}/sub/@v/list",
]

GO_QUERIES = [
    ["mod", "download", "-json", f"{SECRET}@v1.0.0"],
    ["list", "-m", "-json", f"{SECRET}@latest"],
    ["list", "-m", "-versions", SECRET],
    ["list", "-m", "-json", f"{SECRET}@main-work"],
]


def private_repo(root: Path) -> Path:
    """A git repository holding corp.example.com/secret v1.0.0, unlike the upstream's copy."""
    repo = RepoBuilder(root / "secret")
    repo.write({"go.mod": gomod(SECRET), "secret.go": "package secret\n\nconst FromGit = true\n"})
    repo.commit("v1")
    repo.tag("v1.0.0")
    repo.branch("main-work", "HEAD")
    return repo.path


def test_private_module_never_sent_upstream(
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    # The recording upstream does hold the private module: a leak would succeed.
    upstream = static_proxy(sample.proxy_root)
    repo = private_repo(tmp_path / "git")
    server = modgate(
        "--upstream", f"{upstream.url},direct",
        "--private", PRIVATE_PATTERN,
        # the private module comes from a local repository; any other private path
        # has no repository, so direct answers not-found without leaving the machine
        "--git-rewrite", f"{SECRET}={repo.as_uri()}",
        "--git-rewrite", f"{PRIVATE_PATTERN}={(tmp_path / 'no-such-repo').as_uri()}",
    )  # fmt: skip
    # The go command itself treats nothing as private, so it asks modgate for everything.
    env = go_env(tmp_path, goproxy=server.url, gocache=gocache)

    download = run_go(GO_QUERIES[0], tmp_path, env)
    (result,) = json_stream(download.stdout)
    source = Path(result["Dir"]) / "secret.go"
    assert "FromGit" in source.read_text(), (
        f"{SECRET}@v1.0.0 must come from its git repository, not the upstream\n{describe(download)}"
    )
    for query in GO_QUERIES[1:]:
        run_go(query, tmp_path, env)
    missing = server.get(f"/{PRIVATE_PATTERN}/missing/@v/list")
    assert missing.status in (404, 410), f"a private path without a repository: {missing}"
    for path in PRIVATE_REQUESTS:
        server.get(path)

    public = sample.version("example.com/liba", "v1.1.0")
    proc = run_go(["mod", "download", "-json", str(public.mv)], tmp_path, env)
    problems = download_problems(json_stream(proc.stdout), [public], store=server.store)
    assert not problems, "the public module should still work:\n" + "\n".join(problems)

    seen = upstream.seen()
    assert any("example.com/liba" in path for path in seen), f"the recorder saw nothing: {seen}"
    leaked = [path for path in seen if PRIVATE_PATTERN in path]
    assert not leaked, f"requests for private modules reached the upstream: {leaked}"
