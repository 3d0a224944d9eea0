"""A real Redis Sentinel on loopback, watching a :class:`RedisServer`, for the tests.

Debian's ``redis-server`` binary runs as a sentinel with ``--sentinel`` and a
configuration file it may rewrite (it records what it learns there). The
sentinel watches the master under the service name ``SERVICE`` with a quorum
of one, so a single sentinel can fail the master over to a replica.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.sentinel import Sentinel

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
        proc = self.proc

        def reports_master() -> bool:
            if proc.poll() is not None:
                log = (workdir / "sentinel.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"the sentinel exited with {proc.returncode}: {log}")
            return self.master_port() == master.port

        self.wait_for("the sentinel reports the master", reports_master, START_TIMEOUT)

    def _ask(self, *command: str) -> object:
        client = redis.Redis(LOOPBACK, self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return client.execute_command(*command)
        except (redis.RedisError, OSError):
            return None
        finally:
            client.close()

    def master_port(self) -> int | None:
        """The master's port as a redis-py client finds it now (None when it finds none).

        redis-py also checks the master's state flags, which settle a moment
        after the address changes: until then its clients find no master.
        """
        sentinel = Sentinel([(LOOPBACK, self.port)], socket_timeout=0.5)
        try:
            return int(sentinel.discover_master(SERVICE)[1])
        except (redis.RedisError, OSError):
            return None
        finally:
            for client in sentinel.sentinels:
                client.close()

    def wait_for(self, what: str, done: Callable[[], bool], timeout: float) -> float:
        """Seconds until ``done()`` held; fails the test naming ``what`` after ``timeout``."""
        started = time.monotonic()
        while not done():
            if time.monotonic() - started > timeout:
                pytest.fail(f"{what}: not within {timeout} s")
            time.sleep(0.05)
        return time.monotonic() - started

    def replicas(self) -> int:
        """How many replicas of the master the sentinel knows."""
        reply = self._ask("SENTINEL", "replicas", SERVICE)
        return len(reply) if isinstance(reply, list) else 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
