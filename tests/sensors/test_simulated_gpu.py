"""The simulated GPUs: labelled, scriptable, energy that adds up, and safe to script while sampling."""

from __future__ import annotations

import json
import threading

import pytest

from sparecycles.agent.sensors.gpu import GpuBackend, GpuProcess, SimulatedGpu, SimulatedGpuBackend
from sparecycles.agent.sensors.gpu.simulated import NOT_PERMITTED_MESSAGE


class FakeClock:
    """Monotonic seconds that move only when a test says (and, if asked, a little on every reading)."""

    def __init__(self, start_s: float = 1000.0, step_s: float = 0.0) -> None:
        self.now_s = start_s
        self.step_s = step_s
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now_s += self.step_s
            return self.now_s

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now_s += seconds


def _not_ours(pid: int) -> bool:
    return False


def test_it_is_a_gpu_backend() -> None:
    backend: GpuBackend = SimulatedGpuBackend(1)
    assert backend.discover().available


def test_discovery_labels_every_gpu_simulated() -> None:
    discovery = SimulatedGpuBackend(2).discover()

    assert (discovery.backend, discovery.available, discovery.reason) == ("simulated", True, None)
    assert [gpu.index for gpu in discovery.gpus] == [0, 1]
    assert all("SIMULATED" in gpu.name for gpu in discovery.gpus)
    assert all(gpu.uuid.startswith("SIM-") for gpu in discovery.gpus)
    assert len({gpu.uuid for gpu in discovery.gpus}) == 2
    gpu = discovery.gpus[0]
    assert gpu.vram_total_bytes == 12 * 1024**3
    assert gpu.cuda_version == "12.4"
    assert gpu.power_limits.current_w == gpu.power_limits.default_w == 200.0


def test_given_names_keep_the_simulated_label() -> None:
    discovery = SimulatedGpuBackend(2, names=["RTX 4090", "Lab card (SIMULATED)"]).discover()
    assert [gpu.name for gpu in discovery.gpus] == ["RTX 4090 (SIMULATED)", "Lab card (SIMULATED)"]


def test_names_must_match_the_count() -> None:
    with pytest.raises(ValueError, match="1 names given for 2"):
        SimulatedGpuBackend(2, names=["one"])


def test_no_gpus_is_a_not_available_discovery() -> None:
    backend = SimulatedGpuBackend(0)
    discovery = backend.discover()
    assert (discovery.backend, discovery.available, discovery.gpus) == ("simulated", False, ())
    assert backend.sample(_not_ours) == ()


def test_defaults_look_like_an_idle_mid_range_card() -> None:
    (sample,) = SimulatedGpuBackend(1, clock=FakeClock()).sample(_not_ours)
    assert sample.utilization_gpu_percent is not None
    assert sample.utilization_gpu_percent < 5
    assert sample.power_draw_w is not None
    assert 5 < sample.power_draw_w < 40
    assert sample.temperature_c is not None
    assert 25 < sample.temperature_c < 50
    assert sample.vram_used_bytes is not None
    assert 0 < sample.vram_used_bytes < 1024**3
    assert sample.fan_speed_percent is not None
    assert sample.clock_graphics_mhz is not None
    assert sample.foreign_processes == ()
    assert sample.energy_total_mj == 17 * 1000 * 1000  # 17 W since the clock's zero (boot) at 1000 s


def test_a_script_changes_later_samples_and_only_what_it_names() -> None:
    backend = SimulatedGpuBackend(2, clock=FakeClock())
    before = backend.sample(_not_ours)
    game = GpuProcess(pid=4321, name="cyberpunk2077.exe", vram_used_bytes=6 * 1024**3, gpu_utilization_percent=88.0)

    backend.script(1, utilization_gpu_percent=99.0, temperature_c=77.0, power_draw_w=180.0, foreign_processes=(game,))
    first, second = backend.sample(_not_ours)

    assert first == before[0].__class__(**{**before[0].__dict__, "monotonic_s": first.monotonic_s})
    assert second.utilization_gpu_percent == 99.0
    assert second.temperature_c == 77.0
    assert second.power_draw_w == 180.0
    assert second.foreign_processes == (game,)
    assert second.vram_used_bytes == before[1].vram_used_bytes
    assert second.clock_graphics_mhz == before[1].clock_graphics_mhz


def test_a_reading_scripted_to_none_is_not_available() -> None:
    backend = SimulatedGpuBackend(1, clock=FakeClock())
    backend.script(0, fan_speed_percent=None, power_draw_w=None)
    (sample,) = backend.sample(_not_ours)
    assert sample.fan_speed_percent is None
    assert sample.power_draw_w is None
    assert sample.energy_total_mj is None  # a board that cannot measure power has no energy counter either


