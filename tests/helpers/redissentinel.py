"""A real Redis Sentinel on loopback, watching a :class:`RedisServer`, for the tests.

Debian's ``redis-server`` binary runs as a sentinel with ``--sentinel`` and a
configuration file it may rewrite (it records what it learns there). The
sentinel watches the master under the service name ``SERVICE`` with a quorum
of one, so a single sentinel can fail the master over to a replica.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers.s3server import START_TIMEOUT, RedisServer, free_port
from helpers.staticproxy import LOOPBACK

SERVICE = "modgate"
DOWN_AFTER_MS = 1000


class RedisSentinel:
    def __init__(self, workdir: Path, master: RedisServer) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis+sentinel://{LOOPBACK}:{self.port}/{SERVICE}"
        conf = workdir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind {LOOPBACK}\ndir {workdir}\n"
            f"sentinel monitor {SERVICE} {LOOPBACK} {master.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        with (workdir / "sentinel.log").open("ab") as errors:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [master.binary, str(conf), "--sentinel"],
                stdin=subprocess.DEVNULL,
                stdout=errors,
                stderr=errors,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (workdir / "sentinel.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"the sentinel exited with {self.proc.returncode}: {log}")
            if self.master_port() == master.port:
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"the sentinel on port {self.port} did not report the master in time")

    def master_port(self) -> int | None:
        """The master's port as the sentinel reports it now (None when it does not answer)."""
        request = f"SENTINEL get-master-addr-by-name {SERVICE}\r\n".encode()
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                sock.sendall(request)
                reply = sock.recv(256).split(b"\r\n")
        except OSError:
            return None
        # *2 / $9 / 127.0.0.1 / $5 / PORT
        return int(reply[4]) if len(reply) > 4 and reply[0] == b"*2" else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
