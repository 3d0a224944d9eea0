"""The go command trusts modgate's private checksum log, and catches tampering through it.

Every test runs a local checksum database (``helpers.sumdbserver``) in place
of sum.golang.org: modgate verifies the public sample modules against it,
records them in its own log, and the go command is pointed at that log with
``GOSUMDB="<verifier key> <modgate>/sumdb/<name>"``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.goenv import describe, go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems, make_zip
from helpers.servers import (
    ModgateFactory,
    ModgateHandle,
    StaticProxy,
    StaticProxyFactory,
    metric_values,
    run_modgate,
)
from helpers.sumdbserver import TestSumdb, proxy_gosum
from modgate.cli.sumdb import load_signer
from modgate.metrics import Metrics
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.module import ModuleVersion
from modgate.service.sumlog import SumLog
from modgate.store.filesystem import FilesystemStore

pytestmark = pytest.mark.go

LOG_NAME = "sumdb.modgate.test"
EXPECTED_OUTPUT = "liba v1.1.0 libb uses liba v1.1.0 Upper kit old 42"


@dataclass
class Setting:
    proxy_root: Path
    upstream: StaticProxy
    public: TestSumdb
    key: Path
    vkey: str

    def serve(self, modgate: ModgateFactory, store: Path, *extra: str) -> ModgateHandle:
        return modgate(
            "--upstream",
            self.upstream.url,
            "--sumdb",
            self.public.spec,
            "--sumdb-key",
            str(self.key),
            *extra,
            store=store,
        )

    def gosumdb(self, server: ModgateHandle) -> str:
        return f"{self.vkey} {server.url}/sumdb/{LOG_NAME}"


@pytest.fixture
def setting(
    tmp_path: Path, sample: SampleProject, static_proxy: StaticProxyFactory
) -> Iterator[Setting]:
    root = tmp_path / "proxy"
    shutil.copytree(sample.proxy_root, root)
    key = tmp_path / "log.key"
    keygen = run_modgate("sumdb", "keygen", "--name", LOG_NAME, "--out", str(key))
    assert keygen.returncode == 0, describe(keygen)
    assert oct(key.stat().st_mode & 0o777) == "0o600", "the signer key file must be private"
    assert "PRIVATE" not in keygen.stdout + keygen.stderr, "keygen printed the signer key"
    with TestSumdb(proxy_gosum(root)) as public:
        yield Setting(root, static_proxy(root), public, key, keygen.stdout.strip())


def security_events(server: ModgateHandle) -> dict[str, float]:
    """The kinds of security event that happened (every kind is exported at 0 from the start)."""
    counted = metric_values(server.metrics(), "modgate_security_events_total")
    return {kind: n for kind, n in counted.items() if n}


def download(workdir: Path, server: ModgateHandle, gosumdb: str, gocache: Path, *mods: str,
             check: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
    workdir.mkdir(parents=True, exist_ok=True)
    env = go_env(workdir, goproxy=server.url, gosumdb=gosumdb, gocache=gocache)
    return run_go(["mod", "download", "-json", *mods], workdir, env, check=check)


@pytest.mark.slow  # builds the sample program
def test_go_downloads_and_builds_with_the_private_log(
    tmp_path: Path, setting: Setting, sample: SampleProject, gocache: Path, modgate: ModgateFactory
) -> None:
    store = tmp_path / "store"
    server = setting.serve(modgate, store)
    gosumdb = setting.gosumdb(server)

    proc = download(tmp_path / "dl", server, gosumdb, gocache, *sample.download_args())
    problems = download_problems(json_stream(proc.stdout), sample.versions, store=store)
    assert not problems, "\n".join(problems)

    # A main module without go.sum: every hash comes from the private log.
    app = tmp_path / "app"
    shutil.copytree(sample.main_dir, app)
    (app / "go.sum").unlink()
    env = go_env(tmp_path / "build", goproxy=server.url, gosumdb=gosumdb, gocache=gocache)
    run_go(["mod", "tidy"], app, env)
    written = set((app / "go.sum").read_text().splitlines())
    expected = set((sample.main_dir / "go.sum").read_text().splitlines())
    assert expected <= written, f"go.sum from the log lacks {sorted(expected - written)}"
    run_go(["build", "-o", str(tmp_path / "app.bin"), "."], app, env)
    ran = subprocess.run(
        [tmp_path / "app.bin"], capture_output=True, text=True, timeout=30, check=False
    )
    assert ran.stderr.strip() == EXPECTED_OUTPUT, f"the built program printed {ran}"

    assert not security_events(server), f"unexpected security events: {security_events(server)}"
    looked_up = [p for p in setting.public.requests if p.startswith("/lookup/")]
    assert len(looked_up) == len(sample.versions), (
        f"each public version is verified once against the public database: {looked_up}"
    )

    # The log and its key survive a restart; the client's remembered tree head still checks.
    tree_before = server.get(f"/sumdb/{LOG_NAME}/latest").body
    server.stop()
    again = setting.serve(modgate, store)
    assert again.get(f"/sumdb/{LOG_NAME}/latest").body == tree_before, "the log changed"
    # GOSUMDB without a URL: the go command finds the log through GOPROXY's /sumdb/.
    env = go_env(tmp_path / "dl", goproxy=again.url, gosumdb=setting.vkey)
    (tmp_path / "dl2").mkdir()
    run_go(["mod", "download", "-json", "example.com/liba@v1.0.0"], tmp_path / "dl2", env)


def test_stored_zip_tampered_go_reports_security_error(
    tmp_path: Path, setting: Setting, sample: SampleProject, gocache: Path, modgate: ModgateFactory
) -> None:
    store = tmp_path / "store"
    server = setting.serve(modgate, store)
    liba = sample.version("example.com/liba", "v1.1.0")
    download(tmp_path / "first", server, setting.gosumdb(server), gocache, str(liba.mv))
    server.stop()

    zip_path = store / liba.url_path("zip").lstrip("/")
    zip_path.write_bytes(make_zip(liba.mv, {"go.mod": liba.mod, "liba.go": b"package liba\n"}))
    server = setting.serve(modgate, store)  # a fresh process: nothing of the zip in memory

    proc = download(tmp_path / "second", server, setting.gosumdb(server), gocache,
                    str(liba.mv), check=False)  # fmt: skip
    assert proc.returncode != 0, f"a tampered zip must not verify\n{describe(proc)}"
    assert "SECURITY ERROR" in proc.stdout + proc.stderr, describe(proc)
    assert "checksum mismatch" in proc.stdout + proc.stderr, describe(proc)


def _republish(root: Path, path: str, version: str, files: dict[str, bytes]) -> None:
    vdir = root / escape_path(path) / "@v"
    stem = escape_version(version)
    (vdir / f"{stem}.zip").write_bytes(make_zip(ModuleVersion(path, version), files))


def _forget(store: Path, path: str, version: str) -> None:
    """Remove a version from the store, as an operator cleaning the cache would."""
    vdir = store / escape_path(path) / "@v"
    for item in vdir.glob(f"{escape_version(version)}.*"):
        item.unlink()


@pytest.mark.parametrize("verify", ["public", "log-only"])
def test_republished_version_is_refused(
    verify: str,
    tmp_path: Path,
    setting: Setting,
    sample: SampleProject,
    gocache: Path,
    modgate: ModgateFactory,
) -> None:
    store = tmp_path / "store"
    extra = () if verify == "public" else ("--verify-sumdb", "off")
    server = setting.serve(modgate, store, *extra)
    liba = sample.version("example.com/liba", "v1.1.0")
    download(tmp_path / "first", server, setting.gosumdb(server), gocache, str(liba.mv))

    server.stop()
    _forget(store, "example.com/liba", "v1.1.0")
    server = setting.serve(modgate, store, *extra)  # nothing of the version in memory
    files = {"go.mod": liba.mod, "liba.go": b'package liba\n\nfunc Name() string { return "x" }\n'}
    _republish(setting.proxy_root, "example.com/liba", "v1.1.0", files)
    answer = server.get(liba.url_path("zip"))

    assert answer.status == 404, f"a re-published zip must be refused, got {answer}"
    kind = "checksum_mismatch" if verify == "public" else "retagged"
    events = security_events(server)
    assert events.get(f'{{kind="{kind}"}}') == 1, (
        f"security events: {events}\n{server.stderr_text()}"
    )
    assert not (store / liba.url_path("zip").lstrip("/")).exists(), "the refused zip was stored"
    assert any('"event":"security"' in line for line in server.stderr_lines), "no security log"


def test_forked_public_database_is_detected(
    tmp_path: Path, setting: Setting, sample: SampleProject, gocache: Path, modgate: ModgateFactory
) -> None:
    store = tmp_path / "store"
    server = setting.serve(modgate, store)
    first, second = sample.versions[0], sample.versions[2]
    assert server.get(first.url_path("mod")).status == 200
    setting.public.fork(changed=0)
    server.stop()
    server = setting.serve(modgate, store)  # the last tree head seen is kept in the store

    answer = server.get(second.url_path("mod"))

    assert answer.status == 502, f"a forked database must stop verification, got {answer}"
    assert "misbehaved" in answer.body.decode(), answer
    events = security_events(server)
    assert events.get('{kind="sumdb_misbehavior"}', 0) >= 1, f"security events: {events}"
    assert not (store / second.url_path("mod").lstrip("/")).exists(), (
        "an unverified .mod was stored"
    )


def test_serve_refuses_bad_checksum_settings(tmp_path: Path) -> None:
    good, other, loose = tmp_path / "good.key", tmp_path / "other.key", tmp_path / "loose.key"
    for key in (good, other, loose):
        made = run_modgate("sumdb", "keygen", "--name", LOG_NAME, "--out", str(key))
        assert made.returncode == 0, describe(made)
    loose.chmod(0o644)
    store = tmp_path / "store"
    SumLog(FilesystemStore(store), load_signer(good), Metrics())  # the store's log uses "good"
    cases = {
        "bad database": (["--sumdb", "not a name=http://127.0.0.1:1"], "--sumdb"),
        "missing key file": (["--sumdb-key", str(tmp_path / "none")], "no such file"),
        "key readable by others": (["--sumdb-key", str(loose)], "chmod 600"),
        "another key for the log": (["--sumdb-key", str(other)], "signed with the key"),
        "unknown verify database": (["--verify-sumdb", "nowhere.example"], "--verify-sumdb"),
    }
    for case, (args, expected) in cases.items():
        proc = run_modgate(
            "serve", "--store", str(store), "--listen", "127.0.0.1:0", *args, timeout=30
        )
        assert proc.returncode == 2, f"{case}: exit {proc.returncode}\n{describe(proc)}"
        assert expected in proc.stderr, f"{case}: {expected!r} not in\n{describe(proc)}"
        assert "PRIVATE+KEY" not in proc.stdout + proc.stderr, f"{case}: the key leaked"
