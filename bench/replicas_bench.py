"""modgate on S3-compatible object storage: cached artifacts, and upstream fetches across replicas.

One command: ``.venv/bin/python bench/replicas_bench.py [--duration S] [--rounds N]``.

Part 1, cached small zip, twice: with modgate's in-memory hot set (the
default; neither store is touched per request) and with ``--hot-cache 0``
(every answer opens the store's local file: the filesystem store's, or the
S3 store's disk cache). One store tree (the go download-cache layout) is
written to a directory and uploaded to a bucket of moto's S3 server (on
127.0.0.1, in this process). Two modgate servers run with ``--upstream
off``: one on the directory (the filesystem store), one on ``s3://`` with
its local disk cache. Both are warmed with one request, so the S3-backed one
answers from its cache; then wrk (32 connections) asks each for the same
small zip in turn, several rounds alternating the order. It prints the
median req/s and the server's CPU time per answer of each, and the ratio
S3/filesystem (the issue's target: at least 0.9).

Part 2, cold-fetch latency: one modgate on a filesystem store and one on
``s3://`` (fresh prefix, empty disk cache), the same static upstream on
loopback (no delay), asked in turn for the .zip of 20 versions that neither
has: each answer is a miss that fetches the .mod and the .zip upstream,
checks them, stores them (a rename and fsync on disk; conditional PUTs to
the bucket) and serves the zip. It prints the median and 90th percentile
milliseconds per miss of each and the ratio S3/filesystem.

Part 3, cold load across replicas: three modgate replicas on one fresh
bucket prefix and one ``redis-server`` (free loopback port), upstream a
static GOPROXY tree served over HTTP on loopback that counts requests and
answers after 0.2 s. For each concurrency (10, 50, 150 requests spread
round-robin over the replicas) a new module version is asked cold, and the
number of upstream requests for its .zip and .mod is printed: the target
is 1 each at any concurrency. The same run without ``--redis`` is printed
for comparison. It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from benchlib import HOST, launch_modgate, stop  # noqa: E402
from helpers.modules import zip_h1  # noqa: E402
from helpers.s3server import RedisServer, S3Server, client  # noqa: E402
from helpers.staticproxy import StaticProxy  # noqa: E402
from modgate.protocol.escape import escape_path  # noqa: E402
from serve_bench import Run, make_zip, write_version, wrk  # noqa: E402

BUCKET = "modgate-bench"
MODULE = "example.com/bench/small"
SMALL_ZIP = 16 * 1024
CONCURRENCY = (10, 50, 150)
COLD_VERSIONS = 20
COLD_MODULE = "example.com/bench/cold"
REPLICAS = 3


def start(args: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    args = ["--access-log", "off", "--verify-sumdb", "off", *args]
    return launch_modgate(args, log.open("wb"), env=env)


def server_env(s3: S3Server) -> dict[str, str]:
    """This environment without modgate or proxy settings, pointed at the S3 server."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("MODGATE_", "AWS_"))}
    return {**env, **s3.env(), "NO_PROXY": "127.0.0.1,localhost"}


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def upload(tree: Path, s3_url: str, prefix: str) -> None:
    s3 = client(s3_url)
    for path in tree.rglob("*"):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(tree).as_posix()}"
            s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())  # type: ignore[attr-defined]


def cached_zip(work: Path, s3: S3Server, duration: int, rounds: int, hot_set: bool) -> None:
    tree = work / "tree"
    if not tree.exists():
        zip_bytes = make_zip(MODULE, "v1.0.0", SMALL_ZIP, 1)
        write_version(tree, MODULE, "v1.0.0", zip_bytes)
        # a store modgate filled always has the .ziphash (the zip's answer carries it)
        ziphash = tree / escape_path(MODULE) / "@v" / "v1.0.0.ziphash"
        ziphash.write_text(zip_h1(zip_bytes) + "\n")
        upload(tree, s3.url, "hot")
    env = server_env(s3)
    s3_args = ["--store", f"s3://{BUCKET}/hot", "--store-cache", str(work / f"cache-{hot_set}")]
    common = ["--upstream", "off"] + ([] if hot_set else ["--hot-cache", "0"])
    servers = {
        "filesystem": start(["--store", str(tree), *common], env, work / "fs.log"),
        "s3+cache": start([*s3_args, *common], env, work / "s3.log"),
    }
    path = f"/{escape_path(MODULE)}/@v/v1.0.0.zip"
    for name, (_, port) in servers.items():
        status, body = get(port, path)
        if status != 200 or len(body) < SMALL_ZIP // 2:
            sys.exit(f"{name}: GET {path} answered {status} ({len(body)} bytes)")
    runs: dict[str, list[Run]] = {name: [] for name in servers}
    order = list(servers)
    for _ in range(rounds):
        for name in order:
            proc, port = servers[name]
            runs[name].append(wrk(port, proc.pid, path, duration, 2))
        order.reverse()
    for proc, _ in servers.values():
        stop(proc)
    rps = {n: statistics.median(r.rps for r in rs) for n, rs in runs.items()}
    cpu = {n: statistics.median(r.cpu / r.rps * 1e6 for r in rs) for n, rs in runs.items()}
    where = "in-memory hot set on" if hot_set else "hot set off (--hot-cache 0): the store's file"
    print(f"cached {SMALL_ZIP // 1024} KiB zip, {where}; wrk 32 connections, "
          f"{rounds} rounds of {duration} s:")  # fmt: skip
    for name in servers:
        p50 = statistics.median(r.p50_ms for r in runs[name])
        print(
            f"  {name:11} {rps[name]:8.0f} req/s  p50 {p50:.2f} ms  {cpu[name]:.0f} µs CPU/answer"
        )
    print(f"  ratio s3+cache/filesystem: {rps['s3+cache'] / rps['filesystem']:.2f}× req/s, "
          f"{cpu['filesystem'] / cpu['s3+cache']:.2f}× CPU efficiency")  # fmt: skip


