"""Single failures as go1.27 and git print them (the fact sheet's verbatim messages).

These complement the corpus: the lines come from other setups (other hosts,
resolvers, paths) than the generated logs, and include lookalikes from test
output that must not be read as module failures.
"""

from __future__ import annotations

import pytest

from modgate.diagnose import diagnose_lines

P = "https://goproxy.corp.example"
TEXT = "golang.org/x/text@v0.14.0"
FOO = "example.com/foo@v1.0.0"
TOOLCHAIN = "golang.org/toolchain@v0.0.1-go1.99.0.linux-amd64"
CASES = [
    ([f'go: {TEXT}: Get "https://proxy.golang.org/golang.org/x/text/@v/v0.14.0.mod": dial tcp: '
      "lookup proxy.golang.org on 10.0.0.2:53: no such host"], "proxy-unreachable", TEXT),
    ([f'go: {TEXT}: Get "https://proxy.golang.org/golang.org/x/text/@v/v0.14.0.mod": dial tcp '
      "142.250.0.1:443: connect: network is unreachable"], "proxy-unreachable", TEXT),
    ([f'go: {FOO}: Get "https://proxy.corp/example.com/foo/@v/v1.0.0.mod": read tcp '
      "10.0.0.1:5555->10.0.0.2:443: read: connection reset by peer"], "proxy-unreachable", FOO),
    ([f"go: {TEXT}: module lookup disabled by GOPROXY=off"], "goproxy-off", TEXT),
    ([f"go: {FOO}: reading {P}/example.com/foo/@v/v1.0.0.mod: 410 Gone",
      "\tserver response: not found: unknown revision v1.0.0"], "unknown-revision", FOO),
    ([f"go: {FOO}: reading {P}/example.com/foo/@v/v1.0.0.mod: 403 Forbidden"], "proxy-auth", FOO),
    ([f"go: {FOO}: refusing to pass credentials to insecure URL: http://user:xxxxx@host/x"],
     "proxy-auth", FOO),
    ([f"verifying {FOO}/go.mod: checksum mismatch", "\tdownloaded: h1:x", "\tgo.sum:     h1:y"],
     "checksum-mismatch", FOO),
    (["go: corp.example.com/private@v1.0.0: verifying go.mod: corp.example.com/private@v1.0.0/"
      'go.mod: Get "https://sum.golang.org/lookup/corp.example.com/private@v1.0.0": dial tcp: '
      "lookup sum.golang.org on 10.0.0.2:53: no such host"],
     "private-module-in-public-sumdb", "corp.example.com/private@v1.0.0"),
    (["go: github.com/spf13/cobra@v1.8.0: verifying go.mod: github.com/spf13/cobra@v1.8.0/"
      'go.mod: Get "https://sum.golang.org/lookup/github.com/spf13/cobra@v1.8.0": dial tcp: '
      "lookup sum.golang.org on 10.0.0.2:53: no such host"],
     "proxy-unreachable", "github.com/spf13/cobra@v1.8.0"),
    (["go: github.com/org/repo@v1.0.0: reading github.com/org/repo/go.mod at revision v1.0.0: "
      "git ls-remote -q --end-of-options https://github.com/org/repo in /go/pkg/mod/cache/vcs/a: "
      "exit status 128:",
      "\tfatal: unable to access 'https://github.com/org/repo/': Could not resolve host: "
      "github.com"], "git-unreachable", "github.com/org/repo@v1.0.0"),
    (["go: github.com/org/repo@v1.0.0: reading github.com/org/repo/go.mod at revision v1.0.0: "
      "git ls-remote -q --end-of-options ssh://git@github.com/org/repo in /x: exit status 128:",
      "\tgit@github.com: Permission denied (publickey).",
      "\tfatal: Could not read from remote repository."],
     "git-auth-required", "github.com/org/repo@v1.0.0"),
    (["\tfatal: unable to access 'https://git.corp/x/': SSL certificate problem: self-signed "
      "certificate in certificate chain"], "tls-unknown-authority", None),
    (['go: invalid toolchain "1.23" in go.mod'], "invalid-version-or-gomod", None),
    (["go: writing go.mod cache: mkdir /go/pkg/mod/cache: permission denied"],
     "module-cache-not-writable", None),
    (["build cache is required, but could not be located: GOCACHE is not defined and neither "
      "$XDG_CACHE_HOME nor $HOME are defined"], "module-cache-not-writable", None),
    ([f"go: download go1.99.0: {TOOLCHAIN}: verifying module: checksum database disabled by "
      "GOSUMDB=off"], "toolchain-download-failed", TOOLCHAIN),
    ([f'go: {FOO}: Get "https://10.0.0.5/x": tls: failed to verify certificate: x509: cannot '
      "validate certificate for 10.0.0.5 because it doesn't contain any IP SANs"],
     "tls-name-mismatch", FOO),
    ([f'go: {FOO}: Get "https://p/x": http: server gave HTTP response to HTTPS client'],
     "tls-protocol-mismatch", FOO),
    (["go: parsing $GOFLAGS: unknown flag -foo"], "goflags-invalid", None),
    (["go: go.mod file not found in current directory or any parent directory; "
      "see 'go help modules'"], "gomod-not-found", None),
    # The go command's chains: the failing line is indented under "X imports"/"X requires".
    (["go: example.com/app imports",
      f"\texample.com/foo/pkg: {FOO}: reading {P}/example.com/foo/@v/v1.0.0.zip: "
      "500 Internal Server Error"], "proxy-http-error", FOO),
    (["go: example.com/app@v0.1.0 requires",
      f"\t{FOO}: reading {P}/example.com/foo/@v/v1.0.0.mod: 401 Unauthorized"],
     "proxy-auth", FOO),
    (["go: example.com/app imports",
      f"\texample.com/foo/pkg: {FOO}: reading {P}/example.com/foo/@v/v1.0.0.zip: 404 Not Found"],
     "proxy-http-error", FOO),
    # A "go get:" prefix (go1.16 and older) is a failure like a "go:" one.
    (['go get: module example.com/foo: Get "https://proxy.golang.org/example.com/foo/@v/list": '
      "x509: certificate signed by unknown authority"], "tls-unknown-authority", None),
    # A checksum-database 404 for a public host is not a private module.
    (["verifying github.com/x/y@v1.0.0/go.mod: github.com/x/y@v1.0.0/go.mod: reading "
      "https://sum.golang.org/lookup/github.com/x/y@v1.0.0: 410 Gone"],
     "proxy-http-error", "github.com/x/y@v1.0.0"),
    # "https://" pointed at a proxy that speaks plain HTTP.
    ([f'go: {FOO}: Get "https://goproxy.corp:8080/x": http: server gave HTTP response to HTTPS '
      "client"], "tls-protocol-mismatch", FOO),
    # A truncated zip in a restored module cache, or files edited in place (go mod verify).
    ([f"go: {FOO}: zip: not a valid zip file"], "poisoned-module-cache", FOO),
    (["example.com/foo v1.0.0: dir has been modified "
      "(/home/runner/go/pkg/mod/example.com/foo@v1.0.0)"], "poisoned-module-cache", None),
    # A proxy's 404 that says why: the module's go.mod does not fit the version.
    ([f"go: {FOO}: reading {P}/example.com/foo/@v/v2.0.0.info: 404 Not Found",
      "\tserver response: not found: example.com/foo@v2.0.0: invalid version: module contains a "
      'go.mod file, so module path must match major version ("example.com/foo/v2")'],
     "invalid-version-or-gomod", FOO),
    # A certificate with only a Common Name (Go 1.15+ wants a subjectAltName).
    ([f'go: {FOO}: Get "https://goproxy.corp/x": tls: failed to verify certificate: x509: '
      "certificate relies on legacy Common Name field, use SANs instead"],
     "tls-name-mismatch", FOO),
    # The download cut by the proxy or the network.
    ([f'go: {FOO}: Get "{P}/example.com/foo/@v/v1.0.0.zip": unexpected EOF'],
     "proxy-unreachable", FOO),
    ([f'go: {FOO}: Get "{P}/example.com/foo/@v/v1.0.0.zip": stream error: stream ID 7; '
      "INTERNAL_ERROR; received from peer"], "proxy-unreachable", FOO),
    # The local copy of the checksum database is damaged.
    ([f"go: {FOO}: verifying go.mod: initializing sumdb.Client: reading tree note: malformed "
      "note"], "poisoned-module-cache", FOO),
    (["go: -mod may only be set to readonly or vendor when in workspace mode, but it is set "
      'to "mod"'], "goflags-invalid", None),
    ([f"go: {FOO}: missing example.com/foo/go.mod and .../v2/go.mod at revision v2.0.0"],
     "invalid-version-or-gomod", FOO),
    # GOPROXY that lists nothing usable.
    ([f"go: {FOO}: GOPROXY list is not the empty string, but contains no entries"],
     "goproxy-malformed", FOO),
    ([f"go: {FOO}: invalid proxy URL missing scheme: goproxy.corp.example"],
     "goproxy-malformed", FOO),
    # A version that is not semver.
    (["go: errors parsing go.mod:",
      '/src/go.mod:5:2: require example.com/foo: version "1.2.3" invalid: must be of the form '
      "v1.2.3"], "invalid-version-or-gomod", None),
]  # fmt: skip

