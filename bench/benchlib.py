"""What the benchmarks share: ports, starting and stopping nginx and modgate, CPU time.

Every server runs on 127.0.0.1; nginx always gets its own prefix and a generated
configuration, never the system one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
READY_TIMEOUT = 15.0
NGINX = "/usr/sbin/nginx"
WRK = "wrk"

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_timeout 65;
    {tuning}
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ application/json info; text/plain mod; application/zip zip; }}
    default_type text/plain;
    server {{
        listen {host}:{port}{listen};
        {server}
        root {root};
        location / {{ }}
    }}
}}
"""
"""nginx serving ``root`` with 1 worker, sendfile on, keep-alive and no access log."""


def require(*tools: str) -> None:
    """Exit with what to install when a tool the benchmark runs is missing."""
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed; install wrk and nginx-light (apt-get install)")


def nginx_workdir(prefix: str) -> Path:
    """A fresh temp folder that nginx's worker, which may run unprivileged, can read."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    work.chmod(0o755)
    return work


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode} before it was ready")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not listen on {HOST}:{port} within {READY_TIMEOUT} s")


def launch_nginx(
    prefix: Path, root: Path, tuning: str = "", listen: str = "", server: str = ""
) -> tuple[subprocess.Popen[bytes], int]:
    """nginx on ``root`` with NGINX_CONF in its own ``prefix``, on a free port.

    ``tuning`` adds directives to the http block, ``listen`` parameters to the
    listen directive (`` ssl``) and ``server`` directives to the server block.
    """
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    text = NGINX_CONF.format(
        prefix=prefix, host=HOST, port=port, root=root, tuning=tuning, listen=listen, server=server
    )
    conf.write_text(text)
    proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf)])
    wait_ready(port, proc, "nginx")
    return proc, port


def launch_modgate(
    args: list[str],
    sink: IO[bytes],
    env: dict[str, str] | None = None,
    what: str = "modgate",
    cpus: set[int] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """``modgate serve --listen 127.0.0.1:0 args...``, once it listens.

    Its port is read from the ``listening`` log record; the rest of its stderr
    is copied to ``sink`` for the server's life so the pipe never fills.
    """
    cmd = [sys.executable, "-m", "modgate", "serve", "--listen", f"{HOST}:0", *args]
    if cpus is not None:  # taskset execs the server: the pid stays the server's
        cmd = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    port = None
    said: list[str] = []
    while port is None:
        line = proc.stderr.readline()
        if not line:
            code = proc.wait()
            sys.exit(f"{what} exited before listening (exit code {code}):\n" + "".join(said))
        try:
            record = json.loads(line)
        except ValueError:
            said.append(line.decode(errors="replace"))
            continue
        if record.get("event") == "listening":
            port = int(record["url"].rsplit(":", 1)[1])
    threading.Thread(target=shutil.copyfileobj, args=(proc.stderr, sink), daemon=True).start()
    wait_ready(port, proc, what)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children that are alive (nginx's worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total
