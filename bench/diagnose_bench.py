"""How fast ``modgate diagnose`` reads a large CI log, and whether its memory stays flat.

Writes synthetic GitHub Actions logs (timestamps, ANSI colors, ``go test -v``
output, compiler and download lines, a BuildKit section) of several sizes with
one real failure near the end, then runs ``modgate diagnose --format json`` on
each in a child process and prints the wall time and the child's peak RSS.
Memory is flat when the peak RSS does not grow with the log size.

Baseline, in the same run on the same logs: what people do by hand, a plain
``grep -E`` for the go command's module error lines (GREP_PATTERN), also in a
child process; the ratio column is modgate's wall time over grep's. grep only
finds the lines; diagnose also names the cause, the module and the fix.

A *typical* log has a keyword diagnose must look at in about a third of its
lines; a *dense* log (the worst case) in every line: downloads, test failures
and compiler errors only.

Usage: .venv/bin/python bench/diagnose_bench.py [--sizes 5,50] [--dense 50] [--keep DIR]
Goal (issue 4): any 50 MB log, typical or dense, in under 5 s with flat memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1024 * 1024
GOAL_SECONDS = 5.0
FAILURE = [
    "go: corp.example.com/private@v1.0.0: verifying go.mod: corp.example.com/private@v1.0.0/"
    "go.mod: reading https://proxy.golang.org/sumdb/sum.golang.org/lookup/"
    "corp.example.com/private@v1.0.0: 404 Not Found",
    "\tserver response:",
    "\tnot found: corp.example.com/private@v1.0.0: invalid version: git ls-remote -q "
    "--end-of-options https://corp.example.com/private: exit status 128:",
    "\t\tfatal: could not read Username for 'https://corp.example.com': terminal prompts disabled",
    "##[error]Process completed with exit code 1.",
]


GREP_PATTERN = (
    r"go: .*@[^ ]*: |verifying (go\.mod|module)|invalid version|server response"
    r"|missing go\.sum entry|checksum mismatch|SECURITY ERROR|fatal: |terminal prompts disabled"
)
"""The go command's module error lines, as one would grep a CI log for them."""


def _noise(rng: random.Random, index: int) -> str:
    kind = index % 11
    test = f"Test{rng.choice(['Parse', 'Serve', 'Store', 'Route', 'Verify'])}{index % 997}"
    if kind == 0:
        return f"=== RUN   {test}"
    if kind == 1:
        return f"--- PASS: {test} (0.0{index % 10}s)"
    if kind == 2:
        return f"    {test.lower()}_test.go:{index % 300}: got {index} entries, want {index}"
    if kind == 3:
        return f"go: downloading github.com/acme/lib{index % 50} v1.{index % 9}.0"
    if kind == 4:
        return f"\x1b[32mok  \x1b[0m\texample.com/app/pkg{index % 40}\t0.{index % 999:03d}s"
    if kind == 5:
        return f"#12 {index % 90}.{index % 1000:03d} compiling example.com/app/internal/x{index}"
    if kind == 6:
        return "npm WARN deprecated inflight@1.0.6: This module is not supported"
    if kind == 7:
        return f"[eslint] 0 errors, {index % 3} warnings in src/components/Widget{index}.tsx"
    if kind == 8:
        return f'level=info msg="cache hit" key=setup-go-{index:08x} size={index * 7}'
    if kind == 9:
        return "##[group]Run go test -race ./..." if index % 1000 == 9 else "##[endgroup]"
    return f"PASS\tcoverage: {index % 100}.{index % 10}% of statements"


def _dense(rng: random.Random, index: int) -> str:
    kind = index % 4
    if kind == 0:
        return f"go: downloading github.com/acme/lib{index % 500} v1.{index % 9}.0"
    if kind == 1:
        return f"    widget_test.go:{index % 300}: error: got {index} want {index + 1}"
    if kind == 2:
        return f"--- FAIL: TestWidget{index} (0.00s)"
    return f"./pkg/x{index}.go:{index % 90}:{index % 7 + 1}: undefined: thing{index}"


def write_log(path: Path, size: int, *, dense: bool = False) -> None:
    rng = random.Random(size)
    make = _dense if dense else _noise
    seconds = 0.0
    written = 0
    index = 0
    with path.open("w", encoding="utf-8") as out:
        while written < size:
            seconds += 0.0001
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1715678463 + seconds))
            line = f"{stamp}.{index % 10_000_000:07d}Z {make(rng, index)}\n"
            out.write(line)
            written += len(line)
            index += 1
        for line in FAILURE:
            out.write(f"2024-05-14T10:00:00.0000000Z {line}\n")


def _run(argv: list[str], what: str) -> tuple[float, float, bytes]:
    """Wall seconds, peak RSS in MB and the standard output of one child run."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    output = proc.stdout.read() if proc.stdout is not None else b""
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{what} failed: {' '.join(argv)}")
    return elapsed, usage.ru_maxrss / 1024, output


def measure(log: Path) -> tuple[float, float, list[object]]:
    """Wall seconds, peak RSS in MB and the findings of one diagnose run."""
    argv = [sys.executable, "-m", "modgate", "diagnose", "--format", "json", str(log)]
    elapsed, rss, output = _run(argv, "modgate diagnose")
    try:
        return elapsed, rss, json.loads(output)
    except ValueError:
        raise SystemExit(f"modgate diagnose printed no JSON report for {log}") from None


def measure_grep(grep: str, log: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and the matching lines of ``grep -E`` on ``log``."""
    elapsed, rss, output = _run([grep, "-E", GREP_PATTERN, str(log)], "grep")
    return elapsed, rss, output.count(b"\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,50", help="log sizes in MB, comma separated")
    parser.add_argument("--dense", default="50", help="dense log sizes in MB ('' for none)")
    parser.add_argument("--keep", type=Path, help="write the logs here instead of a temp dir")
    args = parser.parse_args()
    grep = shutil.which("grep")
    if grep is None:
        raise SystemExit("grep is not installed: it is the baseline")
    runs = [(int(part), False) for part in args.sizes.split(",") if part]
    runs += [(int(part), True) for part in args.dense.split(",") if part]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(
            f"{'log':>14} {'lines':>10} {'wall s':>8} {'MB/s':>7} {'peak RSS MB':>12}"
            f" {'grep s':>7} {'grep RSS':>8} {'matched':>8} {'ratio':>6}  top cause"
        )
        for size, dense in runs:
            kind = "dense" if dense else "typical"
            log = folder / f"ci-{kind}-{size}mb.log"
            write_log(log, size * MB, dense=dense)
            with log.open("rb") as handle:
                lines = sum(1 for _ in handle)
            elapsed, rss, findings = measure(log)
            grep_elapsed, grep_rss, matched = measure_grep(grep, log)
            top = findings[0]["cause"] if findings else "none"  # type: ignore[index]
            goal = size == 50
            verdict = ("ok" if elapsed < GOAL_SECONDS else "SLOWER THAN GOAL") if goal else ""
            print(
                f"{kind:>7} {size:>4}MB {lines:>10} {elapsed:>8.2f} {size / elapsed:>7.1f}"
                f" {rss:>12.1f} {grep_elapsed:>7.2f} {grep_rss:>8.1f} {matched:>8}"
                f" {elapsed / grep_elapsed:>5.1f}x  {top}  {verdict}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
