"""The ledger inside the agent: energy recorded every GPU tick, the price floors, and the answers for the API.

The scheduler's GPU tick hands :meth:`LedgerService.tick` the latest readings and which job runs on
which GPU; intervals that close are written in a worker thread, one write at a time, and the recorder
moves on only once a write is committed. A write that fails (a full disk) is logged and retried with
the next tick over the longer span. The tariff and the token rate are read from the ledger when they
change, not at every tick.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sparecycles.agent.jobs.runtime import JobState, JobStatus
from sparecycles.agent.ledger.floor import TokenRate, floor_per_unit_hour, power_cost
from sparecycles.agent.ledger.queries import LedgerQueries
from sparecycles.agent.ledger.recorder import EnergyRecorder
from sparecycles.agent.ledger.store import LeaseSpan, LedgerStore
from sparecycles.agent.ledger.tariffs import Tariff, TariffError, TariffHistory
from sparecycles.agent.sensors.cpu_power import CpuPowerEstimate, RaplMeter, cpu_watts_per_core
from sparecycles.agent.sensors.gpu.model import GpuIdentity, GpuSample
from sparecycles.config import LedgerSettings
from sparecycles.control.ledger import (
    EarningsSummary,
    LedgerExport,
    LedgerSettingsView,
    PayoutList,
    PayoutView,
    SummaryBucket,
    TodayFigure,
    TokenRateChange,
)

log = logging.getLogger(__name__)

_ENERGY_STATES = frozenset({JobState.STARTING, JobState.RUNNING})  # a paused job's GPU is the owner's again


def boot_id(path: Path = Path("/proc/sys/kernel/random/boot_id")) -> str:
    """This boot of the machine: NVML's counters start again at each one."""
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return "unknown-boot"  # no such file (Windows): a reset still shows as a counter that went back


def busy_cpu_cores(statuses: Iterable[JobStatus]) -> float:
    """The CPUs that CPU-only jobs may use now (the CPU's extra draw is theirs)."""
    return sum(status.cpus for status in statuses if status.state in _ENERGY_STATES and not status.gpu_indices)


def jobs_on_gpus(statuses: Iterable[JobStatus], samples: Sequence[GpuSample]) -> dict[str, str | None]:
    """GPU UUID → the job whose energy it is now (running or starting), or None (idle, or a paused job's)."""
    uuid_by_index = {sample.index: sample.uuid for sample in samples}
    found: dict[str, str | None] = {sample.uuid: None for sample in samples}
    for status in statuses:
        if status.state in _ENERGY_STATES:
            for index in status.gpu_indices:
                if index in uuid_by_index:
                    found[uuid_by_index[index]] = status.job_id
    return found


@dataclass(frozen=True)
class Floors:
    """The lowest prices the agent bids, in base units per unit-hour, and what they come from."""

    per_gpu_hour: int
    per_core_hour: int
    electricity_per_gpu_hour: Decimal | None  # in ``currency``; None without a tariff
    currency: str | None
    load_power_w: float | None
    basis: str  # in words: "electricity 0.096 EUR per GPU-hour at 300 W, plus 20 %", or what is missing
    complete: bool = True  # False: the electricity is left out (no tariff or rate), ``basis`` says why