def cold_latency(work: Path, s3: S3Server) -> None:
    upstream_tree = work / "upstream-latency"
    for i in range(COLD_VERSIONS):
        version = f"v1.1.{i}"
        write_version(upstream_tree, COLD_MODULE, version,
                      make_zip(COLD_MODULE, version, SMALL_ZIP, i))  # fmt: skip
        mod = upstream_tree / escape_path(COLD_MODULE) / "@v" / f"{version}.mod"
        mod.write_text(f"module {COLD_MODULE}\n")
    upstream = StaticProxy(upstream_tree)
    env = server_env(s3)
    common = ["--upstream", upstream.url]
    servers = {
        "filesystem": start(["--store", str(work / "cold-fs"), *common], env, work / "cfs.log"),
        "s3+cache": start(["--store", f"s3://{BUCKET}/latency", "--store-cache",
                           str(work / "cold-cache"), *common], env, work / "cs3.log"),
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in servers}
    order = list(servers)
    for i in range(COLD_VERSIONS):
        path = f"/{escape_path(COLD_MODULE)}/@v/v1.1.{i}.zip"
        for name in order:
            started = time.perf_counter()
            status, body = get(servers[name][1], path)
            times[name].append((time.perf_counter() - started) * 1000)
            if status != 200 or len(body) < SMALL_ZIP // 2:
                sys.exit(f"{name}: cold GET {path} answered {status} ({len(body)} bytes)")
        order.reverse()
    for proc, _ in servers.values():
        stop(proc)
    upstream.close()
    print(f"cold fetch of a {SMALL_ZIP // 1024} KiB zip and its .mod ({COLD_VERSIONS} versions, "
          "upstream on loopback without delay):")  # fmt: skip
    medians = {}
    for name, found in times.items():
        medians[name] = statistics.median(found)
        p90 = statistics.quantiles(found, n=10)[-1]
        print(f"  {name:11} median {medians[name]:6.1f} ms  p90 {p90:6.1f} ms per miss")
    print(f"  ratio s3+cache/filesystem: {medians['s3+cache'] / medians['filesystem']:.2f}× "
          "median time per miss")  # fmt: skip


def cold_load(work: Path, s3: S3Server, with_redis: bool) -> None:
    upstream_tree = work / f"upstream-{with_redis}"
    for i, _ in enumerate(CONCURRENCY):
        version = f"v1.0.{i}"
        write_version(upstream_tree, MODULE, version, make_zip(MODULE, version, SMALL_ZIP, i))
        # the .mod must be the zip's go.mod, or modgate refuses the zip
        mod = upstream_tree / escape_path(MODULE) / "@v" / f"{version}.mod"
        mod.write_text(f"module {MODULE}\n")
    upstream = StaticProxy(upstream_tree)
    upstream.delay = 0.2
    redis = RedisServer(work / f"redis-{with_redis}") if with_redis else None
    env = server_env(s3)
    prefix = "cold-redis" if with_redis else "cold-local"
    extra = ["--redis", redis.url] if redis else []
    replicas = []
    for i in range(REPLICAS):
        args = ["--store", f"s3://{BUCKET}/{prefix}", "--store-cache", str(work / f"{prefix}{i}")]
        args += ["--upstream", upstream.url, *extra]
        replicas.append(start(args, env, work / f"{prefix}{i}.log"))
    label = "one Redis" if with_redis else "no Redis (per-process locks)"
    print(f"cold load over {REPLICAS} replicas, one bucket, {label}; upstream answers after 0.2 s:")
    for i, concurrency in enumerate(CONCURRENCY):
        path = f"/{escape_path(MODULE)}/@v/v1.0.{i}.zip"
        ports = [port for _, port in replicas]
        asks = [(ports[n % REPLICAS], path) for n in range(concurrency)]
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            answers = list(pool.map(lambda ask: get(*ask), asks))
        bad = [(status, body[:200]) for status, body in answers if status != 200]
        zips, mods = upstream.count(path), upstream.count(path.removesuffix(".zip") + ".mod")
        print(f"  {concurrency:4} concurrent requests: {zips} upstream .zip fetch(es), "
              f"{mods} .mod; {len(bad)} non-200 answers {bad[:1]}")  # fmt: skip
    for proc, _ in replicas:
        stop(proc)
    upstream.close()
    if redis is not None:
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run [5]")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server [3]")
    parser.add_argument(
        "--part", choices=("all", "cached", "cold", "load"), default="all",
        help="run one part only: cached zips, cold-fetch latency, or cold load [all]",
    )  # fmt: skip
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    s3 = S3Server()
    s3.create_bucket(BUCKET)
    with tempfile.TemporaryDirectory(prefix="modgate-replicas-bench-") as tmp:
        work = Path(tmp)
        if args.part in ("all", "cached"):
            cached_zip(work, s3, args.duration, args.rounds, hot_set=True)
            cached_zip(work, s3, args.duration, args.rounds, hot_set=False)
        if args.part in ("all", "cold"):
            cold_latency(work, s3)
        if args.part in ("all", "load"):
            cold_load(work, s3, with_redis=True)
            cold_load(work, s3, with_redis=False)
    s3.close()


if __name__ == "__main__":
    main()
