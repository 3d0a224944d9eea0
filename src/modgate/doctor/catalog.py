"""Every doctor rule: a stable ID, a default severity, one line of summary and the usual fix.

IDs never change meaning and are never reused. ``GM0xx`` rules read files;
``GM1xx`` rules check the live environment (``doctor --env``).

Each rule is one constant here, named ``<ID>_<NAME>`` (``GM021_DOWNLOAD_WITHOUT_GOSUM``),
and the analyzers pass that constant to ``Reporter.emit``: a mistyped rule
fails type checking, and the references of a constant are the code that
reports the rule. A rule also has a page :attr:`Rule.doc_page` saying what
breaks, why, the fix and the Go versions it applies to (:func:`help_uri`
builds the link used in SARIF), and the fixture folder :attr:`Rule.fixtures`
with a ``bad`` tree that triggers it and a ``good`` one that does not;
``tests/unit/doctor/test_doctor_rules.py`` checks that all four exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from modgate.doctor.findings import Severity

DOCS_BASE_URI = ""
"""Where the rule pages are published (``doctor --docs-uri``); empty: no links in SARIF."""

DOCS_PATH = "docs/rules"
"""Where the rule pages are in the modgate repository."""

FIXTURES_PATH = "tests/data/doctor/rules"
"""Where the rule fixtures are in the modgate repository."""

E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    severity: Severity
    summary: str
    fix: str

    @property
    def constant(self) -> str:
        """The name of this rule's constant in this module: ``GM001_INSECURE_FLAG_REMOVED``."""
        return f"{self.id}_{self.name.upper().replace('-', '_')}"

    @property
    def doc_page(self) -> str:
        """This rule's page, relative to the repository root."""
        return f"{DOCS_PATH}/{self.id}.md"

    @property
    def fixtures(self) -> str:
        """This rule's fixture folder (``bad/``, ``good/``, ``expected.txt``), from the root."""
        return f"{FIXTURES_PATH}/{self.id}"


def help_uri(rule_id: str, base: str = DOCS_BASE_URI) -> str | None:
    """The published page of a rule, or None when no --docs-uri was given."""
    if not base:
        return None
    return f"{base.rstrip('/')}/{rule_id}.md"


