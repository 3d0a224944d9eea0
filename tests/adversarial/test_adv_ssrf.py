"""Direct mode cannot be used to reach the internal network (server-side request forgery).

A module path is a host name chosen by the client. Hosts that are IP
literals (in any spelling) or localhost are refused before anything is
asked for, with a body that says the host is not allowed and nothing about
what answers there; the operator's ``--direct-allow-hosts`` lifts the
refusal. Every modgate here sends what it would fetch to a recording proxy,
so a request that left would be seen; names that resolve to internal
addresses are covered by ``test_adv_ssrf_netns.py`` and the unit tests of
the host guard.

Bounds: two modgate processes per test, under 60 requests, loopback only.
"""

from __future__ import annotations

import pytest

from adversarial.conftest import RecordingListener
from helpers.servers import ModgateFactory, metric_total, run_modgate

HOSTILE_HOSTS = [
    "127.0.0.1",
    "127.1",
    "0x7f.1",
    "2130706433",
    "017700000001",
    "169.254.169.254",
    "10.0.0.1",
    "192.168.1.1",
    "100.100.100.200",
    "0.0.0.0",
    "localhost",
    "localhost.localdomain",
    "metadata.localhost",
]
ENDPOINTS = [
    "/@v/list",
    "/@latest",
    "/@v/v1.0.0.info",
    "/@v/v1.0.0.mod",
    "/@v/v1.0.0.zip",
    "/@v/main.info",
]
LEAKS = ("refused", "TLS", "SSL", "certificate", "timed out", "Connect", "status", "resolve")


def test_internal_hosts_are_refused_before_anything_is_asked(
    modgate: ModgateFactory, recording_listener: RecordingListener
) -> None:
    server = modgate("--upstream", "direct", env=recording_listener.proxy_env())
    failures = []
    for host in HOSTILE_HOSTS:
        for endpoint in ENDPOINTS:
            target = f"/{host}/x{endpoint}"
            answer = server.get(target)
            body = answer.body.decode()
            if "." not in host:
                # not even a module path (the go command needs a dot in the first element)
                if answer.status != 400 or "missing dot" not in body:
                    failures.append(f"{target}: {answer}")
            elif answer.status != 404 or f"host {host} is not allowed" not in body:
                failures.append(f"{target}: {answer}")
            failures += [f"{target}: body tells {w!r}: {body}" for w in LEAKS if w in body]
    assert failures == [], "\n".join(failures)
    assert recording_listener.seen() == [], "a refused host was asked for anyway"
    refused = metric_total(server.metrics(), "modgate_direct_hosts_refused_total")
    assert refused >= len([h for h in HOSTILE_HOSTS if "." in h]), f"counted {refused}"
    logged = [line for line in server.stderr_lines if "direct_host_refused" in line]
    dotted = [h for h in HOSTILE_HOSTS if "." in h]
    assert len(logged) >= len(dotted), "refusals are logged for the operator"


def test_private_modules_on_internal_hosts_are_refused_too(
    modgate: ModgateFactory, recording_listener: RecordingListener
) -> None:
    # a public upstream, so --private modules go to direct (which refuses these hosts)
    server = modgate(
        "--upstream",
        "https://proxy.example",
        "--private",
        "10.0.0.1,localhost.localdomain",
        env=recording_listener.proxy_env(),
    )
    for target in ("/10.0.0.1/corp/lib/@v/list", "/localhost.localdomain/corp/@v/v1.0.0.info"):
        answer = server.get(target)
        assert answer.status == 404 and b"is not allowed" in answer.body, f"{target}: {answer}"
    assert recording_listener.seen() == []


@pytest.mark.parametrize("allowed", ["127.0.0.1", "127.*"])
def test_the_operator_can_allow_a_host(
    modgate: ModgateFactory, recording_listener: RecordingListener, allowed: str
) -> None:
    # control: with the host allowed, discovery is attempted (and reaches the proxy)
    server = modgate(
        "--upstream", "direct", "--direct-allow-hosts", allowed,
        env=recording_listener.proxy_env(),
    )  # fmt: skip
    answer = server.get("/127.0.0.1/x/@v/list")
    assert b"is not allowed" not in answer.body, str(answer)
    seen = recording_listener.seen()
    assert any("127.0.0.1:443" in line for line in seen), f"nothing reached the proxy: {seen}"
    refused = server.get("/10.0.0.1/x/@v/list")
    assert b"host 10.0.0.1 is not allowed" in refused.body, str(refused)


def test_bad_allow_patterns_are_refused_at_start() -> None:
    ran = run_modgate("serve", "--direct-allow-hosts", "corp.example.com/x")
    assert ran.returncode == 2 and "host names only" in ran.stderr, ran.stderr
    ran = run_modgate("serve", "--direct-allow-hosts", "https://corp.example.com")
    assert ran.returncode == 2 and "direct-allow-hosts" in ran.stderr, ran.stderr
