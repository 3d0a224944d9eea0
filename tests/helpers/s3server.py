"""A real S3 API on loopback (moto's server mode) and a real Redis server, for the tests.

:class:`S3Server` runs moto's threaded server on 127.0.0.1 and an ephemeral
port; :func:`s3_env` is the standard AWS configuration that points boto3 (in
this process or in a modgate child) at it. :class:`RedisServer` runs Debian's
``redis-server`` on a free loopback port without persistence; it can be
stopped and started again on the same port.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers.staticproxy import LOOPBACK

if TYPE_CHECKING:
    from helpers.servers import ModgateFactory, ModgateHandle

START_TIMEOUT = 15.0


class S3Server:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415  (slow; only S3 tests need it)

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._make = ThreadedMotoServer
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
        self._server.start()
        host, self.port = self._server.get_host_and_port()
        self.url = f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop answering (connections are refused); the objects stay, in this process."""
        self._server.stop()

    def start(self) -> None:
        """Answer again on the same port, with the same objects."""
        self._server = self._make(ip_address=LOOPBACK, port=self.port, verbose=False)
        self._server.start()

    def env(self) -> dict[str, str]:
        return s3_env(self.url)

    def create_bucket(self, name: str) -> None:
        client(self.url).create_bucket(Bucket=name)

    def close(self) -> None:
        self._server.stop()


def s3_store(bucket: str, prefix: str, cache: Path) -> tuple[str, ...]:
    """``modgate serve`` arguments for a store in ``bucket`` under ``prefix``, with the
    local disk cache ``cache`` (each replica needs its own)."""
    return ("--store", f"s3://{bucket}/{prefix}", "--store-cache", str(cache))


def start_replicas(
    modgate: ModgateFactory,
    s3: S3Server,
    bucket: str,
    prefix: str,
    caches: Path,
    count: int,
    *args: str,
) -> list[ModgateHandle]:
    """``count`` modgate processes on one bucket prefix, their caches under ``caches``."""
    return [
        modgate(*s3_store(bucket, prefix, caches / f"c{i}"), *args, env=s3.env())
        for i in range(count)
    ]


def s3_env(url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "modgate-test",
        "AWS_SECRET_ACCESS_KEY": "modgate-test-secret",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def client(url: str) -> object:
    import boto3  # noqa: PLC0415  (slow; only S3 tests need it)

    env = s3_env(url)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``args`` are more redis-server options (``--replicaof HOST PORT`` for a replica)."""

    def __init__(self, workdir: Path, *args: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is not installed: run scripts/bootstrap (Debian redis-server)"
            )
        self.binary = binary
        self.args = args
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        argv = [self.binary, "--bind", LOOPBACK, "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), *self.args]  # fmt: skip
        with (self.workdir / "redis.log").open("ab") as errors:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server exited with {self.proc.returncode}: {err}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"redis-server did not answer PING on port {self.port} in {START_TIMEOUT} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
