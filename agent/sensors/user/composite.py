"""Several presence sources read as one: idle time from one, the lock state from another."""

from __future__ import annotations

from collections.abc import Sequence

from sparecycles.agent.sensors.user.model import PresenceSample, PresenceSource


class CompositePresenceSource:
    """Merges readings field by field, in the given order.

    Idle time comes from the first source that knows it. A lock or a fullscreen window reported by
    any source wins, since either one settles the question; otherwise the first known answer is used.
    """

    def __init__(self, sources: Sequence[PresenceSource]) -> None:
        if not sources:
            raise ValueError("a composite presence source needs at least one source")
        self.sources = tuple(sources)
        self.name = "+".join(source.name for source in self.sources)

    def sample(self) -> PresenceSample:
        samples = [source.sample() for source in self.sources]
        idle_s = next((s.idle_s for s in samples if s.idle_s is not None), None)
        locked = _first_true_or_known([s.locked for s in samples])
        fullscreen = _first_true_or_known([s.fullscreen for s in samples])
        fullscreen_app = next((s.fullscreen_app for s in samples if s.fullscreen and s.fullscreen_app), None)
        return PresenceSample(
            source=self.name, idle_s=idle_s, locked=locked, fullscreen=fullscreen, fullscreen_app=fullscreen_app
        )

    def close(self) -> None:
        for source in self.sources:
            source.close()


def _first_true_or_known(values: Sequence[bool | None]) -> bool | None:
    if any(value is True for value in values):
        return True
    return next((value for value in values if value is not None), None)
