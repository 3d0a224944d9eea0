"""Module versions built without the go command, in the GOPROXY layout.

The zips are written with :mod:`zipfile` directly and the h1 hashes are
computed here from the file contents, independently of modgate, so the tests
compare modgate and the go command against a third opinion.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from modgate.formats.modzip import MAX_ZIP_FILE, SourceFile
from modgate.protocol.escape import escape_path, escape_version
from modgate.protocol.module import ModuleVersion
from modgate.sources.zipbuild import write_zip

DEFAULT_TIME = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def dirhash_h1(files: Iterable[tuple[str, bytes]]) -> str:
    """The h1 hash: sort names, ``sha256hex  name\\n`` each, base64 of the summary's SHA-256."""
    summary = bytearray()
    for name, data in sorted(files, key=lambda item: item[0].encode()):
        if "\n" in name:
            raise ValueError(f"file name {name!r} contains a newline and cannot be hashed")
        summary += f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()
    return "h1:" + base64.b64encode(hashlib.sha256(bytes(summary)).digest()).decode()


def zip_h1(zip_bytes: bytes) -> str:
    """The h1 of a module zip's entries, as recorded in go.sum and ``.ziphash``."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        return dirhash_h1((info.filename, archive.read(info)) for info in archive.infolist())


def gomod_h1(mod: bytes) -> str:
    """The ``/go.mod`` h1 of a version: the hash of the single file ``go.mod``."""
    return dirhash_h1([("go.mod", mod)])


def make_zip(
    mv: ModuleVersion,
    files: Mapping[str, bytes],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A module zip: entries ``path@version/name``, no directory entries."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(f"{mv.path}@{mv.version}/{name}", (2024, 1, 2, 3, 4, 6))
            info.compress_type = compression
            archive.writestr(info, files[name])
    return out.getvalue()


def synthesized_mod(path: str) -> bytes:
    """The .mod the go command synthesizes for a version without a go.mod."""
    return f"module {path}\n".encode()


@dataclass(frozen=True)
class BuiltVersion:
    """One module version written to a GOPROXY tree, with its expected hashes."""

    mv: ModuleVersion
    info: bytes
    mod: bytes
    zip: bytes
    h1: str
    gomod_h1: str

    def escaped_dir(self) -> str:
        """``<escaped module>/@v`` relative to the tree's root."""
        return f"{escape_path(self.mv.path)}/@v"

    def url_path(self, kind: str) -> str:
        """The request path of one artifact (``kind`` is info, mod or zip)."""
        return f"/{self.escaped_dir()}/{escape_version(self.mv.version)}.{kind}"

    def gosum_lines(self) -> str:
        return (
            f"{self.mv.path} {self.mv.version} {self.h1}\n"
            f"{self.mv.path} {self.mv.version}/go.mod {self.gomod_h1}\n"
        )


def write_module_version(
    root: Path,
    path: str,
    version: str,
    files: Mapping[str, bytes],
    time: datetime | str = DEFAULT_TIME,
    *,
    compression: int = zipfile.ZIP_DEFLATED,
) -> BuiltVersion:
    """Write ``.info``, ``.mod`` and ``.zip`` of ``path@version`` under ``root`` and list it.

    The .mod is the zip's go.mod, or ``module <path>\\n`` when the version has none.
    """
    mv = ModuleVersion(path, version)
    stamp = time if isinstance(time, str) else time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    info = json.dumps({"Version": version, "Time": stamp}).encode() + b"\n"
    mod = files.get("go.mod", synthesized_mod(path))
    zip_bytes = make_zip(mv, files, compression=compression)
    vdir = root / escape_path(path) / "@v"
    vdir.mkdir(parents=True, exist_ok=True)
    stem = escape_version(version)
    (vdir / f"{stem}.info").write_bytes(info)
    (vdir / f"{stem}.mod").write_bytes(mod)
    (vdir / f"{stem}.zip").write_bytes(zip_bytes)
    listing = vdir / "list"
    known = listing.read_text().split() if listing.exists() else []
    if version not in known:
        with listing.open("a") as out:
            out.write(version + "\n")
    return BuiltVersion(
        mv=mv,
        info=info,
        mod=mod,
        zip=zip_bytes,
        h1=dirhash_h1((f"{path}@{version}/{name}", data) for name, data in files.items()),
        gomod_h1=gomod_h1(mod),
    )


