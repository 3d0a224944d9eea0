"""Memory, descriptors and store files under hostile misses, modgate against nginx.

One command: ``.venv/bin/python bench/hostile_bench.py [--distinct N] [--repeats N]``.

Both servers serve the same empty store on 127.0.0.1 (nginx from
``serve_bench.py``'s configuration, 1 worker; ``modgate serve --upstream off
--negative-ttl 600``, so that every not-found answer is remembered for the
whole run). Each gets, on keep-alive connections with pipelined requests:
200 warm-up misses, then N requests for distinct missing ``.info`` files
(every one a new key for modgate's negative cache), then N requests for one
missing ``.info`` (the same key over and over). It prints each server's
resident memory (VmRSS of the serving process) after each phase, the growth
per request, open descriptors, and the files in the store. nginx keeps
nothing per request, so its growth is the floor; modgate's is what its
bounded tables hold (see the README's Bounds). It asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import HOST, nginx_workdir, stop
from serve_bench import MODGATE, rss_kib, start_modgate, start_nginx

PIPELINE_BATCH = 200
PER_CONNECTION = 800
"""Requests sent on one connection (nginx closes after keepalive_requests, 1000)."""
STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")
WARM = 200


@dataclass
class Phases:
    server: str
    start_kib: int
    distinct_kib: int
    repeats_kib: int
    fds: tuple[int, int]
    seconds: float


def serving_pid(pid: int) -> int:
    """nginx answers from its worker (the master's child); modgate from itself."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def get_many(port: int, paths: list[str]) -> None:
    """GET each path, pipelined ``PIPELINE_BATCH`` at a time; every answer must be a 404."""
    for first in range(0, len(paths), PER_CONNECTION):
        with socket.create_connection((HOST, port), timeout=60) as sock:
            chunk_paths = paths[first : first + PER_CONNECTION]
            for start in range(0, len(chunk_paths), PIPELINE_BATCH):
                batch = chunk_paths[start : start + PIPELINE_BATCH]
                sock.sendall(
                    b"".join(b"GET %s HTTP/1.1\r\nHost: m\r\n\r\n" % p.encode() for p in batch)
                )
                received = b""
                while len(STATUS_LINE.findall(received)) < len(batch):
                    data = sock.recv(1 << 20)
                    if not data:
                        sys.exit(f"port {port} closed the connection mid-batch")
                    received += data
                codes = set(STATUS_LINE.findall(received))
                if codes != {b"404"}:
                    sys.exit(f"port {port} answered {sorted(codes)}, not only 404")


def run(name: str, pid: int, port: int, distinct: int, repeats: int) -> Phases:
    served = serving_pid(pid)
    get_many(port, [f"/example.com/warm{i}/@v/v1.0.0.info" for i in range(WARM)])
    start, fd0 = rss_kib(served), fds(served)
    t0 = time.monotonic()
    get_many(port, [f"/example.com/hostile{i}/@v/v1.0.{i}.info" for i in range(distinct)])
    after_distinct = rss_kib(served)
    get_many(port, ["/example.com/missing/@v/v9.9.9.info"] * repeats)
    after_repeats = rss_kib(served)
    seconds = time.monotonic() - t0
    return Phases(name, start, after_distinct, after_repeats, (fd0, fds(served)), seconds)


def store_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distinct", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=40_000)
    args = parser.parse_args()
    work = nginx_workdir("modgate-hostile-")
    root = work / "store"
    root.mkdir()
    root.chmod(0o755)
    results: list[Phases] = []
    nginx, nginx_port = start_nginx(root, work, "nginx")
    try:
        results.append(run("nginx", nginx.pid, nginx_port, args.distinct, args.repeats))
    finally:
        stop(nginx)
    # --upstream off (start_modgate's); not-found answers kept for the whole run
    os.environ["MODGATE_NEGATIVE_TTL"] = "600"
    modgate, port = start_modgate(root, access_log=False)
    try:
        results.append(run(MODGATE, modgate.pid, port, args.distinct, args.repeats))
    finally:
        stop(modgate)
    files = store_files(root)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{args.distinct} distinct missing .info, then {args.repeats} requests for one")
    print(f"{'server':8} {'start':>9} {'distinct':>17} {'repeats':>17} {'fds':>9} {'time':>7}")
    for r in results:
        grow_d = (r.distinct_kib - r.start_kib) * 1024 / max(args.distinct, 1)
        grow_r = (r.repeats_kib - r.distinct_kib) * 1024 / max(args.repeats, 1)
        print(
            f"{r.server:8} {r.start_kib / 1024:7.1f}Mi "
            f"{r.distinct_kib / 1024:7.1f}Mi {grow_d:5.0f}B/req "
            f"{r.repeats_kib / 1024:7.1f}Mi {grow_r:5.0f}B/req "
            f"{r.fds[0]:4d}>{r.fds[1]:<4d} {r.seconds:6.1f}s"
        )
    print(f"files in the store after both servers: {files}")


if __name__ == "__main__":
    main()
