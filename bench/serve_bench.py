"""Cached-artifact throughput of modgate's server against nginx, and its memory.

One command: ``.venv/bin/python bench/serve_bench.py [--duration S] [--rounds N] [--quick]``.

It builds a temporary store in the go download-cache layout, starts two
nginx servers (1 worker, sendfile on, keep-alive, each with its own prefix,
never the system configuration) and modgate's server on the same store, all
on 127.0.0.1 ephemeral ports. Access logs are off on all three, or with
``--access-log`` on for all three, to files: nginx writes a JSON line per
request like modgate's, buffered (``buffer=64k flush=1s``, as a tuned nginx
would), and modgate its own access log.

- ``nginx``: nginx's defaults otherwise (``keepalive_requests 1000``, no
  ``open_file_cache``, no ``tcp_nopush``);
- ``nginx-tuned``: nginx at its best for this load, with
  ``open_file_cache``, ``keepalive_requests 100000`` and ``tcp_nopush on``.

It then runs wrk with 32 connections against each artifact on each server
in turn (the order rotates every round), several rounds, and prints the
medians and modgate's ratio to each nginx, in requests per second and in
the server's CPU time per answer (read from /proc; steadier than req/s when
other jobs share the machine). A wrk run that saw a non-2xx
answer or a socket error stops the benchmark: its figure would not be a
throughput of correct answers. Last, it asks modgate once for the .info,
.mod and .zip of many distinct modules and reports the server's resident
memory (VmRSS). It prints the figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import io
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    HOST,
    NGINX,
    WRK,
    cpu_seconds,
    launch_modgate,
    launch_nginx,
    nginx_workdir,
    require,
    stop,
)
from modgate.protocol.escape import escape_path

CONNECTIONS = 32
SMALL_ZIP_BYTES = 20_000
LARGE_ZIP_BYTES = 5_000_000
DISTINCT_MODULES = 10_000
DISTINCT_ZIP_BYTES = 8_000

TUNED = (
    "open_file_cache max=10000 inactive=60s; open_file_cache_valid 60s; "
    "keepalive_requests 100000; tcp_nopush on;"
)
NGINX_CONFIGS = {"nginx": "", "nginx-tuned": TUNED}
"""Name of each nginx configuration, and what it adds to the common one."""
NGINX_LOG_FORMAT = (
    'log_format benchjson escape=json \'{"time":"$time_iso8601","remote":"$remote_addr",'
    '"method":"$request_method","path":"$uri","status":$status,'
    '"bytes":$body_bytes_sent,"duration_ms":$request_time}\';'
)
"""With --access-log, nginx writes a JSON line per request too (buffered, as tuned)."""
MODGATE = "modgate"


# ---- the store ----------------------------------------------------------------------------


def make_zip(module: str, version: str, size: int, seed: int) -> bytes:
    """A real module zip holding about ``size`` bytes of incompressible data."""
    rng = random.Random(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{module}@{version}/go.mod", f"module {module}\n")
        zf.writestr(f"{module}@{version}/data.bin", rng.randbytes(max(0, size - 300)))
    return buf.getvalue()


def write_version(root: Path, module: str, version: str, zip_bytes: bytes) -> None:
    vdir = root / escape_path(module) / "@v"
    vdir.mkdir(parents=True, exist_ok=True)
    info = f'{{"Version":"{version}","Time":"2024-01-02T03:04:05Z"}}\n'
    (vdir / f"{version}.info").write_text(info)
    (vdir / f"{version}.mod").write_text(f"module {module}\n\ngo 1.21\n")
    (vdir / f"{version}.zip").write_bytes(zip_bytes)
    (vdir / "list").write_text(f"{version}\n")


@dataclass(frozen=True)
class Artifact:
    name: str
    path: str  # URL path, already escaped


def build_store(root: Path, distinct: int) -> list[Artifact]:
    small, large = "example.com/bench/small", "example.com/bench/Large"
    write_version(root, small, "v1.0.0", make_zip(small, "v1.0.0", SMALL_ZIP_BYTES, 1))
    write_version(root, large, "v1.0.0", make_zip(large, "v1.0.0", LARGE_ZIP_BYTES, 2))
    shared_zip = make_zip("example.com/distinct", "v1.0.0", DISTINCT_ZIP_BYTES, 3)
    for i in range(distinct):
        write_version(root, distinct_module(i), "v1.0.0", shared_zip)
    s, lg = escape_path(small), escape_path(large)
    return [
        Artifact(".info", f"/{s}/@v/v1.0.0.info"),
        Artifact(".mod", f"/{s}/@v/v1.0.0.mod"),
        Artifact(".zip 20 kB", f"/{s}/@v/v1.0.0.zip"),
        Artifact(".zip 5 MB", f"/{lg}/@v/v1.0.0.zip"),
    ]


def distinct_module(i: int) -> str:
    return f"example.com/distinct/m{i:05d}"


# ---- the servers --------------------------------------------------------------------------


def start_nginx(
    root: Path, work: Path, name: str, access_log: bool
) -> tuple[subprocess.Popen[bytes], int]:
    tuning, server = NGINX_CONFIGS[name], ""
    if access_log:
        # a JSON line per request like modgate's, written the way a tuned nginx writes it
        tuning += NGINX_LOG_FORMAT
        server = f"access_log {work / name}/access.log benchjson buffer=64k flush=1s;"
    return launch_nginx(work / name, root, tuning=tuning, server=server)


def start_modgate(root: Path, access_log: bool) -> tuple[subprocess.Popen[bytes], int]:
    """``modgate serve`` on ``root`` with fetching off: every answer comes from the store."""
    log_to = str(root.parent / "modgate-access.log") if access_log else "off"
    args = ["--store", str(root), "--upstream", "off", "--access-log", log_to]
    log = open(root.parent / "modgate.log", "w+b")  # noqa: SIM115 - kept for the server's life
    return launch_modgate(args, log)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


# ---- measuring ----------------------------------------------------------------------------


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu: float = 0.0  # the server's CPU seconds per wall second during the run


class BenchError(Exception):
    """A wrk run whose figure is not a throughput of correct answers."""


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_latency(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(m.group(1)) * UNITS_MS[m.group(2)]


def parse_wrk(out: str) -> Run:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (rps and p50 and p99):
        raise ValueError(f"cannot read wrk output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise BenchError(f"{bad.group(1)} answers were not 2xx")
    sockets = re.search(r"Socket errors: (.*)", out)
    if sockets:
        raise BenchError(f"socket errors ({sockets.group(1).strip()})")
    return Run(float(rps.group(1)), parse_latency(p50.group(1)), parse_latency(p99.group(1)))


def wrk(
    port: int, pid: int, path: str, duration: int, threads: int, *extra: str, scheme: str = "http"
) -> Run:
    """One wrk run (``extra`` options added) with the CPU share of server ``pid`` during it."""
    cmd = [WRK, f"-t{threads}", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", *extra]
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    url = f"{scheme}://{HOST}:{port}{path}"
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    try:
        run = parse_wrk(out)
    except BenchError as exc:
        sys.exit(f"wrk against {url}: {exc}; stopping (wrk's output follows)\n{out}")
    run.cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    return run


def warm(port: int, paths: list[str]) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    for path in paths:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            sys.exit(f"GET {path} on port {port} answered {resp.status}")
    conn.close()


def fetch_distinct(port: int, count: int) -> float:
    """GET .info, .mod and .zip of ``count`` distinct modules once; return the seconds taken."""
    start = time.monotonic()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    for i in range(count):
        base = f"/{escape_path(distinct_module(i))}/@v/v1.0.0"
        for ext in (".info", ".mod", ".zip"):
            conn.request("GET", base + ext)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                sys.exit(f"GET {base + ext} answered {resp.status}")
    conn.close()
    return time.monotonic() - start


def fmt_ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def report(
    results: dict[tuple[str, str], list[Run]], artifacts: list[Artifact], servers: list[str]
) -> None:
    nginxes = [s for s in servers if s != MODGATE]
    print()
    header = ("artifact", "server", "req/s", "p50", "p99", "CPU us/req", "modgate/this")
    print("{:<12} {:<12} {:>10} {:>10} {:>10} {:>10} {:>20}".format(*header))
    for art in artifacts:
        med = {s: statistics.median(r.rps for r in results[(art.name, s)]) for s in servers}
        # The server's CPU time per answer: steadier than req/s on a busy machine.
        cost = {
            s: statistics.median(r.cpu / r.rps * 1e6 for r in results[(art.name, s)])
            for s in servers
        }
        for server in servers:
            runs = results[(art.name, server)]
            p50 = statistics.median(r.p50_ms for r in runs)
            p99 = statistics.median(r.p99_ms for r in runs)
            spread = f"{min(r.rps for r in runs):.0f}-{max(r.rps for r in runs):.0f}"
            ratio = ""
            if server in nginxes:
                ratio = f"{med[MODGATE] / med[server]:.2f}x ({cost[server] / cost[MODGATE]:.2f}x)"
            print(
                f"{art.name:<12} {server:<12} {med[server]:>10.0f} {fmt_ms(p50):>10}"
                f" {fmt_ms(p99):>10} {cost[server]:>10.1f} {ratio:>20}"
                f"   (req/s over rounds: {spread})"
            )
    print("modgate/this: req/s of modgate over this server's (and, in brackets, this")
    print("server's CPU time per answer over modgate's; above 1 means modgate is cheaper)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, 2,000 modules")
    parser.add_argument("--modules", type=int, default=DISTINCT_MODULES)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--access-log", action="store_true",
                        help="every server writes an access log to a file (nginx: buffered "
                             "JSON lines; modgate: its own)")  # fmt: skip
    parser.add_argument(
        "--nginx",
        choices=("both", *NGINX_CONFIGS),
        default="both",
        help="nginx configurations to compare with (default: both)",
    )
    parser.add_argument(
        "--nginx-open-file-cache",
        action="store_true",
        help="compare with nginx-tuned only (same as --nginx nginx-tuned)",
    )
    parser.add_argument(
        "--only", default="", help="load only artifacts whose name contains this (e.g. '20 kB')"
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.modules = 2, 1, min(args.modules, 2000)
    require(WRK, NGINX)
    work = nginx_workdir("modgate-bench-")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        root = work / "store"
        print(f"building a store with {args.modules} distinct modules ...", flush=True)
        artifacts = build_store(root, args.modules)
        if args.nginx_open_file_cache:
            args.nginx = "nginx-tuned"
        names = list(NGINX_CONFIGS) if args.nginx == "both" else [args.nginx]
        ports: dict[str, int] = {}
        pids: dict[str, int] = {}
        for name in names:
            proc, ports[name] = start_nginx(root, work, name, args.access_log)
            procs.append(proc)
            pids[name] = proc.pid
        modgate, modgate_port = start_modgate(root, args.access_log)
        procs.append(modgate)
        ports[MODGATE], pids[MODGATE] = modgate_port, modgate.pid
        servers = [*names, MODGATE]
        for port in ports.values():
            warm(port, [a.path for a in artifacts])
        rss_start = rss_kib(modgate.pid)
        results: dict[tuple[str, str], list[Run]] = {}
        loaded = [a for a in artifacts if args.only in a.name]
        for rnd in range(args.rounds):
            for art in loaded:
                shift = rnd % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    run = wrk(ports[server], pids[server], art.path, args.duration, args.threads)
                    results.setdefault((art.name, server), []).append(run)
                    print(
                        f"round {rnd + 1} {art.name:<11} {server:<12} {run.rps:>9.0f} req/s"
                        f"  p50 {fmt_ms(run.p50_ms)}  p99 {fmt_ms(run.p99_ms)}"
                        f"  server CPU {run.cpu:.0%}",
                        flush=True,
                    )
        rss_after_wrk = rss_kib(modgate.pid)
        report(results, loaded, servers)
        seconds = fetch_distinct(modgate_port, args.modules)
        rss_end = rss_kib(modgate.pid)
        print()
        print(
            f"modgate VmRSS: {rss_start / 1024:.1f} MiB after warm-up, "
            f"{rss_after_wrk / 1024:.1f} MiB after the wrk runs (5 MB zip included), "
            f"{rss_end / 1024:.1f} MiB after {args.modules} distinct modules "
            f"(.info/.mod/.zip each once, {3 * args.modules / seconds:.0f} req/s, one client)"
        )
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
