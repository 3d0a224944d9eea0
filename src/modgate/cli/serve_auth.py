"""``modgate serve``'s authentication: building the access gate, its reload hooks, the warning.

Authentication is on with ``--tokens FILE`` or an ``[auth]`` table in the
``--config`` file. SIGHUP reloads the tokens file and the ``[auth]`` table
(the tokens file is also watched, so ``modgate token revoke`` takes effect
within seconds without a signal). Without authentication, a server that
listens beyond loopback with ``--private`` patterns is open to everyone who
can reach it: modgate says so at start.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
from pathlib import Path

import click

from modgate.config import ConfigError, ServeSettings, resolve
from modgate.server.auth.settings import AuthConfigError, AuthSettings
from modgate.server.auth.setup import Access
from modgate.server.reload import ReloadHook
from modgate.service.gateway import Gateway
from modgate.service.sumdb import SumdbGateway

log = logging.getLogger("modgate.serve")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_open(settings: ServeSettings) -> None:
    """Warn when private modules are served beyond loopback to anyone."""
    if settings.auth is None and settings.private.patterns and not _loopback(settings.host):
        log.warning(
            "private modules (%s) are served to anyone who can reach %s:%d: authentication "
            "is off; turn it on with --tokens FILE or an [auth] section in --config",
            settings.private,
            settings.host,
            settings.port,
            extra={"event": "config_warning", "warning": "private_without_auth"},
        )
    if settings.auth is not None and settings.tls_cert is None:
        log.warning(
            "authentication is on but modgate serves plain HTTP: the go command sends "
            "credentials only over https; use --tls-cert/--tls-key or a TLS proxy in front",
            extra={"event": "config_warning", "warning": "auth_without_tls"},
        )


def build_access(
    settings: ServeSettings,
    gateway: Gateway,
    flags: dict[str, str | None],
    config_file: Path | None,
) -> tuple[Access | None, list[ReloadHook]]:
    """The access gate and its SIGHUP hooks (None and no hooks when auth is off)."""
    auth = settings.auth
    if auth is None:
        return None, []
    private_logs: frozenset[str] = frozenset()
    if isinstance(gateway, SumdbGateway) and gateway.sumdb_service.log is not None:
        private_logs = frozenset((gateway.sumdb_service.log.name,))

    def load() -> AuthSettings:
        try:
            fresh = resolve(flags, os.environ, config_file).auth
        except ConfigError as exc:
            raise AuthConfigError(str(exc)) from None
        if fresh is None:
            raise AuthConfigError("the configuration no longer turns authentication on; restart "
                                  "modgate to turn it off")  # fmt: skip
        return fresh

    try:
        access = Access(auth, settings.private, private_logs=private_logs, load_settings=load)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from None
    access.gate.register_metrics(gateway.metrics)
    log.info(
        "authentication is on",
        extra={
            "event": "auth",
            "tokens": str(auth.tokens) if auth.tokens else "none",
            "issuers": ",".join(i.name for i in auth.issuers),
            "grants": len(auth.grants),
            "anonymous": auth.anonymous.value,
        },
    )
    hooks = [ReloadHook("tokens file", access.reload_tokens)] if auth.tokens else []
    if config_file is not None:
        hooks.append(ReloadHook("auth configuration", access.reload_config))
    if access.gate.audit.path is not None:
        hooks.append(ReloadHook("audit log", access.gate.audit.reopen, signal.SIGUSR1))
    return access, hooks
