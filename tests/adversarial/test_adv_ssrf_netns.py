"""Direct mode against a private network: names and redirects that lead to internal addresses.

``netns_world.py`` runs in a new network and mount namespace that has only
a loopback interface (so nothing can leave the machine), with its own
``/etc/hosts``: a public host at 1.2.3.4 serving go-get pages over HTTPS,
an internal host at 10.20.30.40 and a metadata service at 169.254.169.254,
both recording every connection. modgate must refuse every way of reaching
the internal ones (a name that resolves there, a go-import tag naming
them, a redirect to them) without connecting, say only that the host is
not allowed, and still fetch from the public host; a second modgate with
``--direct-allow-hosts internal.example`` is the control that shows the
recorders would have seen a connection.

Bound: one scenario run of two modgate processes and nine requests, under
90 s; skipped where unprivileged user namespaces are not available.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

WORLD = Path(__file__).with_name("netns_world.py")
SCENARIO_TIMEOUT = 90.0
LEAKS = ("refused", "TLS", "SSL", "certificate", "timed out", "Connect", "302", "10.20.30.40:")


def _namespaces_available() -> str:
    unshare = shutil.which("unshare")
    if unshare is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        [unshare, "--map-root-user", "--net", "--mount", "true"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if probe.returncode != 0:
        return f"unprivileged user namespaces are not available: {probe.stderr.strip()}"
    return ""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    why = _namespaces_available()
    if why:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("netns")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    ran = subprocess.run(
        ["unshare", "--map-root-user", "--net", "--mount", sys.executable, str(WORLD), str(work)],
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT,
        env=env,
        check=False,
    )
    assert ran.returncode == 0, f"the scenario failed: {ran.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(ran.stdout)
    return result


REFUSED = {
    "name resolving to an internal address": "internal.example",
    "name resolving to the metadata address": "metadata.example",
    "go-import naming an internal host": "internal.example",
    "go-import naming the metadata address": "169.254.169.254",
    "redirect to an internal name": "metadata.example",
    "redirect to an internal address": "10.20.30.40",
    "name without an address": "unknown.example",
}


@pytest.mark.parametrize("scenario", sorted(REFUSED))
def test_internal_destinations_are_refused(world: dict[str, Any], scenario: str) -> None:
    answer = world["answers"][scenario]
    body = answer["body"]
    assert answer["status"] == 404, f"{scenario}: {answer}"
    assert f"host {REFUSED[scenario]} is not allowed" in body, f"{scenario}: {body}"
    leaked = [word for word in LEAKS if word in body]
    assert leaked == [], f"{scenario}: the body tells {leaked}: {body}"


def test_nothing_internal_was_ever_connected(world: dict[str, Any]) -> None:
    assert world["internal_connections"] == [], world["internal_connections"]


def test_redirects_are_not_followed_to_internal_hosts(world: dict[str, Any]) -> None:
    asked = world["public_requests"]
    assert "redirect.example/hop?go-get=1" in asked, asked
    assert not any("latest" in r for r in asked), f"a redirect target was asked for: {asked}"


def test_public_hosts_are_still_reached(world: dict[str, Any]) -> None:
    answer = world["answers"]["public repository (control)"]
    assert "public.example/ok.git/info/refs?service=git-upload-pack" in world["public_requests"]
    assert answer["status"] == 404 and "not found" in answer["body"], answer


def test_an_allowed_internal_host_is_reached(world: dict[str, Any]) -> None:
    # the control: the same request with the host allowed does connect
    assert world["control_connections"], "the recorders saw nothing even when allowed"
    assert "is not allowed" not in world["control"]["body"], world["control"]
