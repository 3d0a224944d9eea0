"""``modgate import`` checks public modules against the checksum database, as serve does.

A checksum database runs on loopback (``TestSumdb``). An import of a
GOPROXY-layout tree must look every public version up and store it only
when the hashes agree; a tampered version, or one whose record cannot be
fetched, is refused and named; private modules are never looked up.
"""

from __future__ import annotations

from pathlib import Path

from helpers.goenv import describe
from helpers.modules import SampleProject, stored_problems
from helpers.servers import dead_port, run_modgate
from helpers.sumdbserver import TestSumdb, proxy_gosum
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.module import ModuleVersion


def _import(store: Path, source: Path, *args: str):
    return run_modgate("import", "--store", str(store), *args, str(source))


def test_import_verifies_public_modules_against_the_database(
    tmp_path: Path, sample: SampleProject
) -> None:
    with TestSumdb(proxy_gosum(sample.proxy_root)) as db:
        proc = _import(tmp_path / "store", sample.proxy_root, "--sumdb", db.spec)
        assert proc.returncode == 0, describe(proc)
        looked_up = {path for path in db.requests if path.startswith("/lookup/")}
    problems = [p for built in sample.versions for p in stored_problems(tmp_path / "store", built)]
    assert not problems, "\n".join(problems)
    expected = {
        f"/lookup/{escape_path(b.mv.path)}@{escape_version(b.mv.version)}" for b in sample.versions
    }
    assert expected <= looked_up, sorted(expected - looked_up)


def test_import_refuses_a_version_the_database_disagrees_with(
    tmp_path: Path, sample: SampleProject
) -> None:
    honest = proxy_gosum(sample.proxy_root)
    bad = sample.versions[0]

    def lying(mv: ModuleVersion) -> bytes | None:
        record = honest(mv)
        if record is not None and mv == bad.mv:
            first, second = record.decode().splitlines()
            first = first.rsplit(" ", 1)[0] + " h1:" + "A" * 43 + "="
            return f"{first}\n{second}\n".encode()
        return record

    with TestSumdb(lying) as db:
        proc = _import(tmp_path / "store", sample.proxy_root, "--sumdb", db.spec)
    assert proc.returncode == 1, describe(proc)
    refused = [line for line in proc.stdout.splitlines() if line.startswith("refused")]
    assert len(refused) == 1 and str(bad.mv) in refused[0], describe(proc)
    assert "differs from" in refused[0] and "checksum database" in refused[0], refused[0]
    assert not (tmp_path / "store" / bad.url_path("zip").lstrip("/")).exists()
    assert not (tmp_path / "store" / bad.url_path("mod").lstrip("/")).exists()


def test_an_unreachable_database_refuses_and_says_how_to_import_anyway(
    tmp_path: Path, sample: SampleProject
) -> None:
    with TestSumdb(proxy_gosum(sample.proxy_root)) as db:
        spec = db.spec.rsplit("=", 1)[0] + f"=http://127.0.0.1:{dead_port()}"
    proc = _import(tmp_path / "store", sample.proxy_root, "--sumdb", spec)
    assert proc.returncode == 1, describe(proc)
    refused = [line for line in proc.stdout.splitlines() if line.startswith("refused")]
    assert len(refused) >= len(sample.versions), describe(proc)
    assert all("cannot be verified" in line for line in refused), refused
    assert all("--verify-sumdb off" in line for line in refused), refused
    off = _import(tmp_path / "store", sample.proxy_root, "--sumdb", spec, "--verify-sumdb", "off")
    assert off.returncode == 0, describe(off)
    assert "not checked against a checksum database" in off.stderr


def test_private_modules_are_never_looked_up(tmp_path: Path, sample: SampleProject) -> None:
    with TestSumdb(proxy_gosum(sample.proxy_root)) as db:
        proc = _import(
            tmp_path / "store",
            sample.proxy_root,
            "--sumdb",
            db.spec,
            "--private",
            "example.com,corp.example.com",
        )
        assert proc.returncode == 0, describe(proc)
        assert not [p for p in db.requests if p.startswith("/lookup/")], db.requests


def test_a_folder_with_nothing_to_import_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _import(tmp_path / "store", empty)
    assert proc.returncode == 1, describe(proc)
    assert f"nothing to import in {empty}: expected a module cache's download folder" in proc.stderr
    cache_root = tmp_path / "gomodcache"
    (cache_root / "cache" / "download").mkdir(parents=True)
    proc = _import(tmp_path / "store", cache_root)
    assert proc.returncode == 1, describe(proc)
    assert f"import {cache_root / 'cache' / 'download'} instead" in proc.stderr, describe(proc)
