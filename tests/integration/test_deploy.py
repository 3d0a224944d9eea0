"""The deployment files are tested like code.

- ``Dockerfile``: hadolint and modgate's own doctor find nothing, and the
  image's entrypoint command line (ENTRYPOINT + CMD with the image's ENV)
  starts a server outside a container whose HEALTHCHECK command passes.
- ``deploy/kubernetes``: every overlay and the admission webhook render with
  the real ``kubectl kustomize``, validate against the Kubernetes schemas
  (``kubernetes-validate``), and pass modgate's doctor with no findings; the
  probes, grace period and config agree with what modgate does.
No docker daemon runs here, so the image itself is not built.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from helpers.servers import start_modgate
from helpers.tlscerts import TestCA
from modgate.config import resolve
from modgate.doctor.parsers.dockerparse import key_values, parse_dockerfile
from modgate.server.settings import DEFAULT_SHUTDOWN_GRACE

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
RENDERED = {
    "overlays/single": KUBE / "overlays" / "single",
    "overlays/ha": KUBE / "overlays" / "ha",
    "admission": KUBE / "admission",
}
KUBERNETES_VERSION = "1.32.0"
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
PRE_STOP_MARGIN = 5


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed; run scripts/bootstrap"
    return found


def _doctor(path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "modgate", "doctor", "--format", "json", "--fail-on", "note",
         str(path)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    problems = result.stdout + result.stderr
    assert result.returncode == 0, f"doctor found problems in {path}:\n{problems}"
    return result.stdout


# --------------------------------------------------------------------------- Dockerfile


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run(
        [_tool("hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"
    assert result.stdout.strip() == "", result.stdout


def test_doctor_finds_nothing_in_the_dockerfile():
    assert json.loads(_doctor(ROOT / "Dockerfile")) == []


def _final_stage() -> tuple[dict[str, str], list[str], list[str], list[str]]:
    """ENV, ENTRYPOINT, CMD and HEALTHCHECK CMD of the Dockerfile's last stage."""
    instructions = parse_dockerfile((ROOT / "Dockerfile").read_text()).instructions
    froms = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    env: dict[str, str] = {}
    entrypoint: list[str] = []
    cmd: list[str] = []
    health: list[str] = []
    for ins in instructions[froms[-1] :]:
        if ins.keyword == "ENV":
            for name, value, _ in key_values(ins.rest, env):
                env[name] = value or ""
        elif ins.keyword == "ENTRYPOINT":
            entrypoint = json.loads(ins.rest)
        elif ins.keyword == "CMD":
            cmd = json.loads(ins.rest)
        elif ins.keyword == "HEALTHCHECK":
            health = json.loads(ins.rest.split("CMD", 1)[1])
    return env, entrypoint, cmd, health


def test_the_image_runs_as_non_root_with_store_on_a_volume():
    text = (ROOT / "Dockerfile").read_text()
    env, entrypoint, cmd, health = _final_stage()
    assert "USER 10001:10001" in text
    assert 'VOLUME ["/var/lib/modgate"]' in text
    assert env["MODGATE_STORE"].startswith("/var/lib/modgate/"), env
    assert env["HOME"] == "/var/lib/modgate", "git needs a writable HOME on a read-only root"
    assert entrypoint == ["modgate"] and cmd == ["serve"], (entrypoint, cmd)
    assert health, "no HEALTHCHECK"


