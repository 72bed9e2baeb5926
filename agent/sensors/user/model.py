"""Is the owner at the computer? One reading, whatever the platform's source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PresenceSample:
    """What one presence source can tell right now; ``None`` means "this source cannot say".

    ``idle_s`` is seconds since the last keyboard or mouse input. ``fullscreen_app`` names the
    foreground fullscreen window (a video, a borderless game), which counts as presence even
    without input.
    """

    source: str
    idle_s: float | None = None
    locked: bool | None = None
    fullscreen: bool | None = None
    fullscreen_app: str | None = None


class PresenceSource(Protocol):
    """X11, a D-Bus service (GNOME Mutter, org.freedesktop.ScreenSaver, logind), Windows, or null."""

    @property
    def name(self) -> str: ...

    def sample(self) -> PresenceSample:
        """Read now. Never raises: a failing source answers with ``None`` fields."""
        ...

    def close(self) -> None: ...


class NullPresenceSource:
    """Used when no source works here: idle time unknown, so only scheduled hours are used."""

    name = "none"
    reason = "idle time unknown: only scheduled hours are used"

    def __init__(self, reason: str | None = None) -> None:
        if reason:
            self.reason = reason

    def sample(self) -> PresenceSample:
        return PresenceSample(source=self.name)

    def close(self) -> None:
        return None
