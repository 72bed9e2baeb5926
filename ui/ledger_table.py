"""The jobs table of the earnings page: one row per lease from the agent's ledger export, each cell with a
display text and a sort key (so "1.50" sorts as a number and a start as a time), behind a proxy that
sorts and filters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QCoreApplication,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from sparecycles.control.ledger import ExportRow
from sparecycles.ui.money import money_text, token_text

SORT_ROLE = Qt.ItemDataRole.UserRole
Index = QModelIndex | QPersistentModelIndex


def duration_text(seconds: float | None) -> str:
    """``3725`` → ``1 h 02 min``; ``42`` → ``42 s``; unknown (still running) → ``-``."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return QCoreApplication.translate("JobsTable", "{s} s").format(s=whole)
    hours, minutes = divmod(whole // 60, 60)
    return (
        QCoreApplication.translate("JobsTable", "{h} h {m:02d} min").format(h=hours, m=minutes)
        if hours
        else QCoreApplication.translate("JobsTable", "{m} min").format(m=minutes)
    )


def kwh_text(energy_wh: Decimal) -> str:
    return format((energy_wh / 1000).quantize(Decimal("0.0001")), "f")


def _with_currency(amount: Decimal | None, currency: str | None) -> str:
    return f"{money_text(amount)} {currency or ''}".strip() if amount is not None else "-"


Column = tuple[str, Callable[[ExportRow, int | None], str], Callable[[ExportRow], Any]]


def _columns() -> list[Column]:
    """(header, display text, sort key) per column."""
    return [
        (
            QCoreApplication.translate("JobsTable", "Start"),
            lambda r, _d: f"{r.started_local:%Y-%m-%d %H:%M}",
            lambda r: r.started_utc.timestamp(),
        ),
        (
            QCoreApplication.translate("JobsTable", "Duration"),
            lambda r, _d: duration_text(r.run_time_s),
            lambda r: r.run_time_s or -1.0,
        ),
        (QCoreApplication.translate("JobsTable", "GPU"), lambda r, _d: r.gpus, lambda r: r.gpus),
        (
            QCoreApplication.translate("JobsTable", "Energy (kWh)"),
            lambda r, _d: kwh_text(r.energy_wh),
            lambda r: float(r.energy_wh),
        ),
        (
            QCoreApplication.translate("JobsTable", "Power cost"),
            lambda r, _d: _with_currency(r.power_cost, r.currency),
            lambda r: float(r.power_cost),
        ),
        (
            QCoreApplication.translate("JobsTable", "Gross"),
            lambda r, d: token_text(r.gross_base_units, d),
            lambda r: float(r.gross_base_units),
        ),
        (
            QCoreApplication.translate("JobsTable", "Net"),
            lambda r, _d: _with_currency(r.net, r.currency),
            lambda r: float(r.net) if r.net is not None else float("-inf"),
        ),
        (
            QCoreApplication.translate("JobsTable", "Voucher"),
            lambda r, _d: voucher_text(r.voucher_status),
            lambda r: r.voucher_status,
        ),
    ]


def voucher_text(status: str) -> str:
    return {
        "confirmed": QCoreApplication.translate("JobsTable", "confirmed"),
        "pending": QCoreApplication.translate("JobsTable", "pending"),
        "unpaid": QCoreApplication.translate("JobsTable", "unpaid"),
    }.get(status, status)


class JobsTableModel(QAbstractTableModel):
    """The export's rows; gross is in whole tokens when the token's decimals are known, else base units."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._columns = _columns()
        self.rows: list[ExportRow] = []
        self._decimals: int | None = None

    def set_rows(self, rows: Sequence[ExportRow], decimals: int | None) -> None:
        self.beginResetModel()
        self.rows, self._decimals = list(rows), decimals
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        _header, text, key = self._columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return text(row, self._decimals)
        if role == SORT_ROLE:
            return key(row)
        if role == Qt.ItemDataRole.ToolTipRole:
            return QCoreApplication.translate("JobsTable", "lease {lease}, job {job}").format(
                lease=row.lease_id, job=row.job_id
            )
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() not in (0, 2, 7):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self._columns[section][0]
        return None


def sorting_proxy(model: JobsTableModel) -> QSortFilterProxyModel:
    """Sorts by each cell's key and keeps the rows where any cell's text contains the filter (any case)."""
    proxy = QSortFilterProxyModel(model)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    proxy.setFilterKeyColumn(-1)
    proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    return proxy