def write_big_module(root: Path, size: int) -> BuiltVersion:
    """``example.com/big@v1.0.0`` with ``size`` incompressible bytes, stored: a zip that big."""
    return write_module_version(
        root,
        "example.com/big",
        "v1.0.0",
        {"go.mod": b"module example.com/big\n", "blob.bin": os.urandom(size)},
        compression=zipfile.ZIP_STORED,
    )


def _gomod(path: str, *requires: str) -> bytes:
    text = f"module {path}\n\ngo 1.21\n"
    if requires:
        text += "\nrequire (\n" + "".join(f"\t{r}\n" for r in requires) + ")\n"
    return text.encode()


@dataclass
class SampleProject:
    """A GOPROXY tree of sample modules and a main module that builds against them."""

    proxy_root: Path
    main_dir: Path
    versions: list[BuiltVersion] = field(default_factory=list)
    private: list[BuiltVersion] = field(default_factory=list)

    def version(self, path: str, version: str) -> BuiltVersion:
        for built in [*self.versions, *self.private]:
            if built.mv == ModuleVersion(path, version):
                return built
        raise KeyError(f"{path}@{version} is not part of the sample project")

    def download_args(self) -> list[str]:
        """``path@version`` of every public sample version, for ``go mod download``."""
        return [str(built.mv) for built in self.versions]


def sample_project(tmp: Path) -> SampleProject:
    """Build the sample: several modules exercising escaping, majors and +incompatible.

    - ``example.com/liba`` v1.0.0 and v1.1.0
    - ``example.com/libb/v2`` v2.0.0, requiring liba v1.1.0
    - ``example.com/Upper/kit`` v1.0.0 (escaped ``example.com/!upper/kit``)
    - ``example.com/old`` v2.0.0+incompatible, without a go.mod
    - ``corp.example.com/secret`` v1.0.0, a module that must stay private
    - the main module ``example.com/app`` (go.mod, go.sum, main.go) importing
      packages of all public modules, so ``go build`` must compile them.
    """
    root = tmp / "proxy"
    main_dir = tmp / "app"
    root.mkdir(parents=True)
    main_dir.mkdir(parents=True)
    sample = SampleProject(proxy_root=root, main_dir=main_dir)
    add = sample.versions.append
    liba = "example.com/liba"
    for version, hour in (("v1.0.0", 1), ("v1.1.0", 2)):
        add(
            write_module_version(
                root,
                liba,
                version,
                {
                    "go.mod": _gomod(liba),
                    "liba.go": b'package liba\n\nfunc Name() string { return "liba '
                    + version.encode()
                    + b'" }\n',
                    "LICENSE": b"Sample license text.\n",
                },
                DEFAULT_TIME.replace(hour=hour),
            )
        )
    libb = "example.com/libb/v2"
    add(
        write_module_version(
            root,
            libb,
            "v2.0.0",
            {
                "go.mod": _gomod(libb, "example.com/liba v1.1.0"),
                "libb.go": b'package libb\n\nimport "example.com/liba"\n\n'
                b'func Name() string { return "libb uses " + liba.Name() }\n',
                "sub/sub.go": b"package sub\n\nconst Answer = 42\n",
            },
        )
    )
    kit = "example.com/Upper/kit"
    add(
        write_module_version(
            root,
            kit,
            "v1.0.0",
            {
                "go.mod": _gomod(kit),
                "kit.go": b'package kit\n\nfunc Name() string { return "Upper kit" }\n',
            },
        )
    )
    old = "example.com/old"
    add(
        write_module_version(
            root,
            old,
            "v2.0.0+incompatible",
            {"old.go": b'package old\n\nfunc Name() string { return "old" }\n'},
        )
    )
    secret = "corp.example.com/secret"
    sample.private.append(
        write_module_version(
            root,
            secret,
            "v1.0.0",
            {
                "go.mod": _gomod(secret),
                "secret.go": b"package secret\n\nconst Key = 1\n",
            },
        )
    )
    requires = [
        "example.com/liba v1.1.0",
        "example.com/libb/v2 v2.0.0",
        "example.com/Upper/kit v1.0.0",
        "example.com/old v2.0.0+incompatible",
    ]
    (main_dir / "go.mod").write_bytes(_gomod("example.com/app", *requires))
    (main_dir / "go.sum").write_text(
        "".join(sample.version(*line.split()).gosum_lines() for line in requires)
    )
    (main_dir / "main.go").write_text(
        "package main\n\n"
        "import (\n"
        '\t"example.com/Upper/kit"\n'
        '\t"example.com/liba"\n'
        '\t"example.com/libb/v2"\n'
        '\t"example.com/libb/v2/sub"\n'
        '\t"example.com/old"\n'
        ")\n\n"
        "func main() {\n"
        "\tprintln(liba.Name(), libb.Name(), kit.Name(), old.Name(), sub.Answer)\n"
        "}\n"
    )
    return sample


