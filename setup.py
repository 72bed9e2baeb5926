"""Map the three code folders onto one import tree.

app/ installs as ``sparecycles``, agent/ as ``sparecycles.agent`` and ui/ as ``sparecycles.ui``,
so nothing called ``app``, ``agent`` or ``ui`` lands at the top of site-packages. The package
list is derived from the folders so a new subpackage cannot be forgotten.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup

ROOTS = {"sparecycles": "app", "sparecycles.agent": "agent", "sparecycles.ui": "ui"}
DATA_SUFFIXES = ("*.typed", "*.json", "*.svg", "*.png", "*.toml", "*.ini", "*.mako", "*.sol", "*.ts", "*.qm")


def discover() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for name, folder in ROOTS.items():
        package_dir[name] = folder
        for init in sorted(Path(folder).rglob("__init__.py")):
            relative = init.parent.relative_to(folder)
            if "__pycache__" in relative.parts:
                continue
            packages.append(".".join((name, *relative.parts)) if relative.parts else name)
    return packages, package_dir


packages, package_dir = discover()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data={name: list(DATA_SUFFIXES) for name in packages},
)
