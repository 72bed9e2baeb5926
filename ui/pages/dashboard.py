"""The dashboard: the agent's state with pause / resume / snooze, today's gross, power cost and net, and
a card per GPU with its live readings and the job it runs.

Statuses arrive about once a second through the link; cards are made once per GPU and then only
updated. The job list is read again when a job changes state (and every so often, in case an event was
missed); elapsed times tick on between readings.

Pause, resume and snooze act on the whole machine; each card's "This GPU" menu does the same for its GPU
alone. A GPU is taken out of sharing for good on the settings page (``[gpu] disabled``).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sparecycles.config import configured_zone
from sparecycles.control.ledger import TodayFigure
from sparecycles.control.models import AgentEvent, AgentState, EventType, StatusDocument
from sparecycles.ui import formatting
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.pages.gpu_card import GpuCard, RunningJob
from sparecycles.ui.today import TodayWatcher
from sparecycles.ui.tray import tomorrow_morning

JOBS_REFRESH_MS = 15_000
CARD_COLUMNS = 2
ACTIVE_JOB_STATES = ("pulling", "starting", "running", "paused")


def running_jobs(listed: list[dict[str, Any]], read_at: float) -> list[RunningJob]:
    """The agent's job list (running jobs carry their GPUs; ended ones do not) as the jobs running now."""
    return [
        RunningJob(
            job_id=str(job["job_id"]),
            state=str(job["state"]),
            gpus=tuple(int(index) for index in job.get("gpus", [])),
            run_time_s=float(job.get("run_time_s") or 0.0),
            read_at=read_at,
        )
        for job in listed
        if job.get("state") in ACTIVE_JOB_STATES and "gpus" in job
    ]


