"""When to work (the same editor as the Schedule page) and the benchmark, which a user without a GPU the
agent can measure (or in a hurry) skips."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from sparecycles.control.benchmark import BenchmarkList
from sparecycles.control.client import ControlClient
from sparecycles.control.models import GpuStatus, StatusDocument
from sparecycles.ui.agent_link import AgentLink, LinkState
from sparecycles.ui.onboarding.step import AgentStep, StepProblem
from sparecycles.ui.pages.schedule import WorkWhenEditor
from sparecycles.ui.widgets.settings_call import save_settings

BENCHMARK_TIMEOUT_S = 900.0  # quick mode takes under a minute per GPU; a slow first image pull, longer
NEARLY_DONE = 0.95  # a run past its expected time waits here, not at 100 %, until the agent says it is done


@dataclass(frozen=True)
class BenchmarkProgress:
    percent: int  # of all the GPUs being measured
    gpu_number: int  # 1-based, of ``gpu_count``
    gpu_count: int
    seconds_left: float  # of the GPU under way, by its expected time


def benchmark_progress(gpus: Sequence[GpuStatus], now: datetime) -> BenchmarkProgress | None:
    """How far a run over every GPU (one after another, in index order) has got, from the status document:
    the GPUs before the running one are done, the running one is as far as its elapsed time over the time a
    run takes (``expected_seconds``). None while no GPU reports a run with a start and an expected time."""
    for position, gpu in enumerate(gpus):
        run = gpu.benchmark
        if run is None or run.state != "running" or run.started is None or not run.expected_seconds:
            continue
        elapsed = max((now - run.started).total_seconds(), 0.0)
        fraction = min(elapsed / run.expected_seconds, NEARLY_DONE)
        return BenchmarkProgress(
            percent=round(100 * (position + fraction) / len(gpus)),
            gpu_number=position + 1,
            gpu_count=len(gpus),
            seconds_left=max(run.expected_seconds - elapsed, 0.0),
        )
    return None


class WorkWhenStep(AgentStep):
    """The agent's current choice, to change or keep: Next saves only what the user changed, and nothing before
    the current settings are shown (else the editor's defaults would replace the owner's schedule)."""

    def __init__(self, link: AgentLink) -> None:
        super().__init__(link)
        self.setTitle(self.tr("When to work"))
        self.editor = WorkWhenEditor()
        self._reading = False
        layout = QVBoxLayout(self)
        layout.addWidget(self.editor)
        layout.addWidget(self.problem)
        link.state_changed.connect(self._link_state)

    def initializePage(self) -> None:
        super().initializePage()
        self._read()  # until it succeeds: coming back to the page keeps what the user painted

    def _link_state(self, state: str, _message: str) -> None:
        if state == LinkState.CONNECTED:
            self._read()

    def _read(self) -> None:
        if self.editor.shown is not None or self._reading:
            return
        self._reading = True
        self.link.call(lambda client: client.settings(), self._loaded, self._read_failed)

    def _loaded(self, settings: dict[str, Any]) -> None:
        self._reading = False
        self.editor.load(settings)
        self.problem.clear()

    def _read_failed(self, message: str) -> None:
        self._reading = False
        self.problem.setText(self.tr("Could not read the current settings from the agent: {}").format(message))

    def work(self) -> Callable[[ControlClient], Any] | None:
        if self.editor.shown is None:
            self._read()
            raise StepProblem(self.tr("The current settings are not read yet; try again when the agent answers."))
        changes = self.editor.changes()
        return save_settings(changes) if changes else None


class BenchmarkStep(AgentStep):
    """Measures each GPU so marketplaces can rank it; the last step, and one that may be skipped."""

    def __init__(self, link: AgentLink) -> None:
        super().__init__(link)
        self.setTitle(self.tr("Benchmark"))
        self.setSubTitle(
            self.tr("A short measurement of each GPU (about a minute each) that marketplaces use to offer it work.")
        )
        self.run_button = QPushButton(self.tr("Run the benchmark"))
        self.skip_button = QPushButton(self.tr("Skip"))
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._measuring = False
        link.status_changed.connect(self.show_progress)
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.run_button.clicked.connect(self.run)
        self.skip_button.clicked.connect(self.skip)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.skip_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.result)
        layout.addWidget(self.problem)
        layout.addStretch(1)
        self.setFinalPage(True)

    def run(self) -> None:
        self.run_button.setEnabled(False)
        self._measuring = True
        self.progress.setRange(0, 0)  # busy until the agent's status says which GPU runs, since when
        self.result.setText(self.tr("Benchmarking… this takes about a minute per GPU."))
        self.link.call(
            lambda client: client.run_benchmark(None, timeout=BENCHMARK_TIMEOUT_S),
            self._finished,
            self._refused,
            timeout=BENCHMARK_TIMEOUT_S + 30,
        )

    def show_progress(self, status: StatusDocument) -> None:
        """Each status document (about one a second) moves the bar: which GPU, how long it has left."""
        if not self._measuring:
            return
        progress = benchmark_progress(status.gpus, datetime.now(UTC))
        if progress is None:
            return
        self.progress.setRange(0, 100)
        self.progress.setValue(progress.percent)
        self.result.setText(
            self.tr("Measuring GPU {number} of {count}: about {seconds} s left for it.").format(
                number=progress.gpu_number, count=progress.gpu_count, seconds=round(progress.seconds_left)
            )
        )

    def _finished(self, results: BenchmarkList) -> None:
        self._measuring = False
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.run_button.setEnabled(True)
        lines = [
            self.tr("GPU {index} ({name}): score {score}").format(
                index=result.gpu_index,
                name=escape(result.gpu_name),
                score="—" if result.score is None else f"{result.score:.0f}",
            )
            for result in results.results
        ]
        lines += [escape(problem) for problem in results.problems]
        self.result.setText(self.tr("Done.") + ("<br>" + "<br>".join(lines) if lines else ""))

    def _refused(self, message: str) -> None:
        self._measuring = False
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.run_button.setEnabled(True)
        self.result.setText(
            self.tr(
                "The agent could not benchmark: {}\nSkip this step: the agent benchmarks a real GPU by itself when it "
                "is idle and has no result yet."
            ).format(message)
        )

    def skip(self) -> None:
        wizard = self.wizard()
        if wizard is not None:
            wizard.accept()