# ---------------------------------------------------------------- go settings, any file
GM001_INSECURE_FLAG_REMOVED = Rule(
    "GM001",
    "insecure-flag-removed",
    E,
    "-insecure was removed in Go 1.17; go get and go mod download reject it",
    "drop -insecure; list the module paths in GOINSECURE (direct fetches only)",
)
GM002_GOPROXY_INVALID = Rule(
    "GM002",
    "goproxy-invalid",
    E,
    "GOPROXY is not a list the go command accepts",
    "use comma- or pipe-separated https://, http:// or file:// URLs, 'direct' or 'off'",
)
GM003_GOPROXY_IGNORED_ENTRIES = Rule(
    "GM003",
    "goproxy-ignored-entries",
    W,
    "GOPROXY entries after 'direct' or 'off' are never used",
    "move the proxies before 'direct', or drop them",
)
GM004_GOPROXY_COMMA_FAILOVER = Rule(
    "GM004",
    "goproxy-comma-failover",
    N,
    "proxies joined by ',' fall through only on 404/410; a 5xx, 403 or outage stops the build",
    "join them with '|' if the next proxy should be tried after any error",
)
GM005_GOPROXY_NO_FALLBACK = Rule(
    "GM005",
    "goproxy-no-fallback",
    N,
    "GOPROXY names a single proxy with no fallback: whatever it cannot serve fails",
    "add ',direct' (or a second proxy) if that proxy does not serve every module",
)
GM006_GOPROXY_CREDENTIALS_HTTP = Rule(
    "GM006",
    "goproxy-credentials-http",
    E,
    "credentials in a plain-http GOPROXY URL: the go command refuses to send them",
    "serve the proxy over https, or put the credentials in ~/.netrc for an https URL",
)
GM007_CREDENTIALS_IN_FILE = Rule(
    "GM007",
    "credentials-in-file",
    W,
    "a password or token is written into a proxy URL in a committed file",
    "pass it from a secret (CI secret, ~/.netrc, a mounted file) instead",
)
GM008_PATTERN_NEVER_MATCHES = Rule(
    "GM008",
    "pattern-never-matches",
    E,
    "a GOPRIVATE-style pattern can never match a module path",
    "write module path prefixes without scheme or spaces: "
    "GOPRIVATE=corp.example.com,*.corp.example.com",
)
GM009_WILDCARD_MISSES_BARE_DOMAIN = Rule(
    "GM009",
    "wildcard-misses-bare-domain",
    E,
    "'*.domain' does not cover modules at 'domain' itself, which go.mod requires",
    "list the bare domain too: GOPRIVATE=corp.example.com,*.corp.example.com",
)
GM010_PATTERN_MATCHES_EVERYTHING = Rule(
    "GM010",
    "pattern-matches-everything",
    W,
    "a '*' pattern sends every module direct and/or skips the checksum database for all",
    "list only the private module path prefixes",
)
GM011_GOPRIVATE_BYPASSES_PROXY = Rule(
    "GM011",
    "goprivate-bypasses-proxy",
    W,
    "GOPRIVATE also sets GONOPROXY: private modules skip the internal GOPROXY and need git access",
    "set GONOPROXY=none so that the internal proxy serves private modules",
)
GM012_GOSUMDB_MALFORMED = Rule(
    "GM012",
    "gosumdb-malformed",
    E,
    "GOSUMDB is malformed: the go command stops with 'invalid GOSUMDB'",
    "write GOSUMDB=\"<name>[+<hash>+<key>] [<url>]\": the URL follows a space, not a '+'",
)
GM013_GOSUMDB_OFF_TOOLCHAIN = Rule(
    "GM013",
    "gosumdb-off-toolchain",
    W,
    "GOSUMDB=off makes every toolchain download fail ('checksum database disabled')",
    "keep the checksum database and list private modules in GONOSUMDB, or set GOTOOLCHAIN=local",
)
GM014_GOINSECURE_FOR_PROXY = Rule(
    "GM014",
    "goinsecure-for-proxy",
    W,
    "GOINSECURE does not apply to GOPROXY: it will not fix the proxy's TLS errors",
    "trust the proxy's CA (SSL_CERT_FILE or the system store); GOINSECURE is for direct fetches",
)
GM015_MOD_MOD_IN_CI = Rule(
    "GM015",
    "mod-mod-in-ci",
    W,
    "-mod=mod lets a CI or image build rewrite go.mod and go.sum instead of failing",
    "commit a tidy go.mod and go.sum and build with the default -mod=readonly",
)
GM016_GOFLAGS_INVALID = Rule(
    "GM016",
    "goflags-invalid",
    E,
    "GOFLAGS holds something the go command rejects",
    "use -flag=value words known to the go command: GOFLAGS='-mod=readonly -trimpath'",
)
GM017_GO111MODULE_OFF = Rule(
    "GM017",
    "go111module-off",
    E,
    "GO111MODULE=off (or a value go rejects) breaks module builds: go.mod is ignored",
    "remove GO111MODULE (module mode is the default since Go 1.16)",
)
GM018_PROXY_WITHOUT_NO_PROXY = Rule(
    "GM018",
    "proxy-without-no-proxy",
    W,
    "HTTP(S)_PROXY is set but NO_PROXY does not cover the internal GOPROXY host",
    "add the internal proxy's host to NO_PROXY",
)
GM019_GIT_TERMINAL_PROMPT = Rule(
    "GM019",
    "git-terminal-prompt",
    W,
    "GIT_TERMINAL_PROMPT=1 in automation: git waits for a password nobody types",
    "give git credentials (~/.netrc, a credential helper, an SSH key) and leave "
    "GIT_TERMINAL_PROMPT unset",
)
GM020_GOVERSION_READONLY = Rule(
    "GM020",
    "goversion-readonly",
    W,
    "GOVERSION is read-only: setting it does not choose the Go version",
    "pin Go with the image tag, setup-go's go-version/go-version-file, or GOTOOLCHAIN",
)


