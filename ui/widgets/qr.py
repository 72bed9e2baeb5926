"""A QR code drawn from segno's matrix straight into a QImage (no temporary files, no image plug-ins).

The code is dark on white whatever the theme: scanners expect it, so these are the two colours this app
hard-codes on purpose.
"""

from __future__ import annotations

import numpy as np
import segno
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QWidget

BORDER_MODULES = 4  # the quiet zone the QR standard asks for
DARK_GREY, LIGHT_GREY = 0, 255


def qr_modules(text: str) -> list[list[bool]]:
    """The code's modules, quiet zone included: True where a module is dark."""
    code = segno.make(text, micro=False)
    return [[bool(module) for module in row] for row in code.matrix_iter(scale=1, border=BORDER_MODULES)]


def qr_image(text: str, scale: int = 6) -> QImage:
    """The code as an image, each module ``scale`` pixels square."""
    grey = np.where(np.array(qr_modules(text), dtype=bool), DARK_GREY, LIGHT_GREY).astype(np.uint8)
    pixels = np.ascontiguousarray(grey.repeat(scale, axis=0).repeat(scale, axis=1))
    height, width = pixels.shape
    # copy(): the QImage must own its pixels, not borrow the array's
    return QImage(pixels.tobytes(), width, height, width, QImage.Format.Format_Grayscale8).copy()


class QrLabel(QLabel):
    """Shows ``text`` as a QR code; empty text shows nothing."""

    def __init__(self, parent: QWidget | None = None, scale: int = 5) -> None:
        super().__init__(parent)
        self.scale = scale
        self.encoded = ""
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)

    def set_text(self, text: str) -> None:
        self.encoded = text
        if text:
            self.setPixmap(QPixmap.fromImage(qr_image(text, self.scale)))
        else:
            self.clear()
