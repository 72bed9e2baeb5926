"""Translations: every visible string goes through Qt's ``tr``/``translate`` (tests/ui/test_translation.py
checks), so a language is one file. ``ui/translations/sparecycles.ts`` is the template with every source
string (`make translations` refreshes it with pyside6-lupdate); a translator copies it to
``sparecycles_<language>.ts`` (for example ``sparecycles_de.ts``), translates it in Qt Linguist, and
`make translations` compiles it to the ``.qm`` file loaded here for the system's language.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

TRANSLATIONS = Path(__file__).with_name("translations")


def install_translations(
    app: QCoreApplication, locale: QLocale | None = None, folder: Path = TRANSLATIONS
) -> list[QTranslator]:
    """Load SpareCycles' own translation for ``locale`` (the system's by default), and Qt's own for the
    standard buttons and dialogs, where they exist; return the translators installed (none for English)."""
    locale = QLocale() if locale is None else locale
    installed: list[QTranslator] = []
    for name, directory in (
        ("sparecycles", str(folder)),
        ("qtbase", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)),
    ):
        translator = QTranslator(app)
        if translator.load(locale, name, "_", directory) and app.installTranslator(translator):
            installed.append(translator)
    return installed
