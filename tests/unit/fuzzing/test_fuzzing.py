"""Fuzzing in the test suite: the committed corpus replayed, then a short atheris run per target.

Every input under ``tests/data/fuzz/<target>/`` (the seeds, and each crash
the fuzzer ever found, kept as ``crash-*``) goes through its target on every
run. The short runs (a few thousand inputs each, fixed seed) catch a parser
change that crashes on inputs near the seeds; the long run is
``scripts/fuzz TARGET SECONDS`` (README, Tests).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import TARGETS, ZIP_MODULE
from modgate.formats.modzip import check_zip
from modgate.formats.ziprules import InvalidZipError, Problem

TESTS = Path(__file__).resolve().parents[2]
CORPUS = TESTS / "data" / "fuzz"
SHORT_RUNS = 1000
SHORT_SECONDS = 5
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


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_short_fuzz_run(target: str, tmp_path: Path) -> None:
    work = tmp_path / "corpus"
    shutil.copytree(CORPUS / target, work)  # new inputs go here, never into the repository
    proc = subprocess.run(
        [
            sys.executable, "-m", "fuzz", target,
            f"-runs={SHORT_RUNS}", f"-max_total_time={SHORT_SECONDS}", "-seed=1",
            f"-artifact_prefix={tmp_path}/", str(work),
        ],
        cwd=TESTS, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    crashes = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*"))
    found = {c.name: c.read_bytes()[:200] for c in crashes}
    assert proc.returncode == 0 and not crashes, (
        f"{target}: the fuzzer found a failing input (keep it under {CORPUS / target}, "
        f"then fix the parser): {found}\n{proc.stderr[-3000:]}"
    )
    assert "Done" in proc.stderr, f"{target}: the fuzzer did not run:\n{proc.stderr[-2000:]}"


@pytest.mark.parametrize("name", ["crash-negative-header-offset", "crash-unsupported-zip-version"])
def test_damaged_zips_found_by_fuzzing_are_refused(name: str) -> None:
    # both once escaped the zip check as ValueError / NotImplementedError: a 500
    # instead of "invalid module zip"
    data = (CORPUS / "modzip" / name).read_bytes()
    with pytest.raises(InvalidZipError) as caught:
        check_zip(ZIP_MODULE, io.BytesIO(data), len(data))
    assert [p.problem for p in caught.value.problems] == [Problem.CORRUPT], caught.value
