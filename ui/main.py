"""Entry point of the desktop app. For now a placeholder window showing the agent's state."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QVBoxLayout, QWidget

import sparecycles
from sparecycles.control.client import AgentRequestError, AgentUnavailable, ControlClient
from sparecycles.paths import AppPaths


class PlaceholderWindow(QMainWindow):
    """Shows the agent's one-line state until the real dashboard arrives."""

    def __init__(self, paths: AppPaths) -> None:
        super().__init__()
        self._paths = paths
        self.setWindowTitle(f"SpareCycles {sparecycles.__version__}")
        self.state_label = QLabel("Connecting to the SpareCycles agent…")
        self.state_label.setWordWrap(True)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(QLabel("<h2>SpareCycles</h2>"))
        layout.addWidget(self.state_label)
        self.setCentralWidget(body)
        self.resize(480, 200)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(2000)
        QTimer.singleShot(0, self.refresh)

    def refresh(self) -> None:
        try:
            with ControlClient.from_lock_file(self._paths.agent_lock_file, timeout=1.0) as client:
                status = client.status()
        except (AgentUnavailable, AgentRequestError) as exc:
            self.state_label.setText(str(exc))
            return
        self.state_label.setText(f"Agent: {status.state.value} — {status.reason}")


def run_gui(paths: AppPaths) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    window = PlaceholderWindow(paths)
    window.show()
    return int(app.exec())
