"""Render installer/linux/sparecycles.svg into installer/windows/sparecycles.ico (256 x 256, which Windows
scales down) with Qt, which the app already carries:

    QT_QPA_PLATFORM=offscreen python installer/windows/make_icon.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent


def main() -> int:
    _app = QGuiApplication(sys.argv)
    renderer = QSvgRenderer(str(HERE.parent / "linux" / "sparecycles.svg"))
    image = QImage(256, 256, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return 0 if image.save(str(HERE / "sparecycles.ico"), "ICO") else 1


if __name__ == "__main__":
    sys.exit(main())
