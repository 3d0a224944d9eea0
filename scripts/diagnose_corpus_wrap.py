"""Publish a case's real go output the way CI systems and docker build print it.

This is text transformation only: the go output lines are kept verbatim and
placed where GitHub Actions, GitLab CI, classic ``docker build`` and BuildKit
put command output, with their prefixes (timestamps, ``#N 1.234``, section
markers, ANSI colors), surrounding steps and some interleaved noise from other
processes. A random generator seeded by the log's name keeps the output
reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from diagnose_corpus_cases import Case
from diagnose_corpus_env import Step

START = datetime(2024, 5, 14, 9, 21, 3, tzinfo=UTC)
HUNG_AFTER = timedelta(minutes=15)
ESC = "\x1b"
NOISE_SHARE = 0.5
"""Share of wrapped logs whose go output is interleaved with other processes' lines."""

NOISE = [
    "npm WARN deprecated inflight@1.0.6: This module is not supported, and leaks memory.",
    "added 312 packages, and audited 313 packages in 4s",
    "found 0 vulnerabilities",
    "[eslint] 0 errors, 0 warnings",
    "Receiving objects:  42% (120/285)",
    "webpack 5.91.0 compiled successfully in 2310 ms",
    'level=info msg="[runner] linters took 1.2s with stages: goanalysis_metalinter: 1.1s"',
    "Downloading https://github.com/golangci/golangci-lint/releases/download/v1.59.1/x.tar.gz",
    "> app-frontend@1.4.0 build",
    "Browserslist: caniuse-lite is outdated. Please run: npx update-browserslist-db@latest",
]


def raw_log(case: Case, transcript: list[Step]) -> str:
    """What the go commands printed, in order."""
    return "".join(step.output for step in transcript)


def _lines(step: Step) -> list[str]:
    return step.output.splitlines()


def _interleave(lines: list[str], rng: random.Random) -> list[str]:
    """Insert other processes' lines between go's (sometimes inside one go message)."""
    if rng.random() >= NOISE_SHARE:
        return lines
    mixed: list[str] = []
    for line in lines:
        mixed.append(line)
        if rng.random() < 0.4:
            mixed.append(rng.choice(NOISE))
    return mixed


def _hung(case: Case) -> bool:
    return case.cause == "proxy-hung"


class _Clock:
    def __init__(self, rng: random.Random) -> None:
        self.now = START
        self.rng = rng

    def tick(self, gap: timedelta | None = None) -> datetime:
        self.now += gap if gap is not None else timedelta(microseconds=self.rng.randrange(50_000))
        return self.now


# --------------------------------------------------------------------------- GitHub Actions


def _github_stamp(clock: _Clock, gap: timedelta | None = None) -> str:
    moment = clock.tick(gap)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 10:07d}Z "


def _github_lines(case: Case, transcript: list[Step], rng: random.Random) -> list[str]:
    out = [
        "##[group]Run actions/checkout@v4",
        "with:",
        "  repository: acme/app",
        "  fetch-depth: 1",
        "##[endgroup]",
        "Syncing repository: acme/app",
        "##[group]Getting Git version info",
        "Working directory is '/home/runner/work/app/app'",
        "[command]/usr/bin/git version",
        "git version 2.45.1",
        "##[endgroup]",
        "##[group]Run actions/setup-go@v5",
        "with:",
        "  go-version-file: go.mod",
        "  cache: true",
        "##[endgroup]",
        "Setup go version spec 1.22",
        "Found in cache @ /opt/hostedtoolcache/go/1.22.3/x64",
        "Added go to the path",
        "Successfully set up Go version 1.22",
        "Cache not found for input keys: setup-go-Linux-x64-ubuntu22-go-1.22.3-4f2a",
        "##[warning]Restore cache failed: Dependencies file is not found in "
        "/home/runner/work/app/app. Supported file pattern: go.sum",
    ]
    for step in transcript:
        out += [
            f"##[group]Run {step.command}",
            f"{ESC}[36;1m{step.command}{ESC}[0m",
            "shell: /usr/bin/bash -e {0}",
            "##[endgroup]",
        ]
        out += _interleave(_lines(step), rng)
        if step.exit_code != 0 and not step.timed_out:
            out.append(f"##[error]Process completed with exit code {step.exit_code}.")
            break
    return out


