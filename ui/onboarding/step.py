"""A wizard page that applies its choices through the agent before the wizard moves on.

QWizard asks ``validatePage`` for an answer at once, but the agent must never be called on the GUI thread:
the first Next starts the call and says "not yet"; when the agent has answered, the page moves the wizard
on itself; a refusal stays on the page, in words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QLabel, QWizardPage

from sparecycles.control.client import ControlClient
from sparecycles.ui.agent_link import AgentLink


class StepProblem(Exception):
    """A choice on the page cannot be sent as it is; ``str()`` says what to change."""


class AgentStep(QWizardPage):
    """Subclasses return the work to apply (or None: nothing to apply) from :meth:`work`."""

    def __init__(self, link: AgentLink) -> None:
        super().__init__()
        self.link = link
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setObjectName("problem")
        self._applied = False
        self._busy = False

    def work(self) -> Callable[[ControlClient], Any] | None:
        """What to send to the agent for this page's choices; raise StepProblem for one that cannot be sent."""
        return None

    def applied(self, result: Any) -> None:
        """The agent took the step's choices (``result`` is the work's answer)."""

    def validatePage(self) -> bool:
        if self._applied:
            self._applied = False
            return True
        if self._busy:
            return False
        try:
            work = self.work()
        except StepProblem as exc:
            self.problem.setText(str(exc))
            return False
        self.problem.clear()
        if work is None:
            return True
        self._busy = True
        self.problem.setText(self.tr("Saving…"))
        self.link.call(work, self._done, self._failed, timeout=30.0)
        return False

    def _done(self, result: Any) -> None:
        self._busy = False
        self.problem.clear()
        self.applied(result)
        self._applied = True
        wizard = self.wizard()
        if wizard is not None and wizard.currentPage() is self:
            if self.isFinalPage() or wizard.nextId() == -1:
                wizard.accept()
            else:
                wizard.next()

    def _failed(self, message: str) -> None:
        self._busy = False
        self.problem.setText(self.tr("The agent refused: {}").format(message))
