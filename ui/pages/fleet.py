"""The studio fleet, for a studio's operator: every machine of the studio's marketplace with its state and reason,
GPUs, jobs, today's GPU-hours and energy, last seen and agent version; and the remote actions (drain, pause until,
resume, cancel a machine's job).

It speaks to the marketplace's admin API with an admin token (``sparecycles market admin-token NAME``), which is
kept in the OS keyring, never in a file; the operator's signing key never comes near the GUI. Calls run on a
worker thread; the table is read again every few seconds while the page is shown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sparecycles.fleet_admin import FleetAdminClient, FleetAdminError
from sparecycles.protocol.fleet import FleetMachine
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.gui_prefs import gui_prefs
from sparecycles.ui.tray import tomorrow_morning

log = logging.getLogger(__name__)

REFRESH_MS = 10_000
FLEET_URL = "fleet/url"
KEYRING_SERVICE = "SpareCycles fleet view"


# The keyring is called on worker threads (a D-Bus call may take long), one call at a time: a read that starts
# while Connect is still storing the token (a page opened right after) waits for it and finds the token.
_keyring_lock = threading.Lock()


def load_token(url: str) -> str | None:
    """The admin token kept for ``url`` in the OS keyring, if any (none where no keyring works). May block."""
    import keyring
    from keyring.errors import KeyringError

    try:
        with _keyring_lock:
            return keyring.get_password(KEYRING_SERVICE, url)
    except KeyringError as exc:
        log.info("No admin token read from the keyring: %s", exc)
        return None


def keep_token(url: str, token: str) -> str | None:
    """Keep the admin token in the OS keyring; the reason in words when it cannot be kept (it still works now).
    May block."""
    import keyring
    from keyring.errors import KeyringError

    try:
        with _keyring_lock:
            keyring.set_password(KEYRING_SERVICE, url, token)
    except KeyringError as exc:
        return str(exc)
    return None


class _Call(QRunnable):
    def __init__(self, work: Callable[[], Any], deliver: Callable[[bool, Any], None]) -> None:
        super().__init__()
        self._work, self._deliver = work, deliver

    def run(self) -> None:
        try:
            result = self._work()
        except FleetAdminError as exc:
            self._deliver(False, str(exc))
        except Exception as exc:  # a bug must not kill the worker silently
            log.exception("A fleet call failed")
            self._deliver(False, f"unexpected error: {exc}")
        else:
            self._deliver(True, result)


class _Delivery(QObject):
    delivered = Signal(object, bool, object)  # callback pair, ok, value


class FleetPage(QWidget):
    COLUMNS = ("machine", "group", "state", "reason", "gpus", "jobs", "today", "last seen", "version")

    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        self.title = self.tr("Studio fleet")
        self.machines: list[FleetMachine] = []
        self._url = ""
        self._token = ""
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._delivery = _Delivery(self)
        self._delivery.delivered.connect(self._on_delivered)
        self._reading = False

        intro = QLabel(
            self.tr(
                "For a studio's operator: see every machine of the studio and act on one. Give the studio "
                "marketplace's address and an admin token (`sparecycles market admin-token NAME` on its machine)."
            )
        )
        intro.setWordWrap(True)
        self.url = QLineEdit(str(gui_prefs(link.paths).value(FLEET_URL, "") or ""))
        self.url.setPlaceholderText("https://")
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText(self.tr("admin token (sco_…), kept in the system keyring"))
        self.connect_button = QPushButton(self.tr("Connect"))
        self.connect_button.clicked.connect(self.connect_fleet)
        form = QFormLayout()
        form.addRow(self.tr("Marketplace:"), self.url)
        form.addRow(self.tr("Admin token:"), self.token)
        self.message = QLabel()
        self.message.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.connect_button)
        layout.addWidget(self.message)
        layout.addWidget(self._build_table(), 1)
        layout.addLayout(self._build_actions())
        self._selection_changed()

        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._keep_problem = ""  # why the token could not be kept in the keyring, shown with the table
        url = self.url.text()
        if url:  # the keyring is a D-Bus call that may take long: off the GUI thread
            self._run_plain(lambda: load_token(url), lambda kept: self._token_found(url, kept), self._message)

    def _build_table(self) -> QTableWidget:
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(
            [
                self.tr("Machine"),
                self.tr("Group"),
                self.tr("State"),
                self.tr("Reason"),
                self.tr("GPUs"),
                self.tr("Jobs"),
                self.tr("Today"),
                self.tr("Last seen"),
                self.tr("Version"),
            ]
        )
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        return self.table

    def _build_actions(self) -> QHBoxLayout:
        self.drain_button = QPushButton(self.tr("Drain"))
        self.drain_button.setToolTip(self.tr("Finish the current job, take no new one."))
        self.drain_button.clicked.connect(lambda: self._act(lambda client, m: client.drain(m.address, not m.drain)))
        self.pause_button = QToolButton()
        self.pause_button.setText(self.tr("Pause until…"))
        self.pause_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        pause_menu = QMenu(self.pause_button)
        pause_menu.addAction(self.tr("1 hour"), lambda: self._pause(timedelta(hours=1)))
        pause_menu.addAction(self.tr("4 hours"), lambda: self._pause(timedelta(hours=4)))
        pause_menu.addAction(self.tr("Until tomorrow morning"), lambda: self._pause(None))
        self.pause_button.setMenu(pause_menu)
        self.resume_button = QPushButton(self.tr("Resume"))
        self.resume_button.clicked.connect(lambda: self._act(lambda client, m: client.pause(m.address, None)))
        self.cancel_button = QPushButton(self.tr("Cancel its job"))
        self.cancel_button.clicked.connect(self._cancel_job)
        actions = QHBoxLayout()
        for button in (self.drain_button, self.pause_button, self.resume_button, self.cancel_button):
            actions.addWidget(button)
        actions.addStretch(1)
        return actions

    # -- connecting ------------------------------------------------------------------------------------

    def connect_fleet(self) -> None:
        url, token = self.url.text().strip(), self.token.text().strip()
        if not url.startswith(("http://", "https://")) or not token:
            self.message.setText(self.tr("Give the marketplace's address (https://…) and an admin token."))
            return
        self._url, self._token = url, token
        self._keep_problem = ""
        self.token.clear()
        prefs = gui_prefs(self.link.paths)
        prefs.setValue(FLEET_URL, url)
        prefs.sync()
        self._run_plain(lambda: keep_token(url, token), self._token_kept, self._message)
        self.refresh()
        self._timer.start(REFRESH_MS)

    def _token_found(self, url: str, kept: str | None) -> None:
        """The token kept for the address shown at start: connect with it (unless the user already did)."""
        if kept and not self._token:
            self._url, self._token = url, kept
            self.refresh()
            self._timer.start(REFRESH_MS)

    def _token_kept(self, problem: str | None) -> None:
        if problem is not None:
            self._keep_problem = self.tr("The token works for now but is not kept: {}").format(problem)
            self.message.setText(self._keep_problem)

    def _message(self, message: str) -> None:
        self.message.setText(message)

    def _client(self) -> FleetAdminClient:
        return FleetAdminClient(self._url, self._token)

    def _run(self, work: Callable[[FleetAdminClient], Any], done: Callable[[Any], None]) -> None:
        def call() -> Any:
            with self._client() as client:
                return work(client)

        self._run_plain(call, done, self._failed)

    def _run_plain(self, work: Callable[[], Any], done: Callable[[Any], None], failed: Callable[[str], None]) -> None:
        """``work()`` on the page's worker thread; ``done(result)`` or ``failed(message)`` on the GUI thread."""
        callbacks = (done, failed)
        self._pool.start(_Call(work, lambda ok, value: self._delivery.delivered.emit(callbacks, ok, value)))

    @Slot(object, bool, object)
    def _on_delivered(
        self, callbacks: tuple[Callable[[Any], None], Callable[[str], None]], ok: bool, value: Any
    ) -> None:
        done, failed = callbacks
        if ok:
            done(value)
        else:
            failed(str(value))

    def _failed(self, message: str) -> None:
        self._reading = False
        self.message.setText("\n".join(line for line in (message, self._keep_problem) if line))

    # -- the table -------------------------------------------------------------------------------------

    def refresh(self) -> None:
        if self._reading or not self._token:
            return
        self._reading = True
        self._run(lambda client: client.machines(), self.show_machines)

    def show_machines(self, machines: list[FleetMachine]) -> None:
        self._reading = False
        selected = self.selected()
        self.machines = machines
        self.message.setText(
            "\n".join(
                line
                for line in (
                    self.tr("{count} machine(s) in the studio.").format(count=len(machines))
                    if machines
                    else self.tr("No machine has joined a group yet: `sparecycles market enrol-code --group NAME`."),
                    self._keep_problem,
                )
                if line
            )
        )
        self.table.setRowCount(len(machines))
        for row, machine in enumerate(machines):
            for column, text in enumerate(self._cells(machine)):
                self.table.setItem(row, column, QTableWidgetItem(text))
            if selected is not None and machine.address == selected.address:
                self.table.selectRow(row)
        self._selection_changed()

    def _cells(self, machine: FleetMachine) -> list[str]:
        if not machine.online:
            state = self.tr("offline")
        elif machine.paused_until is not None:
            state = self.tr("paused until {time}").format(time=machine.paused_until.astimezone().strftime("%H:%M"))
        else:
            state = machine.state or self.tr("no report yet")
        if machine.drain:
            state = self.tr("{state}, draining").format(state=state)
        energy = f", {machine.energy_kwh_today:.2f} kWh" if machine.energy_kwh_today is not None else ""
        return [
            f"{machine.name} ({machine.address[:10]}…)",
            machine.group or "",
            state,
            machine.reason or "",
            ", ".join(gpu.name for gpu in machine.gpus),
            ", ".join(machine.jobs),
            f"{machine.gpu_hours_today:.2f} GPU-h{energy}",
            machine.last_seen_at.astimezone().strftime("%Y-%m-%d %H:%M"),
            machine.agent_version or "",
        ]

    def selected(self) -> FleetMachine | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.machines):
            return None
        return self.machines[rows[0].row()]

    def _selection_changed(self) -> None:
        machine = self.selected()
        for button in (self.drain_button, self.pause_button, self.resume_button):
            button.setEnabled(machine is not None)
        self.cancel_button.setEnabled(machine is not None and bool(machine.jobs))
        if machine is not None:
            self.drain_button.setText(self.tr("End drain") if machine.drain else self.tr("Drain"))

    # -- actions ---------------------------------------------------------------------------------------

    def _act(self, work: Callable[[FleetAdminClient, FleetMachine], Any]) -> None:
        machine = self.selected()
        if machine is None:
            return
        self._run(lambda client: work(client, machine), lambda _result: self.refresh())

    def _pause(self, length: timedelta | None) -> None:
        now = datetime.now(UTC)
        until = now + length if length is not None else tomorrow_morning(now.astimezone())
        self._act(lambda client, machine: client.pause(machine.address, until))

    def _cancel_job(self) -> None:
        machine = self.selected()
        if machine is not None and machine.jobs:
            job = machine.jobs[0]
            self._run(lambda client: client.cancel(job), lambda _view: self.refresh())
