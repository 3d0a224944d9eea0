#!/usr/bin/env python3
"""Regenerate the labelled diagnose corpus in tests/data/diagnose/ by running the real go.

Every log is the real output of go1.27 (the go command of the project's
virtualenv) driven into one failure class against local servers. The whole
run happens inside new mount and network namespaces (``unshare``), so:

- the only network is a private loopback: nothing can reach another host,
  and the local servers can use fixed ports (the logs are reproducible);
- ``/etc/resolv.conf`` points at a local DNS server that answers NXDOMAIN,
  so name lookups fail with the real ``no such host`` error;
- a tmpfs is mounted over ``/home``, so the logs show CI-like paths
  (``/home/runner/go/pkg/mod``) and nothing is left behind;
- small tmpfs and read-only bind mounts reproduce a full disk and a
  read-only module cache, and ``setpriv`` runs go as ``nobody``.

It needs root (or unprivileged user namespaces), ``unshare``, ``ip``,
``git`` and ``openssl``. Afterwards a share of the raw logs is wrapped the way
GitHub Actions, GitLab CI and docker build print them (that part is text
transformation of the real output, see ``diagnose_corpus_wrap.py``), and
``labels.json`` records each log's expected top cause and module (for a build
that failed for another reason: no cause, and the kind of failure).

Usage: .venv/bin/python scripts/gen_diagnose_corpus.py [--out DIR] [--only NAME...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests"), str(REPO / "src")]

from diagnose_corpus_cases import CASES, Case  # noqa: E402
from diagnose_corpus_env import CaseSkipped, Sandbox, Step  # noqa: E402
from diagnose_corpus_wrap import WRAPPERS, raw_log  # noqa: E402

DEFAULT_OUT = REPO / "tests" / "data" / "diagnose"
INSIDE_MARK = "MODGATE_CORPUS_SANDBOX"
SANDBOX_HOME = Path("/home")
TMPFS_SIZE = "768m"


def _reexec_in_namespaces(argv: list[str]) -> int:
    """Run this script again inside new mount and network namespaces."""
    unshare = shutil.which("unshare")
    if unshare is None:
        sys.exit("gen_diagnose_corpus: needs unshare (util-linux) to isolate the network")
    prefix = [unshare, "--mount", "--net", "--fork"]
    if os.geteuid() != 0:
        prefix.insert(1, "--map-root-user")
    env = dict(os.environ, **{INSIDE_MARK: "1"})
    return subprocess.call([*prefix, sys.executable, __file__, *argv], env=env)


def _prepare_namespace() -> None:
    """Loopback up, private resolv.conf, tmpfs over /home; fail loudly otherwise."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(SANDBOX_HOME)],
        check=True,
    )
    resolv = SANDBOX_HOME / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
    subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)


def _write_case(
    out: Path, case: Case, transcript: list[Step], labels: dict[str, object], platform: list[str]
) -> int:
    written = 0
    goos, goarch = platform
    module = case.module.format(goos=goos, goarch=goarch) if case.module else None
    formats = ([] if case.wrapped_only else ["raw"]) + list(case.wrappers)
    for fmt in formats:
        name = case.name if fmt == "raw" else f"{case.name}--{fmt}"
        text = raw_log(case, transcript) if fmt == "raw" else WRAPPERS[fmt](case, transcript)
        (out / f"{name}.log").write_text(text)
        entry: dict[str, str | None] = {"cause": case.cause, "module": module, "format": fmt}
        if case.kind is not None:
            entry["kind"] = case.kind
        labels[name] = entry
        written += 1
    return written


def generate(out: Path, only: set[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    labels_path = out / "labels.json"
    labels: dict[str, object] = {}
    if only and labels_path.exists():
        labels = json.loads(labels_path.read_text())
    else:
        for old in out.glob("*.log"):
            old.unlink()
    _prepare_namespace()
    total = 0
    with Sandbox(SANDBOX_HOME, REPO) as sandbox:
        for case in CASES:
            if only and case.name not in only:
                continue
            started = time.monotonic()
            try:
                transcript = case.run(sandbox)
            except (CaseSkipped, subprocess.CalledProcessError) as exc:
                print(f"skipped  {case.name}: {exc}", flush=True)
                continue
            total += _write_case(out, case, transcript, labels, sandbox.platform)
            print(f"{time.monotonic() - started:6.1f}s {case.name}", flush=True)
    labels_path.write_text(json.dumps(dict(sorted(labels.items())), indent=1) + "\n")
    print(f"wrote {total} logs; {len(labels)} labels in {labels_path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", nargs="*", default=[], help="regenerate only these cases")
    args = parser.parse_args()
    if os.environ.get(INSIDE_MARK) != "1":
        return _reexec_in_namespaces(sys.argv[1:])
    generate(args.out.resolve(), set(args.only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
