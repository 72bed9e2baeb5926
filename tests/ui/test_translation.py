"""A translation file changes the app's words: a German catalogue for two of the main window's strings,
compiled with pyside6-lrelease as `make translations` does, loaded for a German locale by the same function
the app calls at start, and seen in a real window's title and navigation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLocale
from pytestqt.qtbot import QtBot

import sparecycles
from sparecycles.paths import AppPaths
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.pages import page_factories
from sparecycles.ui.translation import install_translations
from sparecycles.ui.window import MainWindow, QuitChoice

LRELEASE = Path(sys.executable).parent / "pyside6-lrelease"
GERMAN = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de">
<context>
    <name>MainWindow</name>
    <message><source>Earnings</source><translation>Einnahmen</translation></message>
    <message><source>SpareCycles {version}</source><translation>SpareCycles {version} (Deutsch)</translation></message>
</context>
</TS>
"""


def test_a_compiled_translation_for_the_users_language_changes_the_windows_words(
    qtbot: QtBot, tmp_path: Path, home: Path
) -> None:
    (tmp_path / "sparecycles_de.ts").write_text(GERMAN, encoding="utf-8")
    subprocess.run(
        [str(LRELEASE), str(tmp_path / "sparecycles_de.ts"), "-qm", str(tmp_path / "sparecycles_de.qm")],
        check=True,
        capture_output=True,
    )
    app = QCoreApplication.instance()
    assert app is not None
    french = install_translations(app, QLocale("fr_FR"), folder=tmp_path)
    for translator in french:
        app.removeTranslator(translator)
    assert not any("sparecycles" in translator.filePath() for translator in french)  # none for French: English stays
    installed = install_translations(app, QLocale("de_DE"), folder=tmp_path)
    try:
        assert any(translator.filePath().endswith("sparecycles_de.qm") for translator in installed)
        window = MainWindow(
            AgentLink(AppPaths.from_environment({"SPARECYCLES_HOME": str(home)})),
            page_factories(),
            tray_available=False,
            ask_quit=lambda _parent: QuitChoice.LEAVE_RUNNING,  # closing at teardown must not ask
            quit_app=lambda: None,
        )
        qtbot.addWidget(window)
        assert window.windowTitle() == f"SpareCycles {sparecycles.__version__} (Deutsch)"
        assert window.sidebar.item(1).text() == "Einnahmen"  # a page not opened yet: the window's own label
        assert window.sidebar.item(2).text() == "Schedule"  # untranslated strings stay in English
    finally:
        for translator in installed:
            app.removeTranslator(translator)
