"""Fuzz targets: bytes in, a parser exercised, only its documented errors allowed.

A target returns normally for any input the parser handles correctly,
accepted or refused; it raises for a bug (an undocumented exception, or a
broken invariant such as ``unescape(escape(x)) != x``).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

from modgate.formats.gomod import GoModError, auto_quote, parse_gomod
from modgate.formats.info import parse_info
from modgate.formats.modzip import check_zip
from modgate.formats.note import NoteError, open_note, parse_verifier, signer_from_seed
from modgate.formats.tile import parse_tile_path
from modgate.formats.tlog import TlogError, parse_record, parse_tree
from modgate.protocol import semver
from modgate.protocol.errors import InvalidModuleError, InvalidRequestError, NotFoundError
from modgate.protocol.escape import escape_path, escape_version, unescape_path, unescape_version
from modgate.protocol.module import ModuleVersion, check, check_path
from modgate.protocol.pseudo import (
    is_pseudo_version,
    pseudo_version_base,
    pseudo_version_rev,
    pseudo_version_time,
)
from modgate.protocol.request import Endpoint, parse_proxy_path
from modgate.service.sumdb import SUMDB_PREFIX, parse_sumdb_path

Target = Callable[[bytes], None]
SEP = b"\x00"
"""Splits one input into several arguments (path and version, note and key)."""
ZIP_MODULE = ModuleVersion("example.com/fuzz", "v1.0.0")
"""The module version every fuzzed zip is checked as (seeds use this prefix)."""
NOTE_SIGNER = signer_from_seed("fuzz.example", bytes(range(32)))
"""The key the note seeds are signed with, so the verifying branch is reachable."""


class InvariantError(AssertionError):
    """A parser accepted something and then broke one of its own rules."""


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def request(data: bytes) -> None:
    """Request routing: the path of a GOPROXY or checksum-database request (latin-1)."""
    target = data.decode("latin-1")
    if target.startswith(SUMDB_PREFIX):
        try:
            sumdb = parse_sumdb_path(target)
        except (InvalidRequestError, NotFoundError):
            return
        if sumdb.mv is not None:
            check(sumdb.mv.path, sumdb.mv.version)
        return
    try:
        req = parse_proxy_path(target)
    except (InvalidRequestError, NotFoundError):
        return
    check_path(req.module)  # a routed request names a valid module
    if req.endpoint in (Endpoint.MOD, Endpoint.ZIP):
        if req.version is None:
            raise InvariantError(f"{target!r}: {req.endpoint} without a version")
        check(req.module, req.version)
    if unescape_path(escape_path(req.module)) != req.module:
        raise InvariantError(f"{target!r}: module {req.module!r} does not round-trip")


def module(data: bytes) -> None:
    """Module paths and versions: checks, escaping, semver and pseudo-versions.

    The input is ``path NUL version [NUL other version]``.
    """
    path, version, other = [*(_text(p) for p in data.split(SEP, 2)), "", ""][:3]
    try:
        check_path(path)
    except InvalidRequestError:
        pass
    else:
        if unescape_path(escape_path(path)) != path:
            raise InvariantError(f"path {path!r} does not round-trip through escaping")
    try:
        escaped = escape_version(version)
    except InvalidRequestError:
        pass
    else:
        if unescape_version(escaped) != version:
            raise InvariantError(f"version {version!r} does not round-trip through escaping")
    for text in (path, version):
        with contextlib.suppress(InvalidRequestError):
            unescape_path(text)
    with contextlib.suppress(InvalidRequestError):
        check(path, version)
    canonical = semver.canonical(version)
    if canonical and semver.canonical(canonical) != canonical:
        raise InvariantError(f"canonical({version!r}) = {canonical!r} is not canonical")
    if semver.is_valid(version):
        if semver.compare(version, version) != 0:
            raise InvariantError(f"{version!r} does not compare equal to itself")
        if semver.is_valid(other) and semver.compare(version, other) != -semver.compare(
            other, version
        ):
            raise InvariantError(f"compare({version!r}, {other!r}) is not antisymmetric")
    if is_pseudo_version(version):
        with contextlib.suppress(InvalidRequestError):
            pseudo_version_time(version)
        pseudo_version_rev(version)
        pseudo_version_base(version)


def gomod(data: bytes) -> None:
    """go.mod parsing (the module, go and retract directives modgate reads)."""
    try:
        parsed = parse_gomod(data)
    except GoModError:
        return
    if parsed.module:
        auto_quote(parsed.module)


def modzip(data: bytes) -> None:
    """The module zip check, on a zip of example.com/fuzz@v1.0.0."""
    try:
        check_zip(ZIP_MODULE, io.BytesIO(data), len(data))
    except InvalidModuleError:
        return


def info(data: bytes) -> None:
    """``.info`` answers from an upstream."""
    try:
        parse_info(data, "example.com/fuzz@v1.0.0")
    except InvalidModuleError:
        return


def note(data: bytes) -> None:
    """Signed notes (checksum-database tree heads) and verifier keys."""
    message, _, key = data.partition(SEP)
    verifiers = [NOTE_SIGNER.verifier()]
    if key:
        with contextlib.suppress(NoteError):
            verifiers.append(parse_verifier(_text(key)))
    try:
        opened = open_note(message, verifiers)
    except NoteError:
        return
    with contextlib.suppress(TlogError):
        parse_tree(opened.text)


def tile(data: bytes) -> None:
    """Tile paths, tree heads and lookup records of the checksum-database protocol."""
    text = _text(data)
    try:
        parsed = parse_tile_path(text)
    except TlogError:
        pass
    else:
        if parsed.path() != text:
            raise InvariantError(f"tile {text!r} reads back as {parsed.path()!r}")
    for parse in (parse_tree, parse_record):
        with contextlib.suppress(TlogError):
            parse(data)


TARGETS: dict[str, Target] = {
    "request": request,
    "module": module,
    "gomod": gomod,
    "modzip": modzip,
    "info": info,
    "note": note,
    "tile": tile,
}
ORDER = tuple(sorted(TARGETS))
"""The targets in the order ``every`` numbers them."""


def every(data: bytes) -> None:
    """All targets in one: the first byte picks the target (modulo their number)."""
    if data:
        TARGETS[ORDER[data[0] % len(ORDER)]](data[1:])


def for_every(target: str, data: bytes) -> bytes:
    """``data`` as an input of :func:`every` that reaches ``target``."""
    return bytes([ORDER.index(target)]) + data