class LedgerService:
    def __init__(
        self,
        store: LedgerStore,
        *,
        settings: Callable[[], LedgerSettings],
        boot: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cpu_meter: RaplMeter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._cpu_meter = cpu_meter
        self._cpu_power = CpuPowerEstimate()
        self._monotonic = monotonic
        self._settings = settings
        self._clock = clock
        self._recorder = EnergyRecorder(boot_id=boot)
        self._recorder.restore(store.counters())
        self._tariffs = store.tariff_history()
        self._rate = store.token_rate()
        self._writing = asyncio.Lock()  # ticks queue here instead of each holding a worker thread
        # One reading observed, written and committed at a time: a tick still writing and the flush at stop
        # would otherwise both close the same open interval, and its energy would be counted twice.
        self._recording = threading.Lock()
        self._problem: str | None = None  # the ledger's own (damage, a write that failed); the tariff's is apart
        if store.set_aside is not None:
            self._problem = f"the ledger was damaged and set aside as {store.set_aside}; a new one was started"

    @property
    def problem(self) -> str | None:
        """What the owner should know of the ledger now: its own trouble first, else a tariff in force that can
        no longer be read (and what to do about it)."""
        if self._problem is not None:
            return self._problem
        unreadable = self._tariffs.unreadable_in_force(self._clock())
        if unreadable is None:
            return None
        since, reason = unreadable
        return (
            f"the tariff in force since {since:%Y-%m-%d %H:%M} UTC was stored by an earlier version and can no "
            f"longer be read ({reason}): energy since then has no cost. Set your tariff again: "
            "`sparecycles tariff set FILE`"
        )

    def deep_check(self) -> None:
        """Check every page of the ledger (blocking, seconds on a big one); damage shows in the status."""
        problem = self.store.deep_check()
        if problem is not None:
            self._problem = problem

    # -- energy -------------------------------------------------------------------------------------

    def flush(self, samples: Sequence[GpuSample], jobs: Mapping[str, str | None]) -> None:
        """Commit every open interval up to now (the agent is stopping; blocking). A tick's write still in
        progress finishes first, and this one then closes only what comes after it."""
        self._commit(samples, jobs, close_all=True)

    def record(self, samples: Sequence[GpuSample], jobs: Mapping[str, str | None], busy_cores: float = 0.0) -> None:
        """Observe one reading of every GPU (and of the CPU's energy, where RAPL is readable) and commit what
        closes (blocking: call from a worker thread)."""
        if self._cpu_meter is not None:
            reading = self._cpu_meter.read_uj()
            if reading is not None:
                self._cpu_power.observe(self._monotonic(), reading, busy_cores)
        self._commit(samples, jobs)

    def _commit(self, samples: Sequence[GpuSample], jobs: Mapping[str, str | None], *, close_all: bool = False) -> None:
        """Write the intervals this reading closes; the recorder moves on only once they are committed."""
        with self._recording:  # the clock is read inside: readings reach the recorder in the order they are taken
            intervals = self._recorder.observe(self._clock(), samples, jobs, close_all=close_all)
            if intervals:
                self.store.record_energy(intervals, self._tariffs, self._settings().idle_baseline_w)
                self._recorder.committed(intervals, samples, jobs)

    async def tick(self, samples: Sequence[GpuSample], jobs: Mapping[str, str | None], busy_cores: float = 0.0) -> None:
        """:meth:`record` in a worker thread; a tick that comes while one is writing waits for it."""
        async with self._writing:
            try:
                await asyncio.to_thread(self.record, samples, jobs, busy_cores)
            except Exception as exc:  # the disk is full, the file went away: keep the agent working
                message = f"energy not recorded: {exc}"
                if message != self._problem:
                    log.error("Ledger: %s (trying again)", message)
                self._problem = message
            else:
                if self._problem is not None and self._problem.startswith("energy not recorded"):
                    self._problem = None

    # -- tariff and rate ------------------------------------------------------------------------------

    def set_tariff_text(self, document: str) -> None:
        """Adopt the tariff file's text from now on; ``TariffError`` says what is wrong with it."""
        tariff = self.store.set_tariff(document, self._clock())
        self._tariffs = self.store.tariff_history()
        log.info("Tariff set: %s, %s per kWh by default", tariff.currency, tariff.price_per_kwh)

    def settings_view(self) -> LedgerSettingsView:
        current = self.store.current_tariff_document()
        rate = self._rate
        return LedgerSettingsView(
            tariff=current[1] if current else None,
            tariff_since=current[0] if current else None,
            token_rate=TokenRateChange(per_token=rate.per_token, currency=rate.currency, decimals=rate.decimals)
            if rate is not None
            else None,
            problem=self.problem,
        )

    def local_today(self) -> date:
        return self._clock().astimezone(self.store.zone).date()

    def set_token_rate(self, rate: TokenRate) -> None:
        self.store.set_token_rate(rate, self._clock())
        self._rate = rate
        log.info("Token rate set: 1 token = %s %s", rate.per_token, rate.currency)

    @property
    def tariffs(self) -> TariffHistory:
        return self._tariffs

    @property
    def token_rate(self) -> TokenRate | None:
        return self._rate

    def tariff_now(self) -> Tariff | None:
        return self._tariffs.in_force(self._clock())

    # -- answers ------------------------------------------------------------------------------------

    def _queries(self) -> LedgerQueries:
        tariff = self.tariff_now()
        return LedgerQueries(self.store.engine, self.store.zone, self._rate, tariff.currency if tariff else None)

    def summary(self, since: date, until: date, by: SummaryBucket) -> EarningsSummary:
        return self._queries().summary(since, until, by)

    def today(self) -> TodayFigure:
        return self._queries().today(self._clock())

    def export(self, since: date, until: date) -> LedgerExport:
        return self._queries().export(since, until)

    def gpu_hours_today(self) -> float:
        """GPU-hours of work in today's local day so far, running leases included: a lease's run time is
        written only when it ends, so the time inside today is taken from its start and end (or now)."""
        now = self._clock()
        day = now.astimezone(self.store.zone).date()
        start = datetime.combine(day, datetime.min.time(), tzinfo=self.store.zone)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=self.store.zone)
        return gpu_hours_within(self.store.leases_during(start, end), start, min(end, now))

    def payouts(self) -> PayoutList:
        return PayoutList(
            payouts=[
                PayoutView(
                    claimed=payout.claimed,
                    payout_address=payout.payout_address,
                    amount_base_units=payout.amount,
                    chain_id=payout.chain_id,
                    tx_hash=payout.tx_hash,
                )
                for payout in self.store.payouts()
            ]
        )

    # -- floors -------------------------------------------------------------------------------------

    def floors(
        self,
        gpus: Sequence[GpuIdentity],
        *,
        configured_gpu: int,
        configured_core: int,
        power_cap_percent: float | None,
        measured_load_w: Mapping[str, float] | None = None,
    ) -> Floors:
        """The configured floors, raised to the electricity of the work plus the margin where that is known;
        ``measured_load_w`` holds the benchmarked power under load of GPUs (by UUID)."""
        settings = self._settings()
        per_core_w, per_core_source = cpu_watts_per_core(self._cpu_power.watts_per_core(), settings.cpu_watts_per_core)
        load_w = load_power_w(gpus, settings.load_power_w, power_cap_percent, measured_load_w or {})
        tariff, rate = self.tariff_now(), self._rate
        if tariff is None or rate is None:
            missing = "no tariff" if tariff is None else "no token rate"
            return Floors(
                configured_gpu, configured_core, None, None, load_w, f"{missing} set: bids ignore electricity"
            )
        now, hours = self._clock(), Decimal(str(settings.expected_job_hours))
        margin = Decimal(str(settings.margin))
        try:
            gpu_floor = core_floor = 0
            electricity = None
            if load_w is not None:
                watts = Decimal(str(load_w))
                gpu_floor = floor_per_unit_hour(
                    watts=watts, tariff=tariff, rate=rate, start=now, hours=hours, margin=margin
                )
                electricity = power_cost(watts, tariff, now, hours) / hours
            core_floor = floor_per_unit_hour(
                watts=Decimal(str(per_core_w)), tariff=tariff, rate=rate, start=now, hours=hours, margin=margin
            )
        except TariffError as exc:
            basis = f"the electricity cannot be priced: {exc}"
            return Floors(configured_gpu, configured_core, None, tariff.currency, load_w, basis, complete=False)
        per_gpu = f"{electricity:.4f} {tariff.currency} per GPU-hour at {load_w:.0f} W, " if electricity else ""
        basis = f"electricity {per_gpu}{per_core_w:.1f} W per core ({per_core_source}), plus {float(margin) * 100:g} %"
        return Floors(
            max(configured_gpu, gpu_floor),
            max(configured_core, core_floor),
            electricity,
            tariff.currency,
            load_w,
            basis,
        )


