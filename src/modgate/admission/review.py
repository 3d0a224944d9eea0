"""An ``admission.k8s.io/v1`` AdmissionReview in, a verdict out.

The object under review is written as one YAML manifest into an empty
temporary folder and scanned by doctor exactly as ``modgate doctor`` would
scan it in a repository, so every manifest rule, the rule configuration and
``modgate-ignore`` comments apply the same way. Findings at or above the
deny threshold deny the request (the message lists each rule ID, line and
fix); findings below it but at least ``warning`` come back as admission
warnings, which kubectl prints and the API server records.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modgate.doctor.config import DoctorConfig
from modgate.doctor.findings import Finding, Severity
from modgate.doctor.scan import scan

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
MAX_MESSAGE = 4000
"""The API server shows the denial message to the user; keep it readable."""
WARNING_MAX = 256
"""The API server may truncate a warning longer than this."""
FORBIDDEN = 403


class ReviewError(ValueError):
    """The request body is not an AdmissionReview this webhook understands."""


@dataclass(frozen=True, slots=True)
class Policy:
    """What to deny and what to warn about."""

    config: DoctorConfig
    deny_at: Severity = Severity.ERROR
    warn_at: Severity = Severity.WARNING


def findings_for(obj: Mapping[str, Any], config: DoctorConfig) -> list[Finding]:
    """Doctor's findings for one Kubernetes object."""
    kind = str(obj.get("kind") or "object").lower()
    text = yaml.safe_dump(dict(obj), sort_keys=False, default_flow_style=False)
    with tempfile.TemporaryDirectory(prefix="modgate-admission-") as tmp:
        path = Path(tmp) / f"{kind}.yaml"
        path.write_text(text, encoding="utf-8")
        return scan(path, config).findings


def review(body: Any, policy: Policy) -> dict[str, Any]:
    """The AdmissionReview response for a request body (already parsed JSON)."""
    request = _request(body)
    uid = request["uid"]
    obj = request.get("object")
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if isinstance(obj, Mapping) and request.get("operation", "CREATE") != "DELETE":
        found = findings_for(obj, policy.config)
        denied = [f for f in found if f.severity >= policy.deny_at]
        warned = [f for f in found if policy.warn_at <= f.severity < policy.deny_at]
        if denied:
            response["allowed"] = False
            response["status"] = {
                "code": FORBIDDEN,
                "reason": "Forbidden",
                "message": denial_message(_name(request, obj), denied),
            }
        if warned:
            response["warnings"] = [_warning(f) for f in warned]
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def denial_message(name: str, findings: list[Finding]) -> str:
    lines = [f"modgate admission denied {name}: Go settings that break or weaken builds:"]
    for f in findings:
        line = f"{f.rule} (line {f.line}) {f.message}"
        if f.fix:
            line += f"; fix: {f.fix}"
        lines.append(line)
    lines.append("Explain: modgate doctor <manifest>; silence one: # modgate-ignore GMxxx")
    message = "\n".join(lines)
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def _warning(f: Finding) -> str:
    text = f"{f.rule}: {f.message}"
    return text if len(text) <= WARNING_MAX else text[: WARNING_MAX - 3] + "..."


def _name(request: Mapping[str, Any], obj: Mapping[str, Any]) -> str:
    kind = str(obj.get("kind") or request.get("kind", {}).get("kind") or "object")
    found = obj.get("metadata")
    meta: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    name = meta.get("name") or meta.get("generateName") or request.get("name") or "(unnamed)"
    namespace = request.get("namespace") or meta.get("namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _request(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ReviewError("the body is not a JSON object")
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        raise ReviewError(
            f"expected apiVersion {API_VERSION} kind {KIND}, got "
            f"{body.get('apiVersion')!r} {body.get('kind')!r}; "
            "set admissionReviewVersions: [v1] in the webhook configuration"
        )
    request = body.get("request")
    if not isinstance(request, Mapping) or not isinstance(request.get("uid"), str):
        raise ReviewError("the AdmissionReview has no request.uid")
    return request