def test_the_entrypoint_command_line_serves_and_passes_its_healthcheck(tmp_path: Path):
    env, entrypoint, cmd, health = _final_stage()
    assert entrypoint + cmd == ["modgate", "serve"]
    image_port = env["MODGATE_LISTEN"].rsplit(":", 1)[1]
    # The image's environment, with its paths moved under tmp_path and a free port.
    environ = dict(env)
    environ.pop("PATH")
    environ.update(
        MODGATE_LISTEN="127.0.0.1:0",
        MODGATE_STORE=str(tmp_path / "store"),
        HOME=str(tmp_path),
    )
    handle = start_modgate(tmp_path, env=environ)
    try:
        port = handle.url.rsplit(":", 1)[1].rstrip("/")
        argv = [sys.executable if w == "python" else w for w in health]
        argv = [w.replace(f":{image_port}/", f":{port}/") for w in argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, f"HEALTHCHECK {argv} failed:\n{result.stderr}"
        assert (tmp_path / "store").is_dir()
    finally:
        handle.kill()


# --------------------------------------------------------------------------- Kubernetes


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name, path in RENDERED.items():
        result = subprocess.run(
            [_tool("kubectl"), "kustomize", str(path)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, f"kubectl kustomize {path}:\n{result.stderr}"
        out[name] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return out


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_rendered_manifests_validate_against_the_kubernetes_schemas(rendered, name):
    for doc in rendered[name]:
        where = f"{name}: {doc['kind']} {doc['metadata']['name']}"
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            endpoints = doc["spec"]["endpoints"]
            assert endpoints and all(e.get("port") and e.get("path") for e in endpoints), where
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_doctor_finds_nothing_in_the_rendered_manifests(rendered, name, tmp_path):
    path = tmp_path / f"{name.replace('/', '-')}.yaml"
    path.write_text(yaml.safe_dump_all(rendered[name]))
    assert json.loads(_doctor(path)) == []


def _deployment(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    assert len(found) == 1, f"no single Deployment {name}"
    return found[0]


def test_the_gateway_deployment_matches_what_modgate_does(rendered):
    docs = rendered["overlays/single"]
    pod = _deployment(docs, "modgate")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    needed = pre_stop + DEFAULT_SHUTDOWN_GRACE + PRE_STOP_MARGIN
    assert pod["terminationGracePeriodSeconds"] >= needed, (
        f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} < preStop "
        f"{pre_stop} + shutdown grace {DEFAULT_SHUTDOWN_GRACE} + margin"
    )
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/var/lib/modgate", "/tmp"} <= mounts, mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["store"] == {
        "name": "store",
        "persistentVolumeClaim": {"claimName": "modgate-store"},
    }, volumes["store"]
    kinds = {d["kind"] for d in docs}
    assert {"Service", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"} <= kinds, kinds


def test_the_ha_overlay_runs_three_replicas_on_the_bucket_with_redis(rendered):
    docs = rendered["overlays/ha"]
    deployment = _deployment(docs, "modgate")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 1
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["store"], "the store is the bucket; the pod keeps a cache"
    redis = _deployment(docs, "modgate-redis")
    assert redis["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    policy = next(
        d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "modgate"
    )
    assert any(
        rule.get("ports", [{}])[0].get("port") == 6379 for rule in policy["spec"]["egress"]
    ), "modgate's pods cannot reach Redis"


@pytest.mark.parametrize("overlay", ["overlays/single", "overlays/ha"])
def test_the_configmap_is_a_config_modgate_accepts(rendered, overlay: str, tmp_path: Path):
    (config_map,) = [d for d in rendered[overlay] if d["kind"] == "ConfigMap"]
    text = config_map["data"]["modgate.toml"]
    ca = TestCA(tmp_path / "ca")
    pair = ca.issue("modgate")
    text = text.replace("/etc/modgate/tls/tls.crt", str(pair.cert))
    text = text.replace("/etc/modgate/tls/tls.key", str(pair.key))
    text = text.replace("/var/lib/modgate", str(tmp_path / "var"))
    tokens = tmp_path / "tokens"
    made = subprocess.run(
        [sys.executable, "-m", "modgate", "token", "create", "--tokens", str(tokens),
         "--name", "ci"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    text = text.replace("/etc/modgate/auth/tokens", str(tokens))
    path = tmp_path / "modgate.toml"
    path.write_text(text)
    settings = resolve({}, {}, path)
    assert (settings.host, settings.port) == ("0.0.0.0", 8443)
    if overlay == "overlays/ha":
        assert settings.store_url == "s3://modgate-store"
        assert settings.redis.startswith("redis://modgate-redis:")
        assert settings.store == tmp_path / "var" / "cache"
    else:
        assert settings.store == tmp_path / "var" / "store"
    assert settings.tls_cert == pair.cert and settings.tls_key == pair.key
    assert settings.auth is not None, "the base turns authentication on"


# --------------------------------------------------------------------------- systemd


SYSTEMD = ROOT / "deploy" / "systemd"


def _unit() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (SYSTEMD / "modgate.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, value)
    return values


def test_systemd_unit_verifies(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine (the unit is checked where it is)")
    modgate_bin = Path(sys.executable).parent / "modgate"
    unit = tmp_path / "modgate.service"
    unit.write_text(
        (SYSTEMD / "modgate.service")
        .read_text()
        .replace("/opt/modgate/bin/modgate", str(modgate_bin))
    )
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stdout + result.stderr


def test_systemd_stop_timeout_covers_the_shutdown_grace():
    unit = _unit()
    assert unit["KillMode"] == "mixed", "SIGTERM must reach the main process only"
    assert int(unit["TimeoutStopSec"]) >= DEFAULT_SHUTDOWN_GRACE + PRE_STOP_MARGIN
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert unit["ExecStart"].endswith("modgate serve --config /etc/modgate/modgate.toml")


def test_logrotate_snippet_parses(tmp_path: Path):
    text = (SYSTEMD / "modgate.logrotate").read_text()
    directives = [line.split()[0] for line in text.splitlines() if line.strip() and line[0] == " "]
    assert "copytruncate" not in directives, "modgate reopens its log on SIGUSR1"
    assert "USR1" in text
    snippet = tmp_path / "modgate"
    # The modgate user exists only where the package is installed; root does everywhere.
    snippet.write_text(text.replace("modgate modgate", "root root"))
    result = subprocess.run(
        [_tool("logrotate"), "--debug", "--state", str(tmp_path / "state"), str(snippet)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 0 and not errors, result.stderr
