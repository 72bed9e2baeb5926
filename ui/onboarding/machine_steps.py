"""The first two steps: what SpareCycles does to this PC, and whether this PC can do it (GPUs, Docker and
the NVIDIA Container Toolkit), read from the agent's status with its own advice when something is missing.

The agent's status already carries the doctor's verdicts that matter here (the GPU backend's reason, the
job runtime's problem with its fix); the full list with every fix is `sparecycles doctor`.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWizardPage

from sparecycles.control.models import StatusDocument
from sparecycles.ui.agent_link import AgentLink


class WelcomeStep(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle(self.tr("Welcome to SpareCycles"))
        text = QLabel(
            self.tr(
                "<p>SpareCycles rents out your NVIDIA GPU while you do not use it, and pays you for it.</p>"
                "<p><b>What it does:</b> when you are away (or in hours you choose) it runs other people's "
                "jobs in sealed containers on your GPU; the moment you come back, or start a game, the work "
                "freezes or stops and the GPU is yours again. It shows what you earned and what the "
                "electricity cost.</p>"
                "<p><b>What it does not do:</b> jobs cannot see your files, your other programs or your "
                "network (unless you allow a job's declared addresses); nothing runs as administrator; "
                "it never mines on its own, never overclocks, and your wallet's key never leaves the "
                "system keyring.</p>"
            )
        )
        text.setWordWrap(True)
        QVBoxLayout(self).addWidget(text)


class MachineStep(QWizardPage):
    """GPUs found, and whether jobs can run (Docker and the NVIDIA Container Toolkit)."""

    def __init__(self, link: AgentLink) -> None:
        super().__init__()
        self.link = link
        self.setTitle(self.tr("Your computer"))
        self.gpus = QLabel()
        self.gpus.setWordWrap(True)
        self.runtime = QLabel()
        self.runtime.setWordWrap(True)
        self.runtime.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.gpus)
        layout.addWidget(self.runtime)
        layout.addStretch(1)
        link.status_changed.connect(self.show_status)

    def initializePage(self) -> None:
        self.show_status(self.link.status)

    def show_status(self, status: StatusDocument | None) -> None:
        if status is None:
            self.gpus.setText(self.tr("Waiting for the agent to report this computer's GPUs…"))
            self.runtime.clear()
            return
        if status.gpus:
            lines = [
                self.tr("{index}: {name}{simulated}").format(
                    index=gpu.index, name=escape(gpu.name), simulated=self.tr(" (simulated)") if gpu.simulated else ""
                )
                for gpu in status.gpus
            ]
            self.gpus.setText(self.tr("GPUs found:") + "<br>" + "<br>".join(lines))
        else:
            advice = status.gpu_backend.reason or status.reason
            self.gpus.setText(self.tr("No NVIDIA GPU found. {advice}").format(advice=escape(advice)))
        if status.jobs_problem:
            self.runtime.setText(
                self.tr(
                    "Jobs cannot run yet: {problem}<br>Docker and the NVIDIA Container Toolkit are needed; "
                    "run <code>sparecycles doctor</code> in a terminal for every check and the command that "
                    "fixes it. You can finish this setup now and fix it later."
                ).format(problem=escape(status.jobs_problem))
            )
        else:
            self.runtime.setText(self.tr("Docker and the NVIDIA Container Toolkit: ready to run jobs."))
