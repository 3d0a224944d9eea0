"""``modgate store backup|restore`` and the store format marker.

A store with artifacts and a private checksum log is backed up and restored
into another store; the restore must reproduce both, refuse to move a log
backwards or onto another key (unless forced), never overwrite an immutable
artifact, and never write outside the store whatever the archive says.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import modgate.service.backup as backup_module
from modgate.formats.note import Signer, generate_signer
from modgate.formats.sumrecord import SumRecord
from modgate.metrics import Metrics
from modgate.protocol.errors import StoreError
from modgate.protocol.module import ModuleVersion
from modgate.service.backup import MANIFEST, BackupError, backup, read_logs, restore
from modgate.service.sumlog import SumLog
from modgate.store.base import Kind
from modgate.store.filesystem import FilesystemStore

H1 = "h1:" + "A" * 43 + "="
LOG = "sumdb.test.example"


def _record(i: int) -> SumRecord:
    mv = ModuleVersion(f"corp.example.com/lib{i}", "v1.0.0")
    return SumRecord(mv, f"h1:{i:043d}=", H1)


def _store(root: Path, signer: Signer, records: range) -> FilesystemStore:
    store = FilesystemStore(root)
    log = SumLog(store, signer, Metrics())
    for i in records:
        record = _record(i)
        store.put(record.mv, Kind.MOD, f"module {record.mv.path}\n".encode())
        store.put(record.mv, Kind.INFO, b'{"Version":"v1.0.0"}\n')
        log.add(record)
    return store


def _files(root: Path) -> dict[str, bytes]:
    skip = ("_modgate/tmp/", "_modgate/locks/")
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith(skip)
    }


@pytest.fixture
def signer() -> Signer:
    return generate_signer(LOG)


def test_backup_then_restore_reproduces_artifacts_and_the_log(tmp_path, signer):
    source = _store(tmp_path / "a", signer, range(40))
    archive = tmp_path / "backup.tar.gz"
    manifest = backup(source, archive)
    assert manifest["logs"][LOG]["tree"]["size"] == 40
    target = FilesystemStore(tmp_path / "b")
    report = restore(target, archive)
    assert report.conflicts == [] and report.forced == []
    before, after = _files(source.root), _files(target.root)
    assert before.keys() == after.keys(), sorted(before.keys() ^ after.keys())[:10]
    differing = [name for name in before if before[name] != after[name]]
    assert differing == [], differing[:10]
    restored = SumLog(target, signer, Metrics())
    assert restored.tree() == SumLog(source, signer, Metrics()).tree()
    assert restored.lookup_answer(_record(39).mv) is not None


def test_the_backup_holds_the_tree_head_read_before_the_pages(tmp_path, signer, monkeypatch):
    """An append during the backup cannot leave a tree head beyond the pages saved."""
    store = _store(tmp_path / "a", signer, range(10))
    log = SumLog(store, signer, Metrics())
    real_walk = backup_module._walk

    def walk_and_append(root, include_git):
        log.add(_record(10))  # a record appended after the tree head was read
        yield from real_walk(root, include_git)

    monkeypatch.setattr(backup_module, "_walk", walk_and_append)
    archive = tmp_path / "backup.tar"
    manifest = backup(store, archive)
    assert manifest["logs"][LOG]["tree"]["size"] == 10
    target = FilesystemStore(tmp_path / "b")
    restore(target, archive)
    restored = SumLog(target, signer, Metrics())
    assert restored.tree().n == 10
    assert restored.lookup_answer(_record(9).mv) is not None
    assert restored.lookup_answer(_record(10).mv) is None


def test_restore_refuses_to_move_a_log_backwards_unless_forced(tmp_path, signer):
    source = _store(tmp_path / "a", signer, range(5))
    archive = tmp_path / "backup.tar"
    backup(source, archive)
    ahead = _store(tmp_path / "b", signer, range(8))
    before = _files(ahead.root)
    with pytest.raises(BackupError) as refused:
        restore(ahead, archive)
    message = str(refused.value)
    assert "has 8 records, the backup's only 5" in message, message
    assert "SECURITY ERROR" in message and f"pkg/sumdb/{LOG}/" in message, message
    assert _files(ahead.root) == before, "a refused restore changed the store"
    report = restore(ahead, archive, force=True)
    assert report.forced and "backwards" in report.forced[0]
    assert read_logs(ahead)[LOG].tree.n == 5


def test_restore_refuses_a_log_signed_with_another_key(tmp_path, signer):
    archive = tmp_path / "backup.tar"
    backup(_store(tmp_path / "a", signer, range(3)), archive)
    other = _store(tmp_path / "b", generate_signer(LOG), range(3))
    with pytest.raises(BackupError, match="signed with"):
        restore(other, archive)


def test_restore_never_overwrites_an_artifact_with_other_bytes(tmp_path, signer):
    source = _store(tmp_path / "a", signer, range(2))
    archive = tmp_path / "backup.tar"
    backup(source, archive)
    target = FilesystemStore(tmp_path / "b")
    mv = _record(0).mv
    target.put(mv, Kind.MOD, b"module other\n")
    report = restore(target, archive)
    assert report.conflicts == ["corp.example.com/lib0/@v/v1.0.0.mod"], report.conflicts
    assert target.get(mv, Kind.MOD) == b"module other\n"


def _hostile_archive(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> None:
    with tarfile.open(path, "w") as archive:
        manifest = b'{"kind": "modgate-store-backup", "format": 1, "logs": {}}'
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        archive.addfile(info, io.BytesIO(manifest))
        member.size = len(data) if member.isfile() else 0
        archive.addfile(member, io.BytesIO(data) if member.isfile() else None)


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("../outside.txt"),
        tarfile.TarInfo("/tmp/absolute.txt"),
        tarfile.TarInfo("a/../../outside.txt"),
        tarfile.TarInfo("_modgate/locks/x.lock"),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "locks"],
)
def test_restore_refuses_members_that_leave_the_store(tmp_path, member):
    archive = tmp_path / "evil.tar"
    _hostile_archive(archive, member)
    target = FilesystemStore(tmp_path / "store")
    with pytest.raises(BackupError, match="refusing archive member"):
        restore(target, archive)
    assert not (tmp_path / "outside.txt").exists()


def test_restore_refuses_links(tmp_path):
    link = tarfile.TarInfo("example.com/m/@v/list")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = tmp_path / "evil.tar"
    _hostile_archive(archive, link)
    with pytest.raises(BackupError, match="not a regular file"):
        restore(FilesystemStore(tmp_path / "store"), archive)


def test_restore_refuses_what_is_not_a_backup(tmp_path):
    archive = tmp_path / "plain.tar"
    with tarfile.open(archive, "w") as f:
        info = tarfile.TarInfo("hello.txt")
        f.addfile(info, io.BytesIO(b""))
    with pytest.raises(BackupError, match="not a modgate backup"):
        restore(FilesystemStore(tmp_path / "store"), archive)


def test_a_new_store_is_marked_and_a_newer_format_is_refused(tmp_path):
    store = FilesystemStore(tmp_path / "s")
    marker = store.root / "_modgate" / "format"
    assert marker.read_text() == "modgate-store 1\n"
    marker.write_text("modgate-store 99\n")
    with pytest.raises(StoreError, match="format 99, newer than this modgate supports"):
        FilesystemStore(tmp_path / "s")
    marker.write_text("garbage")
    with pytest.raises(StoreError, match="format marker"):
        FilesystemStore(tmp_path / "s")


def _modgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modgate", *args],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_the_commands_back_up_and_restore(tmp_path, signer):
    source = _store(tmp_path / "a", signer, range(3))
    archive = tmp_path / "b.tar.gz"
    done = _modgate("store", "backup", "--store", str(source.root), str(archive))
    assert done.returncode == 0, done.stderr
    assert f"private log {LOG}: 3 records, verifier {signer.verifier()}" in done.stdout
    ahead = _store(tmp_path / "c", signer, range(4))
    refused = _modgate("store", "restore", "--store", str(ahead.root), str(archive))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "refusing to restore" in refused.stderr
    empty = tmp_path / "d"
    restored = _modgate("store", "restore", "--store", str(empty), str(archive))
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout


def test_sumdb_verifier_prints_the_key_of_an_existing_log(tmp_path):
    key = tmp_path / "signer.key"
    made = _modgate("sumdb", "keygen", "--name", LOG, "--out", str(key))
    assert made.returncode == 0, made.stderr
    again = _modgate("sumdb", "verifier", "--key", str(key))
    assert again.returncode == 0, again.stderr
    assert again.stdout == made.stdout
    assert "PRIVATE" not in again.stdout