NOT_MODULE_FAILURES = [
    # Lookalikes in a test's own output are not module failures.
    ["    db_test.go:12: dial tcp 127.0.0.1:5432: connect: connection refused",
     "--- FAIL: TestDB (0.00s)", "FAIL"],
    ["    api_test.go:31: got status: 404 Not Found", "--- FAIL: TestAPI (0.00s)"],
    ["=== RUN   TestMismatch", "verifying example.com/foo@v1.0.0: checksum mismatch",
     "--- PASS: TestMismatch (0.00s)", "PASS", "ok  \texample.com/app\t0.01s"],
    # A failure of another tool is not a go module failure either.
    ["mkdir /var/cache/apt/archives/partial: permission denied",
     "Process completed with exit code 100."],
]  # fmt: skip


@pytest.mark.parametrize("lines", NOT_MODULE_FAILURES)
def test_not_module_failures_give_no_finding(lines: list[str]) -> None:
    got = [(str(f.cause), f.evidence) for f in diagnose_lines(lines)]
    assert got == [], f"{lines[0]!r}: want no finding, got {got}"


@pytest.mark.parametrize(("lines", "cause", "module"), CASES)
def test_top_finding(lines: list[str], cause: str, module: str | None) -> None:
    findings = diagnose_lines(lines)
    got = [(str(f.cause), str(f.module) if f.module else None) for f in findings]
    assert got and got[0] == (cause, module), f"{lines[0]!r}: want {(cause, module)}, got {got}"
