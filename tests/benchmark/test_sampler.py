"""Power and temperature per phase, from a fake reading source (no timing assertions)."""

from __future__ import annotations

import itertools
import logging

import pytest

from sparecycles.agent.benchmark.sampler import PhaseRecording, PhaseSampler


def test_a_constant_source_gives_its_constants() -> None:
    sampler = PhaseSampler(lambda: (312.5, 67.0), interval_s=0.001)
    with sampler.sampling("matmul_bf16") as recording:
        pass
    power = recording.summary()
    assert power.samples >= 2  # one as the phase starts, one as it ends, whatever the thread managed
    assert power.mean_power_w == 312.5
    assert power.max_power_w == 312.5
    assert power.max_temperature_c == 67.0


def test_the_sampler_thread_reads_while_the_phase_runs() -> None:
    readings = itertools.count()

    def source() -> tuple[float, float]:
        value = float(next(readings))
        return value, 40.0 + value

    sampler = PhaseSampler(source, interval_s=0.001)
    with sampler.sampling("device_copy") as recording:
        while recording.summary().samples < 5:  # waits for the thread, however slow this machine is
            pass
    power = recording.summary()
    assert power.samples >= 6
    assert power.max_power_w == power.samples - 1
    assert power.mean_power_w == pytest.approx((power.samples - 1) / 2)
    assert power.max_temperature_c == 40.0 + power.samples - 1


def test_summaries_of_known_readings() -> None:
    recording = PhaseRecording()
    for reading in [(100.0, 50.0), (200.0, None), (None, 70.0), (300.0, 60.0)]:
        recording.add(reading)
    power = recording.summary()
    assert power.samples == 4
    assert power.mean_power_w == 200.0
    assert power.max_power_w == 300.0
    assert power.max_temperature_c == 70.0


def test_a_gpu_without_power_readings_has_none() -> None:
    with PhaseSampler(lambda: (None, None), interval_s=0.001).sampling("host_to_device") as recording:
        pass
    power = recording.summary()
    assert power.samples >= 2
    assert (power.mean_power_w, power.max_power_w, power.max_temperature_c) == (None, None, None)


def test_a_failing_source_is_logged_once_and_the_phase_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    def broken() -> tuple[float, float]:
        nonlocal calls
        calls += 1
        raise RuntimeError("GPU is lost")

    with caplog.at_level(logging.WARNING), PhaseSampler(broken, interval_s=0.001).sampling("vram") as recording:
        pass
    assert calls == 1
    assert recording.summary().samples == 0
    assert [record.getMessage() for record in caplog.records] == [
        "power and temperature readings failed during vram (GPU is lost); the phase has none"
    ]


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        PhaseSampler(lambda: (None, None), interval_s=0)
