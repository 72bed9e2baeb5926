"""The work engine with simulated GPUs: per-GPU decisions, power limits, announcements."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.jobs.ownership import JobProcesses
from sparecycles.agent.policy.model import Action, Cause, OwnerControls
from sparecycles.agent.power_journal import PowerLimitJournal
from sparecycles.agent.sensors.activity import ActivitySample, BlockingProcess, SteamReading, SteamStatus
from sparecycles.agent.sensors.gpu import GpuProcess
from sparecycles.agent.sensors.gpu.simulated import SimulatedGpuBackend
from sparecycles.agent.sensors.user.model import NullPresenceSource
from sparecycles.config import Settings, validate_settings
from tests.fakes.presence import ScriptedPresenceSource

GIB = 1024**3


class FakeActivity:
    def __init__(self) -> None:
        self.reading = ActivitySample(monotonic_s=0.0, steam=SteamReading(SteamStatus.NO_GAME))
        self.pause_processes: list[str] = []

    def sample(self) -> ActivitySample:
        return self.reading

    def set_pause_processes(self, names: object) -> None:
        self.pause_processes = list(names)  # type: ignore[call-overload]


class Clock:
    def __init__(self) -> None:
        self.wall = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        self.monotonic = 100.0


def make_engine(
    settings: Settings | None = None, gpus: int = 2, permitted: bool = True
) -> tuple[WorkEngine, SimulatedGpuBackend, ScriptedPresenceSource, FakeActivity]:
    backend = SimulatedGpuBackend(gpus, power_limit_permitted=permitted)
    presence = ScriptedPresenceSource(idle_s=3600)
    activity = FakeActivity()
    clock = Clock()
    engine = WorkEngine(
        gpu_backend=backend,
        presence_source=presence,
        activity=activity,
        settings=settings or Settings(),
        wall_clock=lambda: clock.wall,
        monotonic_clock=lambda: clock.monotonic,
    )
    engine.discover()
    return engine, backend, presence, activity


def tick(engine: WorkEngine) -> dict[int, tuple[Action, Cause, str]]:
    engine.read_gpus()
    engine.read_presence()
    engine.read_activity()
    engine.evaluate()
    return {i: (d.action, d.cause, d.reason) for i, d in engine.snapshot().decisions.items()}


def test_foreign_process_on_gpu_0_stops_gpu_0_and_leaves_gpu_1_working() -> None:
    engine, backend, _, _ = make_engine()
    assert {d[0] for d in tick(engine).values()} == {Action.WORK}
    backend.script(0, foreign_processes=[GpuProcess(pid=4242, name="eldenring.exe", vram_used_bytes=6 * GIB)])
    decisions = tick(engine)
    assert decisions[0][:2] == (Action.STOP, Cause.GPU_IN_USE)
    assert "eldenring.exe" in decisions[0][2]
    assert decisions[1][0] is Action.WORK


def test_a_compositor_on_the_gpu_is_ignored() -> None:
    engine, backend, _, _ = make_engine()
    backend.script(0, foreign_processes=[GpuProcess(pid=900, name="gnome-shell", vram_used_bytes=300 * 1024**2)])
    assert tick(engine)[0][0] is Action.WORK


def test_pause_list_game_seen_on_one_gpu_stops_only_that_gpu() -> None:
    engine, backend, _, activity = make_engine()
    activity.reading = ActivitySample(
        monotonic_s=1.0,
        steam=SteamReading(SteamStatus.NO_GAME),
        blocking_processes=(BlockingProcess("witcher3.exe", 555, "witcher3.exe"),),
    )
    assert {d[1] for d in tick(engine).values()} == {Cause.GAME}  # not on a GPU yet: could be any
    backend.script(1, foreign_processes=[GpuProcess(pid=555, name="witcher3.exe", vram_used_bytes=64 * 1024**2)])
    decisions = tick(engine)
    assert decisions[1][:2] == (Action.STOP, Cause.GPU_IN_USE)
    assert "witcher3.exe runs on it" in decisions[1][2]
    assert decisions[0][0] is Action.WORK


def test_power_limit_applies_while_working_and_is_restored_on_hand_back_and_shutdown() -> None:
    settings = validate_settings({"gpu": {"power_limit_percent": 60}}, source="test")
    engine, backend, presence, _ = make_engine(settings)
    default_w = backend.discover().gpus[0].power_limits.default_w
    assert default_w is not None
    tick(engine)
    assert backend.gpu(0).power_limit_w == default_w * 0.6
    assert engine.snapshot().power_notes[0]
    presence.set(idle_s=0.1)  # the owner is back
    tick(engine)
    assert backend.gpu(0).power_limit_w == default_w
    presence.set(idle_s=3600, locked=True)
    tick(engine)
    assert backend.gpu(1).power_limit_w == default_w * 0.6
    engine.shutdown()
    assert backend.gpu(1).power_limit_w == default_w
    assert presence.closed


def test_power_limit_not_permitted_is_reported_and_work_carries_on() -> None:
    settings = validate_settings({"gpu": {"power_limit_percent": 70}}, source="test")
    engine, _, _, _ = make_engine(settings, gpus=1, permitted=False)
    decisions = tick(engine)
    assert decisions[0][0] is Action.WORK
    assert "not permitted" in engine.snapshot().power_notes[0]


def test_settings_change_applies_without_restart() -> None:
    engine, _, _, activity = make_engine()
    assert tick(engine)[0][0] is Action.WORK
    engine.apply_settings(
        validate_settings({"gpu": {"disabled": ["0"]}, "games": {"pause_processes": ["x"]}}, source="t")
    )
    decisions = tick(engine)
    assert decisions[0][1] is Cause.DISABLED
    assert decisions[1][0] is Action.WORK
    assert activity.pause_processes == ["x"]


def test_listeners_hear_only_changes() -> None:
    engine, _, _, _ = make_engine()
    heard: list[int] = []
    engine.on_change(lambda: heard.append(1))
    tick(engine)
    tick(engine)
    assert heard == [1]
    engine.set_controls(OwnerControls(paused=True))
    assert heard == [1, 1]
    assert {d.cause for d in engine.snapshot().decisions.values()} == {Cause.PAUSED_BY_OWNER}


class RecordingInhibitor:
    name = "recording"

    def __init__(self) -> None:
        self.held = False
        self.reasons: list[str] = []
        self.closed = False

    def acquire(self, reason: str) -> bool:
        self.held = True
        self.reasons.append(reason)
        return True

    def release(self) -> None:
        self.held = False

    def close(self) -> None:
        self.release()
        self.closed = True


def test_the_machine_is_kept_awake_only_while_a_job_works() -> None:
    inhibitor = RecordingInhibitor()
    backend = SimulatedGpuBackend(2)
    presence = ScriptedPresenceSource(idle_s=3600)
    engine = WorkEngine(
        gpu_backend=backend,
        presence_source=presence,
        activity=None,
        settings=Settings(),
        sleep_inhibitor=inhibitor,
    )
    engine.discover()
    tick(engine)
    assert not inhibitor.held  # allowed to work, but no job: the PC may sleep
    engine.set_busy({1})
    assert inhibitor.held
    assert inhibitor.reasons[-1] == "a SpareCycles job is running on GPU 1"
    presence.set(idle_s=0.2)  # the owner is back: the job pauses, sleep is allowed again
    tick(engine)
    assert not inhibitor.held
    presence.set(idle_s=3600, locked=True)
    tick(engine)
    assert inhibitor.held
    engine.set_busy(())
    assert not inhibitor.held
    engine.shutdown()
    assert inhibitor.closed


def test_a_cap_left_by_a_crashed_agent_is_restored_at_the_next_start(tmp_path: Path) -> None:
    settings = validate_settings({"gpu": {"power_limit_percent": 50}}, source="test")
    journal_file = tmp_path / "power-limits.json"
    backend = SimulatedGpuBackend(1)
    owner_w = backend.gpu(0).power_limit_w

    def engine_for(backend: SimulatedGpuBackend) -> WorkEngine:
        engine = WorkEngine(
            gpu_backend=backend,
            presence_source=ScriptedPresenceSource(idle_s=3600),
            activity=None,
            settings=settings,
            power_journal=PowerLimitJournal(journal_file),
        )
        engine.discover()
        return engine

    crashed = engine_for(backend)
    tick(crashed)
    assert backend.gpu(0).power_limit_w == owner_w * 0.5
    assert journal_file.exists()
    # The agent dies here: no shutdown, the cap stays. A new agent (and a new reading of the card,
    # which now reports the cap as its current limit) starts.
    restarted_backend = SimulatedGpuBackend.from_state_dict(backend.state_dict())
    assert restarted_backend.gpu(0).power_limit_w == owner_w * 0.5
    engine_for(restarted_backend)
    assert restarted_backend.gpu(0).power_limit_w == owner_w
    assert not journal_file.exists()


def test_a_clean_hand_back_leaves_no_journal(tmp_path: Path) -> None:
    settings = validate_settings({"gpu": {"power_limit_percent": 50}}, source="test")
    journal = PowerLimitJournal(tmp_path / "power-limits.json")
    presence = ScriptedPresenceSource(idle_s=3600)
    engine = WorkEngine(
        gpu_backend=SimulatedGpuBackend(1),
        presence_source=presence,
        activity=None,
        settings=settings,
        power_journal=journal,
    )
    engine.discover()
    tick(engine)
    assert journal.entries()
    presence.set(idle_s=0.1)
    tick(engine)
    assert journal.entries() == {}


def test_changing_the_power_cap_applies_to_gpus_working_now() -> None:
    engine, backend, _, _ = make_engine(gpus=1)
    default_w = backend.discover().gpus[0].power_limits.default_w
    assert default_w is not None
    tick(engine)
    engine.apply_settings(validate_settings({"gpu": {"power_limit_percent": 80}}, source="test"))
    assert backend.gpu(0).power_limit_w == default_w * 0.8
    engine.apply_settings(validate_settings({"gpu": {"power_limit_percent": 50}}, source="test"))
    assert backend.gpu(0).power_limit_w == default_w * 0.5
    engine.apply_settings(Settings())
    assert backend.gpu(0).power_limit_w == default_w


def test_a_jobs_own_process_on_its_gpu_is_not_mistaken_for_the_owners(tmp_path: Path) -> None:
    from sparecycles.agent.jobs.ownership import JobProcesses

    container_id = "c" * 64
    for pid, cgroup in ((10, f"0::/system.slice/docker-{container_id}.scope\n"), (12, "0::/user.slice\n")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cgroup").write_text(cgroup)
    processes = JobProcesses(tmp_path, own_pid=1)
    processes.track(lambda: {container_id})
    backend = SimulatedGpuBackend(1)
    engine = WorkEngine(
        gpu_backend=backend,
        presence_source=ScriptedPresenceSource(idle_s=3600),
        activity=None,
        settings=Settings(),
        is_own_process=processes.is_ours,
    )
    engine.discover()
    backend.script(0, foreign_processes=[GpuProcess(pid=10, name="python3", vram_used_bytes=20 * GIB)])
    assert tick(engine)[0][0] is Action.WORK  # the job's own training process
    backend.script(0, foreign_processes=[GpuProcess(pid=12, name="eldenring.exe", vram_used_bytes=6 * GIB)])
    assert tick(engine)[0][:2] == (Action.STOP, Cause.GPU_IN_USE)


def test_without_gpus_the_machine_decision_governs_cpu_jobs_and_keeps_the_machine_awake() -> None:
    inhibitor = RecordingInhibitor()
    presence = ScriptedPresenceSource(idle_s=3600)
    activity = FakeActivity()
    engine = WorkEngine(
        gpu_backend=SimulatedGpuBackend(0),
        presence_source=presence,
        activity=activity,
        settings=Settings(),
        sleep_inhibitor=inhibitor,
    )
    engine.discover()
    changes: list[None] = []
    engine.on_change(lambda: changes.append(None))
    assert tick(engine) == {}
    machine = engine.snapshot().machine
    assert machine is not None
    assert (machine.action, machine.cause) == (Action.WORK, Cause.IDLE)
    assert changes  # listeners hear about the machine's decision like a GPU's
    assert engine.working  # presence is watched closely although there is no GPU
    engine.set_busy((), cpu_only=True)
    assert inhibitor.held
    assert inhibitor.reasons[-1] == "a SpareCycles job is running"
    activity.reading = ActivitySample(
        monotonic_s=1.0,
        steam=SteamReading(SteamStatus.NO_GAME),
        blocking_processes=(BlockingProcess(name="eldenring.exe", pid=77, matched="eldenring.exe"),),
    )
    tick(engine)
    machine = engine.snapshot().machine
    assert machine is not None
    assert (machine.action, machine.cause) == (Action.STOP, Cause.GAME)
    assert not inhibitor.held  # the game's owner may let the PC sleep
    engine.set_busy((), cpu_only=False)
    assert not inhibitor.held


def test_another_programs_render_on_one_gpu_does_not_let_a_starting_game_have_the_other() -> None:
    engine, backend, _, activity = make_engine()
    activity.reading = ActivitySample(
        monotonic_s=1.0,
        steam=SteamReading(SteamStatus.NO_GAME),
        blocking_processes=(BlockingProcess("witcher3.exe", 555, "witcher3.exe"),),
    )
    blender = GpuProcess(pid=777, name="blender", vram_used_bytes=4 * GIB, gpu_utilization_percent=90)
    backend.script(1, foreign_processes=[blender])
    decisions = tick(engine)
    assert decisions[0] == (Action.STOP, Cause.GAME, "stopped: game running — witcher3.exe")  # not on a GPU yet
    assert decisions[1][:2] == (Action.STOP, Cause.GPU_IN_USE)
    backend.script(1, foreign_processes=[blender, GpuProcess(pid=555, name="witcher3.exe", vram_used_bytes=GIB)])
    decisions = tick(engine)  # now it is seen where it runs: the other GPU may work
    assert decisions[0][0] is Action.WORK
    assert decisions[1][:2] == (Action.STOP, Cause.GPU_IN_USE)


def _job_processes(tmp_path: Path, container_id: str, pid: int) -> JobProcesses:
    """Job processes as the agent knows them, with ``pid`` inside the job container ``container_id``."""
    (tmp_path / str(pid)).mkdir()
    (tmp_path / str(pid) / "cgroup").write_text(f"0::/system.slice/docker-{container_id}.scope\n")
    processes = JobProcesses(tmp_path, own_pid=1)
    processes.track(lambda: {container_id})
    return processes


def test_a_jobs_own_process_named_like_a_game_is_no_game(tmp_path: Path) -> None:
    """A job running ``cs2`` (a dedicated server) or ``obs`` is on the pause list by name, not the owner's."""
    processes = _job_processes(tmp_path, "c" * 64, 4321)
    backend = SimulatedGpuBackend(2)
    backend.script(1, foreign_processes=[GpuProcess(pid=4321, name="cs2", vram_used_bytes=2 * GIB)])
    activity = FakeActivity()
    activity.reading = ActivitySample(
        monotonic_s=1.0,
        steam=SteamReading(SteamStatus.NO_GAME),
        blocking_processes=(BlockingProcess("cs2", 4321, "cs2"),),
    )
    engine = WorkEngine(
        gpu_backend=backend,
        presence_source=ScriptedPresenceSource(idle_s=3600),
        activity=activity,
        settings=Settings(),
        is_own_process=processes.is_ours,
    )
    engine.discover()
    assert {index: decision[0] for index, decision in tick(engine).items()} == {0: Action.WORK, 1: Action.WORK}
    machine = engine.snapshot().machine
    assert machine is not None
    assert machine.action is Action.WORK
    snapshot_activity = engine.snapshot().activity
    assert snapshot_activity is not None
    assert snapshot_activity.blocking_processes == ()  # the status names no game either
    # The owner's own cs2 still counts.
    activity.reading = ActivitySample(
        monotonic_s=2.0,
        steam=SteamReading(SteamStatus.NO_GAME),
        blocking_processes=(BlockingProcess("cs2", 99, "cs2"),),
    )
    assert {decision[1] for decision in tick(engine).values()} == {Cause.GAME}


