"""A small Go program built against the x/mod that the installed toolchain vendors.

The oracle tests ask it how golang.org/x/mod answers (paths, versions,
notes, tlog) and compare with modgate. The toolchain carries x/mod under
``GOROOT/src/cmd/vendor``; it is copied into a temporary module and built
offline (GOPROXY=off). Nothing of it is kept in the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers.goenv import go_binary

BUILD_TIMEOUT = 240
STOP_TIMEOUT = 10


@contextmanager
def xmod_program(
    work: Path, main_go: str, packages: tuple[str, ...], probe: str, gocache: Path
) -> Iterator[subprocess.Popen[str]]:
    """Build ``main_go`` with x/mod's ``packages`` in ``work`` and run it (text pipes).

    ``probe`` is a file under x/mod that must exist, or the test is skipped.
    """
    go = str(go_binary())
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env |= {
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "GOWORK": "off",
        "GOCACHE": str(gocache),
        "GOPATH": str(work / "gopath"),
        "CGO_ENABLED": "0",
    }
    goroot = subprocess.run(
        [go, "env", "GOROOT"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    vendored = Path(goroot, "src", "cmd", "vendor", "golang.org", "x", "mod")
    if not (vendored / probe).exists():
        pytest.skip(f"the Go toolchain at {goroot} carries no x/mod {probe}")
    xmod = work / "xmod"
    for pkg in packages:
        shutil.copytree(vendored / pkg, xmod / pkg)
    (xmod / "go.mod").write_text("module golang.org/x/mod\n\ngo 1.22\n")
    (work / "go.mod").write_text(
        "module oracle\n\ngo 1.22\n\nrequire golang.org/x/mod v0.0.0\n\n"
        "replace golang.org/x/mod => ./xmod\n"
    )
    (work / "main.go").write_text(main_go)
    subprocess.run(
        [go, "build", "-o", "oracle", "."], cwd=work, env=env, check=True, timeout=BUILD_TIMEOUT
    )
    proc = subprocess.Popen(
        [str(work / "oracle")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    with proc:
        yield proc
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=STOP_TIMEOUT)
