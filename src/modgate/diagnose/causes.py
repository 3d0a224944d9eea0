"""The stable cause identifiers of ``modgate diagnose``, each with its fix and docs anchor.

Users script against these identifiers (``--format json``), so they never
change meaning and are never renamed; new causes are added, none removed.
Every fix says what to change, and where popular advice is wrong (a
checksum-database 404 is not a credentials problem, GOINSECURE does not fix
certificate errors of a proxy) it says so.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

DOCS_PAGE = "docs/diagnose.md"


class CauseId(enum.StrEnum):
    """A failure class; ``str()`` is the identifier printed in reports."""

    # proxy side
    PROXY_UNREACHABLE = "proxy-unreachable"
    PROXY_HTTP_ERROR = "proxy-http-error"
    PROXY_AUTH = "proxy-auth"
    GOPROXY_OFF = "goproxy-off"
    GOPROXY_MALFORMED = "goproxy-malformed"
    PROXY_HUNG = "proxy-hung"
    # verification
    CHECKSUM_MISMATCH = "checksum-mismatch"
    MISSING_GOSUM_ENTRY = "missing-gosum-entry"
    GOMOD_NEEDS_UPDATE = "gomod-needs-update"
    PRIVATE_MODULE_IN_PUBLIC_SUMDB = "private-module-in-public-sumdb"
    PRIVATE_BYPASSES_INTERNAL_PROXY = "private-bypasses-internal-proxy"
    GOSUMDB_MALFORMED = "gosumdb-malformed"
    # git
    GIT_AUTH_REQUIRED = "git-auth-required"
    GIT_UNREACHABLE = "git-unreachable"
    GIT_NOT_INSTALLED = "git-not-installed"
    UNKNOWN_REVISION = "unknown-revision"
    # module files
    INVALID_VERSION_OR_GOMOD = "invalid-version-or-gomod"
    INCONSISTENT_VENDORING = "inconsistent-vendoring"
    POISONED_MODULE_CACHE = "poisoned-module-cache"
    GOMOD_NOT_FOUND = "gomod-not-found"
    GOFLAGS_INVALID = "goflags-invalid"
    INSECURE_FLAG_REMOVED = "insecure-flag-removed"
    # environment
    MODULE_CACHE_NOT_WRITABLE = "module-cache-not-writable"
    DISK_FULL = "disk-full"
    TOOLCHAIN_TOO_NEW = "toolchain-too-new"
    TOOLCHAIN_DOWNLOAD_FAILED = "toolchain-download-failed"
    # TLS
    TLS_UNKNOWN_AUTHORITY = "tls-unknown-authority"
    TLS_NAME_MISMATCH = "tls-name-mismatch"
    TLS_PROTOCOL_MISMATCH = "tls-protocol-mismatch"
    # answers of a modgate gateway (recognized by the bodies modgate sends)
    MODGATE_FETCH_DISABLED = "modgate-fetch-disabled"
    MODGATE_RETAG_REFUSED = "modgate-retag-refused"
    MODGATE_INVALID_MODULE = "modgate-invalid-module"
    MODGATE_NOT_IN_SUMDB = "modgate-not-in-sumdb"
    MODGATE_SUMDB_FAILED = "modgate-sumdb-failed"
    MODGATE_UPSTREAM_FAILED = "modgate-upstream-failed"
    MODGATE_STORE_ERROR = "modgate-store-error"
    MODGATE_AUTH_REQUIRED = "modgate-auth-required"
    MODGATE_ACCESS_DENIED = "modgate-access-denied"
    MODGATE_BAD_REQUEST = "modgate-bad-request"
    # nothing known matched
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Cause:
    """What a cause means (one line) and what to do about it."""

    id: CauseId
    title: str
    fix: str

    @property
    def docs(self) -> str:
        """The documentation anchor of this cause."""
        return f"{DOCS_PAGE}#{self.id}"


_CAUSES = (
    Cause(
        CauseId.PROXY_UNREACHABLE,
        "the module proxy (or the HTTP proxy in front of it) could not be reached",
        "Check GOPROXY and the network path to it: DNS, firewall/egress rules, HTTPS_PROXY "
        "and NO_PROXY. After ',' a connection error stops the chain; separate entries with "
        "'|' if the next one should be tried when this one is down.",
    ),
    Cause(
        CauseId.PROXY_HTTP_ERROR,
        "the module proxy answered with an HTTP error",
        "404/410 from the last GOPROXY entry means no entry has this module@version: check "
        "the version exists and that GOPROXY ends with the fallback you expect (',direct'). "
        "5xx is the proxy's own failure: retry or fix the proxy; after ',' only 404/410 fall "
        "through, use '|' to fall back on any error.",
    ),
    Cause(
        CauseId.PROXY_AUTH,
        "the proxy refused the request for lack of credentials or permission (401/403/407)",
        "Give the build credentials for the proxy (GOAUTH, or a ~/.netrc entry for the proxy "
        "host; user:password in HTTPS_PROXY for a corporate proxy) and check the account may "
        "read this module. Credentials in an http:// URL are refused: use https://.",
    ),
    Cause(
        CauseId.GOPROXY_OFF,
        "GOPROXY=off forbids downloads and the module is not in the module cache",
        "Set GOPROXY (your internal proxy, or https://proxy.golang.org,direct), or fill the "
        "module cache (go mod download, or vendor) before the offline step.",
    ),
    Cause(
        CauseId.GOPROXY_MALFORMED,
        "GOPROXY is set but lists no usable entry (or an entry the go command rejects)",
        "Set GOPROXY to URLs, 'direct' or 'off' separated by ',' or '|' (e.g. "
        "https://proxy.golang.org,direct); empty entries are errors. Package builders that "
        "set an empty list on purpose to forbid the network need the modules vendored "
        "(go mod vendor) or in the module cache.",
    ),
    Cause(
        CauseId.PROXY_HUNG,
        "the job was killed after a long silence while modules were downloading",
        "The go command has no timeout for a proxy that accepts the connection but never "
        "answers. Find the hanging proxy (go mod download -x prints each request), fix it or "
        "remove it from GOPROXY, and give CI steps their own timeout.",
    ),
    Cause(
        CauseId.CHECKSUM_MISMATCH,
        "the downloaded content does not match the hash in go.sum",
        "Do not delete go.sum lines to make it pass: find out why the content changed (a "
        "re-tagged version, a proxy serving altered content). 'go clean -modcache' only "
        "helps when the local cache was poisoned; a mismatch with the origin survives it.",
    ),
    Cause(
        CauseId.MISSING_GOSUM_ENTRY,
        "go.sum lacks a hash the build needs",
        "Run 'go mod tidy' and commit go.sum. In a Dockerfile copy go.sum together with "
        "go.mod before 'go mod download'.",
    ),
    Cause(
        CauseId.GOMOD_NEEDS_UPDATE,
        "go.mod is missing or has outdated requirements, and the build may not change it",
        "Run 'go mod tidy' (or the 'go get' the message names) locally and commit go.mod and "
        "go.sum; builds use -mod=readonly and never fix go.mod themselves.",
    ),
    Cause(
        CauseId.PRIVATE_MODULE_IN_PUBLIC_SUMDB,
        "a private module was looked up in the public checksum database or proxy",
        "Set GOPRIVATE (or GONOSUMDB) to cover the module path, e.g. "
        "GOPRIVATE=corp.example.com; '*.corp.example.com' does not cover the bare domain. "
        "This is not a credentials problem: 'terminal prompts disabled' in the answer is the "
        "public service failing to clone your private repository.",
    ),
    Cause(
        CauseId.PRIVATE_BYPASSES_INTERNAL_PROXY,
        "a private module was fetched directly from its host instead of through GOPROXY",
        "GOPRIVATE (through GONOPROXY) sends these modules around GOPROXY to their VCS host, "
        "which the build cannot reach. If an internal proxy serves them, set GONOPROXY=none "
        "and keep GOPRIVATE for the checksum database; otherwise let the build reach the host.",
    ),
    Cause(
        CauseId.GOSUMDB_MALFORMED,
        "GOSUMDB has a syntax error",
        "Use 'name', 'name+key' or 'name url' with a space before the URL, e.g. "
        "GOSUMDB='sum.golang.org https://mirror.example/sumdb/sum.golang.org'; "
        "'name+https://...' is not valid.",
    ),
    Cause(
        CauseId.GIT_AUTH_REQUIRED,
        "git needs credentials for the repository and cannot prompt for them",
        "Give the build a token: a ~/.netrc entry for the host, or git config "
        'url."https://oauth2:$TOKEN@host/".insteadOf "https://host/" (or an SSH key with an '
        "insteadOf rewrite to ssh://). GIT_TERMINAL_PROMPT=1 only changes the error.",
    ),
    Cause(
        CauseId.GIT_UNREACHABLE,
        "the module's own host (its git server or go-get page) could not be reached",
        "Check the host in the module path and any url.*.insteadOf rewrite, and that the "
        "build can reach it (DNS, firewall, HTTPS_PROXY); or serve the module from a GOPROXY.",
    ),
    Cause(
        CauseId.GIT_NOT_INSTALLED,
        "the module is fetched directly from version control but git is not installed",
        "Install git in the build image (apk add git / apt-get install git), or serve the "
        "module through a proxy so that no direct fetch is needed.",
    ),
    Cause(
        CauseId.UNKNOWN_REVISION,
        "the version does not exist in the module's repository",
        "Push the tag (a module in a subdirectory needs the prefix: sub/v1.2.3) or require an "
        "existing version; check that the module path points at the right repository.",
    ),
    Cause(
        CauseId.INVALID_VERSION_OR_GOMOD,
        "go.mod or a version in it is invalid",
        "Fix the line the message names: v2+ modules need the /vN path suffix, the go line "
        "looks like 'go 1.22.0', the toolchain line like 'toolchain go1.22.0'.",
    ),
    Cause(
        CauseId.INCONSISTENT_VENDORING,
        "vendor/modules.txt does not match go.mod",
        "Run 'go mod vendor' and commit vendor/, or build with -mod=mod or -mod=readonly if "
        "the vendor directory is not meant to be used.",
    ),
    Cause(
        CauseId.POISONED_MODULE_CACHE,
        "the module cache holds content that is not a module (an HTML page cached as go.mod)",
        "Clear it with 'go clean -modcache' (or drop the CI cache volume), keep go.sum "
        "committed so that bad content is rejected, and fix whatever answered with HTML "
        "(a captive portal or login page in front of the proxy).",
    ),
    Cause(
        CauseId.GOMOD_NOT_FOUND,
        "the go command ran outside the module (no go.mod here or in a parent directory)",
        "Run it in the module root (WORKDIR, working-directory, or cd), and copy go.mod into "
        "the image before this step.",
    ),
    Cause(
        CauseId.GOFLAGS_INVALID,
        "GOFLAGS holds a flag or value the go command rejects",
        "Fix or remove it. Flags are space separated (GOFLAGS='-mod=mod -trimpath') and each "
        "must be known to the go command.",
    ),
    Cause(
        CauseId.INSECURE_FLAG_REMOVED,
        "the -insecure flag was removed in Go 1.17",
        "Drop -insecure. Use GOINSECURE=host for direct fetches without TLS checks and "
        "GOPRIVATE/GONOSUMDB to skip the checksum database; neither applies to a GOPROXY URL.",
    ),
    Cause(
        CauseId.MODULE_CACHE_NOT_WRITABLE,
        "the module or build cache cannot be written (permissions, read-only, or not set)",
        "Point GOMODCACHE, GOCACHE and HOME at writable directories, chown the cache to the "
        "user that builds (the UID of the later USER), or mount a writable volume (emptyDir) "
        "for it.",
    ),
    Cause(
        CauseId.DISK_FULL,
        "the disk holding the module or build cache is full",
        "Free space (go clean -cache -modcache), give the runner or volume more space, or "
        "move GOMODCACHE, GOCACHE and TMPDIR to a larger disk.",
    ),
    Cause(
        CauseId.TOOLCHAIN_TOO_NEW,
        "go.mod needs a newer Go than the build has, and toolchain downloads are off",
        "Use a build image with at least that Go version, or lower the go line. The official "
        "golang images set GOTOOLCHAIN=local; GOTOOLCHAIN=auto downloads the toolchain "
        "through GOPROXY.",
    ),
    Cause(
        CauseId.TOOLCHAIN_DOWNLOAD_FAILED,
        "the Go toolchain that go.mod asks for could not be downloaded",
        "Toolchains come from GOPROXY as golang.org/toolchain and need the checksum database "
        "(GOSUMDB=off forbids them): make the proxy serve golang.org/toolchain, or use a build "
        "image with that Go version.",
    ),
    Cause(
        CauseId.TLS_UNKNOWN_AUTHORITY,
        "the server's certificate is not signed by a CA the build trusts",
        "Install the CA in the image (update-ca-certificates) or point SSL_CERT_FILE at it; "
        "for git, http.sslCAInfo. GOINSECURE does not help for a GOPROXY URL.",
    ),
    Cause(
        CauseId.TLS_NAME_MISMATCH,
        "the certificate does not name the host that was contacted",
        "Use the host name the certificate was issued for (not an IP address or an alias), "
        "or reissue the certificate with that name in its subjectAltName.",
    ),
    Cause(
        CauseId.TLS_PROTOCOL_MISMATCH,
        "TLS was spoken to a server that answered in plain HTTP (or another protocol)",
        "Use http:// for that URL, or the server's TLS port.",
    ),
    Cause(
        CauseId.MODGATE_FETCH_DISABLED,
        "the modgate gateway does not have this module and may not fetch it (upstream 'off')",
        "Import it into the gateway's store ('modgate import' from a module cache or "
        "directory) or start modgate with an --upstream for it. Adding ',direct' to GOPROXY "
        "would only bypass the gateway your builds are meant to go through.",
    ),
    Cause(
        CauseId.MODGATE_RETAG_REFUSED,
        "modgate refused the version: its content differs from what was recorded for it "
        "(re-tagged at the source, or altered on the way)",
        "A published version must never change. Publish a new version (v1.2.4) instead of "
        "moving the tag, and require that one; do not clear modgate's checksum log or "
        "bypass the gateway. If the source was tampered with, report it.",
    ),
    Cause(
        CauseId.MODGATE_INVALID_MODULE,
        "modgate refused the module because its content breaks the module rules",
        "The message names what is wrong (go.mod, .info, zip file names or size). Fix the "
        "module at its source and publish a new version; the go command would refuse the "
        "same content.",
    ),
    Cause(
        CauseId.MODGATE_NOT_IN_SUMDB,
        "modgate could not verify the module: the public checksum database does not know it",
        "If the module is private, add its path to modgate's --private patterns (and to "
        "GOPRIVATE on clients); otherwise check that the version exists publicly and retry.",
    ),
    Cause(
        CauseId.MODGATE_SUMDB_FAILED,
        "the checksum database modgate serves or forwards could not answer",
        "This is the gateway's failure, not the build's: retry, and have the gateway's "
        "operator check its --sumdb upstream and network (modgate's log names it). Setting "
        "GOSUMDB=off or GONOSUMDB would skip verification, not fix it.",
    ),
    Cause(
        CauseId.MODGATE_UPSTREAM_FAILED,
        "the modgate gateway could not fetch the module from its upstream or origin",
        "The answer says which upstream or git host failed and why (credentials, DNS, TLS, "
        "timeout). The gateway's operator fixes that (modgate's --upstream, git credentials "
        "or network); the build itself needs no change.",
    ),
    Cause(
        CauseId.MODGATE_STORE_ERROR,
        "the modgate gateway's own storage failed",
        "Retry; if it persists the gateway's operator checks modgate's log and its store "
        "(disk space, permissions, a damaged checksum log as the message says).",
    ),
    Cause(
        CauseId.MODGATE_AUTH_REQUIRED,
        "the modgate gateway wants credentials the build did not send (or refused them)",
        "Follow the answer: a ~/.netrc line 'machine HOST:PORT login token password <token>' "
        "(the port must match GOPROXY's), or GOAUTH='modgate goauth --url URL' in CI; the go "
        "command sends credentials only over https://. A refused token needs renewing.",
    ),
    Cause(
        CauseId.MODGATE_ACCESS_DENIED,
        "the modgate gateway knows who the build is, but no grant lets it read this module",
        "Ask the gateway's operator for a grant covering the module (check with 'modgate "
        "auth check'); other credentials or ',direct' are not the fix.",
    ),
    Cause(
        CauseId.MODGATE_BAD_REQUEST,
        "the modgate gateway rejected the request as not a module proxy request",
        "Check that GOPROXY is the gateway's base URL (no extra path, query or fragment) and "
        "that the version is a canonical one; the go command itself sends valid requests.",
    ),
    Cause(
        CauseId.UNKNOWN,
        "the build failed for a reason no rule recognizes",
        "Read the evidence lines. If this is a module download failure, report the log so "
        "that a rule can be added.",
    ),
)

CAUSES: dict[CauseId, Cause] = {cause.id: cause for cause in _CAUSES}
"""Every cause by identifier (one entry per :class:`CauseId`)."""
