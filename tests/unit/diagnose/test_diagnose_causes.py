"""The cause identifiers: stable, each with a fix and a documented section."""

from __future__ import annotations

import re
from pathlib import Path

from modgate.diagnose import CAUSES, CauseId

DOCS = Path(__file__).resolve().parents[3] / "docs" / "diagnose.md"
PUBLIC = {
    "proxy-unreachable", "proxy-http-error", "proxy-auth", "goproxy-off", "checksum-mismatch",
    "missing-gosum-entry", "gomod-needs-update", "private-module-in-public-sumdb",
    "private-bypasses-internal-proxy", "gosumdb-malformed", "git-auth-required",
    "git-unreachable", "git-not-installed", "unknown-revision", "invalid-version-or-gomod",
    "inconsistent-vendoring", "poisoned-module-cache", "gomod-not-found", "goflags-invalid",
    "insecure-flag-removed", "module-cache-not-writable", "disk-full", "toolchain-too-new",
    "toolchain-download-failed", "tls-unknown-authority", "tls-name-mismatch",
    "tls-protocol-mismatch", "proxy-hung", "unknown", "goproxy-malformed",
    "modgate-fetch-disabled", "modgate-retag-refused", "modgate-invalid-module",
    "modgate-not-in-sumdb", "modgate-sumdb-failed", "modgate-upstream-failed",
    "modgate-store-error", "modgate-auth-required", "modgate-access-denied",
    "modgate-bad-request",
}  # fmt: skip


def test_the_public_identifiers_exist_unchanged() -> None:
    assert {str(cause) for cause in CauseId} == PUBLIC


def test_every_cause_has_a_title_a_fix_and_a_docs_anchor() -> None:
    assert set(CAUSES) == set(CauseId)
    for cause, about in CAUSES.items():
        assert about.title and about.fix.endswith("."), f"{cause}: title or fix missing"
        assert about.docs == f"docs/diagnose.md#{cause}"


def test_every_cause_is_documented() -> None:
    headings = set(re.findall(r"^#+ (\S+)$", DOCS.read_text(), flags=re.MULTILINE))
    missing = sorted(str(cause) for cause in CauseId if str(cause) not in headings)
    assert not missing, f"docs/diagnose.md has no section for {missing}"
