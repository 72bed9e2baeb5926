"""The GUI's own preferences (theme, onboarding done): a small INI file beside the agent's config.

Not in the agent's settings because the agent never needs them; not in the platform's default QSettings
location so that each SPARECYCLES_HOME (a test's, a second user's) has its own.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from sparecycles.paths import AppPaths

ONBOARDING_DONE = "onboarding/completed"
THEME = "appearance/theme"


def prefs_at(config_dir: Path) -> QSettings:
    return QSettings(str(config_dir / "gui.ini"), QSettings.Format.IniFormat)


def gui_prefs(paths: AppPaths) -> QSettings:
    return prefs_at(paths.config_dir)


def onboarding_completed(paths: AppPaths) -> bool:
    """False on the first start: the main window then opens the onboarding wizard."""
    return bool(gui_prefs(paths).value(ONBOARDING_DONE, False, type=bool))


def mark_onboarding_completed(paths: AppPaths) -> None:
    prefs = gui_prefs(paths)
    prefs.setValue(ONBOARDING_DONE, True)
    prefs.sync()