# ---------------------------------------------------------------- Dockerfiles
GM021_DOWNLOAD_WITHOUT_GOSUM = Rule(
    "GM021",
    "download-without-gosum",
    E,
    "go mod download runs before go.sum is copied: the later build fails with 'missing "
    "go.sum entry'",
    "COPY go.mod go.sum ./ before RUN go mod download",
)
GM022_FLOATING_GOLANG_TAG = Rule(
    "GM022",
    "floating-golang-tag",
    W,
    "a floating golang image tag changes the Go version under the build",
    "pin the Go minor version at least: FROM golang:1.23-bookworm (or a digest)",
)
GM023_GO_LINE_NEWER_THAN_IMAGE = Rule(
    "GM023",
    "go-line-newer-than-image",
    E,
    "go.mod needs a newer Go than the golang image that builds it (the image sets "
    "GOTOOLCHAIN=local)",
    "raise the image tag to at least the go line, or lower the go line",
)
GM024_USER_AFTER_ROOT_CACHE = Rule(
    "GM024",
    "user-after-root-cache",
    W,
    "the module cache was filled as root; the later USER cannot write to it",
    "download as the final user (chown the cache to that UID first), or use -modcacherw and chown",
)
GM025_CACHE_MOUNT_NOT_ON_BUILD = Rule(
    "GM025",
    "cache-mount-not-on-build",
    W,
    "modules are downloaded into a cache mount that the later go build does not mount",
    "add the same --mount=type=cache,target=... to every RUN that runs go",
)
GM026_RUN_PLATFORM_FLAG = Rule(
    "GM026",
    "run-platform-flag",
    E,
    "RUN has no --platform flag; BuildKit rejects the Dockerfile",
    "move --platform to the FROM line (FROM --platform=$BUILDPLATFORM golang:...)",
)
GM027_DIRECT_FETCH_WITHOUT_GIT = Rule(
    "GM027",
    "direct-fetch-without-git",
    E,
    'this stage fetches modules directly but has no git: \'exec: "git": executable file not '
    "found'",
    "install git (apk add --no-cache git), or serve those modules from a proxy",
)
GM028_CGO_WITHOUT_COMPILER = Rule(
    "GM028",
    "cgo-without-compiler",
    W,
    "CGO_ENABLED=1 in an image without a C compiler: cgo packages cannot build",
    "install a compiler (apk add build-base) or set CGO_ENABLED=0",
)
GM029_VARIABLE_NOT_IN_STAGE = Rule(
    "GM029",
    "variable-not-in-stage",
    W,
    "a Go setting is declared outside the stage that runs go, so go never sees it",
    "redeclare ARG in the stage, or ENV it in a stage that this one is built FROM",
)
GM030_DOCKERIGNORE_EXCLUDES_GOMOD = Rule(
    "GM030",
    "dockerignore-excludes-gomod",
    E,
    ".dockerignore keeps go.mod or go.sum out of the build context",
    "remove the pattern, or add an exception: !go.sum",
)
GM031_GO_GET_OUTSIDE_MODULE = Rule(
    "GM031",
    "go-get-outside-module",
    E,
    "go get runs before go.mod is in the stage: 'go get' is no longer supported outside a module",
    "install tools with go install example.com/cmd@version",
)


# ---------------------------------------------------------------- shell and CI
GM032_RM_MODULE_CACHE = Rule(
    "GM032",
    "rm-module-cache",
    W,
    "rm -rf of the module cache fails for non-root users: module directories are read-only",
    "use go clean -modcache (or download with -modcacherw)",
)
GM033_INSTEADOF_WITHOUT_CREDENTIALS = Rule(
    "GM033",
    "insteadof-without-credentials",
    W,
    "git insteadOf rewrite to an https URL without credentials: git fails with 'terminal "
    "prompts disabled'",
    "put a token in the rewrite from a secret, use ~/.netrc, or rewrite to ssh://git@host/",
)
GM034_SOURCED_ENV_WITHOUT_EXPORT = Rule(
    "GM034",
    "sourced-env-without-export",
    W,
    "a sourced env file sets Go variables without export: the go command never sees them",
    "write 'export NAME=value' in the file, or wrap the source in set -a / set +a",
)
GM035_SETUP_GO_UNPINNED = Rule(
    "GM035",
    "setup-go-unpinned",
    W,
    "actions/setup-go without go-version or go-version-file uses whatever Go the runner has",
    "add go-version-file: go.mod (or go-version: '1.23')",
)
GM036_DUPLICATE_MODULE_CACHE = Rule(
    "GM036",
    "duplicate-module-cache",
    W,
    "actions/cache stores the module cache that setup-go v4+ already caches",
    "drop the actions/cache step, or set cache: false on setup-go",
)
GM037_JOB_WITHOUT_TIMEOUT = Rule(
    "GM037",
    "job-without-timeout",
    N,
    "the job fetches modules without a timeout: a hung proxy blocks it for 6 hours",
    "set timeout-minutes on the job (activeDeadlineSeconds on a Kubernetes Job)",
)


# ---------------------------------------------------------------- Kubernetes
GM038_READONLY_ROOTFS_CACHE = Rule(
    "GM038",
    "readonly-rootfs-cache",
    W,
    "readOnlyRootFilesystem with no writable volume for the module or build cache",
    "mount emptyDir volumes and point GOMODCACHE and GOCACHE at them",
)
GM039_NONROOT_NO_CACHE_HOME = Rule(
    "GM039",
    "nonroot-no-cache-home",
    W,
    "a non-root container runs go without a writable HOME or GOCACHE",
    "set GOCACHE and GOMODCACHE (or HOME) to a writable volume",
)


