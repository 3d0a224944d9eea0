"""Git mirrors for unit tests: a bare mirror of a fixture repository, and counted reads."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from modgate.sources.git_cmd import GitRunner
from modgate.sources.git_mirror import Mirror
from modgate.sources.gitrepo import GitRepo


def mirrored(tmp_path: Path, source: Path, url: str) -> GitRepo:
    """A mirror of ``source`` under ``tmp_path/mirrors``, as the direct source keeps one."""
    mirror = Mirror(tmp_path / "mirrors", url, GitRunner(dict(os.environ)))
    mirror.dir.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "clone", "-q", "--mirror", str(source), str(mirror.dir)],
        check=True,
        env={"PATH": os.environ["PATH"], "GIT_CONFIG_GLOBAL": os.devnull, "HOME": str(tmp_path)},
    )
    return GitRepo(mirror, url)


def count_reads(repo: GitRepo) -> list[str]:
    """The names ``repo``'s mirror is asked to read from now on (one object at a time)."""
    reads: list[str] = []
    real = repo.mirror.read_object

    def counting(name: str):  # type: ignore[no-untyped-def]
        reads.append(name)
        return real(name)

    repo.mirror.read_object = counting  # type: ignore[method-assign]
    return reads
