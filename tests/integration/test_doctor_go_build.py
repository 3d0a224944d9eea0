"""Doctor's build rules (Dockerfile, CI, Kubernetes, go.mod), each next to the real failure.

The go command runs against local servers only. Rules about other users
(module cache ownership, HOME=/) run go as ``nobody`` and need root;
read-only file systems need ``unshare``. Those tests skip where that is not
possible rather than pretend.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers.goenv import GO_TIMEOUT, describe, go_binary, go_env, run_go
from helpers.modules import SampleProject
from helpers.servers import StaticProxyFactory, dead_port
from modgate.doctor.scan import scan

pytestmark = pytest.mark.go

LOOPBACK = "127.0.0.1"
NOBODY = 65534
LIBA = "example.com/liba@v1.0.0"


def doctor_rules(tree: Path, files: dict[str, str]) -> set[str]:
    tree.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {f.rule for f in scan(tree).findings}


def copy_app(sample: SampleProject, target: Path, *, with_gosum: bool = True) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("go.mod", "go.sum", "main.go"):
        if name != "go.sum" or with_gosum:
            shutil.copyfile(sample.main_dir / name, target / name)
    return target


def real_go() -> Path:
    """The go binary itself: the virtualenv's ``go`` is a Python launcher other users cannot run."""
    goroot = subprocess.run(
        [str(go_binary()), "env", "GOROOT"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(goroot) / "bin" / "go"


def run_as(
    user: int | None, argv: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=GO_TIMEOUT,
        check=False,
        user=user,
        group=user,
        extra_groups=[] if user is not None else None,
        start_new_session=True,
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Path]:
    """A directory another user can reach (pytest's own tmp_path is private to root)."""
    if os.geteuid() != 0:
        pytest.skip("running go as another user needs root")
    directory = Path(tempfile.mkdtemp(prefix="doctor-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------- go.mod and go.sum


def test_download_without_gosum_then_build_fails(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    proxy = static_proxy(sample.proxy_root)
    app = copy_app(sample, tmp_path / "app", with_gosum=False)
    env = go_env(tmp_path, goproxy=proxy.url, gocache=gocache)
    run_go(["mod", "download"], app, env)
    proc = run_go(["build", "-n", "."], app, env, check=False)
    assert "missing go.sum entry for module providing package" in proc.stderr, describe(proc)
    dockerfile = "FROM golang:1.27\nWORKDIR /src\nCOPY go.mod ./\nRUN go mod download\nCOPY . .\n"
    assert "GM021" in doctor_rules(tmp_path / "d", {"Dockerfile": dockerfile})
    assert "GM041" in doctor_rules(
        tmp_path / "m", {"go.mod": (sample.main_dir / "go.mod").read_text()}
    )


def test_go_line_newer_than_the_local_toolchain(tmp_path: Path, gocache: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/m\n\ngo 1.99.0\n")
    env = go_env(tmp_path, goproxy="off", gocache=gocache)  # GOTOOLCHAIN=local, like golang images
    proc = run_go(["list", "-m"], tmp_path, env, check=False)
    assert "go: go.mod requires go >= 1.99.0 (running go 1.27.3; GOTOOLCHAIN=local)" in proc.stderr
    files = {
        "go.mod": "module example.com/m\n\ngo 1.99.0\n",
        "Dockerfile": "FROM golang:1.27\nCOPY . .\nRUN go build .\n",
    }
    assert "GM023" in doctor_rules(tmp_path / "d", files)
    files["go.mod"] = "module example.com/m\n\ngo 1.27.3\n"
    assert "GM023" not in doctor_rules(tmp_path / "ok", files)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("go 1.22.x\n", "invalid go version '1.22.x': must match format 1.23.0"),
        (
            "go 1.22\ntoolchain 1.23\n",
            "invalid toolchain version '1.23': must match format go1.23.0",
        ),
    ],
)
def test_malformed_version_lines(lines: str, message: str, tmp_path: Path, gocache: Path) -> None:
    gomod = f"module example.com/m\n\n{lines}"
    (tmp_path / "go.mod").write_text(gomod)
    proc = run_go(
        ["list", "-m"], tmp_path, go_env(tmp_path, goproxy="off", gocache=gocache), check=False
    )
    assert message in proc.stderr, describe(proc)
    found = [f.message for f in scan(tmp_path).findings if f.rule == "GM040"]
    assert any(message in m for m in found), found


def test_go_get_outside_a_module(tmp_path: Path, gocache: Path) -> None:
    proc = run_go(
        ["get", LIBA], tmp_path, go_env(tmp_path, goproxy="off", gocache=gocache), check=False
    )
    assert "'go get' is no longer supported outside a module" in proc.stderr, describe(proc)
    dockerfile = "FROM golang:1.27\nRUN go get example.com/tool@v1.0.0\n"
    assert "GM031" in doctor_rules(tmp_path / "d", {"Dockerfile": dockerfile})


def test_a_build_without_the_cache_mount_downloads_again(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    proxy = static_proxy(sample.proxy_root)
    app = copy_app(sample, tmp_path / "app")
    mounted = go_env(tmp_path / "mount", goproxy=proxy.url, gocache=gocache)
    run_go(["mod", "download"], app, mounted)  # RUN --mount=type=cache,... go mod download
    downloads = len(proxy.seen())
    layer = go_env(
        tmp_path / "layer", goproxy=proxy.url, gocache=gocache
    )  # the image's empty cache
    run_go(["build", "-n", "."], app, layer)
    assert len(proxy.seen()) > downloads, "the build without the mount fetched the modules again"
    offline = go_env(tmp_path / "offline", goproxy="off", gocache=gocache)
    proc = run_go(["build", "-n", "."], app, offline, check=False)
    assert "module lookup disabled by GOPROXY=off" in proc.stderr, describe(proc)
    dockerfile = (
        "FROM golang:1.27\nCOPY go.mod go.sum ./\n"
        "RUN --mount=type=cache,target=/go/pkg/mod go mod download\nCOPY . .\nRUN go build .\n"
    )
    assert "GM025" in doctor_rules(tmp_path / "d", {"Dockerfile": dockerfile})


# --------------------------------------------------------------------------- users and file systems


def test_user_after_root_cannot_add_to_the_module_cache(
    world: Path, sample: SampleProject, static_proxy: StaticProxyFactory
) -> None:
    proxy = static_proxy(sample.proxy_root)
    app = copy_app(sample, world / "app")
    for path in (app, *app.iterdir()):
        path.chmod(0o777 if path.is_dir() else 0o666)
    env = go_env(world, goproxy=proxy.url)
    env["GOCACHE"] = str(world / "cache-nobody")
    run_go(["mod", "download", "example.com/liba"], app, env)  # root fills part of the cache
    (world / "cache-nobody").mkdir()
    os.chown(world / "cache-nobody", NOBODY, NOBODY)
    (world / "gohome").chmod(0o755)
    proc = run_as(NOBODY, [str(real_go()), "mod", "download"], app, {**env, "GOFLAGS": ""})
    assert "permission denied" in proc.stderr, describe(proc)
    dockerfile = (
        "FROM golang:1.27\nRUN go install golang.org/x/tools/cmd/stringer@v0.24.0\n"
        "USER 1000\nRUN go build ./...\n"
    )
    assert "GM024" in doctor_rules(world / "d", {"Dockerfile": dockerfile})


def test_rm_rf_of_the_module_cache_fails_for_its_owner(
    world: Path, sample: SampleProject, static_proxy: StaticProxyFactory
) -> None:
    proxy = static_proxy(sample.proxy_root)
    env = go_env(world, goproxy=proxy.url)
    env["GOFLAGS"] = ""  # without -modcacherw the extracted modules are read-only
    (world / "gohome").chmod(0o777)
    gomodcache = Path(env["GOMODCACHE"])
    for directory in (world / "gohome" / "gopath", gomodcache.parent):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, NOBODY, NOBODY)
    env["GOCACHE"] = str(world / "gohome" / "cache")
    proc = run_as(NOBODY, [str(real_go()), "mod", "download", LIBA], world, env)
    assert proc.returncode == 0, describe(proc)
    proc = run_as(NOBODY, ["rm", "-rf", str(gomodcache)], world, env)
    assert proc.returncode != 0 and "Permission denied" in proc.stderr, describe(proc)
    proc = run_as(NOBODY, [str(real_go()), "clean", "-modcache"], world, env)
    assert proc.returncode == 0 and not gomodcache.exists(), describe(proc)
    assert "GM032" in doctor_rules(world / "d", {"clean.sh": 'rm -rf "$(go env GOMODCACHE)"\n'})


def test_uid_without_home_cannot_create_the_build_cache(world: Path, sample: SampleProject) -> None:
    app = copy_app(sample, world / "app")
    env = {"PATH": f"{real_go().parent}:/usr/bin:/bin", "HOME": "/", "GOENV": "off",
           "GOPROXY": "off", "GOTOOLCHAIN": "local", "GOMODCACHE": str(world / "mod")}  # fmt: skip
    (world / "mod").mkdir()
    os.chown(world / "mod", NOBODY, NOBODY)
    proc = run_as(NOBODY, [str(real_go()), "build", "."], app, env)
    expected = (
        "failed to initialize build cache at /.cache/go-build: mkdir /.cache: permission denied"
    )
    assert expected in proc.stderr, describe(proc)
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: t}\nspec:\n"
        "  securityContext: {runAsUser: 1000}\n"
        "  containers:\n    - name: t\n      image: golang:1.27\n      command: [go, test, ./...]\n"
    )
    assert "GM039" in doctor_rules(world / "d", {"pod.yaml": pod})


def test_read_only_root_file_system(
    tmp_path: Path, gocache: Path, sample: SampleProject, static_proxy: StaticProxyFactory
) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("a read-only mount needs unshare and root")
    proxy = static_proxy(sample.proxy_root)
    readonly = tmp_path / "ro"
    readonly.mkdir()
    env = {
        **go_env(tmp_path, goproxy=proxy.url, gocache=gocache),
        "GOMODCACHE": str(readonly / "mod"),
    }
    script = f"mount -t tmpfs -o ro tmpfs {readonly} && exec {go_binary()} mod download {LIBA}"
    proc = run_as(None, [unshare, "-m", "sh", "-c", script], tmp_path, env)
    if "mount" in proc.stderr and "read-only" not in proc.stderr:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    assert "read-only file system" in proc.stderr, describe(proc)
    job = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n    - name: b\n"
        "      image: golang:1.27\n      securityContext: {readOnlyRootFilesystem: true}\n"
    )
    assert "GM038" in doctor_rules(tmp_path / "d", {"pod.yaml": job})


# --------------------------------------------------------------------------- tools in the image


def test_direct_fetch_without_git(tmp_path: Path, gocache: Path) -> None:
    dead = f"http://{LOOPBACK}:{dead_port()}"
    env = go_env(
        tmp_path, goproxy="direct", gocache=gocache, extra={"HTTPS_PROXY": dead, "HTTP_PROXY": dead}
    )
    env["PATH"] = str(go_binary().parent)  # no git there
    assert shutil.which("git", path=env["PATH"]) is None
    proc = run_go(
        ["mod", "download", "github.com/corp-example/lib@v1.0.0"], tmp_path, env, check=False
    )
    assert 'exec: "git": executable file not found in $PATH' in proc.stderr, describe(proc)
    dockerfile = (
        "FROM golang:1.27-alpine\nENV GOPROXY=direct\nCOPY go.mod go.sum ./\nRUN go mod download\n"
    )
    assert "GM027" in doctor_rules(tmp_path / "d", {"Dockerfile": dockerfile})


def test_cgo_without_a_compiler(tmp_path: Path, gocache: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/c\n\ngo 1.21\n")
    (tmp_path / "c.go").write_text(
        'package main\n\n// int one() { return 1; }\nimport "C"\n\nfunc main() { _ = C.one() }\n'
    )
    env = {**go_env(tmp_path, goproxy="off", gocache=gocache), "CGO_ENABLED": "1"}
    env["PATH"] = str(go_binary().parent)  # no gcc there
    proc = run_go(["build", "."], tmp_path, env, check=False)
    assert 'C compiler "gcc" not found' in proc.stderr, describe(proc)
    dockerfile = "FROM golang:1.27-alpine\nENV CGO_ENABLED=1\nCOPY . .\nRUN go build .\n"
    assert "GM028" in doctor_rules(tmp_path / "d", {"Dockerfile": dockerfile})


def test_sourced_env_file_without_export(tmp_path: Path, gocache: Path) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    env = go_env(tmp_path, goproxy="off", gocache=gocache)
    env.pop("GOPRIVATE")
    (tmp_path / "plain.env").write_text("GOPRIVATE=corp.example.com\n")
    (tmp_path / "exported.env").write_text("export GOPRIVATE=corp.example.com\n")
    outputs = {}
    for name in ("plain", "exported"):
        proc = run_as(None, [bash, "-c", f". ./{name}.env && go env GOPRIVATE"], tmp_path, env)
        outputs[name] = proc.stdout.strip()
    assert outputs == {"plain": "", "exported": "corp.example.com"}, outputs
    files = {
        "ci/go.env": "GOPRIVATE=corp.example.com\n",
        "ci/build.sh": ". ci/go.env\ngo build ./...\n",
    }
    assert "GM034" in doctor_rules(tmp_path / "d", files)


# --------------------------------------------------------------------------- git credentials


@pytest.fixture
def git_needing_auth() -> Iterator[str]:
    """A git smart-HTTP endpoint on loopback that always asks for credentials."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{LOOPBACK}:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("0", "terminal prompts disabled"), ("1", "could not read Username")],
)
def test_insteadof_without_credentials_and_terminal_prompt(
    prompt: str, message: str, tmp_path: Path, gocache: Path, git_needing_auth: str
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "{git_needing_auth}"]\n\tinsteadOf = https://github.com/\n')
    dead = f"http://{LOOPBACK}:{dead_port()}"
    extra = {"GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1",
             "HTTPS_PROXY": dead, "GIT_TERMINAL_PROMPT": prompt}  # fmt: skip
    env = go_env(
        tmp_path,
        goproxy="direct",
        goprivate="github.com/corp-example",
        gocache=gocache,
        extra=extra,
    )
    proc = run_as(
        None,
        [str(go_binary()), "mod", "download", "github.com/corp-example/lib@v1.0.0"],
        tmp_path,
        env,
    )
    assert message in proc.stderr, describe(proc)
    assert "terminal prompts disabled" not in proc.stderr or prompt == "0"
    script = 'git config --global url."https://git.corp.example.com/".insteadOf "ssh://git@git.corp.example.com/"\n'
    assert "GM033" in doctor_rules(
        tmp_path / "d", {"ci.sh": script, "ci.env": f"GIT_TERMINAL_PROMPT={prompt}\n"}
    )
    assert ("GM019" in doctor_rules(tmp_path / "d", {})) is (prompt == "1")
