"""`pip install .` into a clean virtual environment installs one tree: sparecycles.*."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_clean_install_has_sparecycles_agent_and_ui_and_nothing_else_at_top_level(tmp_path: Path) -> None:
    env_dir = tmp_path / "clean-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # Build the wheel with the test environment's setuptools (no network), install it without
    # dependencies (they are not what this test is about) into the clean environment.
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    for name in ("app", "agent", "ui"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    wheel_dir = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(source),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheel_dir.glob("sparecycles-*.whl")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True)
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    top_level = {p.name for p in site.iterdir()} - {"__pycache__"}
    ours = {name for name in top_level if "sparecycles" in name.lower()}
    assert "sparecycles" in ours
    assert not {"app", "ui", "agent"} & top_level
    assert (site / "sparecycles" / "agent" / "__init__.py").is_file()
    assert (site / "sparecycles" / "ui" / "__init__.py").is_file()
    assert (site / "sparecycles" / "py.typed").is_file()
    record = next(site.glob("sparecycles-*.dist-info")).joinpath("RECORD").read_text()
    installed_roots = {line.split("/")[0].split(",")[0] for line in record.splitlines() if line}
    assert {root for root in installed_roots if not root.startswith("..")} <= {
        "sparecycles",
        next(site.glob("sparecycles-*.dist-info")).name,
    }
    assert (env_dir / "bin" / "sparecycles").is_file()
    # Every subpackage in the source folders made it in.
    for folder, prefix in (("app", ()), ("agent", ("agent",)), ("ui", ("ui",))):
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            assert (site / "sparecycles" / Path(*prefix, *relative) / "__init__.py").is_file(), init
