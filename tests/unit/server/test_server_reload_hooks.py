"""Reload hooks: SIGHUP and SIGUSR1 run the hooks registered for them in every serving process."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from modgate.server.reload import ReloadHook, run_hooks

SIGNAL_TIMEOUT = 10.0


def test_hooks_run_for_their_signal_only_and_a_refusal_stops_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    def refuse() -> None:
        ran.append("refuse")
        raise ValueError("tokens file 'x' line 3: not a token record")

    hooks = [
        ReloadHook("first", lambda: ran.append("first")),
        ReloadHook("refusing", refuse),
        ReloadHook("audit log", lambda: ran.append("audit"), signal.SIGUSR1),
        ReloadHook("last", lambda: ran.append("last")),
    ]
    with caplog.at_level(logging.INFO, logger="modgate.server"):
        assert run_hooks(hooks) == 1
    assert ran == ["first", "refuse", "last"]
    refused = [r for r in caplog.records if getattr(r, "event", "") == "reload_refused"]
    assert len(refused) == 1, caplog.text
    assert "refusing" in refused[0].getMessage() and "line 3" in refused[0].getMessage()
    ran.clear()
    assert run_hooks(hooks, signal.SIGUSR1) == 0
    assert ran == ["audit"]


SERVER_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from server_support import FakeGateway
    from modgate.server.app import run_server
    from modgate.server.reload import ReloadHook

    marks = Path(sys.argv[3])

    def mark(what):
        def hook():
            with marks.open("a") as f:
                f.write(f"{what} {os.getpid()}\\n")
        return hook

    def refuse():
        raise ValueError("refused on purpose")

    hooks = [
        ReloadHook("reloaded", mark("hup")),
        ReloadHook("refusing", refuse),
        ReloadHook("reopened", mark("usr1"), signal.SIGUSR1),
    ]
    run_server(FakeGateway(), host="127.0.0.1", port=0, hot_cache_bytes=1 << 20,
               access_log=None, workers=int(sys.argv[2]),
               on_listening=lambda host, port: print(port, flush=True), reload_hooks=hooks)
    """
)


def marks_of(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(w, int(p)) for w, p in (line.split() for line in path.read_text().splitlines())]


def wait_marks(path: Path, count: int) -> list[tuple[str, int]]:
    deadline = time.monotonic() + SIGNAL_TIMEOUT
    while len(marks_of(path)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return marks_of(path)


@pytest.mark.parametrize("workers", [1, 2])
def test_every_serving_process_runs_the_hooks_of_each_signal(workers: int, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, str(Path(__file__).parent), str(workers), marks],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        time.sleep(0.3)  # every worker is serving
        proc.send_signal(signal.SIGHUP)
        got = wait_marks(marks, workers)
        assert sorted(w for w, _ in got) == ["hup"] * workers, got
        proc.send_signal(signal.SIGUSR1)
        got = wait_marks(marks, 2 * workers)
        assert sorted(w for w, _ in got) == ["hup"] * workers + ["usr1"] * workers, got
        pids = {pid for _, pid in got}
        assert len(pids) == workers, f"hooks ran in {pids}, expected {workers} processes"
        if workers > 1:
            assert proc.pid not in pids, "the master ran hooks itself"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200, "not serving after a refused hook"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=SIGNAL_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0, f"exit status {proc.returncode}"
