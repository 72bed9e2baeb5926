"""Power and temperature while each benchmark phase runs, read on a thread beside the measurement.

The reading source is a plain callable returning ``(power_w, temperature_c)``, either of which may be
``None`` where the GPU cannot tell; the worker passes NVML (``telemetry``), the tests a constant. One
reading is taken as a phase starts and one as it ends, so every phase has at least two, however short.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

Reading = tuple[float | None, float | None]  # (power_w, temperature_c)
ReadingSource = Callable[[], Reading]

# NVML refreshes board power about every 20–100 ms depending on the GPU; reading faster only repeats it.
DEFAULT_INTERVAL_S = 0.1


@dataclass(frozen=True)
class PhasePower:
    """What the board drew and how hot it got during one phase."""

    samples: int
    mean_power_w: float | None
    max_power_w: float | None
    max_temperature_c: float | None


class PhaseRecording:
    """The readings of one phase; :meth:`summary` condenses them once the phase is over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._power_w: list[float] = []
        self._temperature_c: list[float] = []
        self._samples = 0

    def add(self, reading: Reading) -> None:
        power_w, temperature_c = reading
        with self._lock:
            self._samples += 1
            if power_w is not None:
                self._power_w.append(float(power_w))
            if temperature_c is not None:
                self._temperature_c.append(float(temperature_c))

    def summary(self) -> PhasePower:
        with self._lock:
            return PhasePower(
                samples=self._samples,
                mean_power_w=statistics.fmean(self._power_w) if self._power_w else None,
                max_power_w=max(self._power_w) if self._power_w else None,
                max_temperature_c=max(self._temperature_c) if self._temperature_c else None,
            )


class PhaseSampler:
    """Samples a reading source on a background thread for the duration of each phase."""

    def __init__(self, read: ReadingSource, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        if interval_s <= 0:
            raise ValueError("the sampling interval must be positive")
        self._read = read
        self._interval_s = interval_s

    @contextlib.contextmanager
    def sampling(self, phase: str) -> Iterator[PhaseRecording]:
        """Read at the start, every interval on a thread, and at the end of the ``with`` block."""
        recording = PhaseRecording()
        stop = threading.Event()
        failed = threading.Event()
        self._take(recording, phase, failed)
        thread = threading.Thread(
            target=self._loop, args=(recording, phase, stop, failed), name=f"benchmark-sampler-{phase}", daemon=True
        )
        thread.start()
        try:
            yield recording
        finally:
            stop.set()
            thread.join()
            self._take(recording, phase, failed)

    def _loop(self, recording: PhaseRecording, phase: str, stop: threading.Event, failed: threading.Event) -> None:
        while not stop.wait(self._interval_s) and not failed.is_set():
            self._take(recording, phase, failed)

    def _take(self, recording: PhaseRecording, phase: str, failed: threading.Event) -> None:
        """One reading; a source that raises is logged once and not asked again during this phase."""
        if failed.is_set():
            return
        try:
            reading = self._read()
        except Exception as exc:  # a broken sensor must not end the benchmark: the phase goes without power
            failed.set()
            log.warning("power and temperature readings failed during %s (%s); the phase has none", phase, exc)
            return
        recording.add(reading)
