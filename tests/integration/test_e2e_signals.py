"""Signals of ``modgate serve`` with one and two workers.

SIGTERM stops gracefully (workers too, none left behind, the port free);
SIGHUP reloads and never stops anything; SIGUSR1 reopens the access log
file, so logrotate works without copytruncate; no access-log line is lost
on any of them. A master killed outright takes its workers with it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from helpers.servers import ModgateFactory, ModgateHandle, wait_for

SIGNAL_TIMEOUT = 10.0
"""Seconds a process may take to act on a signal (log line, exit)."""
WORKER_COUNTS = [1, 2]


def workers_of(handle: ModgateHandle) -> list[int]:
    """The worker pids of a ``--workers N`` master (none with one process)."""
    pid = handle.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def port_of(handle: ModgateHandle) -> int:
    return int(handle.url.rsplit(":", 1)[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def events(handle: ModgateHandle, name: str) -> list[dict[str, object]]:
    """The JSON log records of ``handle`` whose ``event`` is ``name``."""
    found = []
    for line in list(handle.stderr_lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == name:
            found.append(record)
    return found


def start(modgate: ModgateFactory, workers: int, *args: str) -> tuple[ModgateHandle, list[int]]:
    handle = modgate("--upstream", "off", "--workers", str(workers), *args)
    pids = [handle.proc.pid]
    if workers > 1:
        wait_for(lambda: len(workers_of(handle)) == workers, SIGNAL_TIMEOUT, "the workers")
        pids += workers_of(handle)
    return handle, pids


def get_ok(handle: ModgateHandle, count: int) -> None:
    for i in range(count):
        answer = handle.get("/healthz")
        assert answer.status == 200, f"request {i}: {answer}"


def log_lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("workers", WORKER_COUNTS)
def test_sigterm_stops_every_process_and_frees_the_port(
    workers: int, modgate: ModgateFactory
) -> None:
    handle, pids = start(modgate, workers)
    get_ok(handle, 4)
    port = port_of(handle)
    code = handle.stop()
    assert code == 0, f"exit code after SIGTERM: {code}\nstderr:\n{handle.stderr_text()}"
    left = [pid for pid in pids if alive(pid)]
    assert not left, f"processes still running after the master exited: {left}"
    assert port_is_free(port), f"port {port} still in use after SIGTERM"


@pytest.mark.parametrize("workers", WORKER_COUNTS)
def test_sighup_never_stops_a_process(workers: int, modgate: ModgateFactory) -> None:
    handle, pids = start(modgate, workers)
    for round_ in range(2):
        handle.proc.send_signal(signal.SIGHUP)
        get_ok(handle, 4)
        time.sleep(0.2)  # let every worker act on it
        dead = [pid for pid in pids if not alive(pid)]
        assert not dead, f"SIGHUP {round_ + 1} stopped {dead}\n{handle.stderr_text()}"
    get_ok(handle, 4)
    assert handle.stop() == 0, handle.stderr_text()


@pytest.mark.parametrize("workers", WORKER_COUNTS)
def test_sigusr1_reopens_the_access_log_and_no_line_is_lost(
    workers: int, modgate: ModgateFactory, tmp_path: Path
) -> None:
    access = tmp_path / "access.log"
    rotated = tmp_path / "access.log.1"
    handle, _ = start(modgate, workers, "--access-log", str(access))
    get_ok(handle, 5)
    access.rename(rotated)  # what logrotate does without copytruncate
    get_ok(handle, 3)  # written to the moved file: the workers still hold it
    handle.proc.send_signal(signal.SIGUSR1)
    wait_for(
        lambda: len(events(handle, "reopened")) == workers,
        SIGNAL_TIMEOUT,
        f"{workers} 'reopened' log lines",
    )
    assert access.exists(), "SIGUSR1 did not create the access log again"
    get_ok(handle, 7)
    handle.proc.send_signal(signal.SIGHUP)
    get_ok(handle, 2)
    assert handle.stop() == 0, handle.stderr_text()
    old, new = log_lines(rotated), log_lines(access)
    assert len(old) == 8, f"{len(old)} lines in the rotated file, expected 8"
    assert len(new) == 9, f"{len(new)} lines in the reopened file, expected 9"
    assert all(r["path"] == "/healthz" and r["status"] == 200 for r in old + new)


def test_a_master_killed_outright_takes_its_workers_with_it(modgate: ModgateFactory) -> None:
    handle, pids = start(modgate, 2)
    port = port_of(handle)
    get_ok(handle, 2)
    handle.kill()
    workers = pids[1:]
    wait_for(
        lambda: not any(alive(pid) for pid in workers),
        SIGNAL_TIMEOUT,
        f"workers {workers} to exit after their master was killed",
    )
    wait_for(lambda: port_is_free(port), SIGNAL_TIMEOUT, f"port {port} to be free")


def test_workers_report_each_signal(modgate: ModgateFactory) -> None:
    handle, pids = start(modgate, 2)
    handle.proc.send_signal(signal.SIGTERM)
    handle.proc.wait(timeout=SIGNAL_TIMEOUT)
    handle.stop()
    stopping = {r.get("pid") for r in events(handle, "signal") if r.get("signal") == "SIGTERM"}
    assert stopping == set(pids), f"SIGTERM logged by {stopping}, processes {pids}"


def test_a_worker_that_dies_is_logged_others_keep_serving_and_the_exit_says_so(
    modgate: ModgateFactory,
) -> None:
    handle, pids = start(modgate, 2)
    victim, survivor = pids[1], pids[2]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: bool(events(handle, "worker_exit")), SIGNAL_TIMEOUT, "a worker_exit line")
    (record,) = events(handle, "worker_exit")
    assert record["pid"] == victim and record["status"] == -signal.SIGKILL, record
    assert alive(survivor) and alive(handle.proc.pid), "the master or the other worker stopped"
    get_ok(handle, 4)
    code = handle.stop()
    assert code == 1, f"exit code {code} after a worker failed (a service manager must see it)"
    assert not alive(survivor), "the surviving worker outlived its master"
