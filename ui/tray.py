"""The tray icon: its look says working / waiting / paused / error, its tooltip today's net, its menu
pauses, resumes and snoozes the agent; it shows the desktop notifications the owner left on.

Plain Xvfb (and some desktops) have no tray host: then the app keeps its main window open instead, and
tests trigger the menu's actions directly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from sparecycles.config import configured_zone
from sparecycles.control.ledger import PayoutList
from sparecycles.control.models import AgentEvent, AgentState, StatusDocument
from sparecycles.ui.agent_link import AgentLink, LinkState
from sparecycles.ui.notifications import (
    Notification,
    NotificationPreferences,
    notification_for_event,
    notification_for_payouts,
    notification_for_status,
)
from sparecycles.ui.today import TodayWatcher

ICON_SIZE = 64
PAYOUTS_REFRESH_MS = 60_000


class TrayLook(StrEnum):
    WORKING = "working"
    WAITING = "waiting"
    PAUSED = "paused"
    ERROR = "error"


def look_for(link_state: LinkState, status: StatusDocument | None) -> TrayLook:
    """The icon for the agent's state: an agent we cannot reach is an error, whatever it said last."""
    if link_state in (LinkState.DIED, LinkState.FAILED, LinkState.LOST) or status is None:
        return TrayLook.ERROR if link_state is not LinkState.STARTING else TrayLook.WAITING
    if status.state is AgentState.WORKING:
        return TrayLook.WORKING
    if status.state in (AgentState.PAUSED, AgentState.SNOOZED, AgentState.STOPPING):
        return TrayLook.PAUSED
    return TrayLook.WAITING


# The accents carry meaning (green works, grey waits, amber paused, red broken); the shapes differ too,
# so the look reads without colour: a play triangle, a clock, two bars, an exclamation mark.
_ACCENTS = {
    TrayLook.WORKING: "#2e9d4f",
    TrayLook.WAITING: "#7a7f87",
    TrayLook.PAUSED: "#d9931a",
    TrayLook.ERROR: "#d23b3b",
}


def draw_icon(look: TrayLook, size: int = ICON_SIZE) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    accent = QColor(_ACCENTS[look])
    white = QColor("white")
    s = float(size)
    if look is TrayLook.ERROR:  # a triangle (a warning sign), not a disc
        outline = QPolygonF([QPointF(s / 2, s * 0.06), QPointF(s * 0.96, s * 0.92), QPointF(s * 0.04, s * 0.92)])
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(accent))
        painter.drawPolygon(outline)
        painter.setBrush(QBrush(white))
        painter.drawRoundedRect(QRectF(s * 0.45, s * 0.34, s * 0.1, s * 0.32), s * 0.04, s * 0.04)
        painter.drawEllipse(QPointF(s / 2, s * 0.78), s * 0.06, s * 0.06)
    else:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(accent))
        painter.drawEllipse(QRectF(s * 0.04, s * 0.04, s * 0.92, s * 0.92))
        painter.setBrush(QBrush(white))
        if look is TrayLook.WORKING:
            play = [QPointF(s * 0.38, s * 0.26), QPointF(s * 0.76, s / 2), QPointF(s * 0.38, s * 0.74)]
            painter.drawPolygon(QPolygonF(play))
        elif look is TrayLook.PAUSED:
            painter.drawRect(QRectF(s * 0.30, s * 0.27, s * 0.13, s * 0.46))
            painter.drawRect(QRectF(s * 0.57, s * 0.27, s * 0.13, s * 0.46))
        else:  # waiting: a clock face
            pen = QPen(white, s * 0.08, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            path = QPainterPath(QPointF(s / 2, s * 0.24))
            path.lineTo(QPointF(s / 2, s / 2))
            path.lineTo(QPointF(s * 0.70, s * 0.62))
            painter.drawPath(path)
    painter.end()
    return pixmap


def tomorrow_morning(now: datetime, zone: tzinfo | None = None) -> datetime:
    """ "Snooze until tomorrow": until 06:00 tomorrow in ``zone``, the agent's (``general.timezone``), whose
    clock its schedule and status follow; None: the system's own."""
    local = now.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(6, 0), tzinfo=local.tzinfo)


