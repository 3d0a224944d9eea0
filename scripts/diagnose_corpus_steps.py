"""The steps of the corpus cases: each drives the real go command into one failure class.

A step function takes the :class:`Sandbox` and returns what the go commands
printed (a failing command ends the case, as ``set -e`` would in CI).
:func:`download` covers most cases: a project with given requirements and
go.sum, one go command, and environment changes. The others need a special
setup: a read-only or full module cache, an unprivileged user, a poisoned
cache, a vendor directory out of sync, a hung proxy.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from diagnose_corpus_env import NOBODY, TLS_SELF_SIGNED_PORT, Sandbox, Step

HUNG_SECONDS = 2.0
"""How long a hung go command runs before the simulated CI timeout kills it."""
DISK_FULL_SIZE = "1m"

Steps = Callable[[Sandbox], list[Step]]


def _until_failure(
    sandbox: Sandbox,
    commands: list[tuple[list[str], dict[str, str]]],
    cwd: Path | None = None,
    **options: object,
) -> list[Step]:
    steps = []
    for args, env in commands:
        step = sandbox.go(args, env, cwd, **options)  # type: ignore[arg-type]
        steps.append(step)
        if step.exit_code != 0:
            break
    return steps


def download(
    requires: tuple[str, ...] = ("example.com/foo v1.0.0",),
    *,
    gosum: str = "full",
    args: tuple[str, ...] = ("mod", "download"),
    go: str = "1.22",
    extra: str = "",
    user: str | None = None,
    imports: tuple[str, ...] | None = None,
    **env: str | None,
) -> Steps:
    """A project requiring ``requires``; run ``go <args>`` with ``env`` changes."""

    def steps(sandbox: Sandbox) -> list[Step]:
        app = sandbox.project(requires, gosum=gosum, go=go, extra=extra, imports=imports)
        if user is not None:
            subprocess.run(["chown", "-R", f"{user}:{user}", str(app)], check=True)
        resolved = {
            k: (
                v.format(p=sandbox.proxy(), base=sandbox.proxy("")[:-1], srv=sandbox.srv)
                if v
                else v
            )
            for k, v in env.items()
        }
        return [sandbox.go(list(args), sandbox.env(**resolved), user=user)]

    return steps


# --------------------------------------------------------------------------- special setups


def poisoned_then_retry(sandbox: Sandbox) -> list[Step]:
    """HTML cached as .mod by a captive portal, then a retry against the real proxy."""
    sandbox.project(gosum="none")
    first = sandbox.go(["mod", "download"], sandbox.env(GOPROXY=sandbox.proxy("html")))
    second = sandbox.go(["build", "./..."], sandbox.env(GOFLAGS="-modcacherw -mod=mod"))
    return [first, second]


def gosum_missing_after_download(sandbox: Sandbox) -> list[Step]:
    """``COPY go.mod`` without go.sum, ``go mod download``, then the build."""
    sandbox.project(gosum="none")
    env = sandbox.env()
    return _until_failure(sandbox, [(["mod", "download"], env), (["build", "./..."], env)])


def vendoring(sandbox: Sandbox) -> list[Step]:
    app = sandbox.project()
    env = sandbox.env()
    vendor = sandbox.go(["mod", "vendor"], env)
    modules_txt = app / "vendor" / "modules.txt"
    modules_txt.write_text(modules_txt.read_text().replace("## explicit; go 1.22\n", ""))
    return [vendor, sandbox.go(["build", "./..."], env)]


def tls_then_stale_vendor(sandbox: Sandbox) -> list[Step]:
    """A CA missing on a fresh runner fails the download; the script falls back to vendor/.

    The vendor directory was committed long ago and no longer matches go.mod,
    so the fallback fails too: the second failure follows from the first.
    """
    app = sandbox.project()
    env = sandbox.env()
    sandbox.go(["mod", "vendor"], env)  # the old vendor/ in the repository: not in the log
    modules_txt = app / "vendor" / "modules.txt"
    modules_txt.write_text(modules_txt.read_text().replace("## explicit; go 1.22\n", ""))
    shutil.rmtree(sandbox.home / "go" / "pkg" / "mod")  # a fresh runner's empty module cache
    tls = sandbox.env(GOPROXY=f"https://localhost:{TLS_SELF_SIGNED_PORT}/ok")
    download = sandbox.go(["mod", "download"], tls)
    fallback = sandbox.go(["build", "-mod=vendor", "./..."], env)
    return [download, fallback]


def no_gomod(*args: str) -> Steps:
    def steps(sandbox: Sandbox) -> list[Step]:
        app = sandbox.fresh_home()
        (app / "main.go").write_text("package main\n\nfunc main() {}\n")
        return [sandbox.go(list(args), sandbox.env())]

    return steps


def read_only_cache(sandbox: Sandbox) -> list[Step]:
    sandbox.project()
    cache = sandbox.home / "go" / "pkg" / "mod"
    cache.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(cache), str(cache)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(cache)], check=True)
    try:
        return [sandbox.go(["mod", "download"], sandbox.env())]
    finally:
        subprocess.run(["umount", str(cache)], check=True)


def root_owned_cache(sandbox: Sandbox) -> list[Step]:
    """The cache was filled as root, the build runs as an unprivileged user."""
    app = sandbox.project(("example.com/foo v1.0.0", "golang.org/x/text v0.14.0"))
    env = sandbox.env(GOFLAGS="")
    first = sandbox.go(["mod", "download", "example.com/foo"], env)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(app)], check=True)
    cache = sandbox.home / "nobody-cache"
    cache.mkdir()
    subprocess.run(["chown", f"{NOBODY}:{NOBODY}", str(cache)], check=True)
    second = sandbox.go(["mod", "download"], sandbox.env(GOCACHE=str(cache)), user=NOBODY)
    return [first, second]


def nobody_build_cache(sandbox: Sandbox) -> list[Step]:
    """HOME=/ for an unprivileged user: the default build cache cannot be created."""
    app = sandbox.project()
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(sandbox.home)], check=True)
    env = sandbox.env(HOME="/", GOCACHE=None)
    return [sandbox.go(["build", "./..."], env, app, user=NOBODY)]


def nobody_cache_missing(sandbox: Sandbox) -> list[Step]:
    """GOMODCACHE under a directory an unprivileged user cannot create."""
    app = sandbox.project()
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(sandbox.home)], check=True)
    cache = sandbox.home / "nobody-cache"
    cache.mkdir()
    subprocess.run(["chown", f"{NOBODY}:{NOBODY}", str(cache)], check=True)
    env = sandbox.env(GOMODCACHE="/nonexistent/pkg/mod", GOCACHE=str(cache))
    return [sandbox.go(["mod", "download"], env, app, user=NOBODY)]


def disk_full(sandbox: Sandbox) -> list[Step]:
    sandbox.project(("example.com/big v1.0.0",))
    cache = sandbox.home / "go" / "pkg" / "mod"
    cache.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_FULL_SIZE}", "tmpfs", str(cache)], check=True
    )
    try:
        return [sandbox.go(["mod", "download"], sandbox.env())]
    finally:
        subprocess.run(["umount", str(cache)], check=True)


def git_not_installed(sandbox: Sandbox) -> list[Step]:
    sandbox.project(("github.com/acme/lib v1.0.0",))
    env = sandbox.env(
        PATH=str(sandbox.gobin),
        GOPROXY="direct",
        GOPRIVATE="github.com/acme",
        GONOPROXY=None,
        GONOSUMDB=None,
    )
    return [sandbox.go(["mod", "download"], env)]


def hung(mode: str, args: tuple[str, ...]) -> Steps:
    def steps(sandbox: Sandbox) -> list[Step]:
        sandbox.project(gosum="full")
        return [
            sandbox.go(list(args), sandbox.env(GOPROXY=sandbox.proxy(mode)), timeout=HUNG_SECONDS)
        ]

    return steps


def compile_error(sandbox: Sandbox) -> list[Step]:
    app = sandbox.project()
    (app / "main.go").write_text(
        'package main\n\nimport _ "example.com/foo"\n\nfunc main() {\n\tundefinedThing()\n}\n'
    )
    return [sandbox.go(["build", "./..."], sandbox.env())]


def test_failure(sandbox: Sandbox) -> list[Step]:
    app = sandbox.project()
    (app / "main_test.go").write_text(
        'package main\n\nimport "testing"\n\n'
        "func TestAnswer(t *testing.T) {\n\tif got := 41; got != 42 {\n"
        '\t\tt.Fatalf("answer = %d, want 42", got)\n\t}\n}\n'
    )
    return [sandbox.go(["test", "./..."], sandbox.env())]


def success(sandbox: Sandbox) -> list[Step]:
    sandbox.project(("example.com/foo v1.0.0", "golang.org/x/text v0.14.0"))
    env = sandbox.env()
    return _until_failure(sandbox, [(["mod", "download", "-x"], env), (["build", "./..."], env)])
