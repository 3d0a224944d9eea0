"""golang.org/toolchain through modgate's private log: a lookup fetches and verifies first.

The go command accepts one checksum database only, and toolchain downloads
always need a lookup, so modgate's log must answer for modules it has not
stored yet. A fake toolchain (``bin/go`` is a shell script) is published on
the static upstream and in the local public database; the go command
switches to it with ``GOTOOLCHAIN`` through modgate.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.goenv import describe, go_env, run_go
from helpers.modules import SampleProject, write_module_version
from helpers.servers import ModgateFactory, StaticProxyFactory, run_modgate
from helpers.sumdbserver import TestSumdb, proxy_gosum
from modgate.protocol.module import ModuleVersion

pytestmark = pytest.mark.go

LOG_NAME = "sumdb.modgate.test"
FAKE_GO = b'#!/bin/sh\necho "fake toolchain go1.99.0 $*"\n'
# The go command makes pkg/tool, lib and bin executable before it runs bin/go.
TOOLCHAIN_FILES = {
    "bin/go": FAKE_GO,
    "bin/gofmt": FAKE_GO,
    "pkg/tool/README": b"tools\n",
    "lib/README": b"lib\n",
}


@pytest.fixture
def toolchain_proxy(tmp_path: Path, sample: SampleProject) -> Iterator[tuple[Path, ModuleVersion]]:
    root = tmp_path / "proxy"
    shutil.copytree(sample.proxy_root, root)
    env = go_env(tmp_path / "probe", goproxy="off")
    goos = run_go(["env", "GOOS"], tmp_path, env).stdout.strip()
    goarch = run_go(["env", "GOARCH"], tmp_path, env).stdout.strip()
    built = write_module_version(
        root, "golang.org/toolchain", f"v0.0.1-go1.99.0.{goos}-{goarch}", TOOLCHAIN_FILES
    )
    yield root, built.mv


def test_toolchain_switch_verified_by_private_log(
    tmp_path: Path,
    toolchain_proxy: tuple[Path, ModuleVersion],
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    root, toolchain = toolchain_proxy
    key = tmp_path / "log.key"
    keygen = run_modgate("sumdb", "keygen", "--name", LOG_NAME, "--out", str(key))
    assert keygen.returncode == 0, describe(keygen)
    upstream = static_proxy(root)
    with TestSumdb(proxy_gosum(root)) as public:
        server = modgate(
            "--upstream", upstream.url, "--sumdb", public.spec, "--sumdb-key", str(key)
        )
        # A lookup before any download: modgate fetches, verifies and records first.
        lookup = f"/sumdb/{LOG_NAME}/lookup/{toolchain.path}@{toolchain.version}"
        answer = server.get(lookup)
        assert answer.status == 200, f"lookup of an unrecorded toolchain: {answer}"
        assert f"{toolchain.path} {toolchain.version} h1:" in answer.body.decode(), answer
        fetched = [p for p in upstream.seen() if p.endswith((".mod", ".zip"))]
        assert len(fetched) == 2, f"the lookup should fetch .mod and .zip once: {fetched}"
        assert any(p.startswith("/lookup/golang.org/toolchain@") for p in public.requests), (
            f"the toolchain was not verified against the public database: {public.requests}"
        )

        gosumdb = f"{keygen.stdout.strip()} {server.url}/sumdb/{LOG_NAME}"
        env = go_env(
            tmp_path / "client",
            goproxy=server.url,
            gosumdb=gosumdb,
            extra={"GOTOOLCHAIN": "go1.99.0"},
        )
        proc = run_go(["version"], tmp_path, env)
        assert "fake toolchain go1.99.0 version" in proc.stdout, describe(proc)
