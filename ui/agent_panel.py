"""What the window shows about the agent itself: a "starting agent…" banner while it is being found or
started, and, when it died or could not start, a plain panel with the last lines of its log and a
Restart button."""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from sparecycles.ui.agent_link import AgentLink, LinkState


class AgentBanner(QWidget):
    """One line above the pages while the agent is not (yet, or no longer) answering."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.addWidget(self.label)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.AlternateBase)

    def show_state(self, state: LinkState) -> None:
        texts = {
            LinkState.STARTING: self.tr("Starting the SpareCycles agent…"),
            LinkState.LOST: self.tr("The agent stopped answering; reconnecting…"),
        }
        self.label.setText(texts.get(state, ""))
        self.setVisible(state in texts)


class AgentStoppedPanel(QWidget):
    """The agent is gone: say so, show why (its log's last lines), offer to start it again."""

    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._link = link
        self.heading = QLabel(self.tr("The SpareCycles agent stopped"))
        font = QFont(self.heading.font())
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.heading.setFont(font)
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.log_tail = QPlainTextEdit()
        self.log_tail.setReadOnly(True)
        self.log_tail.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log_tail.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.restart_button = QPushButton(self.tr("Restart the agent"))
        self.restart_button.clicked.connect(self._restart)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 24, 24, 24)
        layout.addWidget(self.heading)
        layout.addWidget(self.explanation)
        layout.addWidget(QLabel(self.tr("The last lines of its log:")))
        layout.addWidget(self.log_tail, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.restart_button)
        layout.addLayout(buttons)

    def show_state(self, state: LinkState, message: str) -> None:
        if state is LinkState.FAILED:
            self.explanation.setText(self.tr("It could not be started. Nothing runs on your GPUs meanwhile."))
        else:
            self.explanation.setText(self.tr("Nothing runs on your GPUs until it is started again."))
        self.log_tail.setPlainText(message or self.tr("(the agent wrote nothing to its log)"))
        self.log_tail.verticalScrollBar().setValue(self.log_tail.verticalScrollBar().maximum())
        self.restart_button.setEnabled(True)

    def _restart(self) -> None:
        self.restart_button.setEnabled(False)
        self._link.restart_agent()
