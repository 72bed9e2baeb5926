"""The schedule editor against a real agent: hours painted with the mouse and saved are what the agent's
settings and `sparecycles status --json` report; a stroke that starts on a painted hour erases."""

from __future__ import annotations

import json
from datetime import datetime

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from sparecycles.control.client import ControlClient
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.pages.schedule import SchedulePage
from sparecycles.ui.widgets.week_grid import WeekGrid
from tests.conftest import RunningAgent, run_cli


def drag(qtbot: QtBot, grid: WeekGrid, day: int, first: int, last: int) -> None:
    """Press on half hour ``first`` of ``day``, move through to ``last``, release: one paint stroke."""
    qtbot.mousePress(grid, Qt.MouseButton.LeftButton, pos=grid.cell_rect((day, first)).center())
    for slot in range(first + 1, last + 1):
        qtbot.mouseMove(grid, grid.cell_rect((day, slot)).center())
    qtbot.mouseRelease(grid, Qt.MouseButton.LeftButton, pos=grid.cell_rect((day, last)).center())


def loaded_page(link: AgentLink, qtbot: QtBot) -> SchedulePage:
    page = SchedulePage(link)
    qtbot.addWidget(page)
    page.resize(900, 600)
    page.show()
    qtbot.waitExposed(page)
    qtbot.waitUntil(
        lambda: page.when.grid.cells() == frozenset((day, slot) for day in range(7) for slot in range(48)),
        timeout=10_000,
    )
    return page


def test_painted_hours_saved_are_what_the_agent_reports(link: AgentLink, sim_agent: RunningAgent, qtbot: QtBot) -> None:
    page = loaded_page(link, qtbot)  # the fixture's schedule: daily
    grid = page.when.grid
    grid.set_cells([])
    day = (datetime.now().astimezone().weekday() + 2) % 7  # a day that is not now, so work must wait for it
    drag(qtbot, grid, day, 18, 23)  # 09:00 to 12:00
    assert grid.cells() == {(day, slot) for slot in range(18, 24)}
    page.when.mode.setCurrentIndex(page.when.mode.findData("schedule"))
    page.save_button.click()
    qtbot.waitUntil(lambda: page.message.text().startswith("Saved"), timeout=10_000)

    day_name = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[day]
    with ControlClient.from_lock_file(sim_agent.paths.agent_lock_file) as client:
        settings = client.settings()
    assert settings["schedule"]["windows"] == [f"{day_name} 09:00-12:00"]
    assert settings["work"]["mode"] == "schedule"

    def reported() -> dict[str, object]:
        result = run_cli(sim_agent.paths.config_dir.parent, "status", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    qtbot.waitUntil(lambda: "outside scheduled hours" in json.dumps(reported()), timeout=15_000)
    status = reported()
    assert status["work_mode"] == "schedule"
    gpu_reason = status["gpus"][0]["reason"]  # type: ignore[index]
    assert f"next window {day_name} 09:00" in gpu_reason


def test_a_stroke_that_starts_on_a_painted_hour_erases(link: AgentLink, qtbot: QtBot) -> None:
    page = loaded_page(link, qtbot)
    grid = page.when.grid
    drag(qtbot, grid, 2, 10, 13)
    assert not grid.cells() & {(2, slot) for slot in range(10, 14)}
    assert {(2, 9), (2, 14)} <= grid.cells()
    assert "Wed 00:00-05:00" in page.when.rules_label.text()


def test_the_game_list_and_limits_are_saved(link: AgentLink, sim_agent: RunningAgent, qtbot: QtBot) -> None:
    page = loaded_page(link, qtbot)
    page.use_builtin_games.setChecked(False)
    page.games.setPlainText("blender\nresolve")
    page.max_temperature.setValue(75)
    page.power_limit.setValue(80)
    page.save_button.click()
    qtbot.waitUntil(lambda: page.message.text().startswith("Saved"), timeout=10_000)
    with ControlClient.from_lock_file(sim_agent.paths.agent_lock_file) as client:
        settings = client.settings()
    assert settings["games"]["pause_processes"] == ["blender", "resolve"]
    assert settings["gpu"]["max_temperature_c"] == 75
    assert settings["gpu"]["power_limit_percent"] == 80


def test_a_refused_value_is_shown_with_the_agents_reason(
    link: AgentLink, sim_agent: RunningAgent, qtbot: QtBot
) -> None:
    with ControlClient.from_lock_file(sim_agent.paths.agent_lock_file) as client:
        client.update_settings({"gpu": {"resume_temperature_c": 80}})
    page = loaded_page(link, qtbot)
    page.max_temperature.setValue(60)  # below the resume temperature: the agent refuses
    page.save_button.click()
    qtbot.waitUntil(lambda: page.message.text().startswith("Not saved"), timeout=10_000)
    assert "resume_temperature_c (80) must be below max_temperature_c (60)" in page.message.text()
    with ControlClient.from_lock_file(sim_agent.paths.agent_lock_file) as client:
        assert client.settings()["gpu"]["max_temperature_c"] == 83
