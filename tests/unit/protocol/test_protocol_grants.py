"""The access decision: a pure function over grants, GOPRIVATE patterns and the identity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modgate.protocol.grants import (
    AccessPolicy,
    Anonymous,
    GrantError,
    Outcome,
    parse_grants,
)
from modgate.protocol.identity import Identity, IdentityKind, flatten_claims, token_identity
from modgate.protocol.patterns import parse_patterns

PRIVATE = parse_patterns("corp.example.com,*.internal.example.com")
GRANTS = parse_grants(
    [
        {"name": "app-ci", "issuer": "github", "claims": {"repository": "corp/app"},
         "read": ["corp.example.com/app", "corp.example.com/lib"]},
        {"name": "build-pods", "issuer": "k8s", "subject": "system:serviceaccount:build:*",
         "read": "corp.example.com/lib"},
        {"name": "team-a", "issuer": "idp", "claims": {"groups": ["team-a", "platform"]},
         "read": "a.internal.example.com"},
        {"name": "ops-token", "tokens": ["ops"], "read": "corp.example.com/ops"},
        {"name": "everything", "issuer": "idp", "claims": {"groups": "admins"}, "read": "*"},
    ]
)  # fmt: skip


def oidc(issuer: str, subject: str, **claims: str | list[str]) -> Identity:
    payload: dict[str, object] = dict(claims)
    return Identity(IdentityKind.OIDC, subject, issuer=issuer, claims=flatten_claims(payload))


GITHUB_APP = oidc("github", "repo:corp/app:ref:refs/heads/main", repository="corp/app")
GITHUB_OTHER = oidc("github", "repo:corp/other:ref:refs/heads/main", repository="corp/other")
BUILD_POD = oidc("k8s", "system:serviceaccount:build:builder")
WEB_POD = oidc("k8s", "system:serviceaccount:web:frontend")
TEAM_A = oidc("idp", "alice@corp", groups=["dev", "team-a"])
ADMIN = oidc("idp", "root@corp", groups=["admins"])
ALL_TOKEN = token_identity("all", None)
APP_TOKEN = token_identity("app", parse_patterns("corp.example.com/app"))
PUBLIC_ONLY_TOKEN = token_identity("pub", parse_patterns(""))
OPS_TOKEN = token_identity("ops", parse_patterns(""))

CASES = [
    # identity, module, outcome, rule
    (None, "github.com/pub/lib", Outcome.CHALLENGE, "anonymous-none"),
    (None, "corp.example.com/app", Outcome.CHALLENGE, "anonymous-private"),
    (GITHUB_OTHER, "github.com/pub/lib", Outcome.ALLOW, "public"),
    (PUBLIC_ONLY_TOKEN, "github.com/pub/lib", Outcome.ALLOW, "public"),
    (GITHUB_APP, "corp.example.com/app/sub", Outcome.ALLOW, "grant:app-ci"),
    (GITHUB_APP, "corp.example.com/lib", Outcome.ALLOW, "grant:app-ci"),
    (GITHUB_APP, "corp.example.com/secret", Outcome.DENY, "no-grant"),
    (GITHUB_OTHER, "corp.example.com/app", Outcome.DENY, "no-grant"),
    (BUILD_POD, "corp.example.com/lib", Outcome.ALLOW, "grant:build-pods"),
    (WEB_POD, "corp.example.com/lib", Outcome.DENY, "no-grant"),
    (TEAM_A, "a.internal.example.com/x", Outcome.ALLOW, "grant:team-a"),
    (TEAM_A, "b.internal.example.com/x", Outcome.DENY, "no-grant"),
    # a glob with one element does not cover the bare domain
    (TEAM_A, "internal.example.com/x", Outcome.ALLOW, "public"),
    (ADMIN, "b.internal.example.com/x", Outcome.ALLOW, "grant:everything"),
    (ALL_TOKEN, "corp.example.com/secret", Outcome.ALLOW, "token-unrestricted"),
    (APP_TOKEN, "corp.example.com/app/v2", Outcome.ALLOW, "token-read:corp.example.com/app"),
    (APP_TOKEN, "corp.example.com/lib", Outcome.DENY, "no-grant"),
    (PUBLIC_ONLY_TOKEN, "corp.example.com/app", Outcome.DENY, "no-grant"),
    (OPS_TOKEN, "corp.example.com/ops", Outcome.ALLOW, "grant:ops-token"),
    # a grant for a token name never applies to an OIDC subject of that name
    (oidc("github", "ops"), "corp.example.com/ops", Outcome.DENY, "no-grant"),
    # an issuer's grant never applies to another issuer's identical subject
    (oidc("idp", "system:serviceaccount:build:builder"), "corp.example.com/lib", Outcome.DENY,
     "no-grant"),
]  # fmt: skip


@pytest.mark.parametrize(("identity", "module", "outcome", "rule"), CASES)
def test_decision_table(
    identity: Identity | None, module: str, outcome: Outcome, rule: str
) -> None:
    policy = AccessPolicy(PRIVATE, GRANTS)
    decision = policy.decide(identity, module)
    assert (decision.outcome, decision.rule) == (outcome, rule), (
        f"{identity} reading {module}: got {decision.outcome.value} by {decision.rule} "
        f"({decision.why}); expected {outcome.value} by {rule}"
    )


def test_anonymous_public_reads_public_modules_only() -> None:
    policy = AccessPolicy(PRIVATE, GRANTS, Anonymous.PUBLIC)
    assert policy.decide(None, "github.com/pub/lib").outcome is Outcome.ALLOW
    decision = policy.decide(None, "corp.example.com/app")
    assert decision.outcome is Outcome.CHALLENGE and decision.private


def test_the_explanation_names_the_pattern_and_the_grant() -> None:
    policy = AccessPolicy(PRIVATE, GRANTS)
    allowed = policy.decide(GITHUB_APP, "corp.example.com/lib")
    assert "pattern corp.example.com" in allowed.why
    assert "grant 'app-ci'" in allowed.why and "claim repository=corp/app" in allowed.why
    denied = policy.decide(APP_TOKEN, "corp.example.com/lib")
    assert "--read is corp.example.com/app" in denied.why, denied.why


def test_reads_everything_only_for_unrestricted_identities() -> None:
    policy = AccessPolicy(PRIVATE, GRANTS)
    assert policy.reads_everything(ALL_TOKEN)
    assert policy.reads_everything(ADMIN)
    assert not policy.reads_everything(APP_TOKEN)
    assert not policy.reads_everything(GITHUB_APP)


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([{"name": "x", "issuer": "k8s"}], "'read'"),
        ([{"name": "x", "read": "corp.example.com"}], "says nobody"),
        ([{"name": "x", "tokens": ["a"], "issuer": "k8s", "read": "a.com"}], "not both"),
        ([{"name": "x", "tokens": "a", "read": "https://corp.example.com"}], "is a URL"),
        ([{"name": "x", "tokens": "a", "read": "a.com", "who": "me"}], "unknown key 'who'"),
        ([{"name": "x y", "tokens": "a", "read": "a.com"}], "name must be"),
        ([{"name": "x", "tokens": "a", "read": "a.com"}] * 2, "defined twice"),
        ([{"name": "x", "issuer": "k8s", "claims": "groups", "read": "a.com"}], "claims must be"),
        ([{"name": "x", "issuer": "k8s", "read": []}], "no pattern"),
    ],
)
def test_bad_grants_are_refused_with_the_reason(
    tables: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(GrantError, match=message):
        parse_grants(tables)


def test_kubernetes_claims_are_flattened_with_slashes() -> None:
    claims = flatten_claims(
        {"kubernetes.io": {"namespace": "build", "serviceaccount": {"name": "builder"}},
         "groups": ["a", "b", {"nested": 1}], "admin": True, "n": 3}
    )  # fmt: skip
    assert dict(claims) == {
        "kubernetes.io/namespace": ("build",),
        "kubernetes.io/serviceaccount/name": ("builder",),
        "groups": ("a", "b"),
        "admin": ("true",),
        "n": ("3",),
    }


segment = st.text(alphabet="abcdefghij.-", min_size=1, max_size=6).filter(
    lambda s: s.strip(".") == s
)


@given(first=segment, rest=st.lists(segment, max_size=3), read=st.lists(segment, max_size=3))
def test_a_denied_private_read_is_never_allowed_by_a_token_limit_it_does_not_match(
    first: str, rest: list[str], read: list[str]
) -> None:
    module = "/".join([f"{first}.com", *rest])
    private = parse_patterns(f"{first}.com")
    limit = parse_patterns(",".join(f"{r}.org" for r in read))
    decision = AccessPolicy(private).decide(token_identity("t", limit), module)
    assert decision.private
    assert decision.outcome is Outcome.DENY, decision.why
    assert AccessPolicy(private).decide(None, module).outcome is Outcome.CHALLENGE
