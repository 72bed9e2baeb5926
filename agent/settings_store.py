"""The agent's live settings: read once at start, changed through the API, applied without restart."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sparecycles.config import Settings, update_settings_file

log = logging.getLogger(__name__)

SettingsListener = Callable[[Settings, Settings], None]


class SettingsStore:
    """Current settings plus the listeners that apply a change (log level, policy, ...)."""

    def __init__(self, path: Path, initial: Settings) -> None:
        self._path = path
        self._current = initial
        self._lock = threading.Lock()
        self._listeners: list[SettingsListener] = []

    @property
    def current(self) -> Settings:
        return self._current

    def read(self) -> Settings:
        """The current settings, as a callable for those who read them at each use."""
        return self._current

    def on_change(self, listener: SettingsListener) -> None:
        self._listeners.append(listener)

    def update(self, changes: Mapping[str, Mapping[str, Any]]) -> Settings:
        """Write the change into the user's file (layout kept), then apply it; raises ConfigError."""
        with self._lock:
            before = self._current
            after = update_settings_file(self._path, changes)
            self._current = after
        if after != before:
            log.info("Settings changed: %s", ", ".join(sorted(_changed_keys(before, after))))
            for listener in self._listeners:
                listener(before, after)
        return after


def _changed_keys(before: Settings, after: Settings) -> set[str]:
    old, new = before.model_dump(), after.model_dump()
    return {
        f"{section}.{key}"
        for section in new
        for key in new[section]
        if old.get(section, {}).get(key) != new[section][key]
    }
