"""The GOPROXY request router: from a raw request-target to a validated request.

The go command asks for ``/<escaped module>/@v/list``,
``/<escaped module>/@v/<escaped version>.info|.mod|.zip`` and
``/<escaped module>/@latest``; it percent-encodes ``!`` as ``%21`` and sends
``+`` and ``@`` literally. Parsing is strict and happens before anything
touches the store: the target is percent-decoded exactly once (``+`` stays
``+``), split on its last ``/@v/``, and the module path and version are
unescaped and validated with the go command's own rules.

That validation is also what keeps the store safe. Every accepted module
path is a valid module path: its escaped elements are never empty, ``.`` or
``..``, hold only ``a-z0-9-._~!``, and its first element is a domain name
(so it never starts with ``_`` and cannot collide with modgate's own
``_modgate/`` folder). Every accepted version is a single file name without
``/``, ``\\`` or control characters. So ``root / escaped_path / "@v" /
(escaped_version + ext)`` always stays below ``root``.

Status mapping: malformed requests raise InvalidRequestError (400); a
well-formed request for something that cannot exist (a non-canonical
version's .mod or .zip, a major version that does not fit the path, an
unknown ``@v/`` file) raises NotFoundError (404) so that the go command falls
back to the next proxy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from modgate.protocol import semver
from modgate.protocol.errors import InvalidRequestError, NotFoundError
from modgate.protocol.escape import unescape_path, unescape_version
from modgate.protocol.module import (
    InvalidVersionError,
    ModuleVersion,
    canonical_version,
    check,
    go_quote,
)

MAX_TARGET_LENGTH = 4096
"""Longest request-target accepted, in characters. The server answers a longer one with 414
before parsing it (``ServerSettings.max_target`` defaults to this); a parser caller that
gets one anyway rejects it with 400."""

_VERSIONS_MARK = "/@v/"
_LATEST_SUFFIX = "/@latest"
_LIST_NAME = "list"
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_FIRST_PRINTABLE = 0x21  # raw targets hold visible ASCII only: no space, no controls
_LAST_PRINTABLE = 0x7E
_DEL = 0x7F
_FIRST_NON_CONTROL = 0x20
_USAGE = "expected /<module>/@v/list, /<module>/@v/<version>.info|.mod|.zip or /<module>/@latest"


class Endpoint(enum.Enum):
    LIST = "list"
    INFO = "info"
    MOD = "mod"
    ZIP = "zip"
    LATEST = "latest"


_EXTENSIONS = {".info": Endpoint.INFO, ".mod": Endpoint.MOD, ".zip": Endpoint.ZIP}


@dataclass(frozen=True, slots=True)
class ProxyRequest:
    """One validated GOPROXY request; ``module`` and ``version`` are unescaped."""

    module: str
    endpoint: Endpoint
    version: str | None
    """None for LIST and LATEST; for INFO it may be a query (branch, tag, commit)."""

    @property
    def canonical(self) -> bool:
        """Whether ``version`` is written in canonical form (``v1.2.3``, ``v2.0.0+incompatible``).

        This is about the spelling only; for INFO it does not promise that the
        version fits the module path.
        """
        return self.version is not None and canonical_version(self.version) == self.version

    @property
    def subject(self) -> str:
        """``module@version``, or the module path when there is no version."""
        return self.module if self.version is None else f"{self.module}@{self.version}"

    def module_version(self) -> ModuleVersion:
        if self.version is None:
            raise ValueError(f"{self.endpoint.value} request for {self.module} has no version")
        return ModuleVersion(self.module, self.version)


def _percent_decode(path: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(path):
        c = path[i]
        if c == "%":
            pair = path[i + 1 : i + 3]
            if len(pair) != 2 or not all(h in _HEX_DIGITS for h in pair):
                raise InvalidRequestError(
                    "", f"bad percent-escape at offset {i} of the request path"
                )
            raw.append(int(pair, 16))
            i += 3
            continue
        raw.append(ord(c))
        i += 1
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError("", "request path is not UTF-8 after percent-decoding") from None
    for ch in decoded:
        if ord(ch) < _FIRST_NON_CONTROL or ord(ch) == _DEL:
            raise InvalidRequestError("", "request path holds a control character")
        if ch == "\\":
            raise InvalidRequestError("", "request path holds a backslash")
    return decoded


def _check_raw(target: str) -> None:
    if len(target) > MAX_TARGET_LENGTH:
        raise InvalidRequestError(
            "", f"request path too long ({len(target)} > {MAX_TARGET_LENGTH} characters)"
        )
    if not target.startswith("/"):
        raise InvalidRequestError("", f"request path must start with '/'; {_USAGE}")
    if "?" in target:
        raise InvalidRequestError("", "the module proxy protocol takes no query string")
    if "#" in target:
        raise InvalidRequestError("", "request path holds a fragment ('#')")
    for c in target:
        if not _FIRST_PRINTABLE <= ord(c) <= _LAST_PRINTABLE:
            raise InvalidRequestError(
                "", "request path holds a character that must be percent-encoded"
            )
        if c == "\\":
            raise InvalidRequestError("", "request path holds a backslash")


def _version(module: str, escaped: str) -> str:
    try:
        version = unescape_version(escaped)
    except InvalidVersionError as err:
        raise err.with_path(module) from None
    if version.startswith("@"):
        # no version, tag, branch or commit starts with '@' (git's @{...} are reflog syntax)
        raise InvalidVersionError(version, "a version or query cannot start with '@'", path=module)
    return version


def _check_downloadable(module: str, version: str) -> None:
    """A .mod or .zip needs a canonical version that fits the module path."""
    subject = f"{module}@{version}"
    if not semver.is_valid(version):
        raise InvalidVersionError(
            version,
            "not a semantic version; .mod and .zip need a canonical version "
            "(resolve branches, tags and commits with .info first)",
            path=module,
        )
    cv = canonical_version(version)
    if cv != version:
        raise NotFoundError(
            subject,
            f"{go_quote(version)} is not a canonical version; .mod and .zip are served "
            f"for canonical versions only (ask for {cv}, or resolve the query with .info)",
        )
    try:
        check(module, version)
    except InvalidVersionError as err:
        raise NotFoundError(subject, err.reason) from None


def parse_proxy_path(target: str) -> ProxyRequest:
    """Validate a raw request-target such as ``/github.com/%21azure/x/@v/v1.0.0.info``.

    Raises InvalidRequestError (400) or NotFoundError (404) as described in
    the module docstring; errors name the module (and version) when known.
    """
    _check_raw(target)
    path = _percent_decode(target)
    if path.endswith(_LATEST_SUFFIX):
        module = unescape_path(path[1 : -len(_LATEST_SUFFIX)])
        return ProxyRequest(module, Endpoint.LATEST, None)
    mark = path.rfind(_VERSIONS_MARK)
    if mark < 0:
        raise InvalidRequestError("", f"not a module proxy path; {_USAGE}")
    module = unescape_path(path[1:mark])
    name = path[mark + len(_VERSIONS_MARK) :]
    if name == _LIST_NAME:
        return ProxyRequest(module, Endpoint.LIST, None)
    ext = name[name.rfind(".") :] if "." in name else ""
    endpoint = _EXTENSIONS.get(ext)
    if endpoint is None:
        if "/" in name or name == "":
            raise InvalidRequestError(module, f"malformed @v/ file name; {_USAGE}")
        _version(module, name)  # a malformed name is a 400, a well-formed unknown one a 404
        raise NotFoundError(module, f"no such file @v/{name}; {_USAGE}")
    version = _version(module, name[: -len(ext)])
    if endpoint is not Endpoint.INFO:
        _check_downloadable(module, version)
    return ProxyRequest(module, endpoint, version)
