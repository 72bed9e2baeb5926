"""A presence source whose readings a test sets (same protocol as the X11/D-Bus/Windows ones)."""

from __future__ import annotations

from sparecycles.agent.sensors.user.model import PresenceSample


class ScriptedPresenceSource:
    name = "scripted"

    def __init__(self, idle_s: float | None = 0.0) -> None:
        self.reading = PresenceSample(self.name, idle_s=idle_s, locked=False, fullscreen=False)
        self.closed = False

    def set(self, **fields: object) -> None:
        values = {
            "idle_s": self.reading.idle_s,
            "locked": self.reading.locked,
            "fullscreen": self.reading.fullscreen,
            "fullscreen_app": self.reading.fullscreen_app,
        }
        values.update(fields)
        self.reading = PresenceSample(self.name, **values)  # type: ignore[arg-type]

    def sample(self) -> PresenceSample:
        return self.reading

    def close(self) -> None:
        self.closed = True
