"""The desktop app is language-ready: every string it shows goes through Qt's translation functions, and the
translation template (ui/translations/sparecycles.ts) holds all of them. A new label written as a bare
literal fails here with its file and line."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[1] / "ui"
TEMPLATE = UI / "translations" / "sparecycles.ts"
LUPDATE = Path(sys.executable).parent / "pyside6-lupdate"

# Calls whose first argument is shown to the user (QMessageBox's static functions: their title and text).
SHOWN = {
    "setText", "setToolTip", "setWindowTitle", "setPlaceholderText", "setStatusTip", "setWhatsThis", "setTitle",
    "setSubTitle", "addItem", "addAction", "addTab", "addRow", "showMessage", "setLabelText", "setButtonText",
    "QLabel", "QPushButton", "QCheckBox", "QRadioButton", "QGroupBox", "QAction", "QToolButton", "QMenu",
}  # fmt: skip
MESSAGE_BOX = {"information", "warning", "critical", "question"}
WORDS = re.compile(r"[A-Za-z]{3,}")


def _literal_words(node: ast.expr) -> str | None:
    """The text of a string literal or f-string that holds words (not a URL), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(
            part.value for part in node.values if isinstance(part, ast.Constant) and isinstance(part.value, str)
        )
    else:
        return None
    if text.lstrip().startswith(("http://", "https://")):
        return None
    return text if WORDS.search(text) else None


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def untranslated_literals(folder: Path) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = _called_name(node)
            shown = node.args[:1] if name in SHOWN else node.args[1:3] if name in MESSAGE_BOX else []
            for argument in shown:
                text = _literal_words(argument)
                if text is not None:
                    found.append(f"{path.relative_to(folder.parent)}:{node.lineno}: {text!r}")
    return found


def test_the_checker_finds_a_bare_label_and_passes_a_translated_one(tmp_path: Path) -> None:
    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "page.py").write_text(
        'label = QLabel("Today\'s earnings")\n'
        'button.setText(f"Claim {amount}")\n'
        'title = QLabel(self.tr("Wallet"))\n'
        'url.setPlaceholderText("https://")\n'
        'dash.setText("—")\n'
    )
    assert untranslated_literals(ui) == ['ui/page.py:1: "Today\'s earnings"', "ui/page.py:2: 'Claim '"]


def test_every_string_the_app_shows_goes_through_translation() -> None:
    assert untranslated_literals(UI) == []


def _messages(ts_file: Path) -> set[tuple[str, str]]:
    root = ET.parse(ts_file).getroot()  # noqa: S314 - our own file and lupdate's output
    return {
        (context.findtext("name") or "", message.findtext("source") or "")
        for context in root.iter("context")
        for message in context.iter("message")
    }


@pytest.mark.skipif(not LUPDATE.exists(), reason="pyside6-lupdate comes with PySide6")
def test_the_translation_template_holds_every_translatable_string(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.ts"
    sources = sorted(str(path) for path in UI.rglob("*.py"))
    subprocess.run(
        [str(LUPDATE), "-no-obsolete", "-locations", "none", *sources, "-ts", str(fresh)],
        check=True,
        capture_output=True,
    )
    committed, current = _messages(TEMPLATE), _messages(fresh)
    assert len(current) > 250  # the app's strings were found at all
    missing, stale = current - committed, committed - current
    assert not missing, f"run `make translations`: {len(missing)} new strings, e.g. {sorted(missing)[:3]}"
    assert not stale, f"run `make translations`: {len(stale)} strings gone, e.g. {sorted(stale)[:3]}"