class DashboardPage(QWidget):
    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        self.title = self.tr("Dashboard")
        self.cards: dict[int, GpuCard] = {}
        self.jobs: list[RunningJob] = []
        self._jobs_busy = False

        layout = QVBoxLayout(self)
        layout.addLayout(self._build_header())
        layout.addLayout(self.studio_row)  # shown while in a studio group
        layout.addWidget(self.command_error)
        layout.addWidget(self._build_today())
        layout.addWidget(self._build_cards(), 1)

        self.today = TodayWatcher(link, self)
        self.today.changed.connect(self.show_today)
        self._jobs_timer = QTimer(self)
        self._jobs_timer.timeout.connect(self.refresh_jobs)
        self._jobs_timer.start(JOBS_REFRESH_MS)
        link.status_changed.connect(self.show_status)
        link.event_received.connect(self._on_event)
        link.state_changed.connect(lambda state, _message: self.refresh_jobs() if state == "connected" else None)
        if link.status is not None:
            self.show_status(link.status)
            self.refresh_jobs()

    def _build_header(self) -> QHBoxLayout:
        self.state = QLabel(self.tr("Waiting for the agent…"))
        font = QFont(self.state.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.state.setFont(font)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.studio = QLabel()
        self.studio.setWordWrap(True)
        self.leave_button = QPushButton(self.tr("Leave studio"))
        self.leave_button.clicked.connect(self._leave_studio)
        self.studio_row = QHBoxLayout()
        self.studio_row.addWidget(self.studio, 1)
        self.studio_row.addWidget(self.leave_button)
        self.studio.hide()
        self.leave_button.hide()
        self.pause_button = QPushButton(self.tr("Pause"))
        self.pause_button.clicked.connect(lambda: self._command(lambda client: client.pause()))
        self.pause_button.setToolTip(
            self.tr("Pauses work on every GPU. To stop sharing one GPU for good, turn it off in Settings.")
        )
        self.resume_button = QPushButton(self.tr("Resume"))
        self.resume_button.clicked.connect(lambda: self._command(lambda client: client.resume()))
        self.snooze_button = QToolButton()
        self.snooze_button.setText(self.tr("Snooze"))
        self.snooze_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        snooze_menu = QMenu(self.snooze_button)
        snooze_menu.addAction(self.tr("1 hour"), lambda: self._command(lambda client: client.snooze(3600)))
        snooze_menu.addAction(self.tr("4 hours"), lambda: self._command(lambda client: client.snooze(4 * 3600)))
        snooze_menu.addAction(self.tr("Until tomorrow"), self._snooze_until_tomorrow)
        self.snooze_button.setMenu(snooze_menu)
        self.command_error = QLabel()
        self.command_error.setWordWrap(True)
        self.command_error.hide()
        header = QHBoxLayout()
        header_text = QVBoxLayout()
        header_text.addWidget(self.state)
        header_text.addWidget(self.reason)
        header.addLayout(header_text, 1)
        for button in (self.pause_button, self.resume_button, self.snooze_button):
            header.addWidget(button)
        return header

    def _build_today(self) -> QGroupBox:
        self.gross = QLabel("—")
        self.power_cost = QLabel("—")
        self.net = QLabel("—")
        self.today_note = QLabel()
        self.today_note.setWordWrap(True)
        today_box = QGroupBox(self.tr("Today"))
        today = QGridLayout(today_box)
        for column, (label, value) in enumerate(
            ((self.tr("Gross"), self.gross), (self.tr("Power cost"), self.power_cost), (self.tr("Net"), self.net))
        ):
            today.addWidget(QLabel(label), 0, column)
            today.addWidget(value, 1, column)
        today.addWidget(self.today_note, 2, 0, 1, 3)
        return today_box

    def _build_cards(self) -> QScrollArea:
        self.cpu_jobs = QLabel()
        self.cpu_jobs.setWordWrap(True)
        self.no_gpus = QLabel()
        self.no_gpus.setWordWrap(True)
        self.cards_grid = QGridLayout()
        cards_holder = QWidget()
        cards_outer = QVBoxLayout(cards_holder)
        cards_outer.addWidget(self.no_gpus)
        cards_outer.addLayout(self.cards_grid)
        cards_outer.addWidget(self.cpu_jobs)
        cards_outer.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(cards_holder)
        return scroll

    # -- commands ----------------------------------------------------------------------------------------

    def _command(self, work: Any) -> None:
        self.command_error.hide()
        self.link.call(work, self.show_status, self._command_failed)

    def _snooze_until_tomorrow(self) -> None:
        until = tomorrow_morning(datetime.now().astimezone(), configured_zone(self.link.paths.config_file))
        self._command(lambda client: client.snooze(until=until))

    def _leave_studio(self) -> None:
        if self.confirm_leave(self):
            self.command_error.hide()
            self.link.call(
                lambda client: client.leave_studio(), lambda _group: None, self._command_failed, timeout=60.0
            )

    @staticmethod
    def confirm_leave(parent: QWidget) -> bool:
        """Asks before leaving (tests replace it)."""
        answer = QMessageBox.question(
            parent,
            parent.tr("Leave the studio?"),
            parent.tr("This computer stops following the studio's schedule and takes no more of its jobs."),
        )
        return answer == QMessageBox.StandardButton.Yes

    def _command_failed(self, message: str) -> None:
        self.command_error.setText(message)
        self.command_error.show()

    # -- what the agent says -----------------------------------------------------------------------------

    def _on_event(self, event: AgentEvent) -> None:
        if event.type is EventType.JOB_STATE:
            self.refresh_jobs()

    def refresh_jobs(self) -> None:
        if self._jobs_busy:
            return
        self._jobs_busy = True
        self.link.call(lambda client: client.jobs(), self._on_jobs, self._on_jobs_failed)

    def _on_jobs(self, listed: list[dict[str, Any]]) -> None:
        self._jobs_busy = False
        self.jobs = running_jobs(listed, time.monotonic())
        if self.link.status is not None:
            self.show_status(self.link.status)

    def _on_jobs_failed(self, _message: str) -> None:
        self._jobs_busy = False

    def show_status(self, status: StatusDocument) -> None:
        self.state.setText(_agent_state_words(self, status.state))
        self.reason.setText(status.reason)
        self.show_studio(status)
        paused = status.state in (AgentState.PAUSED, AgentState.SNOOZED)
        self.pause_button.setEnabled(not paused)
        self.resume_button.setEnabled(paused)
        now = time.monotonic()
        seen = set()
        for gpu in status.gpus:
            seen.add(gpu.index)
            card = self.cards.get(gpu.index)
            if card is None:
                card = self.cards[gpu.index] = GpuCard()
                card.pause_requested.connect(lambda index: self._command(lambda client: client.pause(gpu=index)))
                card.resume_requested.connect(lambda index: self._command(lambda client: client.resume(gpu=index)))
                card.snooze_requested.connect(
                    lambda index, seconds: self._command(lambda client: client.snooze(seconds, gpu=index))
                )
                position = len(self.cards) - 1
                self.cards_grid.addWidget(card, position // CARD_COLUMNS, position % CARD_COLUMNS)
            job = next((job for job in self.jobs if gpu.index in job.gpus), None)
            card.show_gpu(gpu, job, now)
        for index in set(self.cards) - seen:  # a GPU that went away (rare: a driver reset)
            self.cards.pop(index).deleteLater()
        if status.gpus:
            self.no_gpus.hide()
        else:
            self.no_gpus.setText(status.gpu_backend.reason or self.tr("No NVIDIA GPU found."))
            self.no_gpus.show()
        cpu_jobs = [job for job in self.jobs if not job.gpus]
        self.cpu_jobs.setVisible(bool(cpu_jobs))
        if cpu_jobs:
            lines = [f"{job.job_id} · {job.state} · {formatting.duration(job.elapsed_s(now))}" for job in cpu_jobs]
            self.cpu_jobs.setText(self.tr("Jobs on the CPU:") + "\n" + "\n".join(lines))

    def show_studio(self, status: StatusDocument) -> None:
        """'Schedule set by <studio>', and what the studio asked of this computer, while it is in a studio group."""
        fleet = status.fleet
        self.studio.setVisible(fleet is not None)
        self.leave_button.setVisible(fleet is not None)
        if fleet is None:
            return
        words = [
            self.tr("Schedule set by {studio} (group {group}); your own stricter settings still apply.").format(
                studio=fleet.studio, group=fleet.group
            )
        ]
        if fleet.drain:
            words.append(self.tr("The studio is draining this computer: it finishes its job and takes no new one."))
        if fleet.paused_until is not None:
            words.append(
                self.tr("Paused by the studio until {time}.").format(
                    time=fleet.paused_until.astimezone().strftime("%H:%M")
                )
            )
        self.studio.setText(" ".join(words))

    def show_today(self, figure: TodayFigure) -> None:
        self.gross.setText(formatting.tokens(figure.gross_base_units, self.today.decimals))
        # without a tariff the electricity's cost is not known (the figure is a bare 0)
        self.power_cost.setText(formatting.money(figure.power_cost, figure.currency) if figure.currency else "—")
        self.net.setText(formatting.money(figure.net, figure.currency))
        notes = []
        if figure.pending_base_units:
            pending = formatting.tokens(figure.pending_base_units, self.today.decimals)
            notes.append(self.tr("{pending} of it not yet covered by a voucher.").format(pending=pending))
        if figure.net is None:
            notes.append(self.tr("Net needs a tariff and a token rate (Settings)."))
        self.today_note.setText(" ".join(notes))
        self.today_note.setVisible(bool(notes))


def _agent_state_words(widget: QWidget, state: AgentState) -> str:
    words = {
        AgentState.READY: widget.tr("Ready for work"),
        AgentState.WORKING: widget.tr("Working"),
        AgentState.WAITING: widget.tr("Waiting"),
        AgentState.PAUSED: widget.tr("Paused"),
        AgentState.SNOOZED: widget.tr("Snoozed"),
        AgentState.STOPPING: widget.tr("Stopping"),
    }
    return words.get(state, state.value)