def wrap_github(case: Case, transcript: list[Step]) -> str:
    rng = random.Random(f"{case.name}/github")  # noqa: S311 - reproducible layout
    clock = _Clock(rng)
    lines = _github_lines(case, transcript, rng)
    text = [_github_stamp(clock) + line for line in lines]
    if _hung(case):
        text.append(
            _github_stamp(clock, HUNG_AFTER) + "##[error]The job running on runner "
            "GitHub Actions 12 has exceeded the maximum execution time of 15 minutes."
        )
        text.append(_github_stamp(clock) + "##[error]The operation was canceled.")
    else:
        text.append(_github_stamp(clock) + "Post job cleanup.")
    return "\n".join(text) + "\n"


# --------------------------------------------------------------------------- GitLab CI


def _section(name: str, header: str, clock: _Clock) -> str:
    return f"section_start:{int(clock.tick().timestamp())}:{name}\r{ESC}[0K{header}"


def _section_end(name: str, clock: _Clock) -> str:
    return f"section_end:{int(clock.tick().timestamp())}:{name}\r{ESC}[0K"


def wrap_gitlab(case: Case, transcript: list[Step]) -> str:
    rng = random.Random(f"{case.name}/gitlab")  # noqa: S311 - reproducible layout
    clock = _Clock(rng)
    stamped = rng.random() < 0.6
    out: list[str] = []

    def put(text: str, stream: str = "O") -> None:
        moment = clock.tick()
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"
        channel = "01" if stream == "E" else "00"
        out.append(f"{stamp} {channel}{stream} {text}" if stamped else text)

    put(f"{ESC}[0KRunning with gitlab-runner 17.0.0 (44feccdf){ESC}[0;m")
    put(f"{ESC}[0K  on docker-runner-3 t3_aBcDeFg, system ID: s_0123456789ab{ESC}[0;m")
    put(
        _section(
            "prepare_executor",
            f'{ESC}[0K{ESC}[36;1mPreparing the "docker" executor{ESC}[0;m',
            clock,
        )
    )
    put(f"{ESC}[0KUsing Docker executor with image golang:1.22 ...{ESC}[0;m")
    put(f"{ESC}[0KPulling docker image golang:1.22 ...{ESC}[0;m")
    put(_section_end("prepare_executor", clock))
    put(
        _section(
            "get_sources", f"{ESC}[0K{ESC}[36;1mGetting source from Git repository{ESC}[0;m", clock
        )
    )
    put(f"{ESC}[32;1mFetching changes with git depth set to 20...{ESC}[0;m")
    put("Initialized empty Git repository in /builds/acme/app/.git/")
    put(f"{ESC}[32;1mChecking out 5f2c1e7a as detached HEAD (ref is main)...{ESC}[0;m")
    put(_section_end("get_sources", clock))
    put(_section("restore_cache", f"{ESC}[0K{ESC}[36;1mRestoring cache{ESC}[0;m", clock))
    put(f"{ESC}[32;1mChecking cache for go-mod-1-non_protected...{ESC}[0;m")
    put(f"{ESC}[0;33mWARNING: file does not exist                       {ESC}[0;m ")
    put(f"{ESC}[0;33mFailed to extract cache{ESC}[0;m")
    put(_section_end("restore_cache", clock))
    put(
        _section(
            "step_script",
            f'{ESC}[0K{ESC}[36;1mExecuting "step_script" stage of the job script{ESC}[0;m',
            clock,
        )
    )
    failed = 0
    for step in transcript:
        put(f"{ESC}[32;1m$ {step.command}{ESC}[0;m")
        for line in _interleave(_lines(step), rng):
            put(line, "E")
        if step.exit_code != 0 and not step.timed_out:
            failed = step.exit_code
            break
    if _hung(case):
        clock.tick(HUNG_AFTER)
        put(f"{ESC}[31;1mERROR: Job failed: execution took longer than 1h0m0s seconds{ESC}[0;m")
    else:
        put(_section_end("step_script", clock))
        put(
            _section(
                "cleanup_file_variables",
                f"{ESC}[0K{ESC}[36;1mCleaning up project "
                f"directory and file based variables{ESC}[0;m",
                clock,
            )
        )
        put(_section_end("cleanup_file_variables", clock))
        if failed:
            put(f"{ESC}[31;1mERROR: Job failed: exit code {failed}{ESC}[0;m")
        else:
            put(f"{ESC}[32;1mJob succeeded{ESC}[0;m")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- docker build


