"""Saving settings from a page: only what the user changed, and the agent's refusal in words, every problem it
named, not just the headline.

AgentLink hands a failed call's message to the page; the settings API puts what is wrong with each value
in the refusal's ``problems``, so the call itself folds them into the message the page shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QLabel, QPushButton

from sparecycles.control.client import ControlClient
from sparecycles.control.errors import AgentRequestError
from sparecycles.ui.agent_link import AgentLink, LinkState


def refusal_text(exc: AgentRequestError) -> str:
    """The message and each problem on a line of its own."""
    lines = [str(exc), *(f"• {problem}" for problem in exc.problems if problem not in str(exc))]
    return "\n".join(lines)


def save_settings(changes: dict[str, dict[str, Any]]) -> Callable[[ControlClient], dict[str, Any]]:
    """The work for ``link.call``: apply ``changes``; a refusal is raised again with its problems spelt out."""

    def work(client: ControlClient) -> dict[str, Any]:
        try:
            return client.update_settings(changes)
        except AgentRequestError as exc:
            raise AgentRequestError(exc.status_code, refusal_text(exc), exc.problems) from None

    return work


def changed_fields(now: dict[str, dict[str, Any]], shown: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The values of ``now`` that differ from ``shown`` (the page's values just after the settings loaded).

    A page saves these alone: a value it merely showed (rounded to a spin box's precision, a size in GiB, an
    idle time in minutes) goes back to the agent only when the user changed it.
    """
    changes: dict[str, dict[str, Any]] = {}
    for section, values in now.items():
        before = shown.get(section, {})
        changed = {key: value for key, value in values.items() if key not in before or before[key] != value}
        if changed:
            changes[section] = changed
    return changes


class AgentSettingsForm:
    """What a page that edits the agent's settings does around its fields, written once: read the settings
    (the latest read wins: the answer to an older read, or to one sent before a save, is dropped), read again
    when the agent first answers if the page opened before it did, offer Save only once the agent's values are
    shown (before, Save would send the page's blank defaults), and save only what the user changed.

    A page mixes this in before QWidget and has ``link``, ``message`` (a QLabel) and ``save_button``; it shows
    the settings in ``load`` (which ends with ``shown_as_loaded``), gives them back in ``values``, says in
    ``read_problem`` what could not be read, and calls ``start_reading`` once its widgets exist."""

    link: AgentLink
    message: QLabel
    save_button: QPushButton
    shown: dict[str, dict[str, Any]] | None  # the values as loaded; None until the agent's arrive
    _asked: int  # the latest read of the settings; an older answer is dropped
    _saving: bool

    def load(self, settings: dict[str, Any]) -> None:
        raise NotImplementedError

    def values(self) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def read_problem(self, message: str) -> str:
        """The words for a read the agent refused or did not answer."""
        raise NotImplementedError

    def saved_text(self) -> str:
        return QCoreApplication.translate("AgentSettingsForm", "Saved.")

    def start_reading(self) -> None:
        self.shown = None
        self._asked = 0
        self._saving = False
        self._show_save()
        self.link.state_changed.connect(self._link_state)
        self.reload()

    def shown_as_loaded(self) -> None:
        """``load`` has filled the fields: what they show now is what the agent has."""
        self.shown = self.values()
        self._show_save()

    def _link_state(self, state: str, _message: str) -> None:
        """Opened before the agent answered: read the settings as soon as it does."""
        if state == LinkState.CONNECTED and self.shown is None:
            self.reload()

    def reload(self) -> None:
        self._asked += 1
        asked = self._asked
        self.link.call(
            lambda client: client.settings(),
            lambda settings: self._read(asked, settings),
            lambda message: self._read_failed(asked, message),
            owner=self,  # type: ignore[arg-type]  # the page, a QWidget
        )

    def _read(self, asked: int, settings: dict[str, Any]) -> None:
        if asked == self._asked:
            self.load(settings)
            self.message.clear()

    def _read_failed(self, asked: int, message: str) -> None:
        if asked == self._asked:
            self.message.setText(self.read_problem(message))

    def changes(self) -> dict[str, dict[str, Any]]:
        """What the user changed since the settings loaded: only that is saved."""
        return changed_fields(self.values(), self.shown) if self.shown is not None else {}

    def _show_save(self) -> None:
        self.save_button.setEnabled(self.shown is not None and not self._saving)

    def save(self) -> None:
        if self.shown is None or self._saving:
            return
        changes = self.changes()
        if not changes:
            self.message.setText(
                QCoreApplication.translate("AgentSettingsForm", "Nothing to save: nothing was changed.")
            )
            return
        self._saving = True
        self._show_save()
        self.message.setText(QCoreApplication.translate("AgentSettingsForm", "Saving…"))
        self._asked += 1  # a read still on its way would show the settings from before the save
        self.link.call(save_settings(changes), self._saved, self._save_failed)

    def _saved(self, settings: dict[str, Any]) -> None:
        self._saving = False
        self.load(settings)
        self.message.setText(self.saved_text())

    def _save_failed(self, message: str) -> None:
        self._saving = False
        self._show_save()
        self.message.setText(QCoreApplication.translate("AgentSettingsForm", "Not saved: {}").format(message))
