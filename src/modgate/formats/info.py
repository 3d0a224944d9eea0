"""The ``.info`` JSON of the GOPROXY protocol: ``{"Version":..,"Time":..,"Origin":..}``.

Reading follows what the go command accepts from a proxy (modfetch's
``RevInfo``): a JSON object whose field names match case-insensitively (as
Go's encoding/json does, the last matching key winning), a string
``Version``, an RFC 3339 ``Time`` and an ``Origin`` object, other fields
ignored. modgate is stricter where the go command would fail later anyway:
the object and a non-empty, canonical ``Version`` are required.

Writing produces exactly the go command's own layout: compact JSON, keys in
the order Version, Time, Origin, the time in UTC with ``Z`` and trailing
zeros of fractional seconds dropped (Go's ``time.RFC3339Nano``), and HTML
characters escaped as encoding/json escapes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from modgate.protocol.errors import InvalidModuleError, InvalidRequestError
from modgate.protocol.module import ModuleVersion, canonical_version, check

MAX_INFO_SIZE = 64 << 10
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII
)
_FIELDS = ("version", "time", "origin")
# Go's RFC 3339 reader accepts zone offsets up to 24:60, bounds included.
_MAX_OFFSET_HOURS = 24
_MAX_OFFSET_MINUTES = 60
# encoding/json escapes these so that its output is safe inside HTML.
_GO_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_JSON_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")
_FIX = "the source serves a broken .info; fix it or fetch from another source"


@dataclass(frozen=True, slots=True)
class Info:
    """A parsed ``.info``; ``time`` is the RFC 3339 text as received."""

    version: str
    time: str | None = None
    origin: dict[str, Any] | None = None


def _fold(key: str) -> str:
    # Go's case-insensitive field matching; "ſ" (U+017F) folds to "s" there too.
    return key.lower().replace("\u017f", "s")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as Go's ``time.Time`` JSON decoding reads it; ValueError if not."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(f"time {text!r} is not RFC 3339 (2006-01-02T15:04:05Z07:00)")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7) or "", m.group(8)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    offset = 0
    if zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > _MAX_OFFSET_HOURS or minutes > _MAX_OFFSET_MINUTES:
            raise ValueError(f"time {text!r} has an out-of-range zone offset")
        offset = (hours * 60 + minutes) * (1 if zone[0] == "+" else -1)
    try:
        stamp = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"time {text!r} is out of range: {exc}") from None
    return stamp - timedelta(minutes=offset)


def parse_info(data: bytes, subject: str) -> Info:
    """Parse an ``.info`` body; raises InvalidModuleError naming ``subject``."""
    if len(data) > MAX_INFO_SIZE:
        raise InvalidModuleError(
            subject, f".info is {len(data)} bytes (limit {MAX_INFO_SIZE}); {_FIX}"
        )
    try:
        pairs = json.loads(
            data.decode("utf-8"), object_pairs_hook=_Pairs, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidModuleError(subject, f".info is not valid JSON ({exc}); {_FIX}") from None
    if not isinstance(pairs, _Pairs):
        raise InvalidModuleError(subject, f".info is not a JSON object; {_FIX}")
    fields: dict[str, Any] = {}
    for key, value in pairs:
        folded = _fold(key)
        if folded in _FIELDS:
            fields[folded] = value
    version, time, origin = (fields.get(name) for name in _FIELDS)
    if not isinstance(version, str) or not version:
        raise InvalidModuleError(subject, f".info has no Version string; {_FIX}")
    if canonical_version(version) != version:
        raise InvalidModuleError(
            subject, f".info Version {version!r} is not a canonical semantic version; {_FIX}"
        )
    if time is not None:
        if not isinstance(time, str):
            raise InvalidModuleError(subject, f".info Time is not a string; {_FIX}")
        try:
            parse_time(time)
        except ValueError as exc:
            raise InvalidModuleError(subject, f".info {exc}; {_FIX}") from None
    if origin is not None:
        if not isinstance(origin, _Pairs):
            raise InvalidModuleError(subject, f".info Origin is not a JSON object; {_FIX}")
        origin = _to_dict(origin)
    return Info(version, time, origin)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs in order (duplicates kept)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _to_dict(value: Any) -> Any:
    """Undo ``object_pairs_hook``: nested pair lists back into dicts, order kept."""
    if isinstance(value, _Pairs):
        return {k: _to_dict(v) for k, v in value}
    if isinstance(value, list):
        return [_to_dict(v) for v in value]
    return value


def check_info_for(info: Info, mv: ModuleVersion) -> None:
    """Raise unless ``info`` answers a request for ``mv``.

    When ``mv.version`` is a canonical version that fits the path, the
    answer must be that same version, as the go command requires. For any
    other query (a branch, a commit) the answer must be a version the path
    can have, since no other version can ever be downloaded.
    """
    try:
        check(mv.path, mv.version)
    except InvalidRequestError:
        try:
            check(mv.path, info.version)
        except InvalidRequestError as exc:
            raise InvalidModuleError(
                str(mv), f"query resolved to {info.version}, unusable here ({exc}); {_FIX}"
            ) from None
        return
    if info.version != mv.version:
        raise InvalidModuleError(
            str(mv),
            f"proxy returned info for version {info.version} instead of requested version; {_FIX}",
        )


def format_time(time: datetime) -> str:
    """``time`` in UTC as Go's RFC3339Nano: ``2024-01-02T03:04:05.5Z``."""
    if time.tzinfo is None:
        raise ValueError("render_info needs a timezone-aware time")
    utc = time.astimezone(UTC)
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _go_json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _GO_JSON_ESCAPE_RE.sub(lambda m: _GO_JSON_ESCAPES[m.group(0)], text)


def render_info(
    version: str, time: datetime | None = None, origin: dict[str, Any] | None = None
) -> bytes:
    """The ``.info`` body the go command itself would write."""
    parts = [f'"Version":{_go_json(version)}']
    if time is not None:
        parts.append(f'"Time":{_go_json(format_time(time))}')
    if origin is not None:
        parts.append(f'"Origin":{_go_json(origin)}')
    return ("{" + ",".join(parts) + "}").encode("utf-8")
