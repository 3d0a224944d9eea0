"""``modgate import``: fill a store from module caches and zip trees.

Each candidate goes through ``Ingest``, the same verification as an
upstream fetch: the module zip rules, go.mod consistency, the h1 hash, and
(with a verifier) the checksum database. A public module whose record cannot
be fetched from the database is refused like one that disagrees with it: the
import says so per version, and ``--verify-sumdb off`` is the explicit way to
import without the database. Versions already stored are counted and left
alone, so an import can be run again safely.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from modgate.formats.dirhash import hash_gomod
from modgate.formats.gomod import synthesize_gomod
from modgate.formats.info import check_info_for, parse_info, render_info
from modgate.formats.modzip import MAX_GO_MOD, read_go_mod
from modgate.protocol.errors import InvalidModuleError, NotFoundError, UpstreamError
from modgate.protocol.module import ModuleVersion
from modgate.protocol.pseudo import is_pseudo_version, pseudo_version_time
from modgate.service.ingest import Ingest
from modgate.sources.local import Candidate, Unusable, discover
from modgate.store.base import Kind, Store

SOURCE_NAME = "import"


@dataclass
class ImportReport:
    stored: int = 0
    already: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(module@version or file, why) for each artifact that failed verification."""
    unusable: list[tuple[str, str]] = field(default_factory=list)
    """(file, why) for each file that is not a module artifact at all."""
    empty: list[Path] = field(default_factory=list)
    """Source folders in which nothing at all was found."""


class Importer:
    def __init__(self, store: Store, ingest: Ingest) -> None:
        self.store = store
        self.ingest = ingest

    async def run(
        self,
        found: Iterable[Candidate | Unusable],
        progress: Callable[[str], None],
        report: ImportReport | None = None,
    ) -> ImportReport:
        report = report if report is not None else ImportReport()
        for item in found:
            if isinstance(item, Unusable):
                report.unusable.append((str(item.path), item.reason))
            else:
                await self._one(item, report)
            progress(str(item.mv) if isinstance(item, Candidate) else str(item.path))
        return report

    async def _one(self, c: Candidate, report: ImportReport) -> None:
        mv = c.mv
        have_zip = self.store.size(mv, Kind.ZIP) is not None
        stored_mod = self.store.get(mv, Kind.MOD)
        if stored_mod is not None and (have_zip or c.zip is None):
            report.already += 1
            return
        try:
            await self._prepare(mv)
            # verify everything first: a refused version leaves nothing in the store
            mod = self._mod_bytes(c)
            self.ingest.check_mod(mv, mod)
            self.ingest.check_hash(mv, Kind.MOD, hash_gomod(mod))
            if stored_mod is not None:
                mod = stored_mod  # the stored .mod is immutable; the zip must agree with it
            info = self._info_bytes(c)
            if c.zip is None or have_zip:
                self._put_mod_info(mv, mod, info)
            else:
                with self.store.temp_file() as tmp:
                    shutil.copyfile(c.zip, tmp)
                    h1 = self.ingest.verify_zip(mv, tmp, mod)
                    self._check_recorded_hash(c, h1)
                    self.ingest.check_hash(mv, Kind.ZIP, h1)
                    self._put_mod_info(mv, mod, info)
                    self.ingest.put_zip(mv, tmp, h1)
        except InvalidModuleError as exc:
            self.ingest.refuse(exc, SOURCE_NAME)
            report.refused.append((str(mv), exc.reason))
            return
        except OSError as exc:
            report.refused.append((str(mv), f"cannot read {exc.filename}: {exc.strerror}"))
            return
        report.stored += 1

    async def _prepare(self, mv: ModuleVersion) -> None:
        """The checksum database's record of ``mv``; unreachable means refused, never skipped."""
        try:
            await self.ingest.prepare(mv, SOURCE_NAME)
        except (UpstreamError, NotFoundError) as exc:
            raise InvalidModuleError(
                str(mv),
                f"cannot be verified: {exc.reason}; import where the checksum database "
                "can be reached, or pass --verify-sumdb off to import without it",
            ) from exc

    def _put_mod_info(self, mv: ModuleVersion, mod: bytes, info: bytes) -> None:
        self.store.put(mv, Kind.MOD, mod)
        if self.store.size(mv, Kind.INFO) is None:
            self.store.put(mv, Kind.INFO, info)

    def _check_recorded_hash(self, c: Candidate, h1: str) -> None:
        if c.ziphash is None:
            return
        recorded = c.ziphash.read_bytes().decode("utf-8", "replace").strip()
        if recorded != h1:
            raise InvalidModuleError(
                str(c.mv),
                f"zip hash {h1} differs from the {recorded} recorded beside it in "
                f"{c.ziphash.name}; the source cache was modified: re-download it",
            )

    def _mod_bytes(self, c: Candidate) -> bytes:
        if c.mod is not None:
            if c.mod.stat().st_size > MAX_GO_MOD:
                raise InvalidModuleError(str(c.mv), f"go.mod is larger than {MAX_GO_MOD} bytes")
            return c.mod.read_bytes()
        assert c.zip is not None  # discover() yields a zip or a mod
        with c.zip.open("rb") as f:
            data = read_go_mod(c.mv, f)
        return data if data is not None else synthesize_gomod(c.mv.path)

    def _info_bytes(self, c: Candidate) -> bytes:
        if c.info is not None:
            data = c.info.read_bytes()
            check_info_for(parse_info(data, str(c.mv)), c.mv)
            return data
        time = pseudo_version_time(c.mv.version) if is_pseudo_version(c.mv.version) else None
        return render_info(c.mv.version, time)


async def import_paths(
    store: Store, ingest: Ingest, roots: Iterable[Path], progress: Callable[[str], None]
) -> ImportReport:
    """Import every root in turn; roots in which nothing was found are listed in ``empty``."""
    importer = Importer(store, ingest)
    report = ImportReport()
    for root in roots:
        seen = report.stored + report.already + len(report.refused) + len(report.unusable)
        await importer.run(discover(root), progress, report)
        if seen == report.stored + report.already + len(report.refused) + len(report.unusable):
            report.empty.append(root)
    return report
