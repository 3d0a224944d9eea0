"""What a module zip keeps, omits and refuses: filter_module_files and the zip writer (zipbuild)."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.modules import production_zip
from modgate.formats import modzip
from modgate.formats.dirhash import hash1, hash_zip
from modgate.formats.modzip import (
    InvalidZipError,
    Problem,
    SourceFile,
    check_zip,
    filter_module_files,
    is_vendored,
    root_go_version,
)
from modgate.protocol.errors import InvalidModuleError
from modgate.protocol.module import ModuleVersion

MV = ModuleVersion("example.com/m", "v1.0.0")
PREFIX = "example.com/m@v1.0.0/"
SYMLINK = stat.S_IFLNK | 0o777
DIRECTORY = stat.S_IFDIR | 0o755
# `go mod download` reported this Sum for a zip of exactly these files.
GO_KNOWN_FILES = [
    SourceFile("go.mod", b"module example.com/m\n\ngo 1.21\n"),
    SourceFile("m.go", b"package m\n"),
    SourceFile("sub/x.go", b"package sub\n"),
    SourceFile("vendor/modules.txt", b"x"),
    SourceFile("ünï/ß.txt", b"hi"),
]
GO_KNOWN_H1 = "h1:hDLQLSRo3NpFdRgOiiFT0NjlfJTC71+V23BrwQGipyo="


@pytest.mark.parametrize(
    ("name", "go_version", "vendored"),
    [
        ("vendor/modules.txt", None, False),
        ("vendor/modules.txt", "1.23", False),
        ("vendor/modules.txt", "1.24", True),
        ("vendor/modules.txt", "1.24.0", True),
        ("vendor/modules.txt", "1.25rc1", True),
        ("vendor/modules.txt", "2.0", True),
        ("vendor/modules.txt", "1.24.1rc1", False),  # not a Go version: old rule
        ("vendor/top.go", None, False),
        ("vendor/top.go", "1.24", False),
        ("vendor/a/b.go", None, True),
        ("vendor/a/b.go", "1.24", True),
        ("pkg/vendor/vendor.go", None, True),  # the historic offset bug
        ("pkg/vendor/vendor.go", "1.23", True),
        ("pkg/vendor/vendor.go", "1.24", False),
        ("pkg/vendor/foo/foo.go", "1.21", True),
        ("pkg/vendor/foo/foo.go", "1.24", True),
        ("sub/vendor/sub.txt", "1.21", True),
        ("sub/vendor/sub.txt", "1.24", False),
        ("a/b/c/vendor/x.go", "1.21", True),
        ("a/vendor", None, False),
        ("vendor", None, False),
        ("xvendor/a/b.go", None, False),
        ("vendors/a/b.go", None, False),
    ],
)
def test_is_vendored(name: str, go_version: str | None, vendored: bool) -> None:
    got = is_vendored(name, go_version)
    assert got == vendored, f"is_vendored({name!r}, go {go_version}) = {got}"


@pytest.mark.parametrize(
    ("files", "want"),
    [
        ([SourceFile("go.mod", b"module m\ngo 1.24\n")], "1.24"),
        ([SourceFile("go.mod", b"module m\ngo 1.22.x\n")], "1.22"),
        ([SourceFile("go.mod", b"module m\n")], None),
        ([SourceFile("go.mod", b"module m\ngo 1.24\nrequire x\n")], None),  # ParseLax fails
        ([SourceFile("go.mod", b"go 1.24\n", SYMLINK)], None),
        ([SourceFile("sub/go.mod", b"go 1.24\n")], None),
        ([], None),
    ],
)
def test_root_go_version(files: list[SourceFile], want: str | None) -> None:
    assert root_go_version(files) == want


OMITTED = [
    ("vendor/a/b.go", None, "file is in vendor directory"),
    ("vendor/a/bad:name", None, "file is in vendor directory"),  # omitted before it is checked
    ("sub/go.mod", None, "file is in another module"),
    ("sub/x.go", None, "file is in another module"),
    ("sub/deep/er/x.go", None, "file is in another module"),
    ("sub/bad:name", None, "file is in another module"),
    ("CAP/GO.MOD", None, "file is in another module"),
    ("CAP/y.go", None, "file is in another module"),
    (".hg_archival.txt", None, "file is inserted by 'hg archive' and is always omitted"),
    ("link.go", SYMLINK, "file is a symbolic link"),
    ("lnk/go.mod", SYMLINK, "file is a symbolic link"),
    ("dir", DIRECTORY, "not a regular file"),
]
KEPT = ["go.mod", "a.go", "x/.hg_archival.txt", "lnk/x.go", "vendor/modules.txt", "vendor/top.go"]


def test_filter_module_files_omissions() -> None:
    files = [SourceFile(n, b"module example.com/m\n" if n == "go.mod" else b"x") for n in KEPT]
    files += [SourceFile("sub/go.mod", b"module example.com/m/sub\n")]
    files += [SourceFile("CAP/GO.MOD", b"x")]
    files += [SourceFile(n, b"x", mode or modzip.REGULAR_FILE_MODE) for n, mode, _ in OMITTED]
    kept, omitted = filter_module_files(MV, files, None)
    assert [f.name for f in kept] == KEPT, f"kept {[f.name for f in kept]}"
    want = {name: why for name, _, why in OMITTED}
    assert dict(omitted) == want, f"omitted {omitted}"


FATAL = [
    ("bad-char", ["bad:name.txt"], Problem.BAD_PATH),
    ("reserved", ["aux.c"], Problem.BAD_PATH),
    ("not-clean", ["a/../b.go"], Problem.NOT_CLEAN),
    ("dot", ["./a.go"], Problem.NOT_CLEAN),
    ("not-clean-in-vendor", ["vendor/../x.go"], Problem.NOT_CLEAN),
    ("absolute", ["/a.go"], Problem.NOT_RELATIVE),
    ("root-go-mod-case", ["GO.MOD"], Problem.GO_MOD_CASE),
    ("case-collision", ["m.go", "M.GO"], Problem.CASE_COLLISION),
    ("kelvin-collision", ["k.go", "\u212a.go"], Problem.CASE_COLLISION),
    ("duplicate", ["a.go", "a.go"], Problem.DUPLICATE),
    ("file-and-dir", ["a.go", "a.go/b.go"], Problem.FILE_AND_DIR),
]


@pytest.mark.parametrize(
    ("names", "want"), [(n, w) for _, n, w in FATAL], ids=[c[0] for c in FATAL]
)
def test_filter_module_files_fatal(names: list[str], want: Problem) -> None:
    files = [SourceFile(n, b"x") for n in names]
    with pytest.raises(InvalidZipError) as caught:
        filter_module_files(MV, files, None)
    got = [p.problem for p in caught.value.problems]
    assert want in got, f"expected {want.name}, found {[p.name for p in got]}"


@pytest.mark.parametrize(
    ("limit", "name", "want"),
    [
        ("MAX_GO_MOD", "go.mod", Problem.GO_MOD_SIZE),
        ("MAX_LICENSE", "LICENSE", Problem.LICENSE_SIZE),
        ("MAX_ZIP_FILE", "data.bin", Problem.TOTAL_SIZE),
    ],
)
def test_filter_module_files_size_limits(
    monkeypatch: pytest.MonkeyPatch, limit: str, name: str, want: Problem
) -> None:
    monkeypatch.setattr(modzip, limit, 10)
    kept, _ = filter_module_files(MV, [SourceFile(name, bytes(10))], None)
    assert [f.name for f in kept] == [name], f"{name} at the {limit} was not kept"
    with pytest.raises(InvalidZipError) as caught:
        filter_module_files(MV, [SourceFile(name, bytes(11))], None)
    got = [p.problem for p in caught.value.problems]
    assert want in got, f"expected {want.name}, found {[p.name for p in got]}"


def test_create_zip_known_answer() -> None:
    data = production_zip(MV, GO_KNOWN_FILES)
    got = check_zip(MV, io.BytesIO(data), len(data))
    assert got.h1 == GO_KNOWN_H1, f"h1 {got.h1}, the go command {GO_KNOWN_H1}"


def test_create_zip_layout() -> None:
    files = [*reversed(GO_KNOWN_FILES), SourceFile("vendor/x/y.go", b"v")]
    data = production_zip(MV, files)
    assert data == production_zip(MV, files), "the zip writer is not deterministic"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    want = sorted(PREFIX + f.name for f in GO_KNOWN_FILES)
    assert names == want, f"entries {names}"
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos), "not deflated"
    assert not any(n.endswith("/") for n in names), "directory entries written"


@pytest.mark.parametrize(
    "mv",
    [ModuleVersion("example.com/m", "v1.0"), ModuleVersion("example.com/m/v2", "v1.0.0")],
)
def test_create_zip_refuses_bad_module_versions(mv: ModuleVersion) -> None:
    with pytest.raises(InvalidModuleError):
        production_zip(mv, GO_KNOWN_FILES)


def test_create_zip_refuses_invalid_files() -> None:
    with pytest.raises(InvalidZipError) as caught:
        production_zip(MV, [SourceFile("m.go", b"1"), SourceFile("M.go", b"2")])
    assert "example.com/m@v1.0.0" in str(caught.value)


DIRS = ["a", "B", "ü", "Ω", "ß", "vendor", "sub", "pkg"]
BASES = ["x.go", "Y.txt", "go.mod", "LICENSE.md", "ñ.c", ".hg_archival.txt", "modules.txt"]
GO_MODS = [b"module example.com/m\n", b"module example.com/m\n\ngo 1.24\n", b"go 1.21\n"]
paths = st.builds(
    lambda dirs, base: "/".join([*dirs, base]),
    st.lists(st.sampled_from(DIRS), max_size=3),
    st.sampled_from(BASES),
)
source_files = st.dictionaries(
    paths,
    st.tuples(
        st.binary(max_size=40),
        st.sampled_from([modzip.REGULAR_FILE_MODE, 0o100755, SYMLINK]),
        st.sampled_from(GO_MODS),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(source_files)
def test_create_then_check_round_trip(spec: dict[str, tuple[bytes, int, bytes]]) -> None:
    files = [
        SourceFile(name, gomod if name.endswith("go.mod") else data, mode)
        for name, (data, mode, gomod) in spec.items()
    ]
    kept, _ = filter_module_files(MV, files, root_go_version(files))
    data = production_zip(MV, files)
    got = check_zip(MV, io.BytesIO(data), len(data))
    want_names = tuple(sorted(f.name for f in kept))
    assert got.files == want_names, f"zip holds {got.files}, filter kept {want_names}"
    want_h1 = hash1((PREFIX + f.name, f.data) for f in kept)
    assert got.h1 == want_h1 == hash_zip(io.BytesIO(data)), f"h1 differs for {want_names}"
    root = [f.data for f in kept if f.name == "go.mod"]
    assert got.go_mod == (root[0] if root else None), "root go.mod bytes differ"
