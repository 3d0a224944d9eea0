"""TLS for the server: loading a certificate pair, and swapping it while serving.

The go command sends credentials only over HTTPS, so authentication needs
TLS. ``TlsCertificate`` loads a PEM certificate chain and its private key into
an ``ssl.SSLContext`` (TLS 1.2 or later, ALPN ``http/1.1`` only: the server
speaks HTTP/1.1 and nothing else) and refuses a key file that others may
access, so a key is never served from a world-readable file by mistake.

Group access follows PostgreSQL's rule for its server key: a key owned by
the user modgate runs as must be 0600 or less; a key owned by root may also
be readable (only readable) by its group, 0640 or less. Root-owned and
group-readable is how keys are shared on purpose: Debian's ``ssl-cert``
group, and Kubernetes secret volumes with an ``fsGroup``, whose files the
kubelet makes root-owned and group-readable (0440) whatever ``defaultMode``
says. A group-readable key of any other owner is refused.

Reloading without dropping a connection: every handshake starts with the
same context (``server_context``, which ``modgate.server.tlsaccept`` hands
to ``start_tls``), whose ``sni_callback`` runs for every ClientHello (with
or without a server name) and points the new connection's ``SSLObject`` at
the newest context. ``reload()`` builds a complete new
context first and swaps it in only if that succeeded, so a bad pair on disk
is refused with the old one still in use. Connections already established
keep their session; only new handshakes see the new certificate.
"""

from __future__ import annotations

import datetime
import logging
import os
import ssl
import stat
from pathlib import Path

from cryptography import x509

ALPN_PROTOCOLS = ("http/1.1",)
"""What the server speaks; a client offering only h2 gets no ALPN answer and falls back."""
MIN_VERSION = ssl.TLSVersion.TLSv1_2
TLS_SHUTDOWN_TIMEOUT = 2.0
"""Seconds a closed connection waits for the client's close_notify before it is dropped."""
EXPIRY_WARNING = datetime.timedelta(days=14)
"""A certificate expiring sooner than this is logged as a warning at start and on reload."""

log = logging.getLogger("modgate.server")
KEY_FORBIDDEN_BITS = stat.S_IRWXG | stat.S_IRWXO
"""Permission bits of a key file that let anyone but its owner read (or replace) it."""
ROOT_KEY_FORBIDDEN_BITS = stat.S_IWGRP | stat.S_IXGRP | stat.S_IRWXO
"""The same for a key owned by root: its group may read it (0640), nothing more."""


class TlsError(ValueError):
    """A certificate or key that cannot be used; the message names the file and what to do."""


def check_key_permissions(key: Path) -> None:
    """Raise ``TlsError`` if others, or the group of a key not owned by root, may access ``key``.

    Symlinks are followed: the file they point to is judged.
    """
    try:
        info = key.stat()
    except OSError as exc:
        raise TlsError(f"cannot read TLS key file {str(key)!r}: {exc.strerror}") from exc
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == 0:
        if mode & ROOT_KEY_FORBIDDEN_BITS:
            raise TlsError(
                f"TLS key file {str(key)!r} (owned by root) is accessible by others or "
                f"writable by its group (mode {mode:04o}); run: chmod 600 {key} "
                "(or chmod 640 to let its group read it)"
            )
    elif mode & KEY_FORBIDDEN_BITS:
        raise TlsError(
            f"TLS key file {str(key)!r} is accessible by group or others "
            f"(mode {mode:04o}); run: chmod 600 {key}"
        )


def load_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for the pair; ``TlsError`` says which file is wrong and why."""
    check_key_permissions(key)
    for path, what in ((cert, "certificate"), (key, "key")):
        if not os.access(path, os.R_OK):
            raise TlsError(f"cannot read TLS {what} file {str(path)!r}: permission denied")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSION
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))
    # Tickets would be sealed with a per-context key: a reload would end resumption
    # for every client at once, and a ticket key lives as long as the process.
    context.options |= ssl.OP_NO_TICKET
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise TlsError(f"TLS file {exc.filename!r} does not exist") from exc
    except ssl.SSLError as exc:  # before OSError, its base class
        raise TlsError(
            f"cannot load TLS certificate {str(cert)!r} with key {str(key)!r}: "
            f"{_ssl_reason(exc)}; check that both are PEM files and that the key "
            "belongs to the certificate (the first certificate in the file)"
        ) from exc
    except OSError as exc:
        raise TlsError(
            f"cannot load TLS certificate {str(cert)!r} with key {str(key)!r}: {exc.strerror}"
        ) from exc
    return context


def _ssl_reason(exc: ssl.SSLError) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason).lower().replace("_", " ") if reason else str(exc)


def certificate_not_after(cert: Path) -> datetime.datetime:
    """When the first certificate of the PEM file ``cert`` expires (UTC)."""
    try:
        leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError) as exc:
        raise TlsError(f"cannot read TLS certificate {str(cert)!r}: {exc}") from exc
    return leaf.not_valid_after_utc


class TlsCertificate:
    """The server's certificate pair: the context handshakes start with, and the current one.

    ``server_context`` is what every handshake starts with; it never changes.
    ``reload()`` reads the files again and, if the new pair loads, makes it
    the one every later handshake uses.
    """

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        self.current = load_context(cert, key)
        self.not_after = certificate_not_after(cert)
        """When the certificate in use expires (the expiry metric reads it at each scrape)."""
        self.server_context = self.current
        self.server_context.sni_callback = self._select
        self._warn_if_expiring()

    def reload(self) -> None:
        """Load the pair again; on ``TlsError`` the previous pair stays in use."""
        context = load_context(self.cert, self.key)
        not_after = certificate_not_after(self.cert)
        self.current, self.not_after = context, not_after
        self._warn_if_expiring()

    def _warn_if_expiring(self) -> None:
        left = self.not_after - datetime.datetime.now(datetime.UTC)
        if left < EXPIRY_WARNING:
            expires = self.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
            state = "expired" if left.total_seconds() <= 0 else "expires"
            log.warning(
                "the TLS certificate %s %s %s; clients refuse an expired certificate: "
                "renew it and send SIGHUP",
                self.cert,
                state,
                expires,
                extra={"event": "certificate_expiry", "not_after": expires},
            )

    def _select(self, conn: ssl.SSLObject, _name: str | None, context: ssl.SSLContext) -> None:
        current = self.current
        if context is not current:
            conn.context = current
