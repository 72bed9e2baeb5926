"""Energy from NVML's total-energy counter, counted once whatever happens to the counter or the agent.

NVML's ``nvmlDeviceGetTotalEnergyConsumption`` is a millijoule counter since the driver loaded. It goes
back to zero when the driver reloads or the machine reboots, and the agent itself may restart (or be
killed) between two readings. :class:`EnergyCounter` turns successive readings into increments:

- a reading below the last one is a reset: the increment is the reading itself (the energy since the
  reset; what was used between the last reading and the reset cannot be known, and is not guessed);
- a reading from another boot of the machine, or of the driver, is treated the same way;
- the last reading is state the ledger stores with each increment, in the same transaction, so a restarted
  agent continues from what was committed and never counts an interval twice.

Where a GPU has no energy counter, :func:`integrate_power` turns power samples into energy. Nothing here
reads NVML or a clock.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True)
class CounterState:
    """What the ledger remembers of a GPU's counter: its last reading and which boot it belongs to."""

    boot_id: str
    last_mj: int


@dataclass(frozen=True)
class Increment:
    energy_mj: int
    reset: bool  # the counter went back (driver reload, reboot): energy before the reset is lost
    state: CounterState


# A reading this far below the last is a reset; a smaller drop is taken as jitter (some drivers report a
# few millijoules back and forth) and counts as nothing.
RESET_DROP_MJ = 1_000


def advance(previous: CounterState | None, boot_id: str, reading_mj: int) -> Increment:
    """The energy since ``previous`` given a new counter reading; the first reading only sets the baseline."""
    if reading_mj < 0:
        raise ValueError("an energy counter reading cannot be negative")
    state = CounterState(boot_id, reading_mj)
    if previous is None:
        return Increment(0, reset=False, state=state)
    if previous.boot_id != boot_id or reading_mj < previous.last_mj - RESET_DROP_MJ:
        return Increment(reading_mj, reset=True, state=state)
    if reading_mj < previous.last_mj:  # jitter: keep the higher baseline, count nothing
        return Increment(0, reset=False, state=previous)
    return Increment(reading_mj - previous.last_mj, reset=False, state=state)


def integrate_power(samples: list[tuple[float, float]]) -> float:
    """Joules from (seconds, watts) samples by the trapezoid rule; samples must be in time order."""
    joules = 0.0
    for (t0, w0), (t1, w1) in itertools.pairwise(samples):
        if t1 < t0:
            raise ValueError("power samples must be in time order")
        joules += (t1 - t0) * (w0 + w1) / 2
    return joules
