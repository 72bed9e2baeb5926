"""The static gates really bite: a planted type error fails mypy, a planted import fails the layers.

mypy and import-linter run against an installed copy of the package (the package-dir mapping
hides an editable install from both); here that copy gets a planted mistake, and goes first on
the search path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sparecycles

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    shutil.copytree(
        Path(sparecycles.__file__).parent, root / "sparecycles", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


def _run(tool: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MYPYPATH=str(root), PYTHONPATH=str(root))
    return subprocess.run(
        [str(BIN / tool), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_planted_type_error_fails_mypy(package_copy: Path) -> None:
    planted = package_copy / "sparecycles" / "agent" / "planted.py"
    planted.write_text("def answer() -> int:\n    return 'forty-two'\n")
    result = _run("mypy", package_copy, "--cache-dir", str(REPO / ".mypy_cache"), "-m", "sparecycles.agent.planted")
    assert result.returncode == 1, result.stdout
    assert "planted.py:2: error: Incompatible return value type" in result.stdout


@pytest.mark.slow
def test_planted_forbidden_imports_fail_import_linter(package_copy: Path) -> None:
    clean = _run("lint-imports", package_copy)
    assert clean.returncode == 0, clean.stdout
    (package_copy / "sparecycles" / "agent" / "planted_qt.py").write_text("import PySide6\n")
    (package_copy / "sparecycles" / "ui" / "planted_agent.py").write_text("import sparecycles.agent.daemon\n")
    config = package_copy / "sparecycles" / "config.py"
    config.write_text(config.read_text() + "\nimport sparecycles.agent.doctor\n")
    result = _run("lint-imports", package_copy)
    assert result.returncode == 1, result.stdout
    assert "The agent never imports Qt or the GUI BROKEN" in result.stdout
    assert "The GUI never imports the agent BROKEN" in result.stdout
    assert "Shared modules import neither" in result.stdout
    assert "sparecycles.config -> sparecycles.agent.doctor" in result.stdout
