"""is_confined: the store's check that a path stays under its root, links and all.

The check looks at each element below the (resolved) root and resolves the
whole path only when it meets a link; these tests hold it to the plain
answer of resolving the path every time, on real trees with links in them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from modgate.store.filesystem import is_confined

NAMES = ("a", "b", "c")


def resolved_answer(root: Path, path: Path) -> bool:
    return Path(os.path.realpath(path.parent)).is_relative_to(root)


# A tree is built from steps: a directory, a file, a link inside the root or a link outside it.
STEP = st.tuples(
    st.sampled_from(("dir", "file", "link-in", "link-out", "link-up", "link-loop")),
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=3),
    st.lists(st.sampled_from(NAMES), min_size=0, max_size=3),
)
QUERY = st.lists(st.sampled_from((*NAMES, "x", ".", "..")), min_size=1, max_size=5)


def build(base: Path, steps: list[tuple[str, list[str], list[str]]]) -> Path:
    root = base / "root"
    outside = base / "outside"
    root.mkdir()
    (outside / "a" / "b").mkdir(parents=True)
    for kind, where, target in steps:
        path = root.joinpath(*where)
        if path.exists() or path.is_symlink() or not path.parent.is_dir():
            continue
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_bytes(b"")
        elif kind == "link-in":
            path.symlink_to(root.joinpath(*target), target_is_directory=True)
        elif kind == "link-out":
            path.symlink_to(outside.joinpath(*target), target_is_directory=True)
        elif kind == "link-up":
            path.symlink_to(Path("..", *target), target_is_directory=True)
        else:
            path.symlink_to(path.name, target_is_directory=True)
    return root


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(STEP, max_size=12), queries=st.lists(QUERY, min_size=1, max_size=8))
def test_same_answer_as_resolving_the_path(
    steps: list[tuple[str, list[str], list[str]]], queries: list[list[str]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp).resolve()
        root = build(base, steps)
        for query in queries:
            path = root.joinpath(*query, "v1.0.0.mod")
            assert is_confined(root, path) == resolved_answer(root, path), (
                f"is_confined disagrees with resolving {path} (tree: {steps})"
            )


def test_plain_paths_below_the_root(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / "example.com" / "m" / "@v").mkdir(parents=True)
    assert is_confined(root, root / "example.com" / "m" / "@v" / "v1.0.0.mod")
    assert is_confined(root, root / "missing" / "deeper" / "v1.0.0.mod")
    assert is_confined(root, root / "list")


def test_a_link_out_of_the_root_is_seen_at_any_depth(tmp_path: Path) -> None:
    root = (tmp_path / "store").resolve()
    outside = tmp_path / "outside"
    (outside / "m").mkdir(parents=True)
    (root / "example.com").mkdir(parents=True)
    (root / "example.com" / "evil").symlink_to(outside, target_is_directory=True)
    assert not is_confined(root, root / "example.com" / "evil" / "m" / "v1.0.0.mod")
    assert not is_confined(root, root / "example.com" / "evil" / "v1.0.0.mod")
    assert is_confined(root, root / "example.com" / "v1.0.0.mod")


def test_paths_not_plainly_below_the_root(tmp_path: Path) -> None:
    root = (tmp_path / "store").resolve()
    root.mkdir()
    assert not is_confined(root, tmp_path / "elsewhere" / "v1.0.0.mod")
    assert not is_confined(root, root / ".." / "v1.0.0.mod")
    assert not is_confined(root, Path(f"{root}-sibling") / "x" / "v1.0.0.mod")
    assert is_confined(root, root / "a" / ".." / "v1.0.0.mod")
