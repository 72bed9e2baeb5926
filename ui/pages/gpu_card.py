"""One GPU on the dashboard: its name, state and the reason in words, live readings and its job.

The card's labels are made once and only their texts change, so a status every second costs no widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal, SignalInstance
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QMenu, QProgressBar, QToolButton, QWidget

from sparecycles.control.models import GpuStatus
from sparecycles.ui import formatting


@dataclass(frozen=True)
class RunningJob:
    """A job the agent runs now, as the dashboard shows it."""

    job_id: str
    state: str
    gpus: tuple[int, ...]
    run_time_s: float  # when read
    read_at: float  # time.monotonic() of the reading

    def elapsed_s(self, now: float) -> float:
        return self.run_time_s + (now - self.read_at if self.state == "running" else 0.0)


def _value(number: float | None, unit: str, digits: int = 0) -> str:
    return "—" if number is None else f"{number:.{digits}f} {unit}"


class GpuCard(QFrame):
    """Shows one GPU; its menu asks to pause, snooze or resume this GPU alone (the dashboard sends it)."""

    pause_requested = Signal(int)  # the GPU's index
    resume_requested = Signal(int)
    snooze_requested = Signal(int, int)  # the GPU's index, seconds

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index: int | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name = QLabel()
        bold = QFont(self.name.font())
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.15)
        self.name.setFont(bold)
        self.simulated = QLabel(self.tr("SIMULATED"))
        self.simulated.setToolTip(self.tr("Not a real GPU: the simulated backend of tests and demos."))
        self.state = QLabel()
        state_font = QFont(self.state.font())
        state_font.setBold(True)
        self.state.setFont(state_font)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.utilization = QProgressBar()
        self.utilization.setRange(0, 100)
        self.utilization.setFormat("%p %")
        self.vram = QLabel()
        self.temperature = QLabel()
        self.power = QLabel()
        self.job = QLabel()
        self.job.setWordWrap(True)
        self.hold_button = QToolButton()
        self.hold_button.setText(self.tr("This GPU"))
        self.hold_button.setToolTip(self.tr("Pause or snooze this GPU alone; the others carry on."))
        self.hold_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.hold_button)
        self.pause_action = menu.addAction(self.tr("Pause this GPU"), lambda: self._emit(self.pause_requested))
        self.resume_action = menu.addAction(self.tr("Resume this GPU"), lambda: self._emit(self.resume_requested))
        self.snooze_1h_action = menu.addAction(self.tr("Snooze this GPU 1 hour"), lambda: self._snooze(3600))
        self.snooze_4h_action = menu.addAction(self.tr("Snooze this GPU 4 hours"), lambda: self._snooze(4 * 3600))
        self.hold_button.setMenu(menu)
        grid = QGridLayout(self)
        grid.addWidget(self.name, 0, 0, 1, 2)
        grid.addWidget(self.simulated, 0, 2)
        grid.addWidget(self.hold_button, 0, 3)
        grid.addWidget(self.state, 1, 0, 1, 3)
        grid.addWidget(self.reason, 2, 0, 1, 3)
        rows = (
            (self.tr("Utilization"), self.utilization),
            (self.tr("VRAM"), self.vram),
            (self.tr("Temperature"), self.temperature),
            (self.tr("Power"), self.power),
            (self.tr("Job"), self.job),
        )
        for row, (label, widget) in enumerate(rows, start=3):
            grid.addWidget(QLabel(label), row, 0)
            grid.addWidget(widget, row, 1, 1, 2)
        grid.setColumnStretch(1, 1)

    def _emit(self, signal: SignalInstance) -> None:
        if self.index is not None:
            signal.emit(self.index)

    def _snooze(self, seconds: int) -> None:
        if self.index is not None:
            self.snooze_requested.emit(self.index, seconds)

    def show_gpu(self, gpu: GpuStatus, job: RunningJob | None, now: float) -> None:
        self.index = gpu.index
        hold = gpu.owner_hold
        self.pause_action.setEnabled(hold is None or hold.until is not None)  # a snoozed GPU can still be paused
        self.resume_action.setEnabled(hold is not None)
        self.name.setText(self.tr("GPU {index} · {name}").format(index=gpu.index, name=gpu.name))
        self.simulated.setVisible(gpu.simulated)
        self.state.setText(_state_words(self, gpu.state.value))
        self.reason.setText(gpu.reason)
        readings = gpu.readings
        util = readings.utilization_gpu_percent if readings else None
        self.utilization.setEnabled(util is not None)
        self.utilization.setValue(round(util) if util is not None else 0)
        if readings is not None and readings.vram_total_bytes:
            self.vram.setText(
                self.tr("{used} of {total} GiB").format(
                    used=formatting.gib(readings.vram_used_bytes), total=formatting.gib(readings.vram_total_bytes)
                )
            )
        else:
            self.vram.setText("—")
        self.temperature.setText(_value(readings.temperature_c if readings else None, "°C"))
        self.power.setText(_value(readings.power_draw_w if readings else None, "W"))
        if job is None:
            self.job.setText(self.tr("none"))
        else:
            self.job.setText(
                self.tr("{job} · {state} for {elapsed}").format(
                    job=job.job_id, state=job.state, elapsed=formatting.duration(job.elapsed_s(now))
                )
            )


def _state_words(widget: QWidget, state: str) -> str:
    words = {
        "ready": widget.tr("Ready for work"),
        "working": widget.tr("Working"),
        "paused": widget.tr("Paused"),
        "stopped": widget.tr("Handed back to you"),
        "unavailable": widget.tr("Unavailable"),
    }
    return words.get(state, state)
