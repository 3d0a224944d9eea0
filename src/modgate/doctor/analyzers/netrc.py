"""Proxy credentials that the go command never sends: netrc and GOAUTH against GOPROXY.

The go command attaches stored credentials (``GOAUTH=netrc``, the default, and
``GOAUTH`` commands alike) only to ``https://`` requests, and matches them
against the request URL's ``host:port``: for ``https://proxy.corp:8443`` it
needs ``machine proxy.corp:8443``, and ``machine proxy.corp`` is silently
ignored. Over ``http://`` no ``Authorization`` header is sent at all, so a
proxy that requires authentication answers 401 whatever the netrc says.

doctor collects ``machine`` entries from netrc files in the repository and
from scripts that write one (a text that mentions ``netrc``), and the URLs
of every GOPROXY value it can read, and compares them:

- GM042: ``machine HOST`` without a port, while GOPROXY names
  ``https://HOST:PORT`` with a port that is not 443 and no entry has that port;
- GM043: a ``machine`` entry (or a ``GOAUTH`` setting) for a host that
  GOPROXY reaches over ``http://``.

Hosts or URLs holding an expansion (``$HOST``) are unknown and not compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from modgate.doctor.catalog import (
    GM042_NETRC_MACHINE_WITHOUT_PORT,
    GM043_CREDENTIALS_FOR_HTTP_PROXY,
)
from modgate.doctor.report import Reporter

_MACHINE_RE = re.compile(r"(?<![\w.-])machine\s+([^\s\"'\\;|&)]+)")
_GOPROXY_RE = re.compile(r"GOPROXY[\"']?\s*[:=]\s*(.*)")
_VALUE_LINE_RE = re.compile(r"^\s*value:\s*(.*)")
_ENV_NAME_RE = re.compile(r"name:\s*[\"']?GOPROXY[\"']?\s*$")
_URL_RE = re.compile(r"(https?)://([^\s\"',|/$]+)")
_GOAUTH_RE = re.compile(r"GOAUTH[\"']?\s*[:=]\s*[\"']?([^\s\"']+)")
_DEFAULT_PORTS = {"https": 443, "http": 80}
_NETRC_NAMES = frozenset({".netrc", "netrc", "_netrc"})


@dataclass(frozen=True, slots=True)
class Machine:
    host: str
    port: int | None
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class ProxyURL:
    scheme: str
    host: str
    port: int | None
    file: str
    line: int

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}" + (f":{self.port}" if self.port else "")


def is_netrc_file(name: str) -> bool:
    lower = name.lower()
    return lower in _NETRC_NAMES or lower.endswith(".netrc")


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def machines(file: str, text: str, *, netrc_file: bool) -> list[Machine]:
    """``machine`` entries of a netrc file, or of a script that writes one."""
    if not netrc_file and "netrc" not in text.lower():
        return []
    found = []
    for m in _MACHINE_RE.finditer(text):
        name = m.group(1)
        if "$" in name or "{" in name:
            continue
        host, _, port = name.partition(":")
        if not host or (port and not port.isdigit()):
            continue
        found.append(
            Machine(host.lower(), int(port) if port else None, file, _line(text, m.start()))
        )
    return found


def proxy_urls(file: str, text: str) -> list[ProxyURL]:
    """URLs in GOPROXY values: ``GOPROXY=...``, ``GOPROXY: ...`` and Kubernetes env entries."""
    found = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        values: list[str] = []
        m = _GOPROXY_RE.search(line)
        if m is not None:
            values.append(m.group(1))
        elif _ENV_NAME_RE.search(line) and index + 1 < len(lines):
            nxt = _VALUE_LINE_RE.match(lines[index + 1])
            if nxt is not None:
                values.append(nxt.group(1))
        for value in values:
            for url in _URL_RE.finditer(value):
                parts = urlsplit(f"{url.group(1)}://{url.group(2)}")
                if "@" in url.group(2) or parts.hostname is None:
                    continue  # credentials in the URL are GM006/GM007
                try:
                    port = parts.port
                except ValueError:
                    continue
                found.append(ProxyURL(url.group(1), parts.hostname.lower(), port, file, index + 1))
    return found


def goauth_settings(file: str, text: str) -> list[tuple[str, str, int]]:
    """(value, file, line) of GOAUTH assignments other than ``off``."""
    return [
        (m.group(1), file, _line(text, m.start()))
        for m in _GOAUTH_RE.finditer(text)
        if m.group(1) != "off" and "$" not in m.group(1)
    ]


def check(texts: dict[str, str], netrc_files: set[str], report: Reporter) -> None:
    """Compare every netrc machine and GOAUTH setting with every GOPROXY URL found."""
    entries: list[Machine] = []
    urls: list[ProxyURL] = []
    goauth: list[tuple[str, str, int]] = []
    for file, text in texts.items():
        entries += machines(file, text, netrc_file=file in netrc_files)
        if file not in netrc_files:
            urls += proxy_urls(file, text)
            goauth += goauth_settings(file, text)
    if not urls:
        return
    for url in urls:
        same_host = [e for e in entries if e.host == url.host]
        if url.scheme == "https" and url.port not in (None, _DEFAULT_PORTS["https"]):
            if same_host and not any(e.port == url.port for e in same_host):
                for entry in (e for e in same_host if e.port is None):
                    report.emit(
                        GM042_NETRC_MACHINE_WITHOUT_PORT,
                        entry.file,
                        entry.line,
                        f"netrc 'machine {entry.host}' has no port, but GOPROXY uses "
                        f"{url.origin} ({url.file}:{url.line}): the go command looks for "
                        f"'machine {url.host}:{url.port}', sends no credentials and the "
                        "proxy answers 401/403",
                        fix=f"write 'machine {url.host}:{url.port}' in the netrc file",
                    )
        elif url.scheme == "http":
            for entry in same_host:
                report.emit(
                    GM043_CREDENTIALS_FOR_HTTP_PROXY,
                    entry.file,
                    entry.line,
                    f"netrc credentials for {entry.host} are meant for GOPROXY {url.origin} "
                    f"({url.file}:{url.line}), but the go command sends credentials only over "
                    "https: the request goes out without Authorization",
                    fix=f"serve the proxy over https and use https://{url.host} in GOPROXY",
                )
            for value, file, line in goauth:
                report.emit(
                    GM043_CREDENTIALS_FOR_HTTP_PROXY,
                    file,
                    line,
                    f"GOAUTH={value} provides credentials, but GOPROXY {url.origin} "
                    f"({url.file}:{url.line}) uses http: the go command sends them only over "
                    "https",
                    fix=f"serve the proxy over https and use https://{url.host} in GOPROXY",
                )
