"""Verification of everything before it is stored: one path for every source.

Upstream fetches, imports and (later) git fetches all store artifacts
through ``Ingest``. A zip is stored only after it passed the module zip
rules, its go.mod equals the version's .mod, its h1 hash was computed
and written as ``.ziphash``, and (with a verifier) the .mod and zip hashes
agree with the checksum databases (``sumverify.py``); the zip itself is
renamed into place last, so a stored zip always has its .mod and .ziphash
beside it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from modgate.formats.dirhash import hash_gomod
from modgate.formats.gomod import GoModError, parse_gomod, synthesize_gomod
from modgate.formats.info import check_info_for, parse_info
from modgate.formats.modzip import MAX_GO_MOD, check_zip
from modgate.formats.zipentry import InflateMemo
from modgate.metrics import Metrics
from modgate.protocol import semver
from modgate.protocol.errors import InvalidModuleError, InvalidRequestError
from modgate.protocol.module import ModuleVersion, check
from modgate.store.base import Kind, Store, reads_block

log = logging.getLogger("modgate.ingest")

CHECK_ON_THE_SPOT_BYTES = 64 << 10
"""A .mod or .info up to this size is checked on the event loop (a parse and a hash, well
under a millisecond) when its checks read nothing but small local files."""


class DamagedArtifactError(InvalidModuleError):
    """Fetched bytes that fail the artifact checks (zip rules, go.mod, .info).

    Such bytes may have been damaged on their way (a flipped bit, a body cut
    short), so the gateway fetches them once more before it refuses the
    version. A disagreement with a checksum database is never of this type:
    it is a security event, and is not fetched again.
    """


def damaged(exc: InvalidModuleError) -> DamagedArtifactError:
    return DamagedArtifactError(exc.subject, exc.reason)


class IngestVerifier(Protocol):
    """Checksum-database checks (``sumverify.SumVerifier``): prepare, check, then stored."""

    async def prepare(self, mv: ModuleVersion) -> None: ...

    def check(self, mv: ModuleVersion, kind: Kind, h1: str) -> None: ...

    def stored(self, mv: ModuleVersion, gomod_h1: str, zip_h1: str) -> None: ...

    @property
    def reads_little(self) -> bool:
        """Whether ``check`` reads at most one small record from the store."""
        ...


class Ingest:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        verifier: IngestVerifier | None = None,
        inflated: InflateMemo | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.verifier = verifier
        self._remote = reads_block(store)
        self.inflated = inflated if inflated is not None else InflateMemo()
        """Deflate streams known: checked before (the unchanged files of a module's next
        version), or made by modgate's own zip builder from contents it hashed."""

    def on_the_spot(self, data: bytes) -> bool:
        """Whether ``accept_mod``/``accept_info`` of ``data`` may run on the event loop.

        A small artifact's checks are a parse and a hash; they also read the
        checksum-database record from a local store. A large artifact, a
        remote store or a private checksum log (which reads tiles) takes a
        worker thread.
        """
        return (
            len(data) <= CHECK_ON_THE_SPOT_BYTES
            and not self._remote
            and (self.verifier is None or self.verifier.reads_little)
        )

    async def prepare(self, mv: ModuleVersion, source: str) -> None:
        """Fetch what the checksum databases say about ``mv``, before storing any of it."""
        if self.verifier is None:
            return
        try:
            await self.verifier.prepare(mv)
        except InvalidModuleError as exc:
            raise self.refuse(exc, source) from None

    def refuse(self, exc: InvalidModuleError, source: str) -> InvalidModuleError:
        """Count and log a refused artifact; returns the error for raising, naming ``source``.

        The bytes may have been damaged on their way (a proxy, a cut
        connection), so the answer says which source sent them.
        """
        if source and not exc.reason.startswith(f"from {source}: "):
            exc.reason = f"from {source}: {exc.reason}"
            exc.args = (exc.subject, exc.reason)
        self.metrics.inc("modgate_verification_failures_total", (("source", source),))
        log.warning(
            "refused artifact",
            extra={
                "event": "verification_failed",
                "subject": exc.subject,
                "source": source,
                "reason": exc.reason,
            },
        )
        return exc

    def check_mod(self, mv: ModuleVersion, data: bytes) -> None:
        """A .mod must be a go.mod with a module line (HTML from a portal is not)."""
        if len(data) > MAX_GO_MOD:
            raise InvalidModuleError(str(mv), f"go.mod is larger than {MAX_GO_MOD} bytes")
        try:
            parsed = parse_gomod(data)
        except (GoModError, UnicodeDecodeError) as exc:
            raise InvalidModuleError(str(mv), f"invalid go.mod: {exc}") from exc
        if not parsed.module:
            raise InvalidModuleError(
                str(mv), "invalid go.mod: missing module line (is the upstream a real proxy?)"
            )

    def check_hash(self, mv: ModuleVersion, kind: Kind, h1: str) -> None:
        """Raise unless the checksum databases agree with ``h1`` (no verifier: nothing to do)."""
        if self.verifier is not None:
            self.verifier.check(mv, kind, h1)

    def accept_mod(self, mv: ModuleVersion, data: bytes, source: str) -> None:
        """Raise (counted and logged) unless ``data`` may be served and stored as mv's .mod."""
        try:
            self.check_mod(mv, data)
        except InvalidModuleError as exc:
            raise self.refuse(damaged(exc), source) from None
        try:
            self.check_hash(mv, Kind.MOD, hash_gomod(data))
        except InvalidModuleError as exc:
            raise self.refuse(exc, source) from None

    def accept_info(self, mv: ModuleVersion, data: bytes, source: str) -> None:
        """Raise (counted and logged) unless ``data`` is an .info that names ``mv``'s version."""
        try:
            check_info_for(parse_info(data, str(mv)), mv)
        except InvalidModuleError as exc:
            raise self.refuse(damaged(exc), source) from None

    def resolve_query(self, module: str, query: str, data: bytes, source: str) -> ModuleVersion:
        """Check the .info answer to a query; returns the version it resolved to."""
        subject = f"{module}@{query}"
        try:
            info = parse_info(data, subject)
            version = info.version
            if semver.canonical(version) == "" or not is_module_version(module, version):
                raise InvalidModuleError(
                    subject, f"upstream resolved the query to invalid version {version!r}"
                )
        except InvalidModuleError as exc:
            raise self.refuse(exc, source) from None
        return ModuleVersion(module, version)

    def verify_zip(self, mv: ModuleVersion, tmp: Path, mod: bytes) -> str:
        """Check a zip against the module zip rules and the version's .mod; returns its h1.

        Raises InvalidModuleError without counting it: the caller decides (``refuse``).
        """
        size = tmp.stat().st_size
        with tmp.open("rb") as f:
            checked = check_zip(mv, f, size, memo=self.inflated)
        expected = checked.go_mod if checked.go_mod is not None else synthesize_gomod(mv.path)
        if expected != mod:
            raise InvalidModuleError(
                str(mv),
                "the zip's go.mod differs from the version's .mod; "
                "the source serves inconsistent artifacts",
            )
        return checked.h1

    def put_zip(self, mv: ModuleVersion, tmp: Path, h1: str) -> None:
        """Store a verified zip: .ziphash first, the zip renamed into place last."""
        self.store.put(mv, Kind.ZIPHASH, h1.encode())
        self.store.put_file(mv, Kind.ZIP, tmp)

    def store_zip(self, mv: ModuleVersion, tmp: Path, mod: bytes, source: str) -> str:
        """Verify a fetched zip in ``tmp`` and move it into the store; returns its h1."""
        try:
            h1 = self.verify_zip(mv, tmp, mod)
        except InvalidModuleError as exc:
            raise self.refuse(damaged(exc), source) from None
        try:
            self.check_hash(mv, Kind.ZIP, h1)
        except InvalidModuleError as exc:
            raise self.refuse(exc, source) from None
        self.put_zip(mv, tmp, h1)
        if self.verifier is not None:
            self.verifier.stored(mv, hash_gomod(mod), h1)
        return h1


def is_module_version(module: str, version: str) -> bool:
    """True for a canonical version that fits the module path (x/mod's Check, strictly)."""
    try:
        check(module, version)
    except InvalidRequestError:
        return False
    return True