def wrap_docker(case: Case, transcript: list[Step]) -> str:
    """The classic builder (DOCKER_BUILDKIT=0)."""
    rng = random.Random(f"{case.name}/docker")  # noqa: S311 - reproducible layout
    total = 4 + len(transcript) + 2
    out = [
        "Sending build context to Docker daemon  45.06kB",
        f"Step 1/{total} : FROM golang:1.22",
        " ---> 7e4f1d2a9b3c",
        f"Step 2/{total} : WORKDIR /src",
        " ---> Using cache",
        " ---> 0d1e2f3a4b5c",
        f"Step 3/{total} : COPY go.mod go.sum ./",
        " ---> 9a8b7c6d5e4f",
        f"Step 4/{total} : COPY . .",
        " ---> 1f2e3d4c5b6a",
    ]
    for index, step in enumerate(transcript, start=5):
        out.append(f"Step {index}/{total} : RUN {step.command}")
        out.append(f" ---> Running in {rng.getrandbits(48):012x}")
        out += _lines(step)
        if step.exit_code != 0:
            out.append(
                f"The command '/bin/sh -c {step.command}' returned a non-zero code: "
                f"{step.exit_code}"
            )
            break
        out.append(f"Removing intermediate container {rng.getrandbits(48):012x}")
        out.append(f" ---> {rng.getrandbits(48):012x}")
    return "\n".join(out) + "\n"


def _buildkit_lines(case: Case, transcript: list[Step], rng: random.Random) -> list[str]:
    stages = len(transcript) + 4
    out = [
        '#0 building with "default" instance using docker driver',
        "",
        "#1 [internal] load build definition from Dockerfile",
        "#1 transferring dockerfile: 412B done",
        "#1 DONE 0.0s",
        "",
        "#2 [internal] load metadata for docker.io/library/golang:1.22",
        "#2 DONE 0.6s",
        "",
        "#3 [internal] load .dockerignore",
        "#3 transferring context: 2B done",
        "#3 DONE 0.0s",
        "",
        f"#4 [builder 1/{stages}] FROM docker.io/library/golang:1.22@sha256:"
        f"{rng.getrandbits(256):064x}",
        "#4 DONE 0.0s",
        "",
        f"#5 [builder 2/{stages}] WORKDIR /src",
        "#5 CACHED",
        "",
        f"#6 [builder 3/{stages}] COPY go.mod go.sum ./",
        "#6 CACHED",
    ]
    for index, step in enumerate(transcript, start=7):
        stage = f"[builder {index - 3}/{stages}] RUN {step.command}"
        out += ["", f"#{index} {stage}"]
        elapsed = 0.3 + rng.random()
        stamped = []
        for line in _lines(step):
            elapsed += rng.random() / 20
            stamped.append(f"{elapsed:.3f} {line}")
        out += [f"#{index} {line}" for line in stamped]
        if step.timed_out:
            out.append(f"#{index} CANCELED")
            out.append("ERROR: failed to solve: Canceled: context canceled")
            return out
        if step.exit_code != 0:
            failure = (
                f'process "/bin/sh -c {step.command}" did not complete successfully: '
                f"exit code: {step.exit_code}"
            )
            out += [f"#{index} ERROR: {failure}", "------", f" > {stage}:"]
            out += stamped[-10:]
            out += [
                "------",
                "Dockerfile:8",
                "--------------------",
                "   6 |     WORKDIR /src",
                "   7 |     COPY go.mod go.sum ./",
                f"   8 | >>> RUN {step.command}",
                "   9 |     COPY . .",
                "--------------------",
                f"ERROR: failed to solve: {failure}",
            ]
            return out
        out.append(f"#{index} DONE {elapsed:.1f}s")
    out += ["", "#12 exporting to image", "#12 exporting layers 0.3s done", "#12 DONE 0.4s"]
    return out


def wrap_buildkit(case: Case, transcript: list[Step]) -> str:
    """``docker buildx build --progress=plain``, run in a GitHub Actions job."""
    rng = random.Random(f"{case.name}/buildkit")  # noqa: S311 - reproducible layout
    clock = _Clock(rng)
    lines = ["##[group]Run docker buildx build --progress=plain -t acme/app .", "##[endgroup]"]
    lines += _buildkit_lines(case, transcript, rng)
    text = [_github_stamp(clock) + line for line in lines]
    if _hung(case):
        text.append(_github_stamp(clock, HUNG_AFTER) + "##[error]The operation was canceled.")
    elif any(step.exit_code for step in transcript):
        text.append(_github_stamp(clock) + "##[error]buildx failed with: ERROR: failed to solve")
    return "\n".join(text) + "\n"


WRAPPERS: dict[str, Callable[[Case, list[Step]], str]] = {
    "github": wrap_github,
    "gitlab": wrap_gitlab,
    "docker": wrap_docker,
    "buildkit": wrap_buildkit,
}
