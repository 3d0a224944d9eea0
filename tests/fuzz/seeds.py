"""Write the seed corpus: ``python -m fuzz.seeds`` (from ``tests/``) fills ``data/fuzz/<target>/``.

Seeds are small valid inputs of every shape a parser knows, so that the
fuzzer starts deep inside each parser instead of at its first check. The
files are committed; rerunning this script rewrites the same bytes.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from fuzz.targets import NOTE_SIGNER, SEP, ZIP_MODULE
from helpers.modules import make_zip
from modgate.formats.note import sign_note
from modgate.formats.tile import Tile

CORPUS = Path(__file__).resolve().parent.parent / "data" / "fuzz"

REQUESTS = [
    "/example.com/m/@v/list",
    "/example.com/m/@latest",
    "/example.com/m/@v/v1.2.3.info",
    "/example.com/m/@v/v1.2.3.mod",
    "/example.com/m/@v/v1.2.3.zip",
    "/github.com/%21azure/azure-sdk-for-go/@v/v0.0.0-20240102030405-abcdefabcdef.zip",
    "/gopkg.in/yaml.v3/@v/v3.0.1.mod",
    "/example.com/m/v2/@v/v2.0.0+incompatible.info",
    "/example.com/m/@v/main.info",
    "/example.com/m/@v/v1.2.3-pre.1%2Bbuild.info",
    "/example.com/m/@v/../../etc/passwd",
    "/sumdb/sum.golang.org/lookup/example.com/m@v1.2.3",
    "/sumdb/sum.golang.org/lookup/github.com/%21azure/x@v0.0.0-20240102030405-abcdefabcdef",
    "/sumdb/sum.golang.org/latest",
    "/sumdb/sum.golang.org/supported",
    "/sumdb/sum.golang.org/tile/8/0/x001/234.p/5",
    "/sumdb/sum.golang.org/tile/8/data/000",
]
MODULES = [
    ("example.com/m", "v1.2.3", "v1.2.4"),
    ("github.com/Azure/azure-sdk-for-go", "v0.0.0-20240102030405-abcdefabcdef", "v1.0.0"),
    ("example.com/m/v2", "v2.1.0-rc.1", "v2.1.0"),
    ("gopkg.in/yaml.v3", "v3.0.1", "v3.0.0"),
    ("example.com/old", "v2.0.0+incompatible", "v1.9.9"),
    ("example.com/m", "v1.2.4-0.20240102030405-abcdefabcdef", "v1.2.3"),
    ("example.com/m", "v1.2.3-pre.0.20240102030405-abcdefabcdef+build", "v1.2.3-pre"),
]
GOMODS = [
    b"module example.com/m\n\ngo 1.21\n",
    b'module "example.com/quoted"\n\ngo 1.22.1\n\ntoolchain go1.22.3\n',
    b"module example.com/m\n\nrequire (\n\texample.com/a v1.0.0\n\texample.com/b v1.2.0 "
    b"// indirect\n)\n\nreplace example.com/a => ../a\n\nexclude example.com/b v1.1.0\n",
    b"module example.com/m\n\n// broken release\nretract v1.0.1\n\nretract (\n\t[v1.1.0, v1.2.0]"
    b" // range\n\tv0.9.0\n)\n",
    b"// Deprecated: use example.com/n\nmodule example.com/m /* c */\n",
    b"module example.com/m\ngodebug default=go1.21\n",
]
INFOS = [
    b'{"Version":"v1.2.3","Time":"2024-01-02T03:04:05Z"}\n',
    b'{"Version":"v1.2.3","Time":"2024-01-02T03:04:05.123456789+01:30","Origin":{"VCS":"git",'
    b'"URL":"https://example.com/m","Hash":"abc","Ref":"refs/tags/v1.2.3"}}',
    b'{"version":"v1.2.3","time":"2024-01-02T03:04:05Z","Extra":[1,2,{"a":null}]}',
]
TREE = b"go.sum database tree\n12345\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"


def _zips() -> list[bytes]:
    mv = ZIP_MODULE
    return [
        make_zip(mv, {"go.mod": b"module example.com/fuzz\n", "a.go": b"package a\n"}),
        make_zip(mv, {"LICENSE": b"license\n", "sub/b.go": b"package b\n" * 50}),
        make_zip(mv, {"go.mod": b"module example.com/fuzz\n"}, compression=0),
    ]


def seeds() -> dict[str, list[bytes]]:
    signed = sign_note(TREE.decode(), [NOTE_SIGNER])
    key = NOTE_SIGNER.verifier()
    vkey = f"{key.name}+{key.hash:08x}+".encode()
    tiles = [Tile(8, 0, 0, 256), Tile(8, 1, 1_234_567, 17), Tile(8, -1, 5, 256)]
    return {
        "request": [r.encode() for r in REQUESTS],
        "module": [SEP.join(part.encode() for part in m) for m in MODULES],
        "gomod": GOMODS,
        "modzip": _zips(),
        "info": INFOS,
        "note": [signed, signed + SEP + vkey, b"text\n\n\xe2\x80\x94 other+01020304 AAAA\n"],
        "tile": [t.path().encode() for t in tiles]
        + [TREE, b"12\nexample.com/m v1.0.0 h1:x=\n\n" + TREE],
    }


def main() -> None:
    for target, inputs in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for data in inputs:
            name = "seed-" + hashlib.sha256(data).hexdigest()[:16]
            (folder / name).write_bytes(data)
    print(f"seeds written under {CORPUS}", file=sys.stderr)


if __name__ == "__main__":
    main()
