"""Doctor's rules about Go settings, each next to the real go command failing the same way.

Every test runs go1.27 against local servers only: GOPROXY points at static
proxies on 127.0.0.1, GOSUMDB is off or local, and HTTPS_PROXY points at a
dead local port whenever the go command might try a direct fetch, so a
fetch that would leave the machine fails on loopback instead.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.goenv import describe, go_env, run_go
from helpers.modules import SampleProject
from helpers.servers import StaticProxyFactory, dead_port
from modgate.doctor.parsers.goflags import KNOWN_FLAGS
from modgate.doctor.scan import scan

pytestmark = pytest.mark.go

LIBA = "example.com/liba@v1.0.0"
PRIVATE = "corp.example.com/secret@v1.0.0"
LOOPBACK = "127.0.0.1"


def doctor_rules(tmp_path: Path, env_file: str) -> set[str]:
    """The rules doctor reports for ``env_file`` as ``ci.env`` in a fresh tree."""
    tree = tmp_path / "doctor"
    tree.mkdir(exist_ok=True)
    (tree / "ci.env").write_text(env_file)
    return {f.rule for f in scan(tree).findings}


def trap() -> dict[str, str]:
    """Send any direct fetch to a dead local port instead of the network."""
    dead = f"http://{LOOPBACK}:{dead_port()}"
    return {"HTTPS_PROXY": dead, "HTTP_PROXY": dead}


@pytest.mark.parametrize("status", [500, 403])
def test_comma_stops_on_errors_and_pipe_falls_through(
    status: int,
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
) -> None:
    broken = static_proxy(sample.proxy_root)
    broken.status_all = status
    good = static_proxy(sample.proxy_root)
    comma = go_env(tmp_path / "comma", goproxy=f"{broken.url},{good.url}", gocache=gocache)
    proc = run_go(["mod", "download", LIBA], tmp_path, comma, check=False)
    assert proc.returncode != 0 and f": {status} " in proc.stderr, describe(proc)
    assert good.seen() == [], "after ',' the go command must not try the next proxy"
    pipe = go_env(tmp_path / "pipe", goproxy=f"{broken.url}|{good.url}", gocache=gocache)
    run_go(["mod", "download", LIBA], tmp_path, pipe)
    assert "GM004" in doctor_rules(tmp_path, "GOPROXY=https://a.example,https://b.example\n")
    assert "GM004" not in doctor_rules(tmp_path, "GOPROXY=https://a.example|https://b.example\n")


def test_comma_falls_through_on_404_only_and_single_proxy_has_no_fallback(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    empty = static_proxy(tmp_path / "empty")
    good = static_proxy(sample.proxy_root)
    env = go_env(tmp_path / "a", goproxy=f"{empty.url},{good.url}", gocache=gocache)
    run_go(["mod", "download", LIBA], tmp_path, env)
    single = go_env(tmp_path / "b", goproxy=empty.url, gocache=gocache)
    proc = run_go(["mod", "download", LIBA], tmp_path, single, check=False)
    assert proc.returncode != 0 and "404 Not Found" in proc.stderr, describe(proc)
    assert "GM005" in doctor_rules(tmp_path, f"GOPROXY={empty.url}\n")


def test_entries_after_off_are_ignored(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    good = static_proxy(sample.proxy_root)
    env = go_env(tmp_path, goproxy=f"off,{good.url}", gocache=gocache)
    proc = run_go(["mod", "download", LIBA], tmp_path, env, check=False)
    assert "module lookup disabled by GOPROXY=off" in proc.stderr, describe(proc)
    assert good.seen() == []
    assert "GM003" in doctor_rules(tmp_path, f"GOPROXY=off,{good.url}\n")


@pytest.mark.parametrize(
    ("goproxy", "message"),
    [
        ("https://a.example,fallback", "fallback"),
        (",", "GOPROXY list is not the empty string, but contains no entries"),
    ],
)
def test_invalid_goproxy(goproxy: str, message: str, tmp_path: Path, gocache: Path) -> None:
    env = go_env(tmp_path, goproxy=goproxy, gocache=gocache)
    proc = run_go(["mod", "download", LIBA], tmp_path, env, check=False)
    assert proc.returncode != 0 and message in proc.stderr, describe(proc)
    assert "GM002" in doctor_rules(tmp_path, f"GOPROXY={goproxy}\n")


def test_credentials_over_http_are_refused(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    good = static_proxy(sample.proxy_root)
    with_user = good.url.replace("http://", "http://ci:s3cret@")
    env = go_env(tmp_path, goproxy=with_user, gocache=gocache)
    proc = run_go(["mod", "download", LIBA], tmp_path, env, check=False)
    assert "refusing to pass credentials to insecure URL" in proc.stderr, describe(proc)
    assert "s3cret" not in proc.stderr
    assert "GM006" in doctor_rules(tmp_path, f"GOPROXY={with_user},direct\n")


def test_gosumdb_with_plus_url_is_malformed(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    good = static_proxy(sample.proxy_root)
    sumdb = f"http://{LOOPBACK}:{dead_port()}"
    bad = go_env(
        tmp_path / "bad", goproxy=good.url, gosumdb=f"sum.golang.org+{sumdb}", gocache=gocache
    )
    proc = run_go(["mod", "download", LIBA], tmp_path, bad, check=False)
    assert "invalid GOSUMDB: malformed verifier id" in proc.stderr, describe(proc)
    spaced = go_env(
        tmp_path / "ok", goproxy=good.url, gosumdb=f"sum.golang.org {sumdb}", gocache=gocache
    )
    proc = run_go(["mod", "download", LIBA], tmp_path, spaced, check=False)
    assert "malformed" not in proc.stderr and "connection refused" in proc.stderr, describe(proc)
    assert "GM012" in doctor_rules(tmp_path, f'GOSUMDB="sum.golang.org+{sumdb}"\n')
    assert "GM012" not in doctor_rules(tmp_path, f'GOSUMDB="sum.golang.org {sumdb}"\n')


def test_insecure_flag_was_removed(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    good = static_proxy(sample.proxy_root)
    env = go_env(tmp_path, goproxy=good.url, gocache=gocache)
    proc = run_go(["mod", "download", "-insecure", LIBA], tmp_path, env, check=False)
    assert "flag provided but not defined: -insecure" in proc.stderr, describe(proc)
    module = tmp_path / "m"
    module.mkdir()
    (module / "go.mod").write_text("module example.com/m\n\ngo 1.21\n")
    proc = run_go(["get", "-insecure", LIBA], module, env, check=False)
    assert "-insecure flag is no longer supported; use GOINSECURE instead" in proc.stderr
    from_goflags = {**env, "GOFLAGS": "-modcacherw -insecure"}
    proc = run_go(["get", LIBA], module, from_goflags, check=False)
    assert "-insecure flag is no longer supported" in proc.stderr, describe(proc)
    run_go(["mod", "download", LIBA], tmp_path, from_goflags)  # silently ignored there
    assert "GM001" in doctor_rules(tmp_path, "GOFLAGS=-insecure\n")


@pytest.mark.parametrize(
    ("goflags", "message"),
    [
        ("-mod readonly", 'go: parsing $GOFLAGS: non-flag "readonly"'),
        ("-foo", "go: parsing $GOFLAGS: unknown flag -foo"),
        ("-mod=bogus", "-mod=bogus not supported (can be '', 'mod', 'readonly', or 'vendor')"),
        ("-mod", "go: flag needs an argument: -mod (from $GOFLAGS)"),
    ],
)
def test_goflags_rejected_like_doctor_says(
    goflags: str, message: str, tmp_path: Path, gocache: Path
) -> None:
    (tmp_path / "go.mod").write_text("module example.com/m\n\ngo 1.21\n")
    (tmp_path / "m.go").write_text("package m\n")
    env = {**go_env(tmp_path, goproxy="off", gocache=gocache), "GOFLAGS": goflags}
    proc = run_go(["build", "./..."], tmp_path, env, check=False)
    assert proc.returncode != 0 and message in proc.stderr, describe(proc)
    tree = tmp_path / "doctor"
    tree.mkdir()
    (tree / "ci.env").write_text(f"GOFLAGS='{goflags}'\n")
    messages = [f.message for f in scan(tree).findings if f.rule == "GM016"]
    expected = message.removeprefix("go: ").removesuffix(" (from $GOFLAGS)")
    assert messages and expected in messages[0], (messages, expected)


def test_known_goflags_are_all_known_to_go(tmp_path: Path, gocache: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/m\n\ngo 1.21\n")
    env = go_env(tmp_path, goproxy="off", gocache=gocache)
    everything = " ".join(f"-{name}" for name in sorted(KNOWN_FLAGS))
    proc = run_go(["list", "-m"], tmp_path, {**env, "GOFLAGS": everything}, check=False)
    assert "unknown flag" not in proc.stderr and "non-flag" not in proc.stderr, describe(proc)
    for unknown in ("dir", "http", "zipsum", "l"):
        proc = run_go(["list", "-m"], tmp_path, {**env, "GOFLAGS": f"-{unknown}"}, check=False)
        assert f"unknown flag -{unknown}" in proc.stderr, describe(proc)
        assert unknown not in KNOWN_FLAGS


@pytest.mark.parametrize(
    ("goprivate", "rule"),
    [
        ("a.example.com, corp.example.com", "GM008"),
        ("https://corp.example.com", "GM008"),
        ("*.corp.example.com", "GM009"),
    ],
)
def test_private_patterns_that_miss_send_the_module_to_the_proxy(
    goprivate: str,
    rule: str,
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
) -> None:
    recording = static_proxy(tmp_path / "empty")
    env = go_env(
        tmp_path, goproxy=recording.url, goprivate=goprivate, gocache=gocache, extra=trap()
    )
    run_go(["mod", "download", PRIVATE], tmp_path, env, check=False)
    assert "/corp.example.com/secret/@v/v1.0.0.info" in recording.seen(), (
        f"GOPRIVATE={goprivate!r} should not cover corp.example.com, so go asks the proxy"
    )
    covered = go_env(
        tmp_path / "c",
        goproxy=recording.url,
        goprivate="corp.example.com",
        gocache=gocache,
        extra=trap(),
    )
    before = len(recording.seen())
    proc = run_go(["mod", "download", PRIVATE], tmp_path, covered, check=False)
    assert len(recording.seen()) == before and "proxyconnect" in proc.stderr, describe(proc)
    tree = tmp_path / "doctor"
    tree.mkdir()
    (tree / "go.mod").write_text(
        "module example.com/app\n\ngo 1.21\n\nrequire corp.example.com/secret v1.0.0\n"
    )
    (tree / "go.sum").write_text("")
    (tree / "ci.env").write_text(f'GOPRIVATE="{goprivate}"\n')
    assert rule in {f.rule for f in scan(tree).findings}


def test_goprivate_also_bypasses_an_internal_proxy(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    internal = static_proxy(sample.proxy_root)
    env = go_env(
        tmp_path / "a",
        goproxy=internal.url,
        goprivate="corp.example.com",
        gocache=gocache,
        extra=trap(),
    )
    env.pop("GONOPROXY")  # unset: it defaults to GOPRIVATE
    proc = run_go(["mod", "download", PRIVATE], tmp_path, env, check=False)
    assert proc.returncode != 0 and "https fetch" in proc.stderr, describe(proc)
    assert internal.seen() == [], "GOPRIVATE sends the private module past the internal proxy"
    fixed = {**env, "GONOPROXY": "none", "GOMODCACHE": str(tmp_path / "b" / "mod")}
    run_go(["mod", "download", PRIVATE], tmp_path, fixed)
    assert "GM011" in doctor_rules(
        tmp_path, "GOPROXY=https://goproxy.corp.example.com,direct\nGOPRIVATE=corp.example.com\n"
    )


@pytest.fixture
def forward_proxy() -> Iterator[tuple[str, list[str]]]:
    """An outbound HTTP proxy on loopback that records request lines and answers 407."""
    seen: list[str] = []
    server = socket.socket()
    server.bind((LOOPBACK, 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(65536).decode(errors="replace")
                seen.append(data.split("\r\n", 1)[0])
                conn.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b"Proxy-Authenticate: Basic realm=egress\r\nContent-Length: 0\r\n\r\n"
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{server.getsockname()[1]}", seen
    server.close()


def test_outbound_proxy_without_no_proxy_gets_the_internal_proxy_traffic(
    tmp_path: Path, gocache: Path, forward_proxy: tuple[str, list[str]]
) -> None:
    url, seen = forward_proxy
    internal = "http://goproxy.corp.example.test"
    env = go_env(tmp_path, goproxy=internal, gocache=gocache, extra={"HTTP_PROXY": url})
    proc = run_go(["mod", "download", LIBA], tmp_path, env, check=False)
    assert "407 Proxy Authentication Required" in proc.stderr, describe(proc)
    assert any("goproxy.corp.example.test" in line for line in seen), seen
    assert "GM018" in doctor_rules(tmp_path, f"GOPROXY={internal}\nHTTP_PROXY={url}\n")
    assert "GM018" not in doctor_rules(
        tmp_path, f"GOPROXY={internal}\nHTTP_PROXY={url}\nNO_PROXY=corp.example.test\n"
    )


def test_goinsecure_does_not_fix_a_proxy_certificate(
    tmp_path: Path, sample: SampleProject, gocache: Path
) -> None:
    from unit.doctor import doctor_servers  # noqa: PLC0415  (shared local TLS server)

    with doctor_servers.serving(tmp_path) as servers:
        for goinsecure in ("*", LOOPBACK):
            env = go_env(
                tmp_path / goinsecure.replace("*", "all"),
                goproxy=servers["selfsigned"],
                gocache=gocache,
                extra={"GOINSECURE": goinsecure},
            )
            proc = run_go(["mod", "download", LIBA], tmp_path, env, check=False)
            assert "certificate signed by unknown authority" in proc.stderr, describe(proc)
    rules = doctor_rules(
        tmp_path, "GOPROXY=https://goproxy.corp.example.com\nGOINSECURE=*.example.com\n"
    )
    assert "GM014" in rules


@pytest.mark.parametrize(
    ("value", "message"),
    [("off", "cannot find"), ("true", "unknown environment setting GO111MODULE=true")],
)
def test_go111module(
    value: str,
    message: str,
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
) -> None:
    good = static_proxy(sample.proxy_root)
    app = tmp_path / "app"
    app.mkdir()
    for name in ("go.mod", "go.sum", "main.go"):
        (app / name).write_bytes((sample.main_dir / name).read_bytes())
    env = {**go_env(tmp_path, goproxy=good.url, gocache=gocache), "GO111MODULE": value}
    proc = run_go(["build", "."], app, env, check=False)
    assert proc.returncode != 0 and message in proc.stderr, describe(proc)
    assert "GM017" in doctor_rules(tmp_path, f"GO111MODULE={value}\n")


def test_gosumdb_off_breaks_the_toolchain_download(
    tmp_path: Path, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    from helpers.modules import write_module_version  # noqa: PLC0415

    root = tmp_path / "proxy"
    write_module_version(
        root,
        "golang.org/toolchain",
        "v0.0.1-go1.99.0.linux-amd64",
        {"README": b"not a toolchain\n"},
    )
    proxy = static_proxy(root)
    module = tmp_path / "m"
    module.mkdir()
    (module / "go.mod").write_text("module example.com/m\n\ngo 1.99.0\n")
    env = {
        **go_env(tmp_path, goproxy=proxy.url, gosumdb="off", gocache=gocache),
        "GOTOOLCHAIN": "auto",
    }
    proc = run_go(["list", "-m"], module, env, check=False)
    if "linux-amd64" not in proc.stderr:
        pytest.skip(
            f"this test serves a linux/amd64 toolchain; go asked for another: {proc.stderr}"
        )
    assert "verifying module: checksum database disabled by GOSUMDB=off" in proc.stderr, describe(
        proc
    )
    assert "GM013" in doctor_rules(tmp_path, "GOSUMDB=off\n")
    assert "GM013" not in doctor_rules(tmp_path, "GOSUMDB=off\nGOTOOLCHAIN=local\n")


def test_goversion_is_read_only(tmp_path: Path, gocache: Path) -> None:
    env = {**go_env(tmp_path, goproxy="off", gocache=gocache), "GOVERSION": "go1.10"}
    proc = run_go(["env", "GOVERSION"], tmp_path, env)
    assert proc.stdout.strip() != "go1.10", "GOVERSION in the environment changed nothing"
    assert "GM020" in doctor_rules(tmp_path, "GOVERSION=go1.10\n")


def test_nonoproxy_star_sends_everything_direct(
    tmp_path: Path, sample: SampleProject, gocache: Path, static_proxy: StaticProxyFactory
) -> None:
    good = static_proxy(sample.proxy_root)
    env = go_env(tmp_path, goproxy=good.url, gocache=gocache, extra={**trap(), "GONOPROXY": "*"})
    proc = run_go(["mod", "download", LIBA], tmp_path, env, check=False)
    assert proc.returncode != 0 and good.seen() == [], describe(proc)
    assert "GM010" in doctor_rules(tmp_path, "GONOPROXY=*\n")
