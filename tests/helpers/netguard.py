"""A guard that makes the test process unable to reach anything but loopback.

Installed for the whole session by ``tests/conftest.py``. A connection to a
non-loopback address, or a name lookup of anything but ``localhost``, raises
:class:`BlockedNetworkError` (not an ``OSError``, so no client code mistakes
it for an ordinary connection failure) and is recorded, so the test fails
even if some code swallowed the exception. Unix sockets are allowed.
Child processes are not covered: they only ever get loopback URLs.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

_ALLOWED_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_GUARDED_FAMILIES = (socket.AF_INET, socket.AF_INET6)


class BlockedNetworkError(RuntimeError):
    """The tests tried to reach a host other than 127.0.0.0/8 or ::1."""


def is_loopback(host: object) -> bool:
    """True for loopback IP literals (127.0.0.0/8, ::1, mapped forms) and ``localhost``."""
    if not isinstance(host, str):
        return False
    if host.lower() in _ALLOWED_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class NetworkGuard:
    """Patches ``socket`` so that only loopback can be reached; ``attempts`` records the rest."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._saved: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        if self._saved:
            return
        guard = self
        original_connect = socket.socket.connect
        original_connect_ex = socket.socket.connect_ex
        original_create = socket.create_connection
        original_getaddrinfo = socket.getaddrinfo

        def connect(sock: socket.socket, address: Any) -> None:
            guard.check_socket(sock, address)
            return original_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check_socket(sock, address)
            return original_connect_ex(sock, address)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            guard.check_host(address[0], f"create_connection({address!r})")
            return original_create(address, *args, **kwargs)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in (None, "", b"") and not _is_numeric(host):
                guard.check_host(host, f"getaddrinfo({host!r})")
            return original_getaddrinfo(host, *args, **kwargs)

        self._patch(socket.socket, "connect", connect)
        self._patch(socket.socket, "connect_ex", connect_ex)
        self._patch(socket, "create_connection", create_connection)
        self._patch(socket, "getaddrinfo", getaddrinfo)

    def uninstall(self) -> None:
        while self._saved:
            owner, name, value = self._saved.pop()
            setattr(owner, name, value)

    def check_socket(self, sock: socket.socket, address: Any) -> None:
        if sock.family not in _GUARDED_FAMILIES:
            return
        host = address[0] if isinstance(address, tuple) else address
        self.check_host(host, f"connect({address!r})")

    def check_host(self, host: object, what: str) -> None:
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        if is_loopback(host):
            return
        message = (
            f"network access outside loopback is blocked in the tests: {what}; "
            "tests must only talk to servers they start on 127.0.0.1"
        )
        self.attempts.append(message)
        raise BlockedNetworkError(message)

    def _patch(self, owner: Any, name: str, value: Callable[..., Any]) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)


def _is_numeric(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
