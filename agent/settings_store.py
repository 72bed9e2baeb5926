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
Overlay = Callable[[Settings], Settings]


class SettingsStore:
    """The owner's settings (their file), the settings the agent works by (the owner's, with a studio group's
    policy laid over them while the machine is in one), and the listeners that apply a change."""

    def __init__(self, path: Path, initial: Settings) -> None:
        self._path = path
        self._own = initial
        self._overlay: Overlay | None = None
        self._current = initial
        self._lock = threading.Lock()
        self._listeners: list[SettingsListener] = []

    @property
    def current(self) -> Settings:
        """What the agent works by now."""
        return self._current

    @property
    def own(self) -> Settings:
        """The owner's own settings, as their file says (what the settings editor shows and changes)."""
        return self._own

    def read(self) -> Settings:
        """The current settings, as a callable for those who read them at each use."""
        return self._current

    def on_change(self, listener: SettingsListener) -> None:
        self._listeners.append(listener)

    def update(self, changes: Mapping[str, Mapping[str, Any]]) -> tuple[Settings, Settings]:
        """Write the change into the user's file (layout kept), then apply it; raises ConfigError. Returns the
        settings worked by before and after."""
        with self._lock:
            before = self._current
            self._own = update_settings_file(self._path, changes)
            after = self._current = self._effective()
        self._changed(before, after)
        return before, after

    def set_overlay(self, overlay: Overlay | None) -> tuple[Settings, Settings]:
        """Lay ``overlay`` over the owner's settings from now on (None: the owner's alone); returns the
        settings worked by before and after."""
        with self._lock:
            before = self._current
            self._overlay = overlay
            after = self._current = self._effective()
        self._changed(before, after)
        return before, after

    def _effective(self) -> Settings:
        return self._own if self._overlay is None else self._overlay(self._own)

    def _changed(self, before: Settings, after: Settings) -> None:
        """Tell every listener, each whatever the others did: the change is in the file and in ``current``
        already, so one listener's failure must not leave the ones after it on the old settings."""
        if after == before:
            return
        changed = ", ".join(sorted(_changed_keys(before, after)))
        log.info("Settings changed: %s", changed)
        for listener in self._listeners:
            try:
                listener(before, after)
            except Exception:
                log.exception(
                    "Applying the change of %s failed in %s; the settings file has it, and the agent applies it "
                    "when it starts again",
                    changed,
                    getattr(listener, "__qualname__", repr(listener)),
                )


def _changed_keys(before: Settings, after: Settings) -> set[str]:
    old, new = before.model_dump(), after.model_dump()
    return {
        f"{section}.{key}"
        for section in new
        for key in new[section]
        if old.get(section, {}).get(key) != new[section][key]
    }
