"""``modgate verify``: a project's go.mod and go.sum against modgate and the checksum database.

What is checked, for the main module in one directory:

- every requirement of go.mod (after ``replace``; local directories have no
  sums) has its zip line and its ``/go.mod`` line in go.sum: ``missing-sum``;
- every go.sum hash equals the checksum database's record (signature, tree
  consistency and inclusion checked, as the go command does) or, for
  modules matching the private patterns or with the database off, the hash
  of what the proxy serves: ``hash-mismatch``;
- every go.sum line is for a module version in the module graph (walked
  through the proxy's .mod files, unpruned, so a superset of what the go
  command loads): ``/go.mod`` lines for any version in the graph, zip lines
  for required or selected versions only: ``stale-sum``;
- go.sum lines that are not three fields: ``malformed-sum``; a version the
  proxy or the database does not know: ``unverifiable``; a database that
  contradicts itself: ``database-misbehavior``.

Network failures (the proxy or database cannot be reached) are not
findings: they raise UpstreamError, and the command exits 2.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from modgate.formats.dirhash import hash_gomod, hash_zip
from modgate.formats.gomod_syntax import GoModError
from modgate.formats.gosum import Requirements, SumLine, parse_gosum, parse_requirements
from modgate.formats.modzip import MAX_ZIP_FILE
from modgate.formats.sumrecord import SumRecord
from modgate.formats.zipentry import ZipReadError
from modgate.metrics import Metrics
from modgate.protocol import semver
from modgate.protocol.errors import InvalidModuleError, NotFoundError
from modgate.protocol.module import ModuleVersion
from modgate.protocol.patterns import PatternList
from modgate.service.sumdbproxy import Database, SumdbProxy
from modgate.service.sumverify import DatabaseMisbehaviorError, PublicChecker
from modgate.sources.upstream import UpstreamProxy
from modgate.store.filesystem import FilesystemStore

MAX_GRAPH_MODULES = 5000
"""The module graph walk stops here; stale go.mod lines are then not reported."""
CONCURRENCY = 8
GO_MOD = "go.mod"
GO_SUM = "go.sum"

RULES = {
    "missing-sum": ("error", "A requirement of go.mod has no hash line in go.sum."),
    "hash-mismatch": ("error", "A go.sum hash differs from the checksum database or the proxy."),
    "stale-sum": ("warning", "A go.sum line is for a module version outside the module graph."),
    "malformed-sum": ("error", "A go.sum line is not '<path> <version>[/go.mod] <hash>'."),
    "unverifiable": ("error", "The proxy or the checksum database does not know the version."),
    "database-misbehavior": ("error", "The checksum database served inconsistent proofs."),
    "gosum-without-gomod": ("warning", "go.sum changed while go.mod did not."),
}


@dataclass(frozen=True, slots=True)
class VerifyFinding:
    """One problem ``modgate verify`` found in go.mod or go.sum (``rule`` is a RULES key)."""

    rule: str
    file: str
    line: int | None
    message: str
    subject: str = ""

    @property
    def level(self) -> str:
        return RULES[self.rule][0]


@dataclass
class Report:
    findings: list[VerifyFinding] = field(default_factory=list)
    modules: int = 0
    """Module versions in the walked graph."""
    lines: int = 0
    """go.sum lines checked."""


@dataclass(frozen=True, slots=True)
class CheckOptions:
    proxy: str
    database: Database | None
    private: PatternList


class ProjectChecker:
    """Runs every check above with one HTTP client; ``run`` returns the findings."""

    def __init__(self, client: httpx.AsyncClient, options: CheckOptions, scratch: Path) -> None:
        self.options = options
        self.metrics = Metrics()
        self.source = UpstreamProxy(options.proxy, client, self.metrics, retries=1)
        self.scratch = scratch
        self.checker: PublicChecker | None = None
        if options.database is not None:
            store = FilesystemStore(scratch / "state")
            proxy = SumdbProxy(store, client, (options.database,), self.metrics)
            self.checker = PublicChecker(proxy, options.database, store, self.metrics)
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self._mods: dict[ModuleVersion, bytes | None] = {}

    async def run(self, gomod: bytes, gosum: str) -> Report:
        report = Report()
        try:
            req = parse_requirements(gomod)
        except (GoModError, UnicodeDecodeError) as exc:
            report.findings.append(
                VerifyFinding("malformed-sum", GO_MOD, None, f"cannot read: {exc}")
            )
            return report
        lines, bad = parse_gosum(gosum)
        report.lines = len(lines)
        for b in bad:
            report.findings.append(
                VerifyFinding(
                    "malformed-sum", GO_SUM, b.line, f"not three fields: {b.text.strip()!r}"
                )
            )
        have = {line.key for line in lines}
        required = self._required(req)
        for mv, line in required.items():
            for gomod_line in (False, True):
                if (mv, gomod_line) not in have:
                    what = f"{mv.path} {mv.version}{'/go.mod' if gomod_line else ''}"
                    report.findings.append(
                        VerifyFinding(
                            "missing-sum", GO_MOD, line, f"go.sum has no line for {what}", str(mv)
                        )
                    )
        nodes, complete = await self._graph(req, required, report)
        report.modules = len(nodes)
        selected = _select(nodes)
        for s in lines:
            if s.gomod and complete and s.mv not in nodes:
                why = "not in the module graph"
            elif not s.gomod and s.mv not in required and selected.get(s.mv.path) != s.mv.version:
                why = "neither required nor selected"
            else:
                continue
            report.findings.append(
                VerifyFinding(
                    "stale-sum",
                    GO_SUM,
                    s.line,
                    f"{_line_text(s)}: {why}; run go mod tidy",
                    str(s.mv),
                )
            )
        await self._gather({s.mv for s in lines}, lambda mv: self._hashes(mv, lines, report))
        report.findings.sort(key=lambda f: (f.file, f.line or 0, f.rule))
        return report

    def _required(self, req: Requirements) -> dict[ModuleVersion, int]:
        out: dict[ModuleVersion, int] = {}
        for r in req.require:
            mv = req.effective(r.mv)
            if mv is not None:
                out.setdefault(mv, r.line)
        return out

    async def _gather(
        self, items: Iterable[ModuleVersion], job: Callable[[ModuleVersion], Awaitable[None]]
    ) -> None:
        async def one(mv: ModuleVersion) -> None:
            async with self._limit:
                await job(mv)

        await asyncio.gather(*(one(mv) for mv in items))

    async def _mod(self, mv: ModuleVersion) -> bytes | None:
        if mv not in self._mods:
            try:
                self._mods[mv] = await self.source.mod(mv)
            except NotFoundError:
                self._mods[mv] = None
        return self._mods[mv]

    async def _graph(
        self, req: Requirements, required: dict[ModuleVersion, int], report: Report
    ) -> tuple[set[ModuleVersion], bool]:
        """Every module version reachable through go.mod requirements (unpruned)."""
        nodes: set[ModuleVersion] = set(required)
        level = list(required)
        while level:
            if len(nodes) > MAX_GRAPH_MODULES:
                return nodes, False
            await self._gather(level, self._load)
            following: list[ModuleVersion] = []
            for mv in level:
                data = self._mods.get(mv)
                if data is None:
                    continue
                try:
                    deps = parse_requirements(data).require
                except (GoModError, UnicodeDecodeError):
                    continue
                for dep in deps:
                    effective = req.effective(dep.mv)
                    if effective is not None and effective not in nodes:
                        nodes.add(effective)
                        following.append(effective)
            level = following
        return nodes, True

    async def _load(self, mv: ModuleVersion) -> None:
        await self._mod(mv)

    async def _hashes(self, mv: ModuleVersion, lines: list[SumLine], report: Report) -> None:
        mine = [s for s in lines if s.mv == mv]
        try:
            expected, where = await self._authority(mv, need_zip=any(not s.gomod for s in mine))
        except (InvalidModuleError, NotFoundError) as exc:
            first = min(s.line for s in mine)
            report.findings.append(
                VerifyFinding("unverifiable", GO_SUM, first, exc.reason, str(mv))
            )
            return
        except DatabaseMisbehaviorError as exc:
            first = min(s.line for s in mine)
            report.findings.append(
                VerifyFinding("database-misbehavior", GO_SUM, first, exc.reason, str(mv))
            )
            return
        for s in mine:
            want = expected.gomod_hash if s.gomod else expected.zip_hash
            if want and s.hash != want:
                report.findings.append(
                    VerifyFinding(
                        "hash-mismatch",
                        GO_SUM,
                        s.line,
                        f"{_line_text(s)}: go.sum has {s.hash}, {where} has {want}; "
                        "do not regenerate go.sum: find out why the content changed",
                        str(mv),
                    )
                )

    async def _authority(self, mv: ModuleVersion, *, need_zip: bool) -> tuple[SumRecord, str]:
        """The trusted hashes of ``mv``: the database's record, or the proxy's content."""
        if self.checker is not None and not self.options.private.matches(mv.path):
            record = await self.checker.record(mv)
            return record, f"checksum database {self.checker.db.name}"
        mod = await self._mod(mv)
        if mod is None:
            raise NotFoundError(str(mv), f"{self.source.name} has no {mv}")
        zip_hash = ""
        if need_zip:
            with tempfile.NamedTemporaryFile(dir=self.scratch, suffix=".zip") as tmp:
                await self.source.zip(mv, Path(tmp.name), MAX_ZIP_FILE)
                try:
                    zip_hash = await asyncio.to_thread(_hash_file, Path(tmp.name))
                except ZipReadError as exc:
                    raise InvalidModuleError(
                        str(mv), f"the proxy's zip is unreadable: {exc}"
                    ) from None
        return SumRecord(mv, zip_hash, hash_gomod(mod)), f"the proxy {self.source.name}"


def _hash_file(path: Path) -> str:
    with path.open("rb") as f:
        return hash_zip(f)


def _select(nodes: set[ModuleVersion]) -> dict[str, str]:
    """Minimal version selection over the graph: the highest version of each path."""
    selected: dict[str, str] = {}
    for mv in nodes:
        current = selected.get(mv.path)
        if current is None or semver.compare(mv.version, current) > 0:
            selected[mv.path] = mv.version
    return selected


def _line_text(s: SumLine) -> str:
    return f"{s.mv.path} {s.mv.version}{'/go.mod' if s.gomod else ''}"
