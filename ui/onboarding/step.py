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
        self._applied = False  # the agent took this visit's choices: the next validatePage lets the wizard on
        self._busy = False
        self._visit = 0  # counts the times the wizard entered the page; an answer for an earlier one moves nothing

    def work(self) -> Callable[[ControlClient], Any] | None:
        """What to send to the agent for this page's choices; raise StepProblem for one that cannot be sent."""
        return None

    def applied(self, result: Any) -> None:
        """The agent took the step's choices (``result`` is the work's answer)."""

    def initializePage(self) -> None:
        """Entering the page (again): choices applied on an earlier visit do not let the next Next through."""
        self._visit += 1
        self._applied = False

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
        visit = self._visit
        self.link.call(work, lambda result: self._done(visit, result), self._failed, timeout=30.0, owner=self)
        return False

    def _done(self, visit: int, result: Any) -> None:
        self._busy = False
        self.problem.clear()
        self.applied(result)
        wizard = self.wizard()
        if wizard is None or wizard.currentPage() is not self or visit != self._visit:
            return  # the user went back meanwhile: their next Next sends the page's choices as they are then
        self._applied = True
        if self.isFinalPage() or wizard.nextId() == -1:
            wizard.accept()
        else:
            wizard.next()

    def _failed(self, message: str) -> None:
        self._busy = False
        self.problem.setText(self.tr("The agent refused: {}").format(message))
