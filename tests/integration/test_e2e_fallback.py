"""The upstream chain follows the go command's fall-through rules, as go itself reports them.

After ``,`` only "not found" (404/410) moves on to the next entry; after
``|`` any failure does. A failure that stops the chain reaches the go
command as a 5xx from modgate, never as a 404 that would hide it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.goenv import describe, go_env, json_stream, run_go
from helpers.modules import SampleProject, download_problems
from helpers.servers import ModgateFactory, StaticProxyFactory, dead_port
from helpers.staticproxy import LOOPBACK

pytestmark = pytest.mark.go

TARGET = ("example.com/liba", "v1.0.0")


HUNG_TIMEOUT = ("--upstream-timeout", "1", "--upstream-retries", "0")
"""A hung upstream times out after 1 s, without retries, to keep the test short."""


@dataclass(frozen=True)
class Case:
    chain: str
    """The --upstream value, with {notfound}, {broken}, {dead}, {hung} and {good} placeholders."""
    works: bool
    go_says: str = ""
    """A regular expression go's output must match when the download fails."""
    args: tuple[str, ...] = ()
    """More ``modgate serve`` options."""


CASES = {
    "404-comma-good": Case("{notfound},{good}", works=True),
    "500-comma-good": Case("{broken},{good}", works=False, go_says=r": 50[24] [A-Z][a-z]+"),
    "500-pipe-good": Case("{broken}|{good}", works=True),
    "dead-comma-good": Case("{dead},{good}", works=False, go_says=r": 50[24] [A-Z][a-z]+"),
    "dead-pipe-good": Case("{dead}|{good}", works=True),
    "404-comma-off": Case("{notfound},off", works=False, go_says=r": 404 Not Found"),
    "hung-pipe-good": Case("{hung}|{good}", works=True, args=HUNG_TIMEOUT),
    "hung-comma-good": Case(
        "{hung},{good}", works=False, go_says=r": 50[24] [A-Z][a-z]+", args=HUNG_TIMEOUT
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fallback(
    case: Case,
    tmp_path: Path,
    sample: SampleProject,
    gocache: Path,
    static_proxy: StaticProxyFactory,
    modgate: ModgateFactory,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    notfound = static_proxy(empty)
    notfound.status_all = 404
    broken = static_proxy(empty)
    broken.status_all = 500
    hung = static_proxy(empty)
    hung.hang = True
    good = static_proxy(sample.proxy_root)
    chain = case.chain.format(
        notfound=notfound.url,
        broken=broken.url,
        dead=f"http://{LOOPBACK}:{dead_port()}",
        hung=hung.url,
        good=good.url,
    )
    server = modgate("--upstream", chain, *case.args)
    env = go_env(tmp_path, goproxy=server.url, gocache=gocache)
    target = sample.version(*TARGET)

    proc = run_go(["mod", "download", "-json", str(target.mv)], tmp_path, env, check=False)

    if case.works:
        assert proc.returncode == 0, f"--upstream {chain!r} should work\n{describe(proc)}"
        problems = download_problems(json_stream(proc.stdout), [target], store=server.store)
        assert not problems, f"--upstream {chain!r}:\n" + "\n".join(problems)
        return
    assert proc.returncode != 0, f"--upstream {chain!r} should fail\n{describe(proc)}"
    output = proc.stdout + proc.stderr
    escaped = re.escape(f"{server.url}/example.com/liba/@v/v1.0.0.")
    expected = escaped + r"(info|mod|zip)" + case.go_says
    assert re.search(expected, output), (
        f"--upstream {chain!r}: go's output does not match {expected!r}\n{describe(proc)}"
    )
    asked = [path for path in good.seen() if "liba" in path]
    assert not asked, f"--upstream {chain!r} must stop before the good upstream, yet it got {asked}"