def test_a_gpu_busy_with_a_process_the_driver_gives_no_figures_for_is_in_use() -> None:
    """Windows' WDDM reports neither VRAM nor load per process: on a GPU none of our jobs runs on, the
    total load can only be someone else's."""
    engine, backend, _, _ = make_engine(gpus=1)
    unreported = GpuProcess(pid=900, name="OtherGame.exe", vram_used_bytes=None, gpu_utilization_percent=None)
    backend.script(0, utilization_gpu_percent=98.0, foreign_processes=[unreported])
    decision = tick(engine)[0]
    assert decision[:2] == (Action.STOP, Cause.GPU_IN_USE)
    assert "OtherGame.exe may be using it: the GPU is 98 % busy" in decision[2]
    backend.script(0, utilization_gpu_percent=3.0)  # the desktop drawing: no one really uses it
    assert tick(engine)[0][0] is Action.WORK


def test_a_gpu_our_job_runs_on_is_not_judged_by_its_total_load() -> None:
    engine, backend, _, _ = make_engine(gpus=1)
    unreported = GpuProcess(pid=900, name="explorer.exe", vram_used_bytes=None, gpu_utilization_percent=None)
    backend.script(0, utilization_gpu_percent=98.0, foreign_processes=[unreported])
    engine.set_busy({0})  # the load is (at least partly) our job's: it cannot tell anyone else
    assert tick(engine)[0][0] is Action.WORK
    engine.set_busy(())  # the job ended: decided again at once, without waiting for the next reading
    assert engine.snapshot().decisions[0].cause is Cause.GPU_IN_USE


def test_a_failed_presence_read_keeps_the_pause_and_only_no_source_at_all_falls_back_to_the_schedule() -> None:
    settings = validate_settings(
        {"work": {"mode": "idle_in_schedule"}, "schedule": {"windows": ["daily"]}}, source="test"
    )
    engine, _, presence, _ = make_engine(settings, gpus=1)
    assert tick(engine)[0][0] is Action.WORK
    presence.set(idle_s=0.2)  # the owner types
    assert tick(engine)[0][0] is Action.PAUSE
    presence.set(idle_s=None, locked=None, fullscreen=None)  # X11 reconnecting: the read fails
    assert tick(engine)[0][:2] == (Action.PAUSE, Cause.PRESENCE_UNKNOWN)
    nothing_here = WorkEngine(
        gpu_backend=SimulatedGpuBackend(1), presence_source=NullPresenceSource(), activity=None, settings=settings
    )
    nothing_here.discover()
    assert tick(nothing_here)[0] == (
        Action.WORK,
        Cause.SCHEDULED,
        "working: inside scheduled hours (idle time unknown)",
    )
