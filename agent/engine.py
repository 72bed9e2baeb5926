"""The work engine: keeps the latest sensor readings, asks the policy, and acts on its answer.

Sensors are read by the scheduler's jobs (GPUs every second, games every two, presence fast while
work runs); each reading triggers :meth:`WorkEngine.evaluate`, which runs the pure policy and, when
a GPU's decision changes, logs it with its reason, applies or restores the power limit, and tells
the listeners (the status and event stream). Readings are swapped in whole, so the evaluation on the
event loop never sees half a sample.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from sparecycles.agent.policy.decide import decide
from sparecycles.agent.policy.model import (
    Action,
    GpuDecision,
    GpuReading,
    MachineDecision,
    OwnerControls,
    PolicyInput,
    PolicyMemory,
    PolicySettings,
)
from sparecycles.agent.policy.settings import policy_settings
from sparecycles.agent.power_journal import PowerLimitJournal
from sparecycles.agent.sensors.activity import (
    ActivitySample,
    GpuUseThresholds,
    ProcessNameList,
    gpu_users_by_gpu,
)
from sparecycles.agent.sensors.activity.defaults import DEFAULT_GPU_IGNORE_PROCESSES, DEFAULT_PAUSE_PROCESSES
from sparecycles.agent.sensors.gpu import GpuBackend, GpuDiscovery, GpuSample
from sparecycles.agent.sensors.user.model import NullPresenceSource, PresenceSample, PresenceSource
from sparecycles.agent.system.sleep_inhibitor import SleepInhibitor
from sparecycles.config import Settings

log = logging.getLogger(__name__)

Listener = Callable[[], None]


class ActivityProbe(Protocol):
    """What the engine needs from the activity sensor (see sensors/activity)."""

    def sample(self) -> ActivitySample: ...

    def set_pause_processes(self, names: Iterable[str]) -> None: ...


@dataclass
class EngineSnapshot:
    """Everything the status document shows about the work, taken at one moment."""

    discovery: GpuDiscovery
    samples: dict[int, GpuSample]
    presence: PresenceSample
    presence_source: str
    activity: ActivitySample | None
    decisions: dict[int, GpuDecision]
    power_notes: dict[int, str] = field(default_factory=dict)
    machine: MachineDecision | None = None  # for CPU-only jobs; None until the first evaluation


def game_labels(activity: ActivitySample | None) -> tuple[str, ...]:
    """Games running anywhere on the machine, as the reasons name them."""
    if activity is None:
        return ()
    labels = [process.name for process in activity.blocking_processes]
    if activity.steam_app_id is not None:
        name = f" ({activity.steam_app_name})" if activity.steam_app_name else ""
        labels.insert(0, f"Steam game {activity.steam_app_id}{name}")
    return tuple(labels)


class WorkEngine:
    def __init__(
        self,
        *,
        gpu_backend: GpuBackend,
        presence_source: PresenceSource,
        activity: ActivityProbe | None,
        settings: Settings,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic_clock: Callable[[], float] = time.monotonic,
        is_own_process: Callable[[int], bool] = lambda pid: pid == os.getpid(),
        sleep_inhibitor: SleepInhibitor | None = None,
        power_journal: PowerLimitJournal | None = None,
    ) -> None:
        self._gpu_backend = gpu_backend
        self._presence_source = presence_source
        self._activity = activity
        self._wall = wall_clock
        self._monotonic = monotonic_clock
        self._is_own_process = is_own_process
        self._listeners: list[Listener] = []
        self._controls = OwnerControls()
        self._memory = PolicyMemory()
        self._discovery = GpuDiscovery("none", False, "GPUs not looked for yet", ())
        self._samples: dict[int, GpuSample] = {}
        self._presence = PresenceSample(source=presence_source.name)
        # Only the null source means "nothing here can tell": a real source's failed read is a gap.
        self._presence_available = not isinstance(presence_source, NullPresenceSource)
        self._activity_sample: ActivitySample | None = None
        self._decisions: dict[int, GpuDecision] = {}
        self._machine: MachineDecision | None = None
        self._power_notes: dict[int, str] = {}
        self._power_limited: set[int] = set()
        self._sleep_inhibitor = sleep_inhibitor
        self._power_journal = power_journal or PowerLimitJournal(None)
        self._busy_gpus: frozenset[int] = frozenset()
        self._cpu_only_busy = False
        self._settings = settings
        self.apply_settings(settings)

    # -- configuration ------------------------------------------------------------------------------

    def apply_settings(self, settings: Settings) -> None:
        previous_cap = self._settings.gpu.power_limit_percent
        self._settings = settings
        self._policy: PolicySettings = policy_settings(settings)
        games = settings.games
        self._ignore = ProcessNameList(
            games.ignore_gpu_processes if games.ignore_gpu_processes is not None else DEFAULT_GPU_IGNORE_PROCESSES
        )
        if self._activity is not None:
            self._activity.set_pause_processes(
                games.pause_processes if games.pause_processes is not None else DEFAULT_PAUSE_PROCESSES
            )
        if settings.gpu.power_limit_percent != previous_cap:  # a new cap applies to GPUs working now
            for decision in self._decisions.values():
                if decision.action is Action.WORK:
                    if decision.index in self._power_limited:
                        self.restore_power_limit(decision.index)
                    self._apply_power_limit(decision)

    @property
    def policy(self) -> PolicySettings:
        return self._policy

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def set_controls(self, controls: OwnerControls) -> None:
        self._controls = controls
        self.evaluate()

    @property
    def controls(self) -> OwnerControls:
        return self._controls

    def set_busy(self, gpu_indices: Iterable[int], *, cpu_only: bool = False) -> None:
        """The GPUs on which jobs run now, and whether CPU-only jobs run (told by the job runtime); keeps
        the machine awake for them. Where they run changes who else may be using a GPU (see ``_readings``),
        so the decisions are taken again then (after the first, which needs the sensors read)."""
        busy = frozenset(gpu_indices)
        changed = busy != self._busy_gpus
        self._busy_gpus = busy
        self._cpu_only_busy = cpu_only
        self._update_sleep_inhibitor()
        if changed and self._machine is not None:
            self.evaluate()

    # -- sensing (blocking calls: the scheduler runs these in a worker thread) ---------------------

    def discover(self) -> GpuDiscovery:
        self._discovery = self._gpu_backend.discover()
        self._recover_power_limits()
        return self._discovery

    def _recover_power_limits(self) -> None:
        """Give back limits that an agent which died while capping them left behind."""
        left_behind = self._power_journal.entries()
        for gpu in self._discovery.gpus:
            original_w = left_behind.get(gpu.uuid)
            if original_w is None:
                continue
            outcome = self._gpu_backend.set_power_limit(gpu.index, original_w)
            log.warning(
                "GPU %d: restoring the power limit of %.0f W left capped by a previous run: %s",
                gpu.index,
                original_w,
                outcome.message,
            )
            if outcome.applied:
                self._power_journal.forget(gpu.uuid)

    def read_gpus(self) -> None:
        if not self._discovery.available:
            return
        samples = self._gpu_backend.sample(self._is_own_process)
        self._samples = {sample.index: sample for sample in samples}

    def read_presence(self) -> None:
        self._presence = self._presence_source.sample()

    def read_activity(self) -> None:
        if self._activity is not None:
            self._activity_sample = self._without_our_processes(self._activity.sample())

    def _without_our_processes(self, sample: ActivitySample) -> ActivitySample:
        """The sample less our jobs' own processes: a job that runs ``cs2`` (a game server) or ``obs`` is on
        the pause list by name, yet it is no game of the owner's."""
        theirs = tuple(process for process in sample.blocking_processes if not self._is_own_process(process.pid))
        if len(theirs) == len(sample.blocking_processes):
            return sample
        return replace(sample, blocking_processes=theirs)

    # -- deciding (on the event loop) -------------------------------------------------------------------

    @property
    def has_gpus(self) -> bool:
        return bool(self._discovery.gpus)

    @property
    def working(self) -> bool:
        """Whether any GPU, or the machine, is allowed to work or holds a paused job (presence is then
        watched closely)."""
        machine = self._machine is not None and self._machine.action is not Action.STOP
        return machine or any(d.action is not Action.STOP for d in self._decisions.values())

    def _readings(self) -> tuple[GpuReading, ...]:
        """Per GPU: its temperature, who else really uses it (heavy users, and pause-list games on it), and
        which pause-list games were seen on it."""
        users = gpu_users_by_gpu(self._samples.values(), self._ignore, GpuUseThresholds(), jobs_on=self._busy_gpus)
        games_running = self._activity_sample.blocking_processes if self._activity_sample else ()
        readings = []
        for gpu in self._discovery.gpus:
            sample = self._samples.get(gpu.index)
            here = users.get(gpu.index, ())
            pids_here = {process.pid for process in sample.foreign_processes} if sample else set()
            user_pids = {user.pid for user in here}
            games_here = [game for game in games_running if game.pid in pids_here]
            reasons = [user.reason for user in here] + [
                f"{game.name} runs on it" for game in games_here if game.pid not in user_pids
            ]
            temperature = sample.temperature_c if sample else None
            readings.append(
                GpuReading(gpu.index, gpu.uuid, temperature, tuple(reasons), tuple(game.name for game in games_here))
            )
        return tuple(readings)

    def evaluate(self) -> None:
        """Run the policy on the latest readings; act on and announce what changed."""
        activity = self._activity_sample
        result = decide(
            PolicyInput(
                wall=self._wall(),
                monotonic_s=self._monotonic(),
                presence=self._presence,
                gpus=self._readings(),
                controls=self._controls,
                games=game_labels(activity),
                on_battery=activity.on_battery if activity else None,
                presence_available=self._presence_available,
            ),
            self._policy,
            self._memory,
        )
        self._memory = result.memory
        changed = self._machine_changed(result.machine)
        for decision in result.decisions:
            previous = self._decisions.get(decision.index)
            if previous is not None and (previous.action, previous.reason) == (decision.action, decision.reason):
                continue
            changed = True
            if previous is None or previous.action is not decision.action or previous.cause is not decision.cause:
                log.info("GPU %d: %s (%s)", decision.index, decision.action.name.lower(), decision.reason)
            self._decisions[decision.index] = decision
            if previous is None or previous.action is not decision.action:
                self._apply_power_limit(decision)
        if changed:
            self._update_sleep_inhibitor()
            for listener in self._listeners:
                listener()

    def _machine_changed(self, machine: MachineDecision) -> bool:
        previous, self._machine = self._machine, machine
        if previous is not None and (previous.action, previous.reason) == (machine.action, machine.reason):
            return False
        if previous is None or previous.action is not machine.action or previous.cause is not machine.cause:
            # Each GPU's decision says as much on a machine with GPUs; without them this is the one to read.
            level = logging.DEBUG if self._discovery.gpus else logging.INFO
            log.log(level, "CPU-only jobs: %s (%s)", machine.action.name.lower(), machine.reason)
        return True

    # -- acting ---------------------------------------------------------------------------------------------

    def _apply_power_limit(self, decision: GpuDecision) -> None:
        """Cap board power while a GPU works; give the owner their own limit back when it stops."""
        percent = self._settings.gpu.power_limit_percent
        index = decision.index
        if decision.action is Action.WORK and percent is not None:
            identity = next((gpu for gpu in self._discovery.gpus if gpu.index == index), None)
            default_w = identity.power_limits.default_w if identity else None
            if identity is None or default_w is None:
                self._power_notes[index] = "power limit: not supported by this GPU"
                return
            original_w = identity.power_limits.current_w or default_w
            self._power_journal.remember(identity.uuid, original_w)
            outcome = self._gpu_backend.set_power_limit(index, default_w * percent / 100)
            self._power_notes[index] = outcome.message
            if outcome.applied:
                self._power_limited.add(index)
            else:
                self._power_journal.forget(identity.uuid)
                log.warning("GPU %d: %s", index, outcome.message)
        elif decision.action is not Action.WORK and index in self._power_limited:
            self.restore_power_limit(index)

    def _update_sleep_inhibitor(self) -> None:
        """Hold off sleep exactly while a job works; a gamer's PC sleeps normally otherwise."""
        if self._sleep_inhibitor is None:
            return
        working = [
            index
            for index in sorted(self._busy_gpus)
            if (decision := self._decisions.get(index)) is not None and decision.action is Action.WORK
        ]
        cpu_working = self._cpu_only_busy and self._machine is not None and self._machine.action is Action.WORK
        if working:
            self._sleep_inhibitor.acquire(f"a SpareCycles job is running on GPU {', '.join(map(str, working))}")
        elif cpu_working:
            self._sleep_inhibitor.acquire("a SpareCycles job is running")
        else:
            self._sleep_inhibitor.release()

    def restore_power_limit(self, index: int) -> None:
        outcome = self._gpu_backend.set_power_limit(index, None)
        self._power_limited.discard(index)
        self._power_notes.pop(index, None)
        if outcome.applied:
            identity = next((gpu for gpu in self._discovery.gpus if gpu.index == index), None)
            if identity is not None:
                self._power_journal.forget(identity.uuid)
        else:
            log.warning("GPU %d: could not restore the power limit: %s", index, outcome.message)

    def shutdown(self) -> None:
        """Hand every GPU back as the owner set it up."""
        for index in sorted(self._power_limited):
            self.restore_power_limit(index)
        self._presence_source.close()
        self._gpu_backend.close()
        if self._sleep_inhibitor is not None:
            self._sleep_inhibitor.close()

    def snapshot(self) -> EngineSnapshot:
        return EngineSnapshot(
            discovery=self._discovery,
            samples=dict(self._samples),
            presence=self._presence,
            presence_source=self._presence_source.name,
            activity=self._activity_sample,
            decisions=dict(self._decisions),
            power_notes=dict(self._power_notes),
            machine=self._machine,
        )
