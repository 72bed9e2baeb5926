"""The one shared module that may start the agent or the GUI; it imports them only when asked.

Keeping these imports lazy is what lets ``sparecycles status`` stay quick and lets the agent run
on machines without Qt's system libraries.
"""

from __future__ import annotations

import os
import sys

from sparecycles.diagnostics import CheckResult
from sparecycles.paths import AppPaths


def display_available() -> bool:
    if sys.platform == "win32":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_agent(paths: AppPaths, *, console: bool) -> int:
    from sparecycles.agent.daemon import run_agent as run

    return run(paths, console=console)


def run_doctor(paths: AppPaths) -> list[CheckResult]:
    from sparecycles.agent.doctor import run_checks

    return run_checks(paths.config_file)


def run_gui(paths: AppPaths) -> int:
    from sparecycles.ui.main import run_gui as run

    return run(paths)
