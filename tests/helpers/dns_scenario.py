"""The DNS-failure chaos case, run inside a loopback-only network namespace (:mod:`helpers.netns`).

``python -m helpers.dns_scenario WORKDIR`` (from ``tests/``) builds the
sample modules, serves them from a static upstream on 127.0.0.1, and runs
the go command through modgate twice: with ``--upstream
http://<unresolvable name>|<good upstream>`` (must succeed: ``|`` falls
through on a resolver failure) and with the unresolvable upstream alone
(must fail with one line naming the module and the upstream). It prints one
JSON object with what it saw; the test asserts on it. No HTTP proxy is set,
so modgate itself resolves the name, and the namespace makes that fail locally.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from helpers.goenv import go_env, run_go
from helpers.modules import sample_project
from helpers.servers import start_modgate
from helpers.staticproxy import StaticProxy
from helpers.storecheck import store_problems

UNRESOLVABLE = "upstream.chaos.example"


def main(work: Path) -> dict[str, object]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        os.environ.pop(name, None)
    sample = sample_project(work / "sample")
    good = StaticProxy(sample.proxy_root)
    bad = f"http://{UNRESOLVABLE}:8080"
    result: dict[str, object] = {"bad": bad}
    # modgate_env would send non-loopback traffic to a dead proxy; here nothing can leave
    # anyway, and modgate must do the resolving itself
    no_proxy = {
        name: "" for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")
    }
    try:
        server = start_modgate(
            work / "m1", "--upstream", f"{bad}|{good.url}", "--upstream-retries", "0",
            env=no_proxy,
        )  # fmt: skip
        env = go_env(work / "go1", goproxy=server.url)
        proc = run_go(["mod", "download", *sample.download_args()], work, env, check=False)
        result["fallthrough_exit"] = proc.returncode
        result["fallthrough_stderr"] = proc.stderr
        result["fallthrough_store"] = store_problems(server.store, sample.versions)
        result["dns_errors"] = [
            line for line in server.metrics().splitlines() if 'kind="dns"' in line
        ]
        server.kill()

        server = start_modgate(
            work / "m2", "--upstream", bad, "--upstream-retries", "0", env=no_proxy
        )
        built = sample.version("example.com/liba", "v1.1.0")
        env = go_env(work / "go2", goproxy=server.url)
        proc = run_go(["mod", "download", str(built.mv)], work, env, check=False)
        answer = server.get(built.url_path("mod"))
        result["alone_exit"] = proc.returncode
        result["alone_status"] = answer.status
        result["alone_body"] = answer.body.decode(errors="replace")
        result["module"] = str(built.mv)
        result["alone_store"] = store_problems(server.store, sample.versions)
        server.kill()
    finally:
        good.close()
    return result


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
