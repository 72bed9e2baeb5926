"""A week of half hours the user paints with the mouse: the schedule editor's grid.

Pressing on an empty cell paints every cell the drag passes; pressing on a painted one erases them, as
in a studio's rota sheet. The widget holds only the set of cells; turning them into rules is
:mod:`sparecycles.ui.schedule_cells`'s pure work.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from sparecycles.ui.schedule_cells import SLOTS_PER_DAY, Cell

DAY_LABEL_W = 44
HOUR_LABEL_H = 18


class WeekGrid(QWidget):
    """Seven rows (Monday first) of 48 half-hour cells; ``changed`` after each paint stroke."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._cells: set[Cell] = set()
        self._painting: bool | None = None  # True paints, False erases, None: no stroke
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumSize(DAY_LABEL_W + SLOTS_PER_DAY * 8, HOUR_LABEL_H + 7 * 18)
        self.setToolTip(self.tr("Drag to paint the hours SpareCycles may work; start on a painted hour to erase."))
        self._day_names = [
            self.tr("Mon"),
            self.tr("Tue"),
            self.tr("Wed"),
            self.tr("Thu"),
            self.tr("Fri"),
            self.tr("Sat"),
            self.tr("Sun"),
        ]

    def sizeHint(self) -> QSize:
        return QSize(DAY_LABEL_W + SLOTS_PER_DAY * 14, HOUR_LABEL_H + 7 * 26)

    def cells(self) -> frozenset[Cell]:
        return frozenset(self._cells)

    def set_cells(self, cells: Iterable[Cell]) -> None:
        self._cells = set(cells)
        self.update()

    # -- geometry -----------------------------------------------------------------------------------

    def _cell_size(self) -> tuple[float, float]:
        return (
            (self.width() - DAY_LABEL_W) / SLOTS_PER_DAY,
            (self.height() - HOUR_LABEL_H) / 7,
        )

    def cell_rect(self, cell: Cell) -> QRect:
        width, height = self._cell_size()
        day, slot = cell
        left = DAY_LABEL_W + round(slot * width)
        top = HOUR_LABEL_H + round(day * height)
        return QRect(
            left,
            top,
            DAY_LABEL_W + round((slot + 1) * width) - left,
            HOUR_LABEL_H + round((day + 1) * height) - top,
        )

    def cell_at(self, point: QPoint) -> Cell | None:
        width, height = self._cell_size()
        slot = int((point.x() - DAY_LABEL_W) // width)
        day = int((point.y() - HOUR_LABEL_H) // height)
        if 0 <= day < 7 and 0 <= slot < SLOTS_PER_DAY:
            return (day, slot)
        return None

    # -- painting by the user -----------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if event.button() != Qt.MouseButton.LeftButton or cell is None:
            return
        self._painting = cell not in self._cells
        self._apply(cell)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if self._painting is not None and cell is not None:
            self._apply(cell)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._painting is not None:
            self._painting = None
            self.changed.emit()

    def _apply(self, cell: Cell) -> None:
        if self._painting:
            self._cells.add(cell)
        else:
            self._cells.discard(cell)
        self.update(self.cell_rect(cell))

    # -- drawing ------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        grid_pen = palette.color(QPalette.ColorRole.Mid)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        for day, name in enumerate(self._day_names):
            row = self.cell_rect((day, 0))
            painter.drawText(
                QRect(0, row.top(), DAY_LABEL_W - 4, row.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                name,
            )
        for hour in range(0, 24, 3):
            column = self.cell_rect((0, hour * 2))
            painter.drawText(
                QRect(column.left(), 0, 40, HOUR_LABEL_H),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{hour:02d}",
            )
        highlight = palette.color(QPalette.ColorRole.Highlight)
        for cell in self._cells:
            painter.fillRect(self.cell_rect(cell).adjusted(0, 0, -1, -1), highlight)
        painter.setPen(grid_pen)
        for day in range(8):
            y = HOUR_LABEL_H + round(day * self._cell_size()[1])
            painter.drawLine(DAY_LABEL_W, min(y, self.height() - 1), self.width(), min(y, self.height() - 1))
        for slot in range(0, SLOTS_PER_DAY + 1, 2):
            x = DAY_LABEL_W + round(slot * self._cell_size()[0])
            painter.drawLine(min(x, self.width() - 1), HOUR_LABEL_H, min(x, self.width() - 1), self.height())
        painter.end()