def gpu_hours_within(leases: Iterable[LeaseSpan], start: datetime, end: datetime) -> float:
    """GPU-hours of ``leases`` between ``start`` and ``end`` (a lease still running counts up to ``end``). An
    ended lease's share is scaled by its run time over its length, so the time it was paused is left out as
    its run time leaves it out (spread evenly: the ledger does not keep when the pauses were)."""
    # In UTC: between two times of one zone Python subtracts wall clocks, an hour off on the day clocks change.
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    seconds = 0.0
    for lease in leases:
        finish = lease.ended or end
        inside = (min(finish, end) - max(lease.started, start)).total_seconds()
        if inside <= 0 or lease.gpus == 0:
            continue
        length = (finish - lease.started).total_seconds()
        if lease.ended is not None and lease.run_time_s is not None and length > 0:
            inside *= min(1.0, lease.run_time_s / length)
        seconds += inside * lease.gpus
    return seconds / 3600


def load_power_w(
    gpus: Sequence[GpuIdentity],
    configured: float | None,
    cap_percent: float | None,
    measured: Mapping[str, float] | None = None,
) -> float | None:
    """The highest load power among the GPUs: the configured figure, else each GPU's benchmarked power under
    load (``measured``, by UUID), else its power limit (what it can draw at most), held under the agent's own
    cap while it works."""
    if configured is not None:
        return configured
    measured = measured or {}
    limits = [measured.get(gpu.uuid) or gpu.power_limits.current_w or gpu.power_limits.default_w for gpu in gpus]
    known = [watts for watts in limits if watts is not None]
    if not known:
        return None
    watts = max(known)
    if cap_percent is not None:
        defaults = [gpu.power_limits.default_w for gpu in gpus if gpu.power_limits.default_w is not None]
        if defaults:
            watts = min(watts, max(defaults) * cap_percent / 100)
    return watts
