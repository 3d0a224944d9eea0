"""The store's format version, written in ``_modgate/format`` and checked when a store opens.

The layout of artifacts is the go command's and never changes, but
modgate's own state under ``_modgate/`` may. A store without the marker is
either new or was written before the marker existed (format 1, the same
layout): the marker is written then. A store marked with a newer format than
this modgate knows is refused, so an older modgate (after a rollback) never
misreads or rewrites state it does not understand.

Upgrade notes (kept here and in the README): format 1 is the first; a
format change will say here what a newer modgate converts on open and
whether a rollback is possible afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

FORMAT_VERSION = 1
FORMAT_FILE = "format"
_PREFIX = "modgate-store "


class StoreFormatError(Exception):
    """The store's format marker is unreadable or newer than this modgate."""


def read_format(state_dir: Path) -> int | None:
    """The format number in ``state_dir/format``, None when there is no marker."""
    path = state_dir / FORMAT_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreFormatError(f"cannot read the store format marker {path}: {exc}") from exc
    if not text.startswith(_PREFIX) or not text[len(_PREFIX) :].isdigit():
        raise StoreFormatError(
            f"the store format marker {path} reads {text[:40]!r}, not '{_PREFIX}<number>'; "
            "restore it from a backup or remove it if this is a modgate store"
        )
    return int(text[len(_PREFIX) :])


def ensure_format(state_dir: Path) -> int:
    """Check the marker (write it when missing); the store's format number."""
    found = read_format(state_dir)
    if found is None:
        path = state_dir / FORMAT_FILE
        temp = state_dir / f".{FORMAT_FILE}.{os.getpid()}"
        temp.write_text(f"{_PREFIX}{FORMAT_VERSION}\n", encoding="ascii")
        temp.replace(path)
        return FORMAT_VERSION
    if found > FORMAT_VERSION:
        raise StoreFormatError(
            f"the store is in format {found}, newer than this modgate supports "
            f"({FORMAT_VERSION}); run the modgate version that wrote it, or a newer one"
        )
    return found
