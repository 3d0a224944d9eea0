"""Ranking: the most likely root cause first, symptoms after or dropped."""

from __future__ import annotations

from modgate.diagnose import CauseId, DiagnosedFailure, diagnose_lines
from modgate.diagnose.rank import rank

SUMDB_PROMPTS = [
    "go: corp.example.com/private@v1.0.0: verifying go.mod: corp.example.com/private@v1.0.0/"
    "go.mod: reading https://proxy.golang.org/sumdb/sum.golang.org/lookup/"
    "corp.example.com/private@v1.0.0: 404 Not Found",
    "\tserver response:",
    "\tnot found: corp.example.com/private@v1.0.0: invalid version: git ls-remote -q "
    "--end-of-options https://corp.example.com/private in /tmp/gopath/pkg/mod/cache/vcs/0: "
    "exit status 128:",
    "\t\tfatal: could not read Username for 'https://corp.example.com': terminal prompts disabled",
]
GIT_PROMPTS = [
    "go: github.com/acme/tools@v1.0.0: reading github.com/acme/tools/go.mod at revision v1.0.0: "
    "git ls-remote -q --end-of-options https://github.com/acme/tools in /go/pkg/mod/cache/vcs/1: "
    "exit status 128:",
    "\tfatal: could not read Username for 'https://github.com': terminal prompts disabled",
    "Confirm the import path was entered correctly.",
]
PRIVATE = "corp.example.com/private@v1.0.0"


def _causes(findings: list[DiagnosedFailure]) -> list[tuple[str, str | None]]:
    return [(str(f.cause), str(f.module) if f.module else None) for f in findings]


def test_terminal_prompts_in_a_checksum_database_answer_means_missing_goprivate() -> None:
    findings = diagnose_lines(SUMDB_PROMPTS)
    assert _causes(findings) == [("private-module-in-public-sumdb", PRIVATE)], (
        f"the proxy's answer was read as this build's git error: {_causes(findings)}"
    )
    assert findings[0].confidence >= 0.9
    assert findings[0].evidence[-1].endswith("terminal prompts disabled")


def test_missing_goprivate_ranks_before_a_git_credentials_problem() -> None:
    for lines in (GIT_PROMPTS + SUMDB_PROMPTS, SUMDB_PROMPTS + GIT_PROMPTS):
        got = _causes(diagnose_lines(lines))
        assert got == [
            ("private-module-in-public-sumdb", PRIVATE),
            ("git-auth-required", "github.com/acme/tools@v1.0.0"),
        ], f"wrong order: {got}"


def test_noise_between_a_status_line_and_its_answer_is_tolerated() -> None:
    noisy = [SUMDB_PROMPTS[0], "npm WARN deprecated x", *SUMDB_PROMPTS[1:3], "found 0 vulns",
             SUMDB_PROMPTS[3]]  # fmt: skip
    assert _causes(diagnose_lines(noisy)) == [("private-module-in-public-sumdb", PRIVATE)]


def test_a_5xx_answer_mentioning_prompts_stays_a_proxy_error() -> None:
    lines = [
        "go: corp.example.com/private@v1.0.0: reading https://p/corp.example.com/private/@v/"
        "v1.0.0.mod: 502 Bad Gateway",
        "\tserver response: upstream said: terminal prompts disabled",
    ]
    assert _causes(diagnose_lines(lines)) == [("proxy-http-error", PRIVATE)]


def test_a_timeout_after_a_real_error_is_not_a_hung_proxy() -> None:
    lines = [
        "##[group]Run go mod download",
        "go: example.com/foo@v1.0.0: reading https://p/example.com/foo/@v/v1.0.0.mod: 500 "
        "Internal Server Error",
        "##[error]The operation was canceled.",
    ]
    assert [str(f.cause) for f in diagnose_lines(lines)] == ["proxy-http-error"]


def test_a_timeout_right_after_downloading_is_a_hung_proxy() -> None:
    lines = [
        "$ go build ./...",
        "go: downloading example.com/foo v1.0.0",
        "ERROR: Job failed: execution took longer than 1h0m0s seconds",
    ]
    assert _causes(diagnose_lines(lines)) == [("proxy-hung", "example.com/foo@v1.0.0")]


def test_a_timeout_long_after_the_last_download_is_not_a_hung_proxy() -> None:
    lines = ["go: downloading example.com/foo v1.0.0"]
    lines += [f"=== RUN   TestCase{i}" for i in range(50)]
    lines.append("##[error]The operation was canceled.")
    assert [str(f.cause) for f in diagnose_lines(lines)] == []


def test_context_deadline_alone_is_a_hung_proxy() -> None:
    lines = ['go: example.com/foo@v1.0.0: Get "https://p/x": context deadline exceeded']
    assert _causes(diagnose_lines(lines)) == [("proxy-hung", "example.com/foo@v1.0.0")]


def test_a_failure_after_a_root_cause_is_its_consequence() -> None:
    tls = DiagnosedFailure(CauseId.TLS_UNKNOWN_AUTHORITY, None, 0.8, line=5)
    vendor = DiagnosedFailure(CauseId.INCONSISTENT_VENDORING, None, 0.98, line=30)
    before = DiagnosedFailure(CauseId.MISSING_GOSUM_ENTRY, None, 0.96, line=2)
    ranked = rank([vendor, before, tls])
    assert ranked == [before, tls, vendor]
    assert (vendor.caused_by, before.caused_by, tls.caused_by) == (tls, None, None)


def test_a_timeout_then_a_fallback_to_vendor_ranks_the_cause_first() -> None:
    lines = [
        'go: example.com/foo@v1.0.0: Get "https://goproxy.corp/x": tls: failed to verify '
        "certificate: x509: certificate signed by unknown authority",
        "download failed; building from vendor/",
        "go: inconsistent vendoring in /src:",
        "\texample.com/foo@v1.0.0: is explicitly required in go.mod, but not marked as explicit "
        "in vendor/modules.txt",
    ]
    assert _causes(diagnose_lines(lines)) == [
        ("tls-unknown-authority", "example.com/foo@v1.0.0"),
        ("inconsistent-vendoring", "example.com/foo@v1.0.0"),
    ]


def test_rank_orders_by_confidence_then_position() -> None:
    late_sure = DiagnosedFailure(CauseId.GOFLAGS_INVALID, None, 0.96, line=40)
    early_unsure = DiagnosedFailure(CauseId.PROXY_HTTP_ERROR, None, 0.8, line=3)
    early_sure = DiagnosedFailure(CauseId.DISK_FULL, None, 0.96, line=10)
    hung = DiagnosedFailure(CauseId.PROXY_HUNG, None, 0.99, line=1)
    assert rank([early_unsure, late_sure, hung, early_sure]) == [
        early_sure,
        late_sure,
        early_unsure,
    ]
    assert rank([hung]) == [hung]
