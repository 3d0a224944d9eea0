"""HTTPS throughput of modgate's server against nginx with the same certificate.

One command: ``.venv/bin/python bench/tls_bench.py [--duration S] [--rounds N] [--quick]``.

It builds a temporary store in the go download-cache layout (the artifacts of
``serve_bench.py``), makes a throw-away CA and an ECDSA P-256 server
certificate for 127.0.0.1, and starts nginx (1 worker, TLS 1.2/1.3, HTTP/1.1,
keep-alive, access log off, its own prefix) and ``modgate serve --tls-cert
--tls-key`` on the same store and the same pair, both on 127.0.0.1
ephemeral ports. wrk then loads each artifact on each server in turn, in two
modes: keep-alive connections (32 connections: bulk encryption cost), and a
new connection per request (``Connection: close``, 32 at a time: handshake
cost). It prints the medians, the modgate/nginx ratio, and each server's
CPU time per answer (which a busy machine disturbs less than req/s), and
asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from benchlib import NGINX, WRK, launch_modgate, launch_nginx, nginx_workdir, require, stop
from helpers.tlscerts import CertPair, TestCA
from serve_bench import Artifact, Run, build_store, fmt_ms, wrk

TUNED = "tcp_nopush on; keepalive_requests 100000;"
"""nginx at its best for this load (as serve_bench's nginx-tuned, without open_file_cache)."""
SSL = "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off;"

MODES = ("keep-alive", "new connection")
LOADED = (".info", ".zip 20 kB", ".zip 5 MB")
HANDSHAKE_LOADED = (".info", ".zip 20 kB")
"""Artifacts loaded with a new connection per request (a 5 MB body hides the handshake)."""
WRK_TIMEOUT = "10s"
"""wrk's per-request timeout: a 5 MB answer to 32 clients can take over wrk's default 2 s."""


def start_nginx(root: Path, work: Path, pair: CertPair) -> tuple[subprocess.Popen[bytes], int]:
    server = f"ssl_certificate {pair.cert}; ssl_certificate_key {pair.key}; {SSL}"
    return launch_nginx(work / "nginx", root, tuning=TUNED, listen=" ssl", server=server)


def start_modgate(root: Path, pair: CertPair) -> tuple[subprocess.Popen[bytes], int]:
    args = [
        "--store", str(root),
        "--upstream", "off",
        "--verify-sumdb", "off",
        "--access-log", "off",
        "--tls-cert", str(pair.cert),
        "--tls-key", str(pair.key),
    ]  # fmt: skip
    sink = open(root.parent / "modgate.log", "w+b")  # noqa: SIM115 - kept for the server's life
    return launch_modgate(args, sink)


def wrk_https(port: int, pid: int, path: str, duration: int, mode: str) -> Run:
    extra = ["--timeout", WRK_TIMEOUT]
    if mode == "new connection":
        extra += ["-H", "Connection: close"]
    return wrk(port, pid, path, duration, 1, *extra, scheme="https")


def cpu_us(runs: list[Run]) -> float:
    """Median server CPU time per answer, in microseconds (robust on a busy machine)."""
    return statistics.median(r.cpu / r.rps * 1e6 for r in runs if r.rps)


def report(results: dict[tuple[str, str, str], list[Run]], artifacts: list[Artifact]) -> None:
    print()
    header = ("mode", "artifact", "nginx req/s", "modgate req/s", "modgate/nginx", "modgate p99",
              "CPU us/answer nginx", "modgate", "ratio")  # fmt: skip
    print("{:<15} {:<11} {:>12} {:>14} {:>14} {:>12} {:>20} {:>8} {:>6}".format(*header))
    for mode in MODES:
        for art in artifacts:
            nginx = results.get((mode, art.name, "nginx"))
            modgate = results.get((mode, art.name, "modgate"))
            if not nginx or not modgate:
                continue
            n = statistics.median(r.rps for r in nginx)
            m = statistics.median(r.rps for r in modgate)
            p99 = statistics.median(r.p99_ms for r in modgate)
            spread = (
                f"nginx {min(r.rps for r in nginx):.0f}-{max(r.rps for r in nginx):.0f}, "
                f"modgate {min(r.rps for r in modgate):.0f}-{max(r.rps for r in modgate):.0f}"
            )
            cpu_n, cpu_m = cpu_us(nginx), cpu_us(modgate)
            print(
                f"{mode:<15} {art.name:<11} {n:>12.0f} {m:>14.0f} {m / n:>13.2f}x"
                f" {fmt_ms(p99):>12} {cpu_n:>20.0f} {cpu_m:>8.0f} {cpu_m / cpu_n:>5.2f}x"
                f"   ({spread})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    parser.add_argument("--mode", choices=MODES, help="load only this mode")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 2, 1
    require(WRK, NGINX)
    work = nginx_workdir("modgate-tls-bench-")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        root = work / "store"
        artifacts = [a for a in build_store(root, 0) if a.name in LOADED]
        pair = TestCA(work / "ca", "bench CA").issue("bench")
        nginx, nginx_port = start_nginx(root, work, pair)
        procs.append(nginx)
        modgate, modgate_port = start_modgate(root, pair)
        procs.append(modgate)
        ports = {"nginx": nginx_port, "modgate": modgate_port}
        pids = {"nginx": nginx.pid, "modgate": modgate.pid}
        for server, port in ports.items():  # warm the hot set and nginx's page cache
            for art in artifacts:
                wrk_https(port, pids[server], art.path, 1, "keep-alive")
        results: dict[tuple[str, str, str], list[Run]] = {}
        modes = [args.mode] if args.mode else list(MODES)
        for rnd in range(args.rounds):
            for mode in modes:
                for art in artifacts:
                    if mode == "new connection" and art.name not in HANDSHAKE_LOADED:
                        continue
                    order = ("nginx", "modgate") if rnd % 2 == 0 else ("modgate", "nginx")
                    for server in order:
                        run = wrk_https(ports[server], pids[server], art.path, args.duration, mode)
                        results.setdefault((mode, art.name, server), []).append(run)
                        print(
                            f"round {rnd + 1} {mode:<15} {art.name:<11} {server:<8}"
                            f" {run.rps:>9.0f} req/s  p50 {fmt_ms(run.p50_ms)}"
                            f"  p99 {fmt_ms(run.p99_ms)}  server CPU {run.cpu:.0%}",
                            flush=True,
                        )
        report(results, artifacts)
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
