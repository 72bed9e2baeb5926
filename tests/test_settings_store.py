"""The agent's live settings: a change reaches every listener even when one of them fails, and stays saved."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sparecycles.agent.settings_store import SettingsStore
from sparecycles.config import Settings, load_settings


def test_a_failing_listener_does_not_keep_the_change_from_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[general]\nlog_level = "info"\n')
    store = SettingsStore(path, load_settings(path))
    heard: list[str] = []

    def broken(_before: Settings, _after: Settings) -> None:
        raise OSError("the autostart folder is read-only")

    store.on_change(broken)
    store.on_change(lambda _before, after: heard.append(after.general.log_level))

    with caplog.at_level(logging.ERROR, logger="sparecycles.agent.settings_store"):
        before, after = store.update({"general": {"log_level": "debug"}})

    assert (before.general.log_level, after.general.log_level) == ("info", "debug")
    assert heard == ["debug"]  # the listener after the broken one still applied it
    assert store.current.general.log_level == "debug"
    assert load_settings(path).general.log_level == "debug"  # saved
    [record] = caplog.records
    assert "general.log_level" in record.getMessage()
    assert "broken" in record.getMessage()
    assert "starts again" in record.getMessage()
