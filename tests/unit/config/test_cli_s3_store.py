"""Commands that need a filesystem store refuse an s3:// store instead of making a directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "argv",
    [
        ["import", "--store", "s3://bucket/prefix", "SRC"],
        ["store", "backup", "--store", "s3://bucket/prefix", "backup.tar"],
    ],
)
def test_s3_store_is_refused_with_exit_2(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "SRC").mkdir()
    before = sorted(os.listdir(tmp_path))
    ran = subprocess.run(
        [sys.executable, "-m", "modgate", *argv],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == 2, f"exit {ran.returncode}: {ran.stderr}"
    assert "s3://" in ran.stderr and "filesystem store" in ran.stderr, ran.stderr
    assert sorted(os.listdir(tmp_path)) == before, "a directory was made for the s3:// name"
