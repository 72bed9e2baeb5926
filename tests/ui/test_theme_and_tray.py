"""The theme can be forced light or dark (settings page, screenshots) and back to the system's; the tray
shows a notification only when its kind is on; "until tomorrow" means tomorrow morning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from sparecycles.control.models import AgentEvent, EventType
from sparecycles.paths import AppPaths
from sparecycles.ui.agent_link import AgentLink
from sparecycles.ui.notifications import NotificationKind, NotificationPreferences, notification_for_event
from sparecycles.ui.theme import apply_theme, current_theme, is_dark, save_theme, saved_theme
from sparecycles.ui.tray import Tray, tomorrow_morning


def test_the_theme_can_be_forced_and_given_back_to_the_system(qapp: QApplication, tmp_path: Path) -> None:
    try:
        assert apply_theme(qapp, "dark")
        assert is_dark(qapp)
        assert current_theme(qapp) == "dark"
        assert not apply_theme(qapp, "light")
        assert not is_dark(qapp)
        window = qapp.palette().color(QPalette.ColorRole.Window)
        assert window.lightness() > 128
    finally:
        apply_theme(qapp, "system")
    assert current_theme(qapp) == "system"
    assert saved_theme(tmp_path) == "system"
    save_theme(tmp_path, "dark")
    assert saved_theme(tmp_path) == "dark"


def test_a_notification_kind_turned_off_is_not_shown(qtbot: QtBot, tmp_path: Path) -> None:
    link = AgentLink(AppPaths.from_environment({"SPARECYCLES_HOME": str(tmp_path)}))  # never started
    preferences = NotificationPreferences(tmp_path)
    tray = Tray(link, preferences)
    shown: list[str] = []
    tray.icon.showMessage = lambda title, *_rest: shown.append(title)  # type: ignore[method-assign]
    failed = AgentEvent(type=EventType.JOB_STATE, at=datetime.now(UTC), data={"job_id": "j", "state": "failed"})
    tray.notify(notification_for_event(failed))
    assert shown == ["A job failed"]
    preferences.set_enabled(NotificationKind.JOB_FAILED, False)
    tray.notify(notification_for_event(failed))
    assert shown == ["A job failed"]


def test_until_tomorrow_is_tomorrow_morning() -> None:
    late = datetime(2026, 11, 26, 22, 30).astimezone()
    until = tomorrow_morning(late)
    assert until.date() == datetime(2026, 11, 27).date()
    assert (until.hour, until.minute) == (6, 0)
    assert until > late


def test_until_tomorrow_is_six_in_the_morning_in_the_zone_given() -> None:
    auckland = ZoneInfo("Pacific/Auckland")  # 13 hours ahead of UTC in November: another calendar day
    now = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)  # 09:00 on the 27th in Auckland
    until = tomorrow_morning(now, auckland)
    assert until == datetime(2026, 11, 28, 6, 0, tzinfo=auckland)
    assert until.utcoffset() == timedelta(hours=13)


class _CapturingClient:
    def __init__(self) -> None:
        self.until: datetime | None = None

    def snooze(self, duration_seconds: int | None = None, *, until: datetime | None = None) -> None:
        self.until = until


def test_the_tray_snoozes_until_tomorrow_morning_on_the_agents_clock(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = AppPaths.from_environment({"SPARECYCLES_HOME": str(tmp_path)})
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text('[general]\ntimezone = "Pacific/Auckland"\n')
    link = AgentLink(paths)  # never started: the call is caught below
    calls: list[object] = []
    monkeypatch.setattr(link, "call", lambda work, *_rest, **_options: calls.append(work))
    now = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)  # the 26th on the system's clock (UTC here), the 27th there
    tray = Tray(link, NotificationPreferences(tmp_path), clock=now.astimezone)
    tray.snooze_until_tomorrow()
    client = _CapturingClient()
    [work] = calls
    work(client)  # type: ignore[operator]
    assert client.until == datetime(2026, 11, 28, 6, 0, tzinfo=ZoneInfo("Pacific/Auckland"))
    link.close()
