"""One GPU on the dashboard: its name, state and the reason in words, live readings and its job.

The card's labels are made once and only their texts change, so a status every second costs no widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QProgressBar, QWidget

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
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
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
        grid = QGridLayout(self)
        grid.addWidget(self.name, 0, 0, 1, 2)
        grid.addWidget(self.simulated, 0, 2)
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

    def show_gpu(self, gpu: GpuStatus, job: RunningJob | None, now: float) -> None:
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
