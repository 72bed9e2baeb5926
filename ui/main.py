"""The desktop app's composition root: the application, the link to the agent (which starts one with
``sys.executable`` when none answers), the main window and the tray icon, wired together here only."""

from __future__ import annotations

import sys
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from sparecycles.paths import AppPaths
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.notifications import NotificationPreferences
from sparecycles.ui.onboarding import open_on_first_start
from sparecycles.ui.pages import page_factories
from sparecycles.ui.theme import apply_theme, saved_theme
from sparecycles.ui.translation import install_translations
from sparecycles.ui.tray import Tray
from sparecycles.ui.window import MainWindow

FIRST_PAINT_WAIT_MS = 1500


def default_start_agent(paths: AppPaths) -> object:
    """The real spawn: ``python -m sparecycles agent --foreground`` (the bundle itself when frozen)."""
    from sparecycles.control.spawn import start_agent_process

    return start_agent_process(paths)


def build_app(
    paths: AppPaths,
    *,
    start_agent: Callable[[AppPaths], object] | None = default_start_agent,
    tray_available: bool | None = None,
) -> tuple[AgentLink, MainWindow, Tray | None]:
    """Wire the link, the window and the tray (when the desktop has a tray host); nothing is shown yet."""
    if tray_available is None:
        tray_available = QSystemTrayIcon.isSystemTrayAvailable()
    link = AgentLink(paths, start_agent=start_agent)
    window = MainWindow(link, page_factories(), tray_available=tray_available)
    tray: Tray | None = None
    if tray_available:
        tray = Tray(link, NotificationPreferences(paths.config_dir), parent=window)
        tray.open_dashboard.connect(window.open_dashboard)
        tray.quit_requested.connect(window.request_quit)
    return link, window, tray


def run_gui(paths: AppPaths) -> int:
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    QCoreApplication.setApplicationName("SpareCycles")
    install_translations(app)
    apply_theme(app, saved_theme(paths.config_dir))
    link, window, tray = build_app(paths)
    app.setQuitOnLastWindowClosed(tray is None)
    window.show()
    if tray is not None:
        tray.show()
    # The link starts once the window has painted: its imports (httpx, the API's models) and its first
    # calls would otherwise share the interpreter with the first paint. A window that never paints
    # (minimised by the desktop) starts it after a moment anyway.
    window.first_painted.connect(link.start)
    QTimer.singleShot(FIRST_PAINT_WAIT_MS, link.start)
    window.onboard_when_connected(open_on_first_start)  # the wizard, on the first start only
    try:
        return int(app.exec())
    finally:
        link.close()