class Tray(QObject):
    """The tray icon and its menu. ``open_dashboard`` and ``quit_requested`` go to the main window."""

    open_dashboard = Signal()
    quit_requested = Signal()

    def __init__(
        self,
        link: AgentLink,
        preferences: NotificationPreferences,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._link = link
        self._preferences = preferences
        self._clock = clock
        self._last_status: StatusDocument | None = None
        self._known_payouts: set[str] | None = None
        self._icons = {look: QIcon(draw_icon(look)) for look in TrayLook}
        self.look = TrayLook.WAITING
        self.icon = QSystemTrayIcon(self._icons[self.look], self)
        self.menu = QMenu()
        self.pause_action = self._action(self.tr("Pause"), self.pause)
        self.resume_action = self._action(self.tr("Resume"), self.resume)
        snooze = self.menu.addMenu(self.tr("Snooze"))
        self.snooze_1h_action = self._action(self.tr("1 hour"), lambda: self.snooze(3600), snooze)
        self.snooze_4h_action = self._action(self.tr("4 hours"), lambda: self.snooze(4 * 3600), snooze)
        self.snooze_tomorrow_action = self._action(self.tr("Until tomorrow"), self.snooze_until_tomorrow, snooze)
        self.menu.addSeparator()
        self.open_action = self._action(self.tr("Open dashboard"), self.open_dashboard.emit)
        self.quit_action = self._action(self.tr("Quit"), self.quit_requested.emit)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        self.today = TodayWatcher(link, self)
        self.today.changed.connect(lambda _figure: self._update_tooltip())
        link.status_changed.connect(self._on_status)
        link.event_received.connect(self._on_event)
        link.state_changed.connect(self._on_link_state)
        self._payouts_timer = self.startTimer(PAYOUTS_REFRESH_MS)
        self._update_look()
        self._update_tooltip()

    def _action(self, text: str, slot: Callable[[], object], menu: QMenu | None = None) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(lambda _checked=False: slot())
        (menu or self.menu).addAction(action)
        return action

    def show(self) -> None:
        self.icon.show()

    # -- commands (the agent answers with its new status, which the stream also brings) -------------------

    def pause(self) -> None:
        self._link.call(lambda client: client.pause(), failed=self._command_failed)

    def resume(self) -> None:
        self._link.call(lambda client: client.resume(), failed=self._command_failed)

    def snooze(self, seconds: int) -> None:
        self._link.call(lambda client: client.snooze(seconds), failed=self._command_failed)

    def snooze_until_tomorrow(self) -> None:
        until = tomorrow_morning(self._clock(), configured_zone(self._link.paths.config_file))
        self._link.call(lambda client: client.snooze(until=until), failed=self._command_failed)

    def _command_failed(self, message: str) -> None:
        self.icon.showMessage(self.tr("SpareCycles"), message, QSystemTrayIcon.MessageIcon.Warning)

    # -- what the agent says -----------------------------------------------------------------------------

    def _on_status(self, status: StatusDocument) -> None:
        self.notify(notification_for_status(self._last_status, status))
        self._last_status = status
        self._update_look()
        self._update_tooltip()

    def _on_link_state(self, _state: str, _message: str) -> None:
        """The agent came, went or died: the icon and the tooltip say so (not what it said last)."""
        self._update_look()
        self._update_tooltip()

    def _on_event(self, event: AgentEvent) -> None:
        self.notify(notification_for_event(event))

    def timerEvent(self, event: object) -> None:
        self._link.call(lambda client: client.payouts(), self._on_payouts, lambda _message: None)

    def _on_payouts(self, payouts: PayoutList) -> None:
        self.notify(notification_for_payouts(self._known_payouts, payouts.payouts))
        self._known_payouts = {payout.tx_hash for payout in payouts.payouts}

    def notify(self, notification: Notification | None) -> None:
        """Show ``notification`` unless the owner turned its kind off."""
        if notification is None or not self._preferences.enabled(notification.kind):
            return
        icon = QSystemTrayIcon.MessageIcon.Warning if notification.warning else QSystemTrayIcon.MessageIcon.Information
        self.icon.showMessage(notification.title, notification.message, icon)

    def _update_look(self) -> None:
        self.look = look_for(self._link.state, self._link.status)
        self.icon.setIcon(self._icons[self.look])
        paused = self.look is TrayLook.PAUSED
        self.pause_action.setEnabled(not paused)
        self.resume_action.setEnabled(paused)

    def _update_tooltip(self) -> None:
        """The agent's reason and today's figure; while it does not answer, only why (no stale figure)."""
        status = self._link.status
        if self._link.state is not LinkState.CONNECTED or status is None:
            state = self._link_words()
            self.icon.setToolTip(self.tr("SpareCycles — {state}").format(state=state))
            return
        today = self.tr("Today: {net}").format(net=self.today.net_text())
        self.icon.setToolTip(self.tr("SpareCycles — {state}").format(state=status.reason) + "\n" + today)

    def _link_words(self) -> str:
        """The link's state in a line: a died agent's message is its log, which is no tooltip."""
        if self._link.state is LinkState.DIED:
            return self.tr("the agent stopped")
        return self._link.message.splitlines()[0] if self._link.message else ""

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.open_dashboard.emit()
