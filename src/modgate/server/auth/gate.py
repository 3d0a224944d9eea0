"""Access control for each request, with verdicts cached per connection.

``AccessGate`` is shared by the connections of one server: the policy (pure
decision over grants and patterns), the resolver (credentials to identity),
the failure limiter, the audit log and the decision counters.
``ConnAccess`` belongs to one connection. Its ``check`` runs before the
router for every request that is not served from the hot path; its ``fast``
is what the hot path asks, and answers from what ``check`` learnt on this
connection: the credentials it resolved (compared byte for byte with the
request's header), their expiry, the gate's generation (bumped by every
reload) and a verdict per module path. Anything it does not know sends the
request down the slow path, so a hot private artifact is never sent to a
client that ``check`` has not allowed for that module under the same
credentials and configuration.

What is checked: the GOPROXY routes and ``/sumdb/<name>/lookup/<module>@...``
are decided by module path. Other checksum-database pages (``supported``,
``latest``, hash tiles) and unparseable targets follow the public-module
rule; data tiles of modgate's own log (which hold private module paths) need
an identity that may read every private module. ``/healthz``, ``/readyz``
and ``/metrics`` are open.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from modgate.formats.tile import DATA_LEVEL
from modgate.metrics import Metrics
from modgate.protocol.errors import ModgateError
from modgate.protocol.grants import AccessPolicy, Anonymous, Decision, Outcome
from modgate.protocol.identity import Identity
from modgate.protocol.request import parse_proxy_path
from modgate.server.auth import messages
from modgate.server.auth.audit import AuditLog
from modgate.server.auth.oidc import OidcVerifier
from modgate.server.auth.ratelimit import FailureLimiter
from modgate.server.auth.resolver import Resolved, Resolver
from modgate.server.auth.tokens import TokenTable
from modgate.server.hotcache import HotEntry
from modgate.server.responses import Reply
from modgate.service.sumdb import SumdbEndpoint, parse_sumdb_path

DECISIONS = (
    "allowed_public",
    "allowed_private",
    "denied",
    "unauthenticated",
    "invalid_credentials",
    "rate_limited",
)
ALLOWED_PUBLIC, ALLOWED_PRIVATE, DENIED, UNAUTHENTICATED, INVALID, RATE_LIMITED = range(6)
FAILURE_REASONS = (
    "malformed",
    "unknown_token",
    "revoked",
    "expired",
    "bad_signature",
    "wrong_audience",
    "wrong_issuer",
    "not_yet_valid",
    "jwks_unavailable",
)
DECISIONS_METRIC = "modgate_auth_decisions_total"
FAILURES_METRIC = "modgate_auth_failures_total"
OPEN_PATHS = frozenset((b"/healthz", b"/readyz", b"/metrics"))
SUMDB = b"/sumdb/"
MAX_VERDICTS = 4096
"""Module verdicts one connection remembers before it starts over."""


@dataclass(frozen=True, slots=True)
class Target:
    module: str | None
    """The module path decided on; None for pages that follow the public rule."""
    subject: str
    """What the audit log and bodies name: module@version, the module, or the path."""
    route: str
    whole_log: bool = False
    """A data tile of modgate's own checksum log: every private module's path is in it."""


def classify(target: bytes, private_logs: frozenset[str]) -> Target | None:
    """What a request-target asks for; None for the open pages."""
    path = target.split(b"?", 1)[0]
    if path in OPEN_PATHS:
        return None
    text = target.decode("latin-1")
    shown = path.decode("latin-1")[:200]
    if path.startswith(SUMDB):
        try:
            request = parse_sumdb_path(text)
        except ModgateError:
            return Target(None, shown, "sumdb")
        if request.endpoint is SumdbEndpoint.LOOKUP and request.mv is not None:
            return Target(request.mv.path, str(request.mv), "sumdb")
        whole = (
            request.endpoint is SumdbEndpoint.TILE
            and request.tile is not None
            and request.tile.l == DATA_LEVEL
            and request.name in private_logs
        )
        return Target(None, shown, "sumdb", whole_log=whole)
    try:
        proxy = parse_proxy_path(text)
    except ModgateError:
        return Target(None, shown, "other")
    return Target(proxy.module, proxy.subject, proxy.endpoint.value)


class AccessGate:
    def __init__(
        self,
        policy: AccessPolicy,
        resolver: Resolver,
        audit: AuditLog,
        limiter: FailureLimiter,
        *,
        contact: str,
        private_logs: frozenset[str] = frozenset(),
    ) -> None:
        self.policy = policy
        self.resolver = resolver
        self.audit = audit
        self.limiter = limiter
        self.contact = contact
        self.private_logs = private_logs
        self.counts = [0] * len(DECISIONS)
        self.failures = dict.fromkeys(FAILURE_REASONS, 0)
        self.generation = 0
        """Bumped by every reload: verdicts cached under an older one are not used."""

    def replace_policy(self, policy: AccessPolicy, contact: str) -> None:
        self.policy = policy
        self.contact = contact
        self.generation += 1

    def replace_credentials(self, tokens: TokenTable | None = None,
                            verifier: OidcVerifier | None = None, *,
                            verifier_changed: bool = False) -> None:  # fmt: skip
        self.resolver.replace(tokens, verifier, verifier_changed=verifier_changed)
        self.generation += 1

    def connection(self, remote: str, tls: bool) -> ConnAccess:
        return ConnAccess(self, remote, tls)

    def register_metrics(self, metrics: Metrics) -> None:
        """Every labelled series at 0, so dashboards and alerts see them from the start."""
        for decision in DECISIONS:
            metrics.inc(DECISIONS_METRIC, (("decision", decision),), by=0)
        for reason in FAILURE_REASONS:
            metrics.inc(FAILURES_METRIC, (("reason", reason),), by=0)

    def flush_metrics(self, metrics: Metrics) -> None:
        for index, n in enumerate(self.counts):
            if n:
                metrics.inc(DECISIONS_METRIC, (("decision", DECISIONS[index]),), by=n)
                self.counts[index] = 0
        for reason, n in self.failures.items():
            if n:
                metrics.inc(FAILURES_METRIC, (("reason", reason),), by=n)
                self.failures[reason] = 0

    def close(self) -> None:
        self.audit.close()


def _who(identity: Identity | None) -> str:
    return "anonymous" if identity is None else str(identity)


class ConnAccess:
    """One connection's view of the gate: its last credentials and module verdicts."""

    __slots__ = (
        "expires",
        "gate",
        "generation",
        "identity",
        "key",
        "remote",
        "tls",
        "verdicts",
        "who",
    )

    def __init__(self, gate: AccessGate, remote: str, tls: bool) -> None:
        self.gate = gate
        self.remote = remote
        self.tls = tls
        self.key: bytes | None = None
        self.generation = -1
        self.expires = -math.inf
        self.identity: Identity | None = None
        self.who = "anonymous"
        self.verdicts: dict[str, tuple[int, str]] = {}

    def seen_as(self, remote: str, tls: bool) -> None:
        """The client of the next requests, as trusted reverse proxies name it.

        Requests on one connection are served one at a time, so the address the
        rate limit and the audit log use, and whether 401 bodies speak of https,
        can follow each request's forwarding headers.
        """
        self.remote = remote
        self.tls = tls

    def fast(self, authz: bytes | None, entry: HotEntry, now: float) -> bool:
        """Whether the hot path may answer ``entry``; False sends the request to ``check``.

        ``now`` is the server's coarse monotonic clock (at most a tick behind).
        """
        gate = self.gate
        if authz != self.key or self.generation != gate.generation or now >= self.expires:
            return False
        found = self.verdicts.get(entry.module)
        if found is None:
            return False
        verdict, rule = found
        if verdict == ALLOWED_PUBLIC:
            gate.counts[ALLOWED_PUBLIC] += 1
            return True
        if verdict == ALLOWED_PRIVATE:
            gate.counts[ALLOWED_PRIVATE] += 1
            gate.audit.add((self.who, entry.subject, "allow", rule, 200, entry.key[0], self.remote))
            return True
        return False

    async def check(self, target: bytes, authz: bytes | None, host: bytes | None) -> Reply | None:
        """None when the request may go on; otherwise the 401/403/429/503 to send."""
        gate = self.gate
        what = classify(target, gate.private_logs)
        if what is None:
            return None
        if authz is not None:
            wait = gate.limiter.blocked(self.remote, time.monotonic())
            if wait:
                gate.counts[RATE_LIMITED] += 1
                self._audit("?", what, "rate_limited", "failed-auth-limit", 429)
                return messages.rate_limited(wait, what.route)
        generation = gate.generation
        resolved = await gate.resolver.resolve(authz)
        if resolved.refused:
            return self._refused(resolved, what, host)
        identity = resolved.identity
        decision = self._decide(identity, what)
        if what.module is not None and generation == gate.generation:
            self._remember(authz, resolved, generation, what.module, decision)
        if decision.allowed:
            if decision.private:
                gate.counts[ALLOWED_PRIVATE] += 1
                self._audit(_who(identity), what, "allow", decision.rule, 200)
            else:
                gate.counts[ALLOWED_PUBLIC] += 1
            return None
        if decision.outcome is Outcome.CHALLENGE:
            gate.counts[UNAUTHENTICATED] += 1
            self._audit("anonymous", what, "challenge", decision.rule, 401)
            return messages.challenge(
                subject=what.subject,
                private=decision.private,
                host=host,
                tls=self.tls,
                contact=gate.contact,
                route=what.route,
            )
        gate.counts[DENIED] += 1
        self._audit(_who(identity), what, "deny", decision.rule, 403)
        module = what.module or what.subject
        pattern = gate.policy.private.first_match(module) if what.module else None
        note = f"private: pattern {pattern}" if pattern else decision.rule
        return messages.forbidden(
            subject=what.subject,
            module=module,
            who=_who(identity),
            pattern_note=note,
            contact=gate.contact,
            route=what.route,
        )

    def _decide(self, identity: Identity | None, what: Target) -> Decision:
        policy = self.gate.policy
        if what.module is not None:
            return policy.decide(identity, what.module)
        if identity is None:
            if policy.anonymous is Anonymous.PUBLIC and not what.whole_log:
                return Decision(Outcome.ALLOW, False, "anonymous-public", "public page")
            return Decision(
                Outcome.CHALLENGE, what.whole_log, "anonymous-none", "credentials needed"
            )
        if what.whole_log and not policy.reads_everything(identity):
            return Decision(
                Outcome.DENY,
                True,
                "whole-log",
                "the log's data tiles hold every private module path; only "
                "identities that read every private module may read them",
            )
        return Decision(Outcome.ALLOW, False, "public", "public page")

    def _refused(self, resolved: Resolved, what: Target, host: bytes | None) -> Reply:
        gate = self.gate
        if resolved.reason in gate.failures:
            gate.failures[resolved.reason] += 1
        if resolved.server_fault:
            self._audit("?", what, "invalid", resolved.reason, 503)
            return messages.unavailable(resolved.problem, what.route)
        gate.limiter.failed(self.remote, time.monotonic())
        gate.counts[INVALID] += 1
        self._audit("?", what, "invalid", resolved.reason, 401)
        return messages.refused(
            subject=what.subject,
            problem=resolved.problem,
            host=host,
            tls=self.tls,
            contact=gate.contact,
            route=what.route,
        )

    def _remember(
        self,
        authz: bytes | None,
        resolved: Resolved,
        generation: int,
        module: str,
        decision: Decision,
    ) -> None:
        if authz != self.key or generation != self.generation:
            self.key = authz
            self.generation = generation
            self.identity = resolved.identity
            self.who = _who(resolved.identity)
            self.verdicts = {}
        self.expires = resolved.expires
        if len(self.verdicts) >= MAX_VERDICTS:
            self.verdicts = {}
        if decision.allowed:
            verdict = ALLOWED_PRIVATE if decision.private else ALLOWED_PUBLIC
        else:
            verdict = DENIED
        self.verdicts[module] = (verdict, decision.rule)

    def _audit(self, who: str, what: Target, decision: str, rule: str, status: int) -> None:
        self.gate.audit.add((who, what.subject, decision, rule, status, what.route, self.remote))
