"""Run a command in a network namespace of its own: loopback only, so nothing can leave.

``unshare --user --map-root-user --net`` gives the command a private network
stack with just ``lo`` (brought up here with two ioctls, no ``ip`` tool
needed). A DNS query there fails at once and locally (the configured name
server is unreachable), which is how the chaos tests make a resolver fail
without sending a packet anywhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence

_LOOPBACK_UP = """
import fcntl, os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0))[:18])[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP
os.execvp(sys.argv[1], sys.argv[1:])
"""


def available() -> str:
    """ "" when namespaces can be made here, else why not."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if probe.returncode == 0 else f"unshare failed: {probe.stderr.strip()}"


def run_isolated(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``argv`` in a new user and network namespace with loopback up."""
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", "--",
         sys.executable, "-c", _LOOPBACK_UP, *argv],
        env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
