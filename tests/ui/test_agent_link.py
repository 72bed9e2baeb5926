"""The GUI's line to the agent, against a real agent process: the status arrives through the event stream,
calls run off the GUI thread and answer on it, and an agent that goes away is noticed."""

from __future__ import annotations

import threading
from typing import Any

from pytestqt.qtbot import QtBot

from sparecycles.control.models import AgentState, StatusDocument
from sparecycles.ui.agent_link import AgentLink, LinkState
from tests.conftest import RunningAgent


def test_a_call_runs_off_the_gui_thread_and_answers_on_it(link: AgentLink, qtbot: QtBot) -> None:
    gui_thread = threading.current_thread()
    seen: dict[str, Any] = {}

    def pause(client: Any) -> StatusDocument:
        seen["worker"] = threading.current_thread()
        return client.pause()  # type: ignore[no-any-return]

    def done(status: StatusDocument) -> None:
        seen["answered_on"] = threading.current_thread()
        seen["state"] = status.state

    link.call(pause, done)
    qtbot.waitUntil(lambda: "state" in seen, timeout=10_000)
    assert seen["worker"] is not gui_thread
    assert seen["answered_on"] is gui_thread
    assert seen["state"] is AgentState.PAUSED
    qtbot.waitUntil(lambda: link.status is not None and link.status.state is AgentState.PAUSED, timeout=10_000)


def test_a_failed_call_says_why(link: AgentLink, qtbot: QtBot) -> None:
    messages: list[str] = []
    link.call(lambda client: client.snooze(-5), failed=messages.append)
    qtbot.waitUntil(lambda: bool(messages), timeout=10_000)
    assert messages[0]


def test_an_agent_that_stops_is_noticed(link: AgentLink, sim_agent: RunningAgent, qtbot: QtBot) -> None:
    states: list[str] = []
    link.state_changed.connect(lambda state, _message: states.append(state))
    sim_agent.stop()
    qtbot.waitUntil(lambda: LinkState.LOST.value in states, timeout=15_000)