# ---------------------------------------------------------------- go.mod
GM040_GOMOD_BAD_VERSION_LINE = Rule(
    "GM040",
    "gomod-bad-version-line",
    E,
    "the go or toolchain line of go.mod is malformed: every go command fails to parse it",
    "write 'go 1.23.0' and 'toolchain go1.23.4'",
)
GM041_GOMOD_WITHOUT_GOSUM = Rule(
    "GM041",
    "gomod-without-gosum",
    E,
    "go.mod requires modules but there is no go.sum: builds fail with 'missing go.sum entry'",
    "run go mod tidy and commit go.sum",
)
GM042_NETRC_MACHINE_WITHOUT_PORT = Rule(
    "GM042",
    "netrc-machine-without-port",
    E,
    "a netrc 'machine' lacks the port of the GOPROXY URL: the go command sends no "
    "credentials to it",
    "write 'machine HOST:PORT' exactly as the GOPROXY URL names it",
)
GM043_CREDENTIALS_FOR_HTTP_PROXY = Rule(
    "GM043",
    "credentials-for-http-proxy",
    E,
    "netrc or GOAUTH credentials for a GOPROXY reached over http://: the go command "
    "sends credentials only over https",
    "serve the proxy over https and name it with https:// in GOPROXY",
)
GM044_INSTALL_LATEST_LOCAL_TOOLCHAIN = Rule(
    "GM044",
    "install-latest-local-toolchain",
    W,
    "go install tool@latest where GOTOOLCHAIN=local: a new release of the tool that "
    "needs a newer Go breaks the build",
    "pin the tool's version (tool@vX.Y.Z), or allow toolchain downloads",
)
GM045_MOD_VENDOR_WITHOUT_VENDOR = Rule(
    "GM045",
    "mod-vendor-without-vendor",
    E,
    "-mod=vendor in a module that has no vendor/ directory: 'inconsistent vendoring'",
    "drop -mod=vendor, or run go mod vendor and commit vendor/",
)
GM046_MOD_INIT_IN_IMAGE = Rule(
    "GM046",
    "mod-init-in-image",
    W,
    "go mod init and go mod tidy in an image build: versions resolve to whatever is newest "
    "and no committed go.sum verifies them",
    "commit go.mod and go.sum and COPY them into the image",
)


# ---------------------------------------------------------------- live environment
GM101_ENV_DIR_NOT_WRITABLE = Rule(
    "GM101",
    "env-dir-not-writable",
    E,
    "GOMODCACHE, GOCACHE or HOME is missing or not writable by this user",
    "point the variable at a directory this user can write",
)
GM102_ENV_PROXY_FAILS = Rule(
    "GM102",
    "env-proxy-fails",
    E,
    "a GOPROXY entry fails and the go command stops there",
    "fix the proxy or its address; join entries with '|' to fall through on errors",
)
GM103_ENV_PROXY_SKIPPED = Rule(
    "GM103",
    "env-proxy-skipped",
    W,
    "a GOPROXY entry fails; the go command falls through to the next ('|')",
    "fix the proxy or drop it: every fetch pays for the failure first",
)
GM104_ENV_PROXY_HUNG = Rule(
    "GM104",
    "env-proxy-hung",
    E,
    "a GOPROXY entry accepts connections but does not answer: go blocks forever",
    "fix or remove the proxy; the go command has no timeout",
)
GM105_ENV_TLS_UNTRUSTED = Rule(
    "GM105",
    "env-tls-untrusted",
    E,
    "the TLS certificate of a proxy or checksum database is not trusted",
    "install the CA or set SSL_CERT_FILE; GOINSECURE does not apply to proxies",
)
GM106_ENV_SUMDB_FAILS = Rule(
    "GM106",
    "env-sumdb-fails",
    E,
    "the checksum database cannot be reached the way the go command reaches it",
    "fix GOSUMDB or its proxy, or list private modules in GONOSUMDB",
)
GM107_ENV_PRIVATE_NOT_COVERED = Rule(
    "GM107",
    "env-private-not-covered",
    E,
    "a private module in go.mod is not covered by GONOSUMDB/GOPRIVATE",
    "add its path prefix to GOPRIVATE (or GONOSUMDB)",
)
GM108_ENV_DIRECT_WITHOUT_GIT = Rule(
    "GM108",
    "env-direct-without-git",
    W,
    "modules may be fetched directly but git is not on PATH",
    "install git, or serve every module from a proxy",
)
GM109_ENV_PRIVATE_SENT_TO_PROXY = Rule(
    "GM109",
    "env-private-sent-to-proxy",
    N,
    "a private module path is asked of a public proxy before falling back to direct",
    "add its path prefix to GOPRIVATE (or GONOPROXY)",
)

RULES: dict[str, Rule] = {
    value.id: value for value in tuple(globals().values()) if isinstance(value, Rule)
}
"""Every rule above by ID, in the order defined (which is ID order)."""