def download_problems(
    results: Iterable[Mapping[str, object]],
    expected: Iterable[BuiltVersion],
    *,
    store: Path | None = None,
) -> list[str]:
    """What differs between ``go mod download -json`` results and the built versions.

    Each ``Sum``/``GoModSum`` must equal the independently computed h1; with
    ``store``, the stored ``.ziphash`` must hold the same h1 and the stored
    ``.mod``/``.zip`` must be byte-identical to what was published.
    """
    by_version = {
        ModuleVersion(str(item.get("Path")), str(item.get("Version"))): item for item in results
    }
    problems: list[str] = []
    for built in expected:
        got = by_version.get(built.mv)
        if got is None:
            problems.append(
                f"{built.mv}: go printed no result (got {sorted(map(str, by_version))})"
            )
            continue
        if got.get("Error"):
            problems.append(f"{built.mv}: go reported an error: {got['Error']}")
            continue
        if got.get("Sum") != built.h1:
            problems.append(f"{built.mv}: go's Sum {got.get('Sum')} != computed {built.h1}")
        if got.get("GoModSum") != built.gomod_h1:
            problems.append(
                f"{built.mv}: go's GoModSum {got.get('GoModSum')} != computed {built.gomod_h1}"
            )
        if store is not None:
            problems.extend(stored_problems(store, built))
    return problems


def stored_problems(store: Path, built: BuiltVersion) -> list[str]:
    """What is missing or different in ``store`` for one built version."""
    vdir = store / escape_path(built.mv.path) / "@v"
    stem = escape_version(built.mv.version)
    problems: list[str] = []
    ziphash = vdir / f"{stem}.ziphash"
    if not ziphash.is_file():
        problems.append(f"{built.mv}: no {ziphash.name} in the store")
    elif ziphash.read_text().strip() != built.h1:
        problems.append(
            f"{built.mv}: stored .ziphash {ziphash.read_text().strip()!r} != computed {built.h1}"
        )
    for kind, data in (("mod", built.mod), ("zip", built.zip)):
        stored = vdir / f"{stem}.{kind}"
        if not stored.is_file():
            problems.append(f"{built.mv}: no {stored.name} in the store")
        elif stored.read_bytes() != data:
            problems.append(f"{built.mv}: stored {stored.name} differs from the published bytes")
    return problems


def production_zip(mv: ModuleVersion, files: list[SourceFile]) -> bytes:
    """The module zip modgate's own writer (``sources.zipbuild``) makes of ``files``."""
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "module.zip"
        write_zip(mv, list(files), dest, MAX_ZIP_FILE)
        return dest.read_bytes()
