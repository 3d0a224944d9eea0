"""The go command's effective settings, from ``go env -json`` or computed like it.

When a go command is on PATH, ``go env -json`` is the truth. Without one
the values are computed the way cmd/go/internal/cfg does: the environment
wins, then the user's go env file (``$GOENV``, else
``$XDG_CONFIG_HOME/go/env``, else ``$HOME/.config/go/env``; ``GOENV=off``
disables it), then the defaults of ``$GOROOT/go.env``. GONOPROXY and
GONOSUMDB default to GOPRIVATE; GOMODCACHE to ``$GOPATH/pkg/mod`` (first
GOPATH entry; GOPATH defaults to ``$HOME/go``); GOCACHE to
``$XDG_CACHE_HOME/go-build``, else ``$HOME/.cache/go-build``.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

GO_ENV_TIMEOUT = 20.0
"""Seconds ``go env -json`` may take."""
DEFAULTS = {
    "GOPROXY": "https://proxy.golang.org,direct",
    "GOSUMDB": "sum.golang.org",
    "GOTOOLCHAIN": "auto",
}
NAMES = (
    "GOPROXY",
    "GOSUMDB",
    "GOPRIVATE",
    "GONOPROXY",
    "GONOSUMDB",
    "GOINSECURE",
    "GOFLAGS",
    "GO111MODULE",
    "GOTOOLCHAIN",
    "GOPATH",
    "GOMODCACHE",
    "GOCACHE",
    "GOENV",
    "GOVERSION",
)
SOURCE_GO = "go env -json"
SOURCE_COMPUTED = "computed from the environment (no go command on PATH)"


@dataclass(frozen=True, slots=True)
class GoEnv:
    values: Mapping[str, str]
    source: str
    explicit: frozenset[str] = field(default_factory=frozenset)
    """Names set in the environment or the go env file (not defaults)."""

    def get(self, name: str) -> str:
        return self.values.get(name, "")


def _env_file(environ: Mapping[str, str]) -> dict[str, str]:
    path = environ.get("GOENV", "")
    if path == "off":
        return {}
    if not path:
        config = environ.get("XDG_CONFIG_HOME") or (
            posixpath.join(environ["HOME"], ".config") if environ.get("HOME") else ""
        )
        if not config:
            return {}
        path = posixpath.join(config, "go", "env")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        name, eq, value = line.strip().partition("=")
        if eq and name and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def compute(environ: Mapping[str, str]) -> GoEnv:
    """The settings the go command would use, without running it."""
    from_file = _env_file(environ)

    def lookup(name: str) -> str:
        return environ.get(name) or from_file.get(name, "")

    explicit = frozenset(n for n in NAMES if lookup(n))
    values = {n: lookup(n) or DEFAULTS.get(n, "") for n in NAMES}
    for name in ("GONOPROXY", "GONOSUMDB"):
        values[name] = values[name] or values["GOPRIVATE"]
    home = environ.get("HOME", "")
    if not values["GOPATH"] and home:
        values["GOPATH"] = posixpath.join(home, "go")
    if not values["GOMODCACHE"] and values["GOPATH"]:
        first = values["GOPATH"].split(os.pathsep)[0]
        values["GOMODCACHE"] = posixpath.join(first, "pkg", "mod")
    if not values["GOCACHE"]:
        cache_home = environ.get("XDG_CACHE_HOME") or (
            posixpath.join(home, ".cache") if home else ""
        )
        values["GOCACHE"] = posixpath.join(cache_home, "go-build") if cache_home else ""
    return GoEnv(values, SOURCE_COMPUTED, explicit)


def from_go(environ: Mapping[str, str], go: str) -> GoEnv | None:
    """``go env -json`` run with ``environ``; None when it cannot be run or read."""
    try:
        proc = subprocess.run(
            [go, "env", "-json"],
            env=dict(environ),
            capture_output=True,
            text=True,
            timeout=GO_ENV_TIMEOUT,
            check=False,
        )
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    values = {k: str(v) for k, v in data.items() if isinstance(k, str)}
    explicit = compute(environ).explicit
    return GoEnv(values, f"{SOURCE_GO} ({go})", explicit)


def effective(environ: Mapping[str, str], *, use_go: bool = True) -> GoEnv:
    go = shutil.which("go", path=environ.get("PATH", "")) if use_go else None
    if go is not None:
        found = from_go(environ, go)
        if found is not None:
            return found
    return compute(environ)
