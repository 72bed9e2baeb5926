"""Turn the GPU readings the agent takes every second into energy intervals, each attributed to one job or idle.

Per GPU an interval is open from the last committed reading. It closes when the job on the GPU changes
(a job starts or ends: its energy must not run into the next) or when it has lasted ``commit_every_s``;
the caller writes the closed intervals in one transaction and only then calls :meth:`EnergyRecorder.
committed`, so a failed write leaves them open and the next one covers the longer span: nothing is lost
or counted twice.

The energy of an interval comes from NVML's total-energy counter where the GPU has one (see energy.py:
resets and reboots are handled there), otherwise from the power samples taken during it (trapezoid
rule). After a restart the interval opened from the stored reading covers the time the agent was down,
attributed to the job that was on the GPU from that reading on (stored with it; None: idle): the job
runtime takes such a job back, and its energy in between is the job's. Where only power samples exist,
time the agent did not watch is not guessed at. Nothing here reads a clock, NVML or the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sparecycles.agent.ledger.energy import CounterState, advance, integrate_power
from sparecycles.agent.sensors.gpu.model import GpuSample

COMMIT_EVERY_S = 10.0


@dataclass(frozen=True)
class StoredCounter:
    """What the ledger holds of a GPU's last committed interval: where the next one starts from."""

    counter: CounterState
    at: datetime
    job_id: str | None  # the job on the GPU when the interval closed: the next interval is its (None: idle)


@dataclass(frozen=True)
class EnergyInterval:
    gpu_uuid: str
    start: datetime
    end: datetime
    energy_mj: int
    job_id: str | None  # None: the GPU was idle (no job of ours on it)
    source: str  # "counter" or "samples"
    stored: StoredCounter | None  # the counter state to store with it (None: the GPU has no counter)


@dataclass
class _Open:
    start: datetime
    job_id: str | None
    counter: CounterState | None = None  # the reading the interval started from
    power: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, watts)


class EnergyRecorder:
    def __init__(self, *, boot_id: str, commit_every_s: float = COMMIT_EVERY_S) -> None:
        self._boot_id = boot_id
        self._commit_every_s = commit_every_s
        self._open: dict[str, _Open] = {}

    def restore(self, stored: Mapping[str, StoredCounter]) -> None:
        """Continue from what the ledger committed (called once, before the first reading)."""
        for uuid, state in stored.items():
            self._open[uuid] = _Open(state.at, state.job_id, counter=state.counter)

    def observe(
        self,
        now: datetime,
        samples: Sequence[GpuSample],
        jobs_by_gpu: Mapping[str, str | None],
        *,
        close_all: bool = False,
    ) -> list[EnergyInterval]:
        """Take one reading of every GPU; return the intervals that close now (to be committed). ``close_all``
        closes every open interval (the agent is stopping: what it saw is committed, not left open)."""
        closing: list[EnergyInterval] = []
        for sample in samples:
            job_id = jobs_by_gpu.get(sample.uuid)
            interval = self._observe_gpu(now, sample, job_id, close_all)
            if interval is not None:
                closing.append(interval)
        return closing

    def _observe_gpu(
        self, now: datetime, sample: GpuSample, job_id: str | None, close_all: bool
    ) -> EnergyInterval | None:
        current = self._open.get(sample.uuid)
        if current is None:  # first sight of this GPU: the interval starts here
            self._open[sample.uuid] = self._start(now, sample, job_id)
            return None
        elapsed = (now - current.start).total_seconds()
        if elapsed < 0:  # the wall clock went back: start again from here, counting nothing twice
            self._open[sample.uuid] = self._start(now, sample, job_id)
            return None
        if sample.power_draw_w is not None:
            current.power.append((elapsed, sample.power_draw_w))
        if job_id == current.job_id and elapsed < self._commit_every_s and not (close_all and elapsed > 0):
            return None
        return self._close(now, sample, current, job_id)

    def _start(self, now: datetime, sample: GpuSample, job_id: str | None) -> _Open:
        counter = CounterState(self._boot_id, sample.energy_total_mj) if sample.energy_total_mj is not None else None
        power = [(0.0, sample.power_draw_w)] if sample.power_draw_w is not None else []
        return _Open(now, job_id, counter=counter, power=power)

    def _close(self, now: datetime, sample: GpuSample, current: _Open, job_now: str | None) -> EnergyInterval | None:
        """The interval ``current`` ends now; ``job_now`` is the job on the GPU from now on."""
        if sample.energy_total_mj is not None:
            increment = advance(current.counter, self._boot_id, sample.energy_total_mj)
            # The stored state is where the next interval starts: after a restart that interval covers the time
            # the agent was down, which belongs to the job on the GPU from now on, not to the one that just ended.
            stored = StoredCounter(increment.state, now, job_now)
            return EnergyInterval(
                sample.uuid, current.start, now, increment.energy_mj, current.job_id, "counter", stored
            )
        if len(current.power) < 2:  # nothing to integrate (no power reading, or a gap not watched)
            return EnergyInterval(sample.uuid, current.start, now, 0, current.job_id, "samples", None)
        joules = integrate_power(current.power)
        return EnergyInterval(sample.uuid, current.start, now, round(joules * 1000), current.job_id, "samples", None)

    def committed(
        self, intervals: Sequence[EnergyInterval], samples: Sequence[GpuSample], jobs: Mapping[str, str | None]
    ) -> None:
        """The intervals are in the ledger: open the next ones from where they ended."""
        by_uuid = {sample.uuid: sample for sample in samples}
        for interval in intervals:
            sample = by_uuid.get(interval.gpu_uuid)
            if sample is None:
                self._open.pop(interval.gpu_uuid, None)
                continue
            counter = interval.stored.counter if interval.stored is not None else None
            power = [(0.0, sample.power_draw_w)] if sample.power_draw_w is not None else []
            self._open[interval.gpu_uuid] = _Open(
                interval.end, jobs.get(interval.gpu_uuid), counter=counter, power=power
            )
