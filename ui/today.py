"""Today's gross, power cost and net, kept fresh for the tray and the dashboard.

Read from the agent's ledger every minute and whenever a job changes state (that is when money moves),
with the token's decimals from the user's token rate, so base units can be shown as tokens.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from sparecycles.control.client import ControlClient
from sparecycles.control.ledger import LedgerSettingsView, TodayFigure
from sparecycles.control.models import AgentEvent, EventType
from sparecycles.ui import formatting
from sparecycles.ui.agent_link import AgentLink

REFRESH_MS = 60_000


class TodayWatcher(QObject):
    """Emits ``changed`` with the new figure; ``figure`` and ``decimals`` hold the latest."""

    changed = Signal(object)  # TodayFigure

    def __init__(self, link: AgentLink, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._link = link
        self.figure: TodayFigure | None = None
        self.decimals: int | None = None
        self._busy = False
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(REFRESH_MS)
        link.event_received.connect(self._on_event)
        link.state_changed.connect(lambda state, _message: self.refresh() if state == "connected" else None)
        if link.state.value == "connected":
            self.refresh()

    def refresh(self) -> None:
        if self._busy:
            return
        self._busy = True
        self._link.call(_read, self._on_read, self._on_failed)

    def net_text(self) -> str:
        """The tray's figure: net in the user's currency when known, else gross in tokens."""
        figure = self.figure
        if figure is None:
            return QCoreApplication.translate("Today", "not known yet")
        if figure.net is not None:
            return formatting.money(figure.net, figure.currency)
        gross = formatting.tokens(figure.gross_base_units, self.decimals)
        return QCoreApplication.translate("Today", "{gross} gross (no tariff or token rate set)").format(gross=gross)

    def _on_event(self, event: AgentEvent) -> None:
        if event.type in (EventType.JOB_STATE, EventType.SETTINGS_CHANGED):
            self.refresh()

    def _on_read(self, result: tuple[TodayFigure, LedgerSettingsView]) -> None:
        self._busy = False
        self.figure, ledger = result
        self.decimals = ledger.token_rate.decimals if ledger.token_rate is not None else None
        self.changed.emit(self.figure)

    def _on_failed(self, _message: str) -> None:
        self._busy = False


def _read(client: ControlClient) -> tuple[TodayFigure, LedgerSettingsView]:
    return client.today(), client.ledger()
