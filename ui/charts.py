"""The earnings chart: gross and power cost as bars, net as a line, one group per day, week or month, with a
readout of the bucket under the mouse. pyqtgraph draws it (QtCharts is not in PySide6-Essentials, and
pyqtgraph keeps memory low); its colours follow the window's palette except the three series' accents."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from sparecycles.ui.money import BucketFigures

DAY_S = 86_400.0
BUCKET_WIDTH_S = {"day": DAY_S, "week": 7 * DAY_S, "month": 30 * DAY_S}
GROSS_COLOUR = QColor(46, 160, 67)  # accents that mean something: earned, spent, left
COST_COLOUR = QColor(230, 126, 34)
NET_COLOUR = QColor(52, 120, 246)


class EarningsChart(QWidget):
    """Shows a list of :class:`BucketFigures`; ``readout`` says the figures of the bucket last hovered."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.figures: list[BucketFigures] = []
        self._width_s = DAY_S
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(y=True, alpha=0.2)
        self.legend = self.plot.addLegend(offset=(10, 10))
        self.readout = QLabel(self.tr("Point at a bar to read its figures."))
        self.readout.setWordWrap(True)
        self.crosshair = pg.InfiniteLine(angle=90, movable=False)
        self.crosshair.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        layout.addWidget(self.readout)
        self._apply_palette()
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)

    def _apply_palette(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.Text)
        self.plot.setBackground(palette.color(QPalette.ColorRole.Base))
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(text)
            axis.setTextPen(text)
        self.crosshair.setPen(pg.mkPen(palette.color(QPalette.ColorRole.Mid), style=pg.QtCore.Qt.PenStyle.DashLine))

    def show_figures(self, figures: Sequence[BucketFigures], by: str, gross_unit: str, money_unit: str) -> None:
        """Draw the buckets; units go into the legend, since gross may be in tokens when no rate is set."""
        self.figures = list(figures)
        self._width_s = BUCKET_WIDTH_S.get(by, DAY_S)
        self.plot.clear()
        self.legend.clear()
        self.plot.addItem(self.crosshair, ignoreBounds=True)
        self.crosshair.setVisible(False)
        self.readout.setText(
            self.tr("Point at a bar to read its figures.") if figures else self.tr("Nothing recorded in this period.")
        )
        if not figures:
            return
        starts = [figure.start_s for figure in figures]
        bar = self._width_s * 0.35
        gross = pg.BarGraphItem(
            x=[start + self._width_s * 0.5 - bar * 0.5 for start in starts],
            height=[figure.gross for figure in figures],
            width=bar,
            brush=GROSS_COLOUR,
            pen=pg.mkPen(None),
            name=self.tr("gross ({unit})").format(unit=gross_unit),
        )
        cost = pg.BarGraphItem(
            x=[start + self._width_s * 0.5 + bar * 0.5 for start in starts],
            height=[figure.power_cost for figure in figures],
            width=bar,
            brush=COST_COLOUR,
            pen=pg.mkPen(None),
            name=self.tr("power cost ({unit})").format(unit=money_unit),
        )
        self.plot.addItem(gross)
        self.plot.addItem(cost)
        xs, ys = self._net_line(figures)
        if xs:
            self.plot.plot(
                xs,
                ys,
                connect="finite",
                pen=pg.mkPen(NET_COLOUR, width=2),
                symbol="o",
                symbolBrush=NET_COLOUR,
                symbolSize=6,
                name=self.tr("net ({unit})").format(unit=money_unit),
            )
        self.plot.autoRange()

    def _net_line(self, figures: Sequence[BucketFigures]) -> tuple[list[float], list[float]]:
        """Net at each bucket's middle; the line breaks (NaN) over buckets the ledger has no row for."""
        xs: list[float] = []
        ys: list[float] = []
        previous: float | None = None
        for figure in figures:
            if figure.net is None:
                continue
            if previous is not None and figure.start_s - previous > self._width_s * 1.5:
                xs.append(math.nan)
                ys.append(math.nan)
            xs.append(figure.start_s + self._width_s * 0.5)
            ys.append(figure.net)
            previous = figure.start_s
        return xs, ys

    def bucket_at(self, x_s: float) -> int | None:
        """The index of the bucket that covers the time ``x_s`` (POSIX seconds), if any."""
        for index, figure in enumerate(self.figures):
            if figure.start_s <= x_s < figure.start_s + self._width_s:
                return index
        return None

    def show_readout(self, index: int) -> None:
        """Put bucket ``index``'s date and its three figures into the readout, and the cursor on it."""
        figure = self.figures[index]
        self.crosshair.setPos(figure.start_s + self._width_s * 0.5)
        self.crosshair.setVisible(True)
        self.readout.setText(
            self.tr("{bucket}: gross {gross}, power cost {cost}, net {net}").format(
                bucket=figure.label, gross=figure.gross_text, cost=figure.power_cost_text, net=figure.net_text
            )
        )

    def _mouse_moved(self, position: QPointF) -> None:
        if not self.plot.getPlotItem().vb.sceneBoundingRect().contains(position):
            return
        index = self.bucket_at(self.plot.getPlotItem().vb.mapSceneToView(position).x())
        if index is not None:
            self.show_readout(index)
