"""``modgate admission``: real AdmissionReview documents over HTTPS.

The webhook runs in a thread (``AdmissionServer``) or as the real command,
with a certificate from a test CA; each review is posted the way the API
server posts it, and the answer is checked field by field.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.tlscerts import TestCA, peer_common_name
from modgate.admission.review import Policy, review
from modgate.admission.webhook import AdmissionServer, serve_forever_in_thread
from modgate.doctor.config import DoctorConfig
from modgate.doctor.findings import Severity
from modgate.server.tls import TlsCertificate

DATA = Path(__file__).resolve().parents[1] / "data" / "admission"


def _review_of(name: str, operation: str = "CREATE") -> dict[str, Any]:
    obj = json.loads((DATA / name).read_text())
    kind = obj["kind"]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": kind.lower() + "s"},
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "operation": operation,
            "object": obj,
        },
    }


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[tuple[AdmissionServer, TestCA]]:
    ca = TestCA(tmp_path / "ca")
    pair = ca.issue("admission-one")
    server = AdmissionServer(
        ("127.0.0.1", 0),
        Policy(DoctorConfig(), Severity.ERROR, Severity.WARNING),
        TlsCertificate(pair.cert, pair.key),
    )
    serve_forever_in_thread(server)
    try:
        yield server, ca
    finally:
        server.shutdown()
        server.server_close()


def _post(
    server: AdmissionServer, ca: TestCA, body: bytes, path: str = "/validate"
) -> tuple[int, bytes, str]:
    port = server.server_address[1]
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ca.client_context(), timeout=10)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert conn.sock is not None
        name = peer_common_name(conn.sock)
        return response.status, response.read(), name
    finally:
        conn.close()


def _answer(server: AdmissionServer, ca: TestCA, document: dict[str, Any]) -> dict[str, Any]:
    status, body, _ = _post(server, ca, json.dumps(document).encode())
    assert status == 200, f"status {status}: {body!r}"
    answer = json.loads(body)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == document["request"]["uid"], "uid not echoed"
    return dict(answer["response"])


def test_a_pod_with_sound_go_settings_is_allowed_without_warnings(webhook):
    server, ca = webhook
    response = _answer(server, ca, _review_of("pod-allowed.json"))
    assert response["allowed"] is True
    assert "warnings" not in response, response.get("warnings")


def test_a_warning_rule_warns_but_allows(webhook):
    server, ca = webhook
    response = _answer(server, ca, _review_of("pod-warned.json"))
    assert response["allowed"] is True
    warnings = response.get("warnings", [])
    assert any(w.startswith("GM010:") for w in warnings), warnings
    assert all(len(w) <= 256 for w in warnings), warnings


def test_an_error_rule_denies_with_rule_id_line_and_fix(webhook):
    server, ca = webhook
    response = _answer(server, ca, _review_of("pod-denied.json"))
    assert response["allowed"] is False
    status = response["status"]
    assert status["code"] == 403
    message = status["message"]
    assert message.startswith("modgate admission denied Pod ci/build-broken:"), message
    assert "GM001 (line " in message, message
    assert "fix: drop -insecure" in message, message


def test_a_workload_template_is_checked_like_a_pod(webhook):
    server, ca = webhook
    response = _answer(server, ca, _review_of("deployment-denied.json"))
    assert response["allowed"] is False, response
    assert "Deployment ci/builder" in response["status"]["message"]
    assert "GM001" in response["status"]["message"]


def test_delete_is_always_allowed(webhook):
    server, ca = webhook
    response = _answer(server, ca, _review_of("pod-denied.json", operation="DELETE"))
    assert response == {"uid": response["uid"], "allowed": True}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "bad AdmissionReview"),
        (b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "v1"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request.uid"),
    ],
)
def test_a_malformed_review_gets_400_saying_what_is_wrong(webhook, body, expected):
    server, ca = webhook
    status, answer, _ = _post(server, ca, body)
    assert status == 400, answer
    assert expected in answer.decode(), answer


def test_only_validate_answers_reviews(webhook):
    server, ca = webhook
    status, answer, _ = _post(server, ca, b"{}", path="/mutate")
    assert status == 404, answer


def test_rule_configuration_applies_severity_and_disable():
    denied_doc = _review_of("pod-warned.json")
    strict = DoctorConfig(severity={"GM010": Severity.ERROR})
    loose = DoctorConfig(disable=frozenset({"GM010", "GM014"}))
    assert review(denied_doc, Policy(strict))["response"]["allowed"] is False
    relaxed = review(denied_doc, Policy(loose))["response"]
    assert relaxed["allowed"] is True
    assert not any(w.startswith("GM010") for w in relaxed.get("warnings", [])), relaxed


def test_the_command_serves_https_and_reloads_its_certificate_on_sighup(tmp_path: Path):
    ca = TestCA(tmp_path / "ca")
    first = ca.issue("admission-first")
    second = ca.issue("admission-second")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(first.cert.read_bytes())
    key.touch(mode=0o600)
    key.write_bytes(first.key.read_bytes())
    port_probe = AdmissionServer(("127.0.0.1", 0), Policy(DoctorConfig()), None)
    port = port_probe.server_address[1]
    port_probe.server_close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modgate", "admission", "--listen", f"127.0.0.1:{port}",
         "--tls-cert", str(cert), "--tls-key", str(key)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        class _Bound:
            server_address = ("127.0.0.1", port)

        def ask() -> tuple[dict[str, Any], str]:
            status, body, name = _post(
                _Bound,  # type: ignore[arg-type]
                ca,
                json.dumps(_review_of("pod-denied.json")).encode(),
            )
            assert status == 200, body
            return json.loads(body)["response"], name

        deadline = time.monotonic() + 20
        while True:
            try:
                response, name = ask()
                break
            except OSError:
                assert proc.poll() is None, "modgate admission exited at start"
                assert time.monotonic() < deadline, "modgate admission did not start"
                time.sleep(0.1)
        assert response["allowed"] is False
        assert name == "admission-first"
        cert.write_bytes(second.cert.read_bytes())
        key.write_bytes(second.key.read_bytes())
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while ask()[1] != "admission-second":
            assert time.monotonic() < deadline, "the new certificate was not served after SIGHUP"
            time.sleep(0.1)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
