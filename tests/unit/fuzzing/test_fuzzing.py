"""Fuzzing in the test suite: the committed corpus replayed, then a short atheris run.

Every input under ``tests/data/fuzz/<target>/`` (the seeds, and each crash
the fuzzer ever found, kept as ``crash-*``) goes through its target on every
run. The short run (about a thousand inputs per target, fixed seed, one
process for all targets) catches a parser change that crashes on inputs near
the seeds; the long run is
``scripts/fuzz TARGET SECONDS`` (README, Tests).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import TARGETS, ZIP_MODULE, for_every
from modgate.formats.modzip import check_zip
from modgate.formats.ziprules import InvalidZipError, Problem

TESTS = Path(__file__).resolve().parents[2]
CORPUS = TESTS / "data" / "fuzz"
SHORT_RUNS = 7000
"""About 1,000 inputs per target."""
SHORT_SECONDS = 20
RUN_TIMEOUT = 120


def _inputs(target: str) -> list[Path]:
    return sorted(p for p in (CORPUS / target).iterdir() if p.is_file())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_corpus_replays(target: str) -> None:
    inputs = _inputs(target)
    assert inputs, f"no committed corpus for {target} under {CORPUS / target}"
    for path in inputs:
        try:
            TARGETS[target](path.read_bytes())
        except Exception as exc:
            pytest.fail(f"{target}: {path.name} crashes the target: {type(exc).__name__}: {exc}")


def test_short_fuzz_run(tmp_path: Path) -> None:
    # one atheris process for every target (its first byte picks one): the
    # start-up, which instruments and imports modgate, is paid once
    work = tmp_path / "corpus"
    work.mkdir()
    for target in TARGETS:
        for path in _inputs(target):
            (work / f"{target}-{path.name}").write_bytes(for_every(target, path.read_bytes()))
    proc = subprocess.run(
        [
            sys.executable, "-m", "fuzz", "all",
            f"-runs={SHORT_RUNS}", f"-max_total_time={SHORT_SECONDS}", "-seed=1",
            f"-artifact_prefix={tmp_path}/", str(work),
        ],
        cwd=TESTS, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    crashes = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*"))
    found = {c.name: c.read_bytes()[:200] for c in crashes}
    assert proc.returncode == 0 and not crashes, (
        "the fuzzer found a failing input (its first byte picks the target, see "
        f"fuzz.targets.every; keep the rest under {CORPUS}/<target>/, then fix the "
        f"parser): {found}\n{proc.stderr[-3000:]}"
    )
    assert "Done" in proc.stderr, f"the fuzzer did not run:\n{proc.stderr[-2000:]}"


@pytest.mark.parametrize("name", ["crash-negative-header-offset", "crash-unsupported-zip-version"])
def test_damaged_zips_found_by_fuzzing_are_refused(name: str) -> None:
    # both once escaped the zip check as ValueError / NotImplementedError: a 500
    # instead of "invalid module zip"
    data = (CORPUS / "modzip" / name).read_bytes()
    with pytest.raises(InvalidZipError) as caught:
        check_zip(ZIP_MODULE, io.BytesIO(data), len(data))
    assert [p.problem for p in caught.value.problems] == [Problem.CORRUPT], caught.value
