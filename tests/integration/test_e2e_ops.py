"""Operations: health and metrics endpoints, graceful shutdown, and loud bad configuration."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers.modules import SampleProject
from helpers.servers import ModgateFactory, StaticProxyFactory, metric_values, run_modgate
from helpers.staticproxy import LOOPBACK

CONFIG_TIMEOUT = 30.0


def test_health_metrics_and_sigterm(
    sample: SampleProject, static_proxy: StaticProxyFactory, modgate: ModgateFactory
) -> None:
    upstream = static_proxy(sample.proxy_root)
    server = modgate("--upstream", upstream.url)

    for path in ("/healthz", "/readyz"):
        answer = server.get(path)
        assert answer.status == 200, f"GET {path}: {answer}"
    target = sample.version("example.com/liba", "v1.0.0").url_path("mod")
    fetched = server.get(target)
    assert fetched.status == 200, f"GET {target}: {fetched}"

    page = server.get("/metrics")
    assert page.status == 200, f"GET /metrics: {page}"
    assert page.content_type.startswith("text/plain"), f"/metrics content type: {page}"
    text = page.body.decode()
    assert "# TYPE modgate_requests_total counter" in text, f"/metrics:\n{text}"
    fetches = metric_values(text, "modgate_upstream_fetches_total")
    ours = {labels: value for labels, value in fetches.items() if upstream.url in labels}
    assert ours, f"no modgate_upstream_fetches_total for {upstream.url}: {fetches}"
    assert sum(ours.values()) >= 1, f"upstream fetches: {ours}"

    code = server.stop()
    assert code == 0, f"exit code after SIGTERM: {code}\nstderr:\n{server.stderr_text()}"


def run_failing(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return run_modgate(*args, env=env, timeout=CONFIG_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"modgate {' '.join(args)} kept running; it should refuse the configuration")


BAD_SERVE = {
    "ftp-upstream": (["--upstream", "ftp://x"], {}, "ftp://x"),
    "listen-nonsense": (["--listen", "nonsense"], {}, "nonsense"),
    "ftp-upstream-variable": ([], {"MODGATE_UPSTREAM": "ftp://x"}, "ftp://x"),
    "negative-ttl-word": (["--negative-ttl", "soon"], {}, "soon"),
}


@pytest.mark.parametrize(("args", "env", "echoed"), BAD_SERVE.values(), ids=BAD_SERVE.keys())
def test_bad_serve_configuration(
    args: list[str], env: dict[str, str], echoed: str, tmp_path: Path
) -> None:
    defaults = ["--store", str(tmp_path / "store")]
    if "--listen" not in args:
        defaults += ["--listen", f"{LOOPBACK}:0"]
    if "--upstream" not in args and "MODGATE_UPSTREAM" not in env:
        defaults += ["--upstream", "off"]
    proc = run_failing("serve", *defaults, *args, env=env)
    assert proc.returncode == 2, f"exit code {proc.returncode}, expected 2\nstderr:\n{proc.stderr}"
    assert echoed in proc.stderr, f"stderr does not echo {echoed!r}:\n{proc.stderr}"


def test_import_usage_errors(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    cases = {
        "no source": (["import", "--store", str(tmp_path / "store")], None),
        "missing source": (["import", "--store", str(tmp_path / "store"), str(missing)], missing),
    }
    wrong = []
    for name, (args, echoed) in cases.items():
        proc = run_failing(*args)
        if proc.returncode != 2:
            wrong.append(f"{name}: exit code {proc.returncode}, expected 2; stderr: {proc.stderr}")
        elif echoed is not None and str(echoed) not in proc.stderr:
            wrong.append(f"{name}: stderr does not name {echoed}: {proc.stderr}")
    assert not wrong, "\n".join(wrong)
