"""What the service hands the server for one request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Answer:
    """A response body: in memory (``body``) or a complete file in the store (``path``).

    ``immutable`` is true for the .info/.mod/.zip of a canonical version: the
    bytes never change, so the server may cache them forever and send an
    immutable Cache-Control. list, latest and query answers are mutable.
    ``stale`` marks a list/latest answer served because every source failed.
    ``validator`` names the content without being it (a zip's h1 hash): the
    server derives a weak ETag from it instead of hashing the bytes.
    ``fetched`` says a source was asked for this answer (a cold fetch or a
    refresh), as opposed to one read from the store or memory.
    ``location`` is set instead of a body for a zip sent as a redirect to a
    short-lived presigned URL of the object store (``--s3-redirect``).
    """

    body: bytes | None
    path: Path | None
    size: int
    immutable: bool
    stale: bool = False
    validator: bytes | None = None
    fetched: bool = False
    location: str | None = None
