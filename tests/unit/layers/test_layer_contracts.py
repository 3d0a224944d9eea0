"""The layer contracts in pyproject.toml fail when an import breaks them.

Each case copies the source tree, adds one offending import to one module,
and runs the real ``lint-imports`` against the copy: the named contract must
be reported broken (and the untouched copy must pass, so a failure means the
import, not the setup).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT = Path(sys.executable).parent / "lint-imports"

CASES = {
    "formats opens files": ("formats/dirhash.py", "import os", "Pure layers import no file"),
    "protocol goes online": ("protocol/semver.py", "import socket", "Pure layers import no file"),
    "formats runs processes": (
        "formats/tlog.py",
        "import subprocess",
        "Pure layers import no file",
    ),
    "doctor uses the store": (
        "doctor/findings.py",
        "import modgate.store.base",
        "doctor imports only protocol and formats",
    ),
    "doctor reads metrics": (
        "doctor/findings.py",
        "import modgate.metrics",
        "doctor imports only protocol and formats",
    ),
    "diagnose uses doctor": (
        "diagnose/finding.py",
        "import modgate.doctor.findings",
        "diagnose imports only protocol and formats",
    ),
    "diagnose uses the store": (
        "diagnose/finding.py",
        "import modgate.store.base",
        "diagnose imports only protocol and formats",
    ),
    "service imports the server": (
        "service/answer.py",
        "import modgate.server.responses",
        "Layers point downward only",
    ),
}


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run(
        [str(LINT), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_the_untouched_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), CASES.values(), ids=CASES.keys())
def test_an_offending_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = _copy(tmp_path)
    path = tree / "src" / "modgate" / module
    text = path.read_text()
    anchor = "from __future__ import annotations\n"
    assert anchor in text, f"{module} has no anchor line"
    path.write_text(text.replace(anchor, f"{anchor}\n{line}  # noqa\n", 1))
    result = _lint(tree)
    assert result.returncode != 0, f"{line} in {module} passed:\n{result.stdout}"
    broken = re.findall(r"^(.+) BROKEN$", result.stdout, re.MULTILINE)
    assert any(name.startswith(contract) for name in broken), (
        f"expected '{contract}' broken, got {broken}\n{result.stdout}"
    )


def test_no_pure_module_names_urllib_request() -> None:
    for layer in ("protocol", "formats"):
        for path in (ROOT / "src" / "modgate" / layer).rglob("*.py"):
            assert "urllib.request" not in path.read_text(), f"{path} uses urllib.request"
