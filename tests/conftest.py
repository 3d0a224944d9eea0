"""Suite-wide hermeticity, plus the fixtures the end-to-end tests share.

At session start every variable that could steer the go command or an HTTP
client elsewhere (``GO*``, ``GOFLAGS``, ``GOPRIVATE`` ..., ``HTTP(S)_PROXY``,
``NO_PROXY``) and every ``MODGATE_*`` setting is removed from the environment,
and a guard makes any connection outside loopback fail; a test during which
such an attempt happened fails even if the error was swallowed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from helpers.modules import SampleProject, sample_project
from helpers.netguard import NetworkGuard
from helpers.servers import (
    ModgateFactory,
    ModgateHandle,
    StaticProxyFactory,
    start_modgate,
)
from helpers.staticproxy import StaticProxy

_CLEARED_PREFIXES = ("GO", "MODGATE_")
_CLEARED_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "FTP_PROXY")

_GUARD = NetworkGuard()

# Property tests share two cores with go builds and servers: no per-example deadline.
settings.register_profile(
    "modgate", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("modgate")


def clean_environment(environ: os._Environ[str]) -> list[str]:
    """Remove go, modgate and proxy settings from ``environ``; return what was removed."""
    removed = []
    for name in list(environ):
        upper = name.upper()
        if upper.startswith(_CLEARED_PREFIXES) or upper in _CLEARED_NAMES:
            removed.append(name)
            del environ[name]
    return removed


def pytest_configure(config: pytest.Config) -> None:
    clean_environment(os.environ)
    _GUARD.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    _GUARD.uninstall()


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    before = len(_GUARD.attempts)
    yield
    attempts = _GUARD.attempts[before:]
    if attempts:
        pytest.fail("\n".join(attempts))


@pytest.fixture
def network_guard() -> NetworkGuard:
    """The session's guard, for tests of the guard itself (they must consume ``attempts``)."""
    return _GUARD


# --------------------------------------------------------------------------- shared fixtures


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleProject:
    """The sample modules and main module (read-only: copy before changing anything)."""
    return sample_project(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="session")
def gocache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A go build cache shared by every test (content-addressed, so sharing is safe)."""
    return tmp_path_factory.mktemp("gocache")


@pytest.fixture
def static_proxy() -> Iterator[StaticProxyFactory]:
    """Start :class:`StaticProxy` servers over given roots; all are closed on teardown."""
    started: list[StaticProxy] = []

    def start(root: Path) -> StaticProxy:
        proxy = StaticProxy(root)
        started.append(proxy)
        return proxy

    yield start
    for proxy in reversed(started):
        proxy.close()


@pytest.fixture
def modgate(tmp_path: Path) -> Iterator[ModgateFactory]:
    """Start ``modgate serve`` processes (``modgate(*args, env=..., store=...)``).

    Each gets its own store under ``tmp_path`` unless ``store`` or ``--store``
    is given. Processes still running at teardown are killed.
    """
    started: list[ModgateHandle] = []

    def start(
        *args: str, env: Mapping[str, str] | None = None, store: Path | None = None
    ) -> ModgateHandle:
        workdir = tmp_path / f"modgate{len(started)}"
        workdir.mkdir(exist_ok=True)
        if store is not None:
            args = ("--store", str(store), *args)
        handle = start_modgate(workdir, *args, env=env)
        started.append(handle)
        return handle

    yield start
    for handle in reversed(started):
        handle.kill()
