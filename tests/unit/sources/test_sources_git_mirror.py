"""The remote section a new mirror's config gets: git reads back exactly the URL written."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modgate.sources.git_cmd import GitError
from modgate.sources.git_mirror import remote_section


@settings(max_examples=60)
@given(
    st.text(st.characters(blacklist_characters="\n\r\0", blacklist_categories=["Cs"]), min_size=1)
)
def test_remote_section_round_trips_through_git_config(url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config"
        config.write_text(
            "[core]\n\tbare = true\n" + remote_section("origin", url), encoding="utf-8"
        )
        got = subprocess.run(
            ["git", "config", "-f", str(config), "--get", "remote.origin.url"],
            capture_output=True,
            check=True,
            env={"PATH": os.environ["PATH"], "HOME": tmp, "GIT_CONFIG_NOSYSTEM": "1"},
        ).stdout
    assert got.decode("utf-8") == url + "\n"


@pytest.mark.parametrize("bad", ["https://x\n[core]", "a\rb", "a\0b"])
def test_remote_section_refuses_line_breaks(bad: str) -> None:
    with pytest.raises(GitError):
        remote_section("origin", bad)
