"""The app's shell against a real agent: the tray's Pause pauses it (checked through the API), the window
stays open where there is no tray, and a dead agent gets a plain panel with its log and a Restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from sparecycles.control.client import ControlClient
from sparecycles.control.models import AgentState
from sparecycles.control.spawn import AgentStartError
from sparecycles.paths import AppPaths
from sparecycles.ui.agent_link import AgentLink, LinkState
from sparecycles.ui.notifications import NotificationPreferences
from sparecycles.ui.pages import page_factories
from sparecycles.ui.tray import Tray, TrayLook, draw_icon, look_for
from sparecycles.ui.window import MainWindow, QuitChoice
from tests.conftest import RunningAgent


def leave_running(_parent: object) -> QuitChoice:
    return QuitChoice.LEAVE_RUNNING


def agent_state(agent: RunningAgent) -> AgentState:
    with ControlClient(agent.endpoint) as client:
        return client.status().state


def test_the_tray_menus_pause_pauses_the_agent(
    link: AgentLink, sim_agent: RunningAgent, qtbot: QtBot, tmp_path: Path
) -> None:
    tray = Tray(link, NotificationPreferences(tmp_path))
    assert agent_state(sim_agent) is not AgentState.PAUSED
    tray.pause_action.trigger()
    qtbot.waitUntil(lambda: agent_state(sim_agent) is AgentState.PAUSED, timeout=10_000)
    qtbot.waitUntil(lambda: tray.look is TrayLook.PAUSED, timeout=10_000)
    assert tray.resume_action.isEnabled()
    tray.resume_action.trigger()
    qtbot.waitUntil(lambda: agent_state(sim_agent) is not AgentState.PAUSED, timeout=10_000)
    tray.snooze_1h_action.trigger()
    qtbot.waitUntil(lambda: agent_state(sim_agent) is AgentState.SNOOZED, timeout=10_000)
    assert "Today:" in tray.icon.toolTip()


def test_each_look_has_its_own_icon() -> None:
    images = {look: draw_icon(look).toImage() for look in TrayLook}
    assert len({image.cacheKey() for image in images.values()}) == len(TrayLook)
    # shapes differ, not only colours: the error triangle leaves the top corners empty where the discs do not
    assert images[TrayLook.ERROR].pixelColor(8, 60).alpha() == 0
    assert images[TrayLook.WAITING].pixelColor(32, 5).alpha() > 0
    assert look_for(LinkState.DIED, None) is TrayLook.ERROR
    assert look_for(LinkState.STARTING, None) is TrayLook.WAITING


@pytest.fixture
def window_factory(qtbot: QtBot) -> object:
    def make(link: AgentLink, *, tray_available: bool, answer: QuitChoice, quits: list[bool]) -> MainWindow:
        window = MainWindow(
            link,
            page_factories(),
            tray_available=tray_available,
            ask_quit=lambda _parent: answer,
            quit_app=lambda: quits.append(True),
        )
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    return make


def test_without_a_tray_closing_the_window_does_not_hide_it_away(
    link: AgentLink, window_factory: object, qtbot: QtBot
) -> None:
    quits: list[bool] = []
    window = window_factory(link, tray_available=False, answer=QuitChoice.CANCEL, quits=quits)  # type: ignore[operator]
    assert window.windowTitle().startswith("SpareCycles")
    window.close()  # with no tray to go to, closing is quitting: asked, and the owner cancels
    qtbot.wait(100)
    assert window.isVisible()
    assert not quits
    window._ask_quit = lambda _parent: QuitChoice.LEAVE_RUNNING  # type: ignore[method-assign]
    window.close()
    assert quits == [True]
    assert not window.isVisible()


def test_with_a_tray_closing_hides_the_window_and_the_agent_keeps_running(
    link: AgentLink, sim_agent: RunningAgent, window_factory: object
) -> None:
    quits: list[bool] = []
    window = window_factory(link, tray_available=True, answer=QuitChoice.STOP_AGENT, quits=quits)  # type: ignore[operator]
    window.close()
    assert not window.isVisible()
    assert not quits
    assert agent_state(sim_agent) is not AgentState.STOPPING


def test_quit_with_stop_asks_the_agent_to_stop(
    link: AgentLink, sim_agent: RunningAgent, window_factory: object, qtbot: QtBot
) -> None:
    quits: list[bool] = []
    window = window_factory(link, tray_available=True, answer=QuitChoice.STOP_AGENT, quits=quits)  # type: ignore[operator]
    assert window.request_quit()
    qtbot.waitUntil(lambda: quits == [True], timeout=10_000)
    assert sim_agent.process.wait(15) is not None


def test_an_agent_that_cannot_start_gets_the_stopped_panel_with_its_log(qtbot: QtBot, agent_home: Path) -> None:
    paths = AppPaths.from_environment({"SPARECYCLES_HOME": str(agent_home)})
    attempts: list[int] = []

    def failing_start(_paths: AppPaths) -> object:
        attempts.append(1)
        raise AgentStartError("The SpareCycles agent stopped right after starting.", "config.toml: line 3: bad", 2)

    link = AgentLink(paths, start_agent=failing_start)
    window = MainWindow(link, page_factories(), tray_available=False, ask_quit=leave_running, quit_app=lambda: None)
    qtbot.addWidget(window)
    window.show()
    link.start()
    try:
        qtbot.waitUntil(window.stopped_panel.isVisible, timeout=10_000)
        assert window.stopped_panel.heading.text() == "The SpareCycles agent stopped"
        assert "config.toml: line 3: bad" in window.stopped_panel.log_tail.toPlainText()
        assert not window.body.isVisible()
        window.stopped_panel.restart_button.click()  # tries again: the same failure, the panel again
        qtbot.waitUntil(lambda: len(attempts) == 2 and window.stopped_panel.isVisible(), timeout=10_000)
    finally:
        link.close()


def test_an_agent_that_dies_gets_the_stopped_panel(qtbot: QtBot, agent_home: Path) -> None:
    from tests.conftest import start_agent

    started: list[RunningAgent] = []

    def start(_paths: AppPaths) -> object:
        started.append(start_agent(agent_home, "--simulated-gpus", "1"))
        return started[-1]

    paths = AppPaths.from_environment({"SPARECYCLES_HOME": str(agent_home)})
    link = AgentLink(paths, start_agent=start)
    window = MainWindow(link, page_factories(), tray_available=False, ask_quit=leave_running, quit_app=lambda: None)
    qtbot.addWidget(window)
    window.show()
    link.start()
    try:
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=30_000)
        assert not window.stopped_panel.isVisible()
        started[0].process.kill()
        started[0].process.wait(10)
        qtbot.waitUntil(window.stopped_panel.isVisible, timeout=20_000)
        assert window.stopped_panel.log_tail.toPlainText().strip()
        window.stopped_panel.restart_button.click()
        qtbot.waitUntil(lambda: len(started) == 2 and link.state is LinkState.CONNECTED, timeout=30_000)
        assert not window.stopped_panel.isVisible()
    finally:
        link.close()
        for agent in started:
            agent.stop()
