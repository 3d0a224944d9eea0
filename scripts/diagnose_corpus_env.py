"""The sandbox the corpus cases run in: servers, module tree, certificates, git repos.

``Sandbox`` is entered once inside the namespaces (see gen_diagnose_corpus.py).
Each case gets a fresh ``/home/runner`` (HOME, GOPATH and the project), a
hermetic environment built by :meth:`Sandbox.env`, and runs go through
:meth:`Sandbox.go`, which records the combined output exactly as printed.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from diagnose_corpus_servers import NxDns, Server, auth_required, module_proxy, tls_proxy

from helpers.modules import BuiltVersion, write_module_version

PROXY_PORT = 8000
AUTH_PORT = 8009
CONNECT_PORT = 8007
TLS_SELF_SIGNED_PORT = 8443
TLS_WRONG_NAME_PORT = 8444
REFUSED = "127.0.0.1:1"
GO_TIMEOUT = 60.0
"""Seconds any go command may take (hung cases pass their own, shorter limit)."""
NOBODY = "65534"
BIG_ZIP_BYTES = 3 * 1024 * 1024
GIT_DATE = "2024-01-02T03:04:05Z"

GOMOD_GO = "1.22"


class CaseSkipped(Exception):
    """This machine cannot reproduce the case (the message says why)."""


@dataclass(frozen=True)
class Step:
    """One command of a case: what a CI log would echo, and what it printed."""

    command: str
    output: str
    exit_code: int
    timed_out: bool = False


def _gomod(path: str, requires: Sequence[str] = (), go: str = GOMOD_GO, extra: str = "") -> str:
    text = f"module {path}\n\ngo {go}\n"
    if requires:
        text += "\nrequire (\n" + "".join(f"\t{r}\n" for r in requires) + ")\n"
    return text + extra


class Sandbox:
    """Everything the cases share; ``root`` is the tmpfs mounted over /home."""

    def __init__(self, root: Path, repo: Path) -> None:
        self.root = root
        self.repo = repo
        self.srv = root / "srv"
        self.tree = self.srv / "proxy"
        self.home = root / "runner"
        self.gocache = root / "gocache"
        self.config = root / "config"
        self.built: dict[str, BuiltVersion] = {}
        self.servers: list[Server] = []
        self.dns: NxDns | None = None
        self.goroot = Path(
            subprocess.run(
                [str(repo / ".venv" / "bin" / "go"), "env", "GOROOT"],
                capture_output=True,
                text=True,
                check=True,
                env={"PATH": "/usr/bin:/bin", "HOME": str(root), "GOENV": "off"},
            ).stdout.strip()
        )
        self.gobin = self.goroot / "bin"
        self.platform = subprocess.run(
            [str(self.gobin / "go"), "env", "GOOS", "GOARCH"],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": "/usr/bin:/bin", "HOME": str(root), "GOENV": "off"},
        ).stdout.split()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Sandbox:
        for folder in (self.srv, self.tree, self.gocache, self.config):
            folder.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # nobody must reach the module cache
        # No telemetry: its background child would write into HOME while it is removed.
        subprocess.run([str(self.gobin / "go"), "telemetry", "off"], env=self.env(), check=True)
        self._modules()
        self._certificates()
        self._git_repos()
        self.dns = NxDns()
        self.servers = [
            module_proxy(PROXY_PORT, self.tree),
            auth_required(AUTH_PORT, 401),
            auth_required(CONNECT_PORT, 407),
            tls_proxy(
                TLS_SELF_SIGNED_PORT, self.tree, self.srv / "self.crt", self.srv / "self.key"
            ),
            tls_proxy(
                TLS_WRONG_NAME_PORT, self.tree, self.srv / "wrong.crt", self.srv / "wrong.key"
            ),
        ]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for server in self.servers:
            server.close()
        if self.dns is not None:
            self.dns.close()

    # ------------------------------------------------------------------ fixtures

    def _add(self, path: str, version: str, files: dict[str, bytes]) -> None:
        self.built[f"{path}@{version}"] = write_module_version(self.tree, path, version, files)

    def _modules(self) -> None:
        for path, package in (
            ("golang.org/x/text", "text"),
            ("example.com/foo", "foo"),
            ("github.com/acme/widgets", "widgets"),
            ("corp.example.com/private", "private"),
            ("corp.example.com/platform/auth", "auth"),
        ):
            version = "v0.14.0" if path == "golang.org/x/text" else "v1.0.0"
            self._add(
                path,
                version,
                {
                    "go.mod": _gomod(path).encode(),
                    f"{package}.go": f'package {package}\n\nconst Name = "{package}"\n'.encode(),
                },
            )
        self._add(
            "example.com/foo",
            "v1.1.0",
            {
                "go.mod": _gomod("example.com/foo").encode(),
                "foo.go": b'package foo\n\nconst Name = "foo 1.1"\n',
            },
        )
        self._add(
            "example.com/bar",
            "v1.2.0",
            {
                "go.mod": _gomod("example.com/bar", ["example.com/foo v1.1.0"]).encode(),
                "bar.go": b'package bar\n\nimport "example.com/foo"\n\nconst Name = foo.Name\n',
            },
        )
        goos, goarch = self.platform
        self._add(
            "golang.org/toolchain",
            f"v0.0.1-go1.99.0.{goos}-{goarch}",
            {"go.mod": b"module golang.org/toolchain\n", "bin/go": b"not a real toolchain\n"},
        )
        self._add(
            "example.com/newgo",
            "v1.0.0",
            {
                "go.mod": _gomod("example.com/newgo", go="1.99.0").encode(),
                "newgo.go": b"package newgo\n",
            },
        )
        noise = random.Random(4).randbytes(BIG_ZIP_BYTES)  # noqa: S311 - reproducible filler
        self._add(
            "example.com/big",
            "v1.0.0",
            {"go.mod": _gomod("example.com/big").encode(), "blob.bin": noise},
        )

    def _certificates(self) -> None:
        for name, host in (("self", "localhost"), ("wrong", "wrong.example")):
            subprocess.run(
                [
                    "openssl", "req", "-x509", "-nodes", "-days", "3650",
                    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-keyout", str(self.srv / f"{name}.key"),
                    "-out", str(self.srv / f"{name}.crt"),
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}",
                ],
                check=True,
                capture_output=True,
            )  # fmt: skip

    def _git(self, *args: str, cwd: Path) -> None:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.srv),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Acme",
            "GIT_AUTHOR_EMAIL": "dev@acme.example",
            "GIT_COMMITTER_NAME": "Acme",
            "GIT_COMMITTER_EMAIL": "dev@acme.example",
            "GIT_AUTHOR_DATE": GIT_DATE,
            "GIT_COMMITTER_DATE": GIT_DATE,
        }
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)

    def _git_repos(self) -> None:
        work = self.srv / "lib-work"
        work.mkdir()
        (work / "go.mod").write_text(_gomod("github.com/acme/lib"))
        (work / "lib.go").write_text('package lib\n\nconst Name = "lib"\n')
        self._git("init", "-q", "-b", "main", cwd=work)
        self._git("add", ".", cwd=work)
        self._git("commit", "-q", "-m", "first", cwd=work)
        self._git("tag", "v1.0.0", cwd=work)
        (self.srv / "git").mkdir()
        self._git("clone", "-q", "--bare", str(work), str(self.srv / "git" / "lib"), cwd=self.srv)
        configs = {
            "gitconfig-empty": "",
            "gitconfig-auth": f'[url "http://127.0.0.1:{AUTH_PORT}/"]\n\tinsteadOf = https://github.com/\n',
            "gitconfig-file": (
                f'[url "file://{self.srv}/git/"]\n\tinsteadOf = https://github.com/acme/\n'
                '[protocol "file"]\n\tallow = always\n'
            ),
            "gitconfig-tls": (
                f'[url "https://localhost:{TLS_SELF_SIGNED_PORT}/git/"]\n'
                "\tinsteadOf = https://github.com/acme/\n"
            ),
            "gitconfig-plain": (
                f'[url "https://127.0.0.1:{PROXY_PORT}/git/"]\n'
                "\tinsteadOf = https://github.com/acme/\n"
            ),
            "gitconfig-refused": f'[url "http://{REFUSED}/"]\n\tinsteadOf = https://github.com/\n',
        }
        for name, text in configs.items():
            (self.srv / name).write_text(text)

    # ------------------------------------------------------------------ per case

    def fresh_home(self) -> Path:
        """An empty /home/runner (the go module cache is read-only: make it writable first)."""
        if self.home.exists():
            for folder, _dirs, _files in os.walk(self.home):
                Path(folder).chmod(0o755)  # the tree is deleted next
            shutil.rmtree(self.home)
        (self.home / "work" / "app").mkdir(parents=True)
        return self.home / "work" / "app"

    def proxy(self, mode: str = "ok") -> str:
        return f"http://127.0.0.1:{PROXY_PORT}/{mode}"

    def env(self, **changes: str | None) -> dict[str, str]:
        """A hermetic go environment; ``None`` removes a variable."""
        env = {
            "PATH": f"{self.gobin}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.config),
            "GOPATH": str(self.home / "go"),
            "GOCACHE": str(self.gocache),
            "GOENV": "off",
            "GOTOOLCHAIN": "local",
            "GOFLAGS": "-modcacherw",
            "GOPROXY": self.proxy(),
            "GOSUMDB": "off",
            "GOPRIVATE": "",
            "GONOPROXY": "",
            "GONOSUMDB": "",
            "GOINSECURE": "",
            "CGO_ENABLED": "0",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(self.srv / "gitconfig-empty"),
        }
        for name, value in changes.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def project(
        self,
        requires: Sequence[str] = ("example.com/foo v1.0.0",),
        *,
        gosum: str = "full",
        go: str = GOMOD_GO,
        extra: str = "",
        imports: Sequence[str] | None = None,
    ) -> Path:
        """A fresh home with the main module ``example.com/app`` requiring ``requires``.

        ``gosum`` is ``full`` (correct lines), ``none`` (no go.sum), ``badzip`` or
        ``badmod`` (a wrong hash for the first requirement's zip or go.mod).
        """
        app = self.fresh_home()
        (app / "go.mod").write_text(_gomod("example.com/app", requires, go, extra))
        lines = []
        for index, requirement in enumerate(requires):
            built = self.built.get(requirement.replace(" ", "@"))
            if built is None:
                continue
            zip_h1, mod_h1 = built.h1, built.gomod_h1
            if index == 0 and gosum == "badzip":
                zip_h1 = "h1:" + "A" * 43 + "="
            if index == 0 and gosum == "badmod":
                mod_h1 = "h1:" + "B" * 43 + "="
            lines.append(f"{built.mv.path} {built.mv.version} {zip_h1}\n")
            lines.append(f"{built.mv.path} {built.mv.version}/go.mod {mod_h1}\n")
        if gosum != "none":
            (app / "go.sum").write_text("".join(lines))
        if imports is None:
            imports = [r.split()[0] for r in requires]
        body = "".join(f'\t_ "{path}"\n' for path in imports)
        (app / "main.go").write_text(
            f"package main\n\nimport (\n{body})\n\nfunc main() {{}}\n"
            if imports
            else "package main\n\nfunc main() {}\n"
        )
        return app

    def go(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        cwd: Path | None = None,
        *,
        timeout: float = GO_TIMEOUT,
        user: str | None = None,
        prefix: Sequence[str] = (),
    ) -> Step:
        """Run ``go args``; stdout and stderr interleaved as a terminal would show them."""
        argv = [*prefix, str(self.gobin / "go"), *args]
        if user is not None:
            self._require_user(user)
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            cwd=cwd or self.home / "work" / "app",
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            timed_out = True
        text = output.decode(errors="replace")
        if time.monotonic() - started > GO_TIMEOUT and not timed_out:
            raise RuntimeError(f"go {' '.join(args)} took too long")
        return Step(
            command="go " + " ".join(args),
            output=self.sanitize(text),
            exit_code=proc.returncode,
            timed_out=timed_out,
        )

    def _require_user(self, user: str) -> None:
        """Skip the case when go cannot run as ``user`` here (user namespaces without root)."""
        probe = subprocess.run(
            ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "true"],
            capture_output=True,
            check=False,
        )
        if probe.returncode != 0:
            raise CaseSkipped(f"cannot run as uid {user}: {probe.stderr.decode().strip()}")

    def sanitize(self, text: str) -> str:
        """Hide where the generator's own go toolchain lives (the only host path that leaks)."""
        return text.replace(str(self.goroot), "/usr/local/go")
