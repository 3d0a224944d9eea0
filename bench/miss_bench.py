"""Cold ``.mod`` misses one after the other: modgate against the upstream alone.

One command: ``.venv/bin/python bench/miss_bench.py [--modules N] [--rounds R]``.

While it loads the module graph, the go command asks for one ``.mod`` after
another; on a cold store each is a miss that modgate fetches from its
upstream, verifies, answers and stores (with the version's ``.info``
fetched beside it). This benchmark makes N small modules (a go.mod and an
.info each), serves them with nginx (1 worker, keep-alive), and asks for
every ``.mod`` in turn over one keep-alive connection: straight from nginx,
then through a modgate started on an empty store (``--upstream <nginx>
--verify-sumdb off --access-log off``). It prints the median and mean time
per request of both, their ratio, and modgate's CPU time per miss (from
/proc, its worker threads included), split between the serving thread and
the worker threads. Every round starts a new modgate on a new store. It
prints the figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import time
from pathlib import Path

from benchlib import HOST, NGINX, launch_modgate, launch_nginx, nginx_workdir, stop

WARM_UP = 5
"""Misses before the timed ones: the first requests of a new process import and connect."""


def build(root: Path, count: int) -> list[str]:
    paths = []
    for i in range(count):
        module = f"example.com/bench/m{i:05d}"
        vdir = root / module / "@v"
        vdir.mkdir(parents=True)
        (vdir / "v1.0.0.mod").write_text(f"module {module}\n\ngo 1.21\n")
        (vdir / "v1.0.0.info").write_text('{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}\n')
        paths.append(f"/{module}/@v/v1.0.0.mod")
    return paths


def get(sock: socket.socket, path: str) -> None:
    """One GET on a keep-alive connection; exits on anything but a 200."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit(f"the connection closed while asking for {path}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit(f"{path}: {head.splitlines()[0].decode(errors='replace')}")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)


def thread_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of ``pid``'s main (serving) thread and of its other threads."""
    tick = 100.0
    main = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a thread that just ended
        used = (int(fields[11]) + int(fields[12])) / tick
        if task.name == str(pid):
            main += used
        else:
            others += used
    return main, others


def timed(port: int, paths: list[str]) -> list[float]:
    with socket.create_connection((HOST, port)) as sock:
        for path in paths[:WARM_UP]:
            get(sock, path)
        times = []
        for path in paths[WARM_UP:]:
            started = time.perf_counter()
            get(sock, path)
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=300, help="modules (misses per round)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each on a new store")
    args = parser.parse_args()
    if shutil.which(NGINX) is None:
        sys.exit(f"{NGINX} is not installed; apt-get install nginx-light")
    work = nginx_workdir("modgate-miss-")
    try:
        paths = build(work / "upstream", args.modules + WARM_UP)
        nginx, nginx_port = launch_nginx(work / "nginx", work / "upstream")
        upstream: list[float] = []
        through: list[float] = []
        serving: list[float] = []
        workers: list[float] = []
        try:
            for rnd in range(args.rounds):
                upstream += timed(nginx_port, paths)
                store = work / f"store-{rnd}"
                args_ = ["--store", str(store), "--upstream", f"http://{HOST}:{nginx_port}",
                         "--verify-sumdb", "off", "--access-log", "off"]  # fmt: skip
                modgate, port = launch_modgate(args_, sys.stderr.buffer)
                try:
                    before = thread_cpu(modgate.pid)
                    times = timed(port, paths)
                    time.sleep(0.5)  # the last writes, which follow the answers
                    after = thread_cpu(modgate.pid)
                finally:
                    stop(modgate)
                through += times
                serving.append((after[0] - before[0]) / len(times) * 1000)
                workers.append((after[1] - before[1]) / len(times) * 1000)
                median = statistics.median(times)
                print(f"round {rnd + 1}: modgate median {median:.2f} ms, CPU {serving[-1]:.2f} "
                      f"+ {workers[-1]:.2f} ms per miss", flush=True)  # fmt: skip
        finally:
            stop(nginx)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    up, mg = statistics.median(upstream), statistics.median(through)
    print()
    print(f"{'':10} {'median ms':>10} {'mean ms':>9}")
    print(f"{'upstream':10} {up:>10.3f} {statistics.fmean(upstream):>9.3f}")
    print(f"{'modgate':10} {mg:>10.3f} {statistics.fmean(through):>9.3f}   {mg / up:.1f}x")
    print(
        f"modgate CPU per miss: {statistics.median(serving):.2f} ms serving thread + "
        f"{statistics.median(workers):.2f} ms worker threads (medians of {args.rounds} rounds)"
    )


if __name__ == "__main__":
    main()
