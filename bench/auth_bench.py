"""What authentication costs on the hot path: modgate with and without it, same store, same run.

One command: ``.venv/bin/python bench/auth_bench.py [--duration S] [--rounds N]``.

Two ``modgate serve --upstream off`` processes serve one store: one without
authentication, one with ``--tokens`` (a token created without ``--read``),
``--private`` covering the benchmark module and the audit log written to a
file (every private read is an audit line). wrk (32 connections, keep-alive)
loads the .info and the 20 kB .zip of the module on each, in alternating
rounds; the authenticated runs send ``Authorization: Bearer <token>`` with
every request. It prints requests per second, the ratio, the server's CPU
time per request (steadier than throughput on a shared machine) and
p50/p99, and asserts nothing.

First it measures the same in-process, without sockets: one connection
object is fed 1,000 pipelined GETs of a hot private ``.info`` (headers as
the go command sends them), best of 30 batches, without authentication,
without it but with the Authorization header sent (the parsing alone), and
with it (verdict cached, audit counted). That figure does not move with the
machine's load.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modgate.metrics import Metrics
from modgate.protocol.escape import escape_path
from modgate.protocol.grants import AccessPolicy
from modgate.protocol.patterns import parse_patterns
from modgate.server.auth.audit import AuditLog
from modgate.server.auth.gate import ALLOWED_PRIVATE, AccessGate
from modgate.server.auth.ratelimit import FailureLimiter
from modgate.server.auth.resolver import Resolver
from modgate.server.auth.tokens import TokenTable
from modgate.server.hotcache import HotEntry
from modgate.server.http import HttpConnection
from modgate.server.router import RequestRouter
from modgate.server.settings import ServerSettings
from modgate.server.state import ServerState

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import HOST, WRK, launch_modgate, stop
from serve_bench import SMALL_ZIP_BYTES, Run, make_zip, write_version, wrk

MODULE = "corp.example.com/bench/small"


class _Transport:
    """Enough of a transport for the hot path: answers are dropped, not sent."""

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": (HOST, 1)}.get(name, default)

    def writelines(self, data: object) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def in_process(auth: bool, header: bool) -> float:
    """Microseconds per hot request, parsing included, best of 30 batches of 1,000."""
    state = ServerState(ServerSettings(), Metrics(), None)
    target = f"/{MODULE}/@v/v1.0.0.info".encode()
    body = b'{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}'
    head = b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    entry = HotEntry(head + body, len(head), None, ("info", 200), module=MODULE,
                     subject=f"{MODULE}@v1.0.0")  # fmt: skip
    state.hot.put(target, entry)
    credentials = b"Bearer mgt_" + b"x" * 43
    if auth:
        state.access = AccessGate(
            AccessPolicy(parse_patterns("corp.example.com")),
            Resolver(TokenTable([]), None),
            AuditLog(io.StringIO()),
            FailureLimiter(30),
            contact="bench",
        )
    # the hot path never asks the router
    conn = HttpConnection(state, RequestRouter.__new__(RequestRouter))
    conn.connection_made(_Transport())  # type: ignore[arg-type]
    access = conn._access
    if access is not None:  # what the first request on the connection would have learnt
        access.key, access.generation, access.expires = credentials, 0, float("inf")
        access.verdicts[MODULE] = (ALLOWED_PRIVATE, "token-unrestricted")
    request = (
        b"GET " + target + b" HTTP/1.1\r\nHost: modgate.corp.example.com:8443\r\n"
        b"User-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n"
        + (b"Authorization: " + credentials + b"\r\n" if header else b"")
        + b"\r\n"
    )
    batch = request * 1000
    best = float("inf")
    for _ in range(30):
        t0 = time.perf_counter()
        conn.data_received(batch)
        best = min(best, time.perf_counter() - t0)
    return best / 1000 * 1e6


def start(root: Path, work: Path, name: str, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    args = ["--store", str(root), "--upstream", "off", "--access-log", "off", *extra]
    log = (work / f"{name}.log").open("w+b")
    return launch_modgate(args, log, what=f"modgate ({name})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    args = parser.parse_args()
    plain = in_process(auth=False, header=False)
    header_only = in_process(auth=False, header=True)
    authed = in_process(auth=True, header=True)
    print(
        f"in process, per hot private .info: {plain:.2f} µs without authentication, "
        f"{header_only:.2f} µs with the Authorization header sent but unused, "
        f"{authed:.2f} µs with authentication (+{authed - plain:.2f} µs)",
        flush=True,
    )
    if shutil.which(WRK) is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="modgate-auth-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        root = work / "store"
        write_version(root, MODULE, "v1.0.0", make_zip(MODULE, "v1.0.0", SMALL_ZIP_BYTES, 1))
        tokens = work / "tokens"
        token = subprocess.run(
            [sys.executable, "-m", "modgate", "token", "create", "--tokens", str(tokens),
             "--name", "bench"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        plain, plain_port = start(root, work, "plain", "--private", "corp.example.com")
        procs.append(plain)
        authed, authed_port = start(
            root, work, "auth", "--private", "corp.example.com", "--tokens", str(tokens),
            "--audit-log", str(work / "audit.jsonl"),
        )  # fmt: skip
        procs.append(authed)
        servers = {
            "no auth": (plain_port, plain.pid, None),
            "token": (authed_port, authed.pid, f"Authorization: Bearer {token}"),
        }
        base = f"/{escape_path(MODULE)}/@v/v1.0.0"
        results: dict[tuple[str, str], list[Run]] = {}
        for rnd in range(args.rounds):
            for ext in (".info", ".zip"):
                order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
                for name in order:
                    port, pid, header = servers[name]
                    extra = ["-H", header] if header else []
                    run = wrk(port, pid, base + ext, args.duration, 1, *extra)
                    results.setdefault((ext, name), []).append(run)
                    print(
                        f"round {rnd + 1} {ext:<5} {name:<8} {run.rps:>9.0f} req/s "
                        f"p50 {run.p50_ms:.2f} ms p99 {run.p99_ms:.2f} ms",
                        flush=True,
                    )
        print()
        print("| artifact | no auth req/s | token req/s | token/no auth | "
              "server CPU per request, no auth / token | p50 / p99 with token |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for ext in (".info", ".zip 20 kB"):
            key = ext.split()[0]
            plain_runs = results[(key, "no auth")]
            auth_runs = results[(key, "token")]
            plain_rps = statistics.median(r.rps for r in plain_runs)
            auth_rps = statistics.median(r.rps for r in auth_runs)
            plain_cpu = statistics.median(r.cpu / r.rps * 1e6 for r in plain_runs)
            auth_cpu = statistics.median(r.cpu / r.rps * 1e6 for r in auth_runs)
            p50 = statistics.median(r.p50_ms for r in auth_runs)
            p99 = statistics.median(r.p99_ms for r in auth_runs)
            print(
                f"| `{ext}` | {plain_rps:,.0f} | {auth_rps:,.0f} | {auth_rps / plain_rps:.2f}x "
                f"| {plain_cpu:.1f} / {auth_cpu:.1f} µs | {p50:.2f} / {p99:.2f} ms |"
            )
        audit = work / "audit.jsonl"
        lines = audit.read_text().splitlines() if audit.exists() else []
        reads = sum(json.loads(line)["count"] for line in lines)
        print(f"\naudit: {len(lines):,} lines accounting for {reads:,} private reads")
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    main()
