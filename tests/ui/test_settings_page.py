"""The settings page against a real agent: a changed value is saved in the agent's settings, a refused one
is shown with the agent's reason and changes nothing, the theme choice reaches the theme helper, and each
onboarding step opens from here."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from sparecycles.control.client import ControlClient
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.gui_prefs import THEME, gui_prefs
from sparecycles.ui.onboarding import Step
from sparecycles.ui.pages.settings import SettingsPage
from tests.conftest import RunningAgent


def loaded_page(link: AgentLink, qtbot: QtBot, **kwargs: object) -> SettingsPage:
    page = SettingsPage(link, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: page.floor.text() == "0" and bool(page.gpu_checks), timeout=10_000)
    return page


def settings_of(agent: RunningAgent) -> dict[str, dict[str, object]]:
    with ControlClient.from_lock_file(agent.paths.agent_lock_file) as client:
        return client.settings()


def test_changed_values_are_saved(link: AgentLink, sim_agent: RunningAgent, qtbot: QtBot) -> None:
    page = loaded_page(link, qtbot)
    assert page.private_market.isChecked()
    assert page.image_cache.value() == 50
    assert page.gpu_checks[0].isChecked()
    page.egress.setCurrentIndex(page.egress.findData("per_job"))
    page.image_cache.setValue(20)
    page.margin.setValue(35)
    page.floor.setText("1500")
    page.gpu_checks[0].setChecked(False)
    page.save_button.click()
    qtbot.waitUntil(lambda: page.message.text() == "Saved.", timeout=10_000)
    settings = settings_of(sim_agent)
    assert settings["jobs"]["egress"] == "per_job"
    assert settings["jobs"]["image_cache"] == "20GiB"
    assert settings["ledger"]["margin"] == 0.35
    assert settings["marketplace"]["price_floor_per_gpu_hour"] == 1500
    assert settings["gpu"]["disabled"] == ["0"]


def test_a_refused_value_shows_why_and_changes_nothing(link: AgentLink, sim_agent: RunningAgent, qtbot: QtBot) -> None:
    page = loaded_page(link, qtbot)
    page.image_cache.setValue(20)
    page.floor.setText("-5")
    page.save_button.click()
    qtbot.waitUntil(lambda: page.message.text().startswith("Not saved"), timeout=10_000)
    assert "price_floor_per_gpu_hour" in page.message.text()
    assert "greater than or equal to 0" in page.message.text()
    assert settings_of(sim_agent)["jobs"]["image_cache"] == "50GiB"


def test_the_theme_choice_is_applied_and_remembered(link: AgentLink, qtbot: QtBot) -> None:
    applied: list[str] = []
    page = loaded_page(link, qtbot, apply_theme=lambda _app, choice: applied.append(choice))
    page.theme.setCurrentIndex(page.theme.findData("dark"))
    assert applied == ["dark"]
    assert isinstance(QApplication.instance(), QApplication)
    assert gui_prefs(link.paths).value(THEME) == "dark"


def test_each_onboarding_step_opens_from_settings(link: AgentLink, qtbot: QtBot) -> None:
    page = loaded_page(link, qtbot)
    assert set(page.step_buttons) == set(Step)
    page.step_buttons[Step.PAYOUT].click()
    assert page.wizard is not None
    qtbot.waitExposed(page.wizard)
    assert page.wizard.currentId() == Step.PAYOUT
    page.wizard.close()
