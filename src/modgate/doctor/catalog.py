"""Every doctor rule: a stable ID, a default severity, one line of summary and the usual fix.

IDs never change meaning and are never reused. ``GM0xx`` rules read files;
``GM1xx`` rules check the live environment (``doctor --env``). Each rule has
a page ``docs/rules/<ID>.md`` saying what breaks, why, the fix and the Go
versions it applies to; :func:`help_uri` builds the link used in SARIF.
"""

from __future__ import annotations

from dataclasses import dataclass

from modgate.doctor.findings import Severity

DOCS_BASE_URI = ""
"""Where the rule pages are published (``doctor --docs-uri``); empty: no links in SARIF."""

DOCS_PATH = "docs/rules"
"""Where the rule pages are in the modgate repository."""

E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    severity: Severity
    summary: str
    fix: str


def help_uri(rule_id: str, base: str = DOCS_BASE_URI) -> str | None:
    """The published page of a rule, or None when no --docs-uri was given."""
    if not base:
        return None
    return f"{base.rstrip('/')}/{rule_id}.md"


_RULES = (
    # ---------------------------------------------------------------- go settings, any file
    Rule(
        "GM001",
        "insecure-flag-removed",
        E,
        "-insecure was removed in Go 1.17; go get and go mod download reject it",
        "drop -insecure; list the module paths in GOINSECURE (direct fetches only)",
    ),
    Rule(
        "GM002",
        "goproxy-invalid",
        E,
        "GOPROXY is not a list the go command accepts",
        "use comma- or pipe-separated https://, http:// or file:// URLs, 'direct' or 'off'",
    ),
    Rule(
        "GM003",
        "goproxy-ignored-entries",
        W,
        "GOPROXY entries after 'direct' or 'off' are never used",
        "move the proxies before 'direct', or drop them",
    ),
    Rule(
        "GM004",
        "goproxy-comma-failover",
        N,
        "proxies joined by ',' fall through only on 404/410; a 5xx, 403 or outage stops the build",
        "join them with '|' if the next proxy should be tried after any error",
    ),
    Rule(
        "GM005",
        "goproxy-no-fallback",
        N,
        "GOPROXY names a single proxy with no fallback: whatever it cannot serve fails",
        "add ',direct' (or a second proxy) if that proxy does not serve every module",
    ),
    Rule(
        "GM006",
        "goproxy-credentials-http",
        E,
        "credentials in a plain-http GOPROXY URL: the go command refuses to send them",
        "serve the proxy over https, or put the credentials in ~/.netrc for an https URL",
    ),
    Rule(
        "GM007",
        "credentials-in-file",
        W,
        "a password or token is written into a proxy URL in a committed file",
        "pass it from a secret (CI secret, ~/.netrc, a mounted file) instead",
    ),
    Rule(
        "GM008",
        "pattern-never-matches",
        E,
        "a GOPRIVATE-style pattern can never match a module path",
        "write module path prefixes without scheme or spaces: "
        "GOPRIVATE=corp.example.com,*.corp.example.com",
    ),
    Rule(
        "GM009",
        "wildcard-misses-bare-domain",
        E,
        "'*.domain' does not cover modules at 'domain' itself, which go.mod requires",
        "list the bare domain too: GOPRIVATE=corp.example.com,*.corp.example.com",
    ),
    Rule(
        "GM010",
        "pattern-matches-everything",
        W,
        "a '*' pattern sends every module direct and/or skips the checksum database for all",
        "list only the private module path prefixes",
    ),
    Rule(
        "GM011",
        "goprivate-bypasses-proxy",
        W,
        "GOPRIVATE also sets GONOPROXY: private modules skip the internal GOPROXY and need git "
        "access",
        "set GONOPROXY=none so that the internal proxy serves private modules",
    ),
    Rule(
        "GM012",
        "gosumdb-malformed",
        E,
        "GOSUMDB is malformed: the go command stops with 'invalid GOSUMDB'",
        "write GOSUMDB=\"<name>[+<hash>+<key>] [<url>]\": the URL follows a space, not a '+'",
    ),
    Rule(
        "GM013",
        "gosumdb-off-toolchain",
        W,
        "GOSUMDB=off makes every toolchain download fail ('checksum database disabled')",
        "keep the checksum database and list private modules in GONOSUMDB, or set "
        "GOTOOLCHAIN=local",
    ),
    Rule(
        "GM014",
        "goinsecure-for-proxy",
        W,
        "GOINSECURE does not apply to GOPROXY: it will not fix the proxy's TLS errors",
        "trust the proxy's CA (SSL_CERT_FILE or the system store); GOINSECURE is for direct "
        "fetches",
    ),
    Rule(
        "GM015",
        "mod-mod-in-ci",
        W,
        "-mod=mod lets a CI or image build rewrite go.mod and go.sum instead of failing",
        "commit a tidy go.mod and go.sum and build with the default -mod=readonly",
    ),
    Rule(
        "GM016",
        "goflags-invalid",
        E,
        "GOFLAGS holds something the go command rejects",
        "use -flag=value words known to the go command: GOFLAGS='-mod=readonly -trimpath'",
    ),
    Rule(
        "GM017",
        "go111module-off",
        E,
        "GO111MODULE=off (or a value go rejects) breaks module builds: go.mod is ignored",
        "remove GO111MODULE (module mode is the default since Go 1.16)",
    ),
    Rule(
        "GM018",
        "proxy-without-no-proxy",
        W,
        "HTTP(S)_PROXY is set but NO_PROXY does not cover the internal GOPROXY host",
        "add the internal proxy's host to NO_PROXY",
    ),
    Rule(
        "GM019",
        "git-terminal-prompt",
        W,
        "GIT_TERMINAL_PROMPT=1 in automation: git waits for a password nobody types",
        "give git credentials (~/.netrc, a credential helper, an SSH key) and leave "
        "GIT_TERMINAL_PROMPT unset",
    ),
    Rule(
        "GM020",
        "goversion-readonly",
        W,
        "GOVERSION is read-only: setting it does not choose the Go version",
        "pin Go with the image tag, setup-go's go-version/go-version-file, or GOTOOLCHAIN",
    ),
    # ---------------------------------------------------------------- Dockerfiles
    Rule(
        "GM021",
        "download-without-gosum",
        E,
        "go mod download runs before go.sum is copied: the later build fails with 'missing "
        "go.sum entry'",
        "COPY go.mod go.sum ./ before RUN go mod download",
    ),
    Rule(
        "GM022",
        "floating-golang-tag",
        W,
        "a floating golang image tag changes the Go version under the build",
        "pin the Go minor version at least: FROM golang:1.23-bookworm (or a digest)",
    ),
    Rule(
        "GM023",
        "go-line-newer-than-image",
        E,
        "go.mod needs a newer Go than the golang image that builds it (the image sets "
        "GOTOOLCHAIN=local)",
        "raise the image tag to at least the go line, or lower the go line",
    ),
    Rule(
        "GM024",
        "user-after-root-cache",
        W,
        "the module cache was filled as root; the later USER cannot write to it",
        "download as the final user (chown the cache to that UID first), or use -modcacherw and "
        "chown",
    ),
    Rule(
        "GM025",
        "cache-mount-not-on-build",
        W,
        "modules are downloaded into a cache mount that the later go build does not mount",
        "add the same --mount=type=cache,target=... to every RUN that runs go",
    ),
    Rule(
        "GM026",
        "run-platform-flag",
        E,
        "RUN has no --platform flag; BuildKit rejects the Dockerfile",
        "move --platform to the FROM line (FROM --platform=$BUILDPLATFORM golang:...)",
    ),
    Rule(
        "GM027",
        "direct-fetch-without-git",
        E,
        'this stage fetches modules directly but has no git: \'exec: "git": executable file not '
        "found'",
        "install git (apk add --no-cache git), or serve those modules from a proxy",
    ),
    Rule(
        "GM028",
        "cgo-without-compiler",
        W,
        "CGO_ENABLED=1 in an image without a C compiler: cgo packages cannot build",
        "install a compiler (apk add build-base) or set CGO_ENABLED=0",
    ),
    Rule(
        "GM029",
        "variable-not-in-stage",
        W,
        "a Go setting is declared outside the stage that runs go, so go never sees it",
        "redeclare ARG in the stage, or ENV it in a stage that this one is built FROM",
    ),
    Rule(
        "GM030",
        "dockerignore-excludes-gomod",
        E,
        ".dockerignore keeps go.mod or go.sum out of the build context",
        "remove the pattern, or add an exception: !go.sum",
    ),
    Rule(
        "GM031",
        "go-get-outside-module",
        E,
        "go get runs before go.mod is in the stage: 'go get' is no longer supported outside a "
        "module",
        "install tools with go install example.com/cmd@version",
    ),
    # ---------------------------------------------------------------- shell and CI
    Rule(
        "GM032",
        "rm-module-cache",
        W,
        "rm -rf of the module cache fails for non-root users: module directories are read-only",
        "use go clean -modcache (or download with -modcacherw)",
    ),
    Rule(
        "GM033",
        "insteadof-without-credentials",
        W,
        "git insteadOf rewrite to an https URL without credentials: git fails with 'terminal "
        "prompts disabled'",
        "put a token in the rewrite from a secret, use ~/.netrc, or rewrite to ssh://git@host/",
    ),
    Rule(
        "GM034",
        "sourced-env-without-export",
        W,
        "a sourced env file sets Go variables without export: the go command never sees them",
        "write 'export NAME=value' in the file, or wrap the source in set -a / set +a",
    ),
    Rule(
        "GM035",
        "setup-go-unpinned",
        W,
        "actions/setup-go without go-version or go-version-file uses whatever Go the runner has",
        "add go-version-file: go.mod (or go-version: '1.23')",
    ),
    Rule(
        "GM036",
        "duplicate-module-cache",
        W,
        "actions/cache stores the module cache that setup-go v4+ already caches",
        "drop the actions/cache step, or set cache: false on setup-go",
    ),
    Rule(
        "GM037",
        "job-without-timeout",
        N,
        "the job fetches modules without a timeout: a hung proxy blocks it for 6 hours",
        "set timeout-minutes on the job (activeDeadlineSeconds on a Kubernetes Job)",
    ),
    # ---------------------------------------------------------------- Kubernetes
    Rule(
        "GM038",
        "readonly-rootfs-cache",
        W,
        "readOnlyRootFilesystem with no writable volume for the module or build cache",
        "mount emptyDir volumes and point GOMODCACHE and GOCACHE at them",
    ),
    Rule(
        "GM039",
        "nonroot-no-cache-home",
        W,
        "a non-root container runs go without a writable HOME or GOCACHE",
        "set GOCACHE and GOMODCACHE (or HOME) to a writable volume",
    ),
    # ---------------------------------------------------------------- go.mod
    Rule(
        "GM040",
        "gomod-bad-version-line",
        E,
        "the go or toolchain line of go.mod is malformed: every go command fails to parse it",
        "write 'go 1.23.0' and 'toolchain go1.23.4'",
    ),
    Rule(
        "GM041",
        "gomod-without-gosum",
        E,
        "go.mod requires modules but there is no go.sum: builds fail with 'missing go.sum entry'",
        "run go mod tidy and commit go.sum",
    ),
    Rule(
        "GM042",
        "netrc-machine-without-port",
        E,
        "a netrc 'machine' lacks the port of the GOPROXY URL: the go command sends no "
        "credentials to it",
        "write 'machine HOST:PORT' exactly as the GOPROXY URL names it",
    ),
    Rule(
        "GM043",
        "credentials-for-http-proxy",
        E,
        "netrc or GOAUTH credentials for a GOPROXY reached over http://: the go command "
        "sends credentials only over https",
        "serve the proxy over https and name it with https:// in GOPROXY",
    ),
    Rule(
        "GM044",
        "install-latest-local-toolchain",
        W,
        "go install tool@latest where GOTOOLCHAIN=local: a new release of the tool that "
        "needs a newer Go breaks the build",
        "pin the tool's version (tool@vX.Y.Z), or allow toolchain downloads",
    ),
    Rule(
        "GM045",
        "mod-vendor-without-vendor",
        E,
        "-mod=vendor in a module that has no vendor/ directory: 'inconsistent vendoring'",
        "drop -mod=vendor, or run go mod vendor and commit vendor/",
    ),
    Rule(
        "GM046",
        "mod-init-in-image",
        W,
        "go mod init and go mod tidy in an image build: versions resolve to whatever is newest "
        "and no committed go.sum verifies them",
        "commit go.mod and go.sum and COPY them into the image",
    ),
    # ---------------------------------------------------------------- live environment
    Rule(
        "GM101",
        "env-dir-not-writable",
        E,
        "GOMODCACHE, GOCACHE or HOME is missing or not writable by this user",
        "point the variable at a directory this user can write",
    ),
    Rule(
        "GM102",
        "env-proxy-fails",
        E,
        "a GOPROXY entry fails and the go command stops there",
        "fix the proxy or its address; join entries with '|' to fall through on errors",
    ),
    Rule(
        "GM103",
        "env-proxy-skipped",
        W,
        "a GOPROXY entry fails; the go command falls through to the next ('|')",
        "fix the proxy or drop it: every fetch pays for the failure first",
    ),
    Rule(
        "GM104",
        "env-proxy-hung",
        E,
        "a GOPROXY entry accepts connections but does not answer: go blocks forever",
        "fix or remove the proxy; the go command has no timeout",
    ),
    Rule(
        "GM105",
        "env-tls-untrusted",
        E,
        "the TLS certificate of a proxy or checksum database is not trusted",
        "install the CA or set SSL_CERT_FILE; GOINSECURE does not apply to proxies",
    ),
    Rule(
        "GM106",
        "env-sumdb-fails",
        E,
        "the checksum database cannot be reached the way the go command reaches it",
        "fix GOSUMDB or its proxy, or list private modules in GONOSUMDB",
    ),
    Rule(
        "GM107",
        "env-private-not-covered",
        E,
        "a private module in go.mod is not covered by GONOSUMDB/GOPRIVATE",
        "add its path prefix to GOPRIVATE (or GONOSUMDB)",
    ),
    Rule(
        "GM108",
        "env-direct-without-git",
        W,
        "modules may be fetched directly but git is not on PATH",
        "install git, or serve every module from a proxy",
    ),
    Rule(
        "GM109",
        "env-private-sent-to-proxy",
        N,
        "a private module path is asked of a public proxy before falling back to direct",
        "add its path prefix to GOPRIVATE (or GONOPROXY)",
    ),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