def test_impossible_scripts_are_refused_and_change_nothing() -> None:
    backend = SimulatedGpuBackend(1, clock=FakeClock())
    with pytest.raises(ValueError, match="utilization_gpu_percent"):
        backend.script(0, utilization_gpu_percent=140.0)
    with pytest.raises(ValueError, match="vram_used_bytes"):
        backend.script(0, vram_used_bytes=13 * 1024**3)
    with pytest.raises(IndexError):
        backend.script(1, temperature_c=50.0)
    assert backend.gpu(0).utilization_gpu_percent == 1.0


def test_own_processes_are_left_out() -> None:
    backend = SimulatedGpuBackend(1, clock=FakeClock())
    ours = GpuProcess(pid=10, name="sparecycles-job")
    theirs = GpuProcess(pid=20, name="blender")
    backend.script(0, foreign_processes=[ours, theirs])
    (sample,) = backend.sample(lambda pid: pid == 10)
    assert sample.foreign_processes == (theirs,)


# -- energy ----------------------------------------------------------------------------------------


def test_energy_integrates_power_over_time() -> None:
    clock = FakeClock()
    backend = SimulatedGpuBackend(1, clock=clock)
    backend.script(0, power_draw_w=100.0)
    (start,) = backend.sample(_not_ours)
    assert start.energy_total_mj is not None
    base = start.energy_total_mj

    clock.advance(10)
    (at_10_s,) = backend.sample(_not_ours)
    clock.advance(5)
    backend.script(0, power_draw_w=200.0)  # the 5 s before this were at 100 W
    clock.advance(2.5)
    (at_17_5_s,) = backend.sample(_not_ours)

    assert at_10_s.energy_total_mj == base + 1_000_000  # 100 W × 10 s = 1 kJ
    assert at_17_5_s.energy_total_mj == base + 1_000_000 + 500_000 + 500_000
    assert at_17_5_s.monotonic_s - at_10_s.monotonic_s == 7.5


def test_energy_counts_the_idle_draw_from_the_start() -> None:
    clock = FakeClock(start_s=0.0)
    backend = SimulatedGpuBackend(1, clock=clock)
    clock.advance(60)
    (sample,) = backend.sample(_not_ours)
    assert sample.energy_total_mj == 17 * 60 * 1000  # the default 17 W idle draw


def test_a_restarted_backend_reads_on_from_where_the_last_one_stopped_like_nvml() -> None:
    clock = FakeClock(start_s=500.0)
    (before,) = SimulatedGpuBackend(1, clock=clock).sample(_not_ours)
    clock.advance(30)  # the agent restarts: a new backend, the same machine and clock
    (after,) = SimulatedGpuBackend(1, clock=clock).sample(_not_ours)
    assert before.energy_total_mj is not None
    assert after.energy_total_mj == before.energy_total_mj + 17 * 30 * 1000


def test_a_clock_that_steps_back_adds_no_energy() -> None:
    clock = FakeClock()
    backend = SimulatedGpuBackend(1, clock=clock)
    clock.advance(10)
    (first,) = backend.sample(_not_ours)
    clock.advance(-5)
    (second,) = backend.sample(_not_ours)
    clock.advance(6)
    (third,) = backend.sample(_not_ours)
    assert first.energy_total_mj is not None
    assert second.energy_total_mj == first.energy_total_mj
    assert third.energy_total_mj == first.energy_total_mj + 17 * 1000


# -- power limits ----------------------------------------------------------------------------------


def test_a_power_limit_caps_the_draw_and_the_energy() -> None:
    clock = FakeClock()
    backend = SimulatedGpuBackend(1, clock=clock)
    backend.script(0, power_draw_w=210.0)
    (start,) = backend.sample(_not_ours)
    assert start.energy_total_mj is not None

    outcome = backend.set_power_limit(0, 150.0)
    clock.advance(10)
    (sample,) = backend.sample(_not_ours)

    assert outcome.applied
    assert outcome.message == "power limit: GPU 0 set to 150 W"
    assert sample.power_draw_w == 150.0
    assert sample.energy_total_mj == start.energy_total_mj + 150 * 10 * 1000
    assert backend.discover().gpus[0].power_limits.current_w == 150.0


@pytest.mark.parametrize(("asked_w", "applied_w"), [(20.0, 100.0), (500.0, 220.0)])
def test_a_power_limit_outside_the_range_is_clamped(asked_w: float, applied_w: float) -> None:
    backend = SimulatedGpuBackend(1, clock=FakeClock())
    outcome = backend.set_power_limit(0, asked_w)
    assert outcome.applied
    assert "clamped" in outcome.message
    assert backend.gpu(0).power_limit_w == applied_w


def test_none_restores_the_starting_limit() -> None:
    backend = SimulatedGpuBackend(1, clock=FakeClock())
    backend.set_power_limit(0, 120.0)
    outcome = backend.set_power_limit(0, None)
    assert outcome.applied
    assert outcome.message == "power limit: GPU 0 restored to 200 W"
    assert backend.gpu(0).power_limit_w == 200.0


