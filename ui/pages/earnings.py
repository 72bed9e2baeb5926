"""The earnings page (placeholder until it is built)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from sparecycles.ui.agent_link import AgentLink


class EarningsPage(QWidget):
    def __init__(self, link: AgentLink, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link = link
        self.title = self.tr("Earnings")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(self.title))
