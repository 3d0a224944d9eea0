"""The labelled corpus cases: name, expected top cause and module, how to produce the log.

``cause`` and ``module`` are what ``modgate diagnose`` must report first for
the log (``module`` may contain ``{goos}``/``{goarch}``, filled in from the go
command that ran). ``wrappers`` lists the CI formats the log is also published
in; ``wrapped_only`` cases make sense only inside a CI job (a hung command
prints nothing until the CI kills it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diagnose_corpus_env import (
    CONNECT_PORT,
    REFUSED,
    TLS_SELF_SIGNED_PORT,
    TLS_WRONG_NAME_PORT,
    Sandbox,
    Step,
)
from diagnose_corpus_steps import (
    Steps,
    compile_error,
    disk_full,
    download,
    git_not_installed,
    gosum_missing_after_download,
    hung,
    no_gomod,
    nobody_build_cache,
    nobody_cache_missing,
    poisoned_then_retry,
    read_only_cache,
    root_owned_cache,
    success,
    test_failure,
    tls_then_stale_vendor,
    vendoring,
)

FOO = "example.com/foo@v1.0.0"
TEXT = "golang.org/x/text@v0.14.0"
PRIVATE = "corp.example.com/private@v1.0.0"
LIB = "github.com/acme/lib@v1.0.0"
TOOLCHAIN = "golang.org/toolchain@v0.0.1-go1.99.0.{goos}-{goarch}"
BUILD = ("build", "./...")


@dataclass(frozen=True)
class Case:
    name: str
    cause: str | None
    module: str | None
    steps: Steps
    wrappers: tuple[str, ...] = ()
    wrapped_only: bool = False
    kind: str | None = None
    """For a log that failed for another reason than modules: compile, vet or test."""

    def run(self, sandbox: Sandbox) -> list[Step]:
        return self.steps(sandbox)


def direct(requirement: str, gitconfig: str = "gitconfig-empty") -> Steps:
    """A private module fetched with git (GOPRIVATE, GOPROXY=direct) through ``gitconfig``."""
    return download(
        (requirement,), GOPROXY="direct", GOPRIVATE="github.com/acme", GONOPROXY=None,
        GONOSUMDB=None, GIT_CONFIG_GLOBAL="{srv}/" + gitconfig,
    )  # fmt: skip


def text(**env: Any) -> Steps:
    return download(("golang.org/x/text v0.14.0",), **env)


def private(**env: Any) -> Steps:
    return download(("corp.example.com/private v1.0.0",), gosum="none", **env)


# fmt: off
CASES: list[Case] = [
    # proxy side
    Case("proxy-refused", "proxy-unreachable", TEXT, text(GOPROXY=f"http://{REFUSED}"),
         ("github", "buildkit")),
    Case("proxy-refused-then-direct", "proxy-unreachable", FOO,
         download(GOPROXY=f"http://{REFUSED},direct")),
    Case("proxy-dns", "proxy-unreachable", TEXT, text(GOPROXY="https://proxy.golang.org"),
         ("gitlab", "docker")),
    Case("proxy-no-route", "proxy-unreachable", FOO, download(GOPROXY="http://10.20.30.40:3000")),
    Case("proxy-connect-refused", "proxy-unreachable", TEXT,
         text(GOPROXY="https://proxy.golang.org", HTTPS_PROXY=f"http://{REFUSED}"), ("github",)),
    Case("proxy-404", "proxy-http-error", FOO, download(GOPROXY="{base}/s404"), ("github",)),
    # The 410's body says "unknown revision": the proxy looked for the tag and it is not there.
    Case("proxy-410", "unknown-revision", FOO, download(GOPROXY="{base}/s410")),
    Case("proxy-500", "proxy-http-error", FOO, download(GOPROXY="{base}/s500"), ("gitlab",)),
    Case("proxy-502-stops-chain", "proxy-http-error", TEXT,
         text(GOPROXY="{base}/s502,https://proxy.golang.org")),
    Case("proxy-500-latest", "proxy-http-error", None,
         download((), args=("get", "example.com/foo@latest"), GOPROXY="{base}/s500")),
    Case("proxy-401", "proxy-auth", FOO, download(GOPROXY="{base}/s401"), ("buildkit",)),
    Case("proxy-403", "proxy-auth", FOO, download(GOPROXY="{base}/s403,direct")),
    Case("proxy-407-connect", "proxy-auth", TEXT,
         text(GOPROXY="https://goproxy.corp.example",
              HTTPS_PROXY=f"http://127.0.0.1:{CONNECT_PORT}"), ("github",)),
    Case("proxy-407-http", "proxy-auth", FOO,
         download(GOPROXY="http://goproxy.corp.example",
                  HTTP_PROXY=f"http://127.0.0.1:{CONNECT_PORT}")),
    Case("proxy-credentials-http", "proxy-auth", FOO,
         download(GOPROXY="http://ci:s3cret@127.0.0.1:8000/ok")),
    Case("goproxy-off", "goproxy-off", FOO, download(GOPROXY="off"), ("gitlab",)),
    # A package build environment that sets GOPROXY to separators only.
    Case("goproxy-empty-list", "goproxy-malformed", FOO, download(GOPROXY=","), ("github",)),
    Case("goproxy-off-build", "goproxy-off", None,
         download(("golang.org/x/text v0.14.0",), args=BUILD, GOPROXY="off")),
    # verification
    Case("checksum-mismatch-zip", "checksum-mismatch", FOO, download(gosum="badzip"),
         ("github", "docker")),
    Case("checksum-mismatch-gomod", "checksum-mismatch", FOO,
         download(gosum="badmod", args=BUILD)),
    Case("missing-gosum-build", "missing-gosum-entry", None, download(gosum="none", args=BUILD),
         ("buildkit",)),
    Case("missing-gosum-after-download", "missing-gosum-entry", None,
         gosum_missing_after_download, ("gitlab",)),
    Case("missing-gosum-gomod", "missing-gosum-entry", FOO,
         download(gosum="none", args=("list", "-m", "all"))),
    Case("no-required-module", "gomod-needs-update", None,
         download((), args=BUILD, imports=("example.com/foo",)), ("github",)),
    Case("gomod-needs-update", "gomod-needs-update", None,
         download(("example.com/bar v1.2.0", "example.com/foo v1.0.0"), args=BUILD)),
    Case("sumdb-prompts-404", "private-module-in-public-sumdb", PRIVATE,
         private(GOPROXY="{base}/prompts", GOSUMDB="sum.golang.org"), ("github", "buildkit")),
    Case("sumdb-prompts-410", "private-module-in-public-sumdb", PRIVATE,
         private(GOPROXY="{base}/prompts410", GOSUMDB="sum.golang.org"), ("gitlab",)),
    Case("sumdb-dns", "private-module-in-public-sumdb", PRIVATE, private(GOSUMDB="sum.golang.org")),
    Case("public-proxy-prompts", "private-module-in-public-sumdb",
         "corp.example.com/platform/auth@v1.0.0",
         download(("corp.example.com/platform/auth v1.0.0",), GOPROXY="{base}/modprompts")),
    Case("goprivate-bypasses-proxy", "private-bypasses-internal-proxy", PRIVATE,
         private(GOPRIVATE="corp.example.com", GONOPROXY=None, GONOSUMDB=None), ("github",)),
    Case("gosumdb-plus-url", "gosumdb-malformed", FOO,
         download(gosum="none", GOSUMDB="sum.golang.org+https://sum.corp.example"), ("gitlab",)),
    Case("gosumdb-url-only", "gosumdb-malformed", FOO,
         download(gosum="none", GOSUMDB="https://sum.golang.org")),
    # git
    Case("git-prompts", "git-auth-required", "github.com/acme/private@v1.0.0",
         direct("github.com/acme/private v1.0.0", "gitconfig-auth"), ("github", "docker")),
    Case("git-dns", "git-unreachable", "github.com/acme/gone@v1.0.0",
         direct("github.com/acme/gone v1.0.0")),
    Case("git-refused", "git-unreachable", LIB,
         direct("github.com/acme/lib v1.0.0", "gitconfig-refused"), ("gitlab",)),
    Case("git-not-installed", "git-not-installed", LIB, git_not_installed, ("buildkit",)),
    Case("git-tls-self-signed", "tls-unknown-authority", LIB,
         direct("github.com/acme/lib v1.0.0", "gitconfig-tls")),
    Case("git-tls-plain-http", "tls-protocol-mismatch", LIB,
         direct("github.com/acme/lib v1.0.0", "gitconfig-plain"), ("gitlab",)),
    Case("unknown-revision", "unknown-revision", "github.com/acme/lib@v1.2.3",
         direct("github.com/acme/lib v1.2.3", "gitconfig-file"), ("github",)),
    # module files
    Case("invalid-major", "invalid-version-or-gomod", "example.com/foo@v9.9.9",
         download(("example.com/foo v9.9.9",), gosum="none")),
    Case("invalid-go-line", "invalid-version-or-gomod", None, download(go="1.22.x"), ("gitlab",)),
    Case("invalid-toolchain", "invalid-version-or-gomod", None,
         download(extra="\ntoolchain 1.23\n")),
    Case("inconsistent-vendoring", "inconsistent-vendoring", FOO, vendoring, ("github",)),
    Case("poisoned-cache", "poisoned-module-cache", FOO,
         download(gosum="none", GOPROXY="{base}/html"), ("buildkit",)),
    Case("poisoned-cache-retry", "poisoned-module-cache", FOO, poisoned_then_retry),
    Case("gomod-not-found", "gomod-not-found", None, no_gomod("mod", "download"), ("docker",)),
    Case("gomod-not-found-build", "gomod-not-found", None, no_gomod(*BUILD)),
    Case("gomod-not-found-build-dot", "gomod-not-found", None, no_gomod("build", "."),
         ("github",)),
    Case("goflags-unknown", "goflags-invalid", None, download(GOFLAGS="-foo"), ("github",)),
    Case("goflags-mod-bogus", "goflags-invalid", None, download(args=BUILD, GOFLAGS="-mod=bogus")),
    Case("insecure-download", "insecure-flag-removed", None,
         download(args=("mod", "download", "-insecure")), ("gitlab",)),
    Case("insecure-get", "insecure-flag-removed", None,
         download(args=("get", "-insecure", "example.com/foo@v1.1.0"))),
    # environment
    Case("cache-read-only", "module-cache-not-writable", None, read_only_cache, ("github",)),
    Case("cache-root-owned", "module-cache-not-writable", None, root_owned_cache, ("buildkit",)),
    Case("cache-no-home", "module-cache-not-writable", None,
         download(args=BUILD, HOME=None, GOCACHE=None, GOPATH=None)),
    Case("build-cache-root-dir", "module-cache-not-writable", None, nobody_build_cache),
    Case("cache-nonexistent", "module-cache-not-writable", None, nobody_cache_missing),
    Case("disk-full", "disk-full", "example.com/big@v1.0.0", disk_full, ("gitlab",)),
    Case("toolchain-too-new", "toolchain-too-new", None, download(go="1.99.0"),
         ("docker", "github")),
    Case("toolchain-dependency", "toolchain-too-new", "example.com/newgo@v1.0.0",
         download(("example.com/newgo v1.0.0",), gosum="none", args=("get", "example.com/newgo"))),
    Case("toolchain-path", "toolchain-too-new", None,
         download(go="1.99.0", GOTOOLCHAIN="go1.99.0+path")),
    Case("toolchain-not-available", "toolchain-download-failed", None,
         download(go="1.99.0", GOTOOLCHAIN="auto", GOPROXY="{base}/s404"), ("buildkit",)),
    Case("toolchain-dns", "toolchain-download-failed", TOOLCHAIN,
         download(go="1.99.0", GOTOOLCHAIN="auto", GOPROXY="https://proxy.golang.org"),
         ("gitlab",)),
    Case("toolchain-sumdb-off", "toolchain-download-failed", TOOLCHAIN,
         download(go="1.99.0", GOTOOLCHAIN="go1.99.0")),
    # TLS
    Case("tls-self-signed", "tls-unknown-authority", FOO,
         download(GOPROXY=f"https://localhost:{TLS_SELF_SIGNED_PORT}/ok"), ("github", "gitlab")),
    # Causality: the TLS failure comes first, the stale vendor/ it falls back to fails next.
    Case("tls-then-stale-vendor", "tls-unknown-authority", FOO, tls_then_stale_vendor,
         ("github",)),
    Case("tls-self-signed-goinsecure", "tls-unknown-authority", FOO,
         download(GOPROXY=f"https://localhost:{TLS_SELF_SIGNED_PORT}/ok", GOINSECURE="localhost")),
    Case("tls-wrong-name", "tls-name-mismatch", FOO,
         download(GOPROXY=f"https://localhost:{TLS_WRONG_NAME_PORT}/ok",
                  SSL_CERT_FILE="{srv}/wrong.crt"), ("buildkit",)),
    Case("tls-no-ip-san", "tls-name-mismatch", FOO,
         download(GOPROXY=f"https://127.0.0.1:{TLS_SELF_SIGNED_PORT}/ok",
                  SSL_CERT_FILE="{srv}/self.crt")),
    Case("tls-plain-http", "tls-protocol-mismatch", FOO,
         download(GOPROXY="https://127.0.0.1:8000/ok"), ("gitlab",)),
    # a job killed after a long silence
    Case("hung-proxy", "proxy-hung", None, hung("hang", ("mod", "download")),
         ("github", "gitlab"), wrapped_only=True),
    Case("hung-zip", "proxy-hung", FOO, hung("hangzip", BUILD),
         ("github", "gitlab", "buildkit"), wrapped_only=True),
    # not a module problem, and no problem at all
    Case("compile-error", None, None, compile_error, ("github",), kind="compile"),
    Case("test-failure", None, None, test_failure, ("gitlab",), kind="test"),
    Case("success", None, None, success, ("github", "buildkit")),
]
# fmt: on