def test_a_power_limit_can_be_simulated_as_not_permitted() -> None:
    backend = SimulatedGpuBackend(1, clock=FakeClock(), power_limit_permitted=False)
    outcome = backend.set_power_limit(0, 150.0)
    assert (outcome.applied, outcome.message) == (False, NOT_PERMITTED_MESSAGE)
    assert backend.gpu(0).power_limit_w == 200.0


def test_a_power_limit_for_an_unknown_gpu_is_refused() -> None:
    assert not SimulatedGpuBackend(1).set_power_limit(1, 150.0).applied


# -- JSON -------------------------------------------------------------------------------------------


def test_the_state_round_trips_through_json() -> None:
    backend = SimulatedGpuBackend(2, clock=FakeClock())
    backend.script(1, temperature_c=80.0, foreign_processes=[GpuProcess(pid=9, name="game", vram_used_bytes=5)])
    backend.set_power_limit(1, 180.0)

    text = json.dumps(backend.state_dict())
    copy = SimulatedGpuBackend.from_state_dict(json.loads(text), clock=FakeClock())

    assert copy.discover() == backend.discover()
    assert copy.gpu(1) == backend.gpu(1)
    assert copy.gpu(1).foreign_processes == (GpuProcess(pid=9, name="game", vram_used_bytes=5),)


def test_a_gpu_can_be_described_in_json() -> None:
    gpu = SimulatedGpu.from_dict(
        {
            "name": "Big SIMULATED card",
            "uuid": "SIM-big",
            "vram_total_bytes": 24 * 1024**3,
            "compute_capability": [9, 0],
        }
    )
    backend = SimulatedGpuBackend(1, gpus=[gpu], clock=FakeClock())
    assert [g.name for g in backend.discover().gpus] == ["SIMULATED GPU 0", "Big SIMULATED card"]
    assert backend.discover().gpus[1].compute_capability == (9, 0)


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"name": "SIMULATED", "uuid": "SIM-1", "colour": "red"}, "unknown simulated-GPU field"),
        ({"name": "RTX 4090", "uuid": "SIM-1"}, "must contain SIMULATED"),
        ({"uuid": "SIM-1"}, "bad simulated-GPU description"),
        ({"name": "SIMULATED", "uuid": "SIM-1", "power_limit_w": 500.0}, "power limit"),
    ],
)
def test_bad_descriptions_are_refused_with_the_reason(data: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        SimulatedGpu.from_dict(data)


def test_scripts_can_come_as_json() -> None:
    backend = SimulatedGpuBackend(1, clock=FakeClock())
    backend.script_from_dict(0, {"temperature_c": 66, "foreign_processes": [{"pid": 3, "name": "obs"}]})
    (sample,) = backend.sample(_not_ours)
    assert sample.temperature_c == 66
    assert sample.foreign_processes == (GpuProcess(pid=3, name="obs"),)

    with pytest.raises(ValueError, match="not scriptable: name"):
        backend.script_from_dict(0, {"name": "other"})
    with pytest.raises(ValueError, match="bad foreign process"):
        backend.script_from_dict(0, {"foreign_processes": [{"pid": 3, "nmae": "typo"}]})


# -- threads ----------------------------------------------------------------------------------------


def test_scripting_while_sampling_keeps_every_sample_whole_and_the_energy_exact() -> None:
    """Writers change temperature and utilisation together; readers must never see half a change.

    The power stays at 100 W and the clock moves 1 ms at every reading, so any interval counted twice
    or lost by a race shows in the energy total.
    """
    clock = FakeClock(step_s=0.001)
    backend = SimulatedGpuBackend(1, clock=clock)
    backend.script(0, power_draw_w=100.0, temperature_c=40.0, utilization_gpu_percent=40.0)
    (first,) = backend.sample(_not_ours)
    stop = threading.Event()
    torn: list[tuple[float | None, float | None]] = []
    went_back: list[tuple[int, int]] = []

    def write(offset: float) -> None:
        for step in range(400):
            value = 40.0 + offset + step % 7
            backend.script(0, temperature_c=value, utilization_gpu_percent=value)

    def read() -> None:
        last = 0
        while not stop.is_set():
            (sample,) = backend.sample(_not_ours)
            if sample.temperature_c != sample.utilization_gpu_percent:
                torn.append((sample.temperature_c, sample.utilization_gpu_percent))
            energy = sample.energy_total_mj or 0
            if energy < last:
                went_back.append((last, energy))
            last = energy

    readers = [threading.Thread(target=read) for _ in range(3)]
    writers = [threading.Thread(target=write, args=(offset,)) for offset in (0.0, 10.0, 20.0)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    (last,) = backend.sample(_not_ours)

    assert torn == []
    assert went_back == []
    assert first.energy_total_mj is not None
    assert last.energy_total_mj is not None
    elapsed_s = last.monotonic_s - first.monotonic_s
    assert elapsed_s > 1.2  # at least the 1,200 scripts moved the clock
    assert last.energy_total_mj - first.energy_total_mj == pytest.approx(100 * elapsed_s * 1000, abs=2)
