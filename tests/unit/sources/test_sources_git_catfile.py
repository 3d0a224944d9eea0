"""Pipelined cat-file queries: chunking that can never deadlock on pipe buffers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from modgate.sources.git_catfile import CHUNK, CHUNK_BYTES, CatFile, _chunks
from modgate.sources.git_cmd import GitRunner


@given(st.lists(st.text(max_size=3000), max_size=700))
def test_chunks_keep_order_and_bounds(names: list[str]) -> None:
    chunks = list(_chunks(names))
    assert [n for c in chunks for n in c] == names
    for chunk in chunks:
        assert 1 <= len(chunk) <= CHUNK
        assert len(chunk) == 1 or sum(len(n) + 1 for n in chunk) <= CHUNK_BYTES


def test_a_large_query_of_long_names_completes(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    names = [f"HEAD:{i}-" + "x" * 2000 for i in range(400)]  # 800 kB of names, all missing
    for check in (True, False):
        cat = CatFile(GitRunner(dict(os.environ)), repo, check=check)
        try:
            got = cat.sizes(names) if check else cat.read_many(names)
        finally:
            cat.close()
        assert got == [None] * len(names)
