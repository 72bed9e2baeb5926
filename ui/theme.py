"""Light and dark: follow the system's colour scheme, or force one (the settings page, the screenshots).

Widgets use palette roles only, so switching the palette is all a theme needs. Qt 6.5+ reports the
system's scheme through :class:`QStyleHints`; forcing one sets ``colorScheme`` where Qt 6.8 allows it and
otherwise installs a Fusion palette of that scheme.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from sparecycles.ui.gui_prefs import THEME, prefs_at

ThemeChoice = Literal["system", "light", "dark"]
THEMES: tuple[ThemeChoice, ...] = ("system", "light", "dark")


def system_is_dark(app: QGuiApplication) -> bool:
    """Whether the desktop asks for dark colours (unknown counts as light)."""
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def dark_palette() -> QPalette:
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#202124",
        QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: "#2a2b2e",
        QPalette.ColorRole.ToolTipBase: "#2a2b2e",
        QPalette.ColorRole.ToolTipText: "#e8eaed",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6",
        QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#2d2e31",
        QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#3d7bd9",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#8ab4f8",
        QPalette.ColorRole.Mid: "#3c4043",
        QPalette.ColorRole.Dark: "#121212",
        QPalette.ColorRole.Light: "#3c4043",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#80868b"))
    return palette


def light_palette() -> QPalette:
    from PySide6.QtWidgets import QStyleFactory

    style = QStyleFactory.create("Fusion")
    return style.standardPalette() if style is not None else QPalette()


def apply_theme(app: QApplication, choice: ThemeChoice = "system") -> bool:
    """Apply ``choice``; return whether the result is dark. With "system", later switches of the desktop
    between light and dark are followed too."""
    if choice not in THEMES:
        raise ValueError(f"theme must be one of {', '.join(THEMES)}, not {choice!r}")
    app.setProperty(_CHOICE, choice)
    if not app.property(_FOLLOWING):
        app.setProperty(_FOLLOWING, True)
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: _follow(app))
    hints = app.styleHints()
    if choice == "system":
        if hasattr(hints, "unsetColorScheme"):  # Qt 6.8+
            hints.unsetColorScheme()
        dark = system_is_dark(app)
        app.setPalette(dark_palette() if dark else light_palette())
        return dark
    dark = choice == "dark"
    if hasattr(hints, "setColorScheme"):  # Qt 6.8+
        hints.setColorScheme(Qt.ColorScheme.Dark if dark else Qt.ColorScheme.Light)
    app.setStyle("Fusion")  # a platform style may ignore a forced palette
    app.setPalette(dark_palette() if dark else light_palette())
    return dark


def current_theme(app: QApplication) -> ThemeChoice:
    choice = app.property(_CHOICE)
    return choice if choice in THEMES else "system"


def is_dark(app: QApplication) -> bool:
    """Whether the palette in force is dark (icons drawn to match ask this)."""
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


_CHOICE = "sparecycles_theme"
_FOLLOWING = "sparecycles_theme_following"


def _follow(app: QApplication) -> None:
    if current_theme(app) == "system":
        apply_theme(app, "system")


def saved_theme(config_dir: Path) -> ThemeChoice:
    """The theme the user chose on the settings page ("system" until they chose one)."""
    value = str(prefs_at(config_dir).value(THEME, "system"))
    return value if value in THEMES else "system"


def save_theme(config_dir: Path, choice: ThemeChoice) -> None:
    prefs = prefs_at(config_dir)
    prefs.setValue(THEME, choice)
    prefs.sync()
