"""The activity sensor: Steam, the pause list, battery and CPU load in one sample that never raises."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from sparecycles.agent.sensors.activity import (
    ActivitySensor,
    BlockingProcess,
    BlockingProcessScanner,
    CpuBusyMeter,
    CpuTimes,
    RunningProcess,
    SteamReading,
    SteamRegistryFile,
    SteamStatus,
    linux_registry_paths,
    read_on_battery,
)
from sparecycles.agent.sensors.activity.machine import psutil_cpu_times

FIXTURES = Path(__file__).parent / "fixtures"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _processes(*running: RunningProcess) -> BlockingProcessScanner:
    return BlockingProcessScanner(["eldenring.exe"], lambda: list(running))


def test_a_sample_composes_all_sources(tmp_path: Path) -> None:
    registry = linux_registry_paths(tmp_path)[0]
    registry.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURES / "registry.vdf", registry)
    times = iter([CpuTimes(busy_s=10.0, total_s=100.0), CpuTimes(busy_s=40.0, total_s=200.0)])
    clock = Clock()
    sensor = ActivitySensor(
        steam=SteamRegistryFile.for_home(tmp_path),
        processes=_processes(RunningProcess(pid=7, name="eldenring.exe"), RunningProcess(pid=8, name="bash")),
        on_battery=lambda: True,
        cpu=CpuBusyMeter(lambda: next(times)),
        clock=clock,
    )
    first = sensor.sample()
    assert (first.steam_app_id, first.steam_app_name) == (1245620, "ELDEN RING")
    assert first.blocking_processes == (BlockingProcess(name="eldenring.exe", pid=7, matched="eldenring.exe"),)
    assert first.on_battery is True
    assert first.cpu_busy_percent is None  # nothing to compare with yet
    assert first.monotonic_s == 1000.0
    clock.now = 1002.0
    second = sensor.sample()
    assert second.cpu_busy_percent == pytest.approx(30.0)
    assert second.monotonic_s == 1002.0


def test_no_game_means_no_app_id() -> None:
    class NoGame:
        def read(self) -> SteamReading:
            return SteamReading(SteamStatus.NO_GAME)

    sample = ActivitySensor(steam=NoGame(), processes=_processes()).sample()
    assert (sample.steam_app_id, sample.steam_app_name, sample.blocking_processes) == (None, None, ())
    assert (sample.on_battery, sample.cpu_busy_percent) == (None, None)


def test_sample_never_raises_and_logs_a_failure_once(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenSteam:
        def read(self) -> SteamReading:
            raise RuntimeError("steam exploded")

    def broken_lister() -> Iterator[RunningProcess]:
        yield RunningProcess(pid=1, name="init")
        raise PermissionError("/proc went away")

    def broken_battery() -> bool | None:
        raise OSError("battery")

    def broken_times() -> CpuTimes:
        raise OSError("cpu")

    sensor = ActivitySensor(
        steam=BrokenSteam(),
        processes=BlockingProcessScanner(["eldenring.exe"], broken_lister),
        on_battery=broken_battery,
        cpu=CpuBusyMeter(broken_times),
    )
    with caplog.at_level(logging.WARNING):
        samples = [sensor.sample(), sensor.sample()]
    for sample in samples:
        assert sample.steam.status is SteamStatus.UNKNOWN
        assert sample.steam_app_id is None
        assert sample.blocking_processes == ()
        assert (sample.on_battery, sample.cpu_busy_percent) == (None, None)
    warnings = [r.getMessage() for r in caplog.records]
    assert sorted(warnings) == [
        "activity sensor: CPU load unreadable; treated as unknown",
        "activity sensor: Steam unreadable; treated as unknown",
        "activity sensor: battery unreadable; treated as unknown",
        "activity sensor: process list unreadable; treated as unknown",
    ]


def test_the_pause_list_changes_without_a_restart() -> None:
    sensor = ActivitySensor(steam=SteamRegistryFile([]), processes=_processes(RunningProcess(pid=3, name="blender")))
    assert sensor.sample().blocking_processes == ()
    sensor.set_pause_processes(["Blender"])
    assert sensor.sample().blocking_processes == (BlockingProcess(name="blender", pid=3, matched="Blender"),)


def test_create_wires_the_real_sources(tmp_path: Path) -> None:
    sensor = ActivitySensor.create(platform="linux", home=tmp_path, process_lister=lambda: [])
    sample = sensor.sample()
    assert sample.steam.status is SteamStatus.UNKNOWN  # no Steam in an empty home
    assert sample.blocking_processes == ()
    assert sample.on_battery in (True, False, None)


# --- battery and CPU load -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("battery", "expected"),
    [
        (None, False),  # no battery: a desktop is never on battery
        (SimpleNamespace(percent=80, power_plugged=False), True),
        (SimpleNamespace(percent=80, power_plugged=True), False),
        (SimpleNamespace(percent=80, power_plugged=None), None),
    ],
)
def test_on_battery(battery: object, expected: bool | None) -> None:
    assert read_on_battery(lambda: battery) is expected


def test_psutil_cpu_times_on_this_machine() -> None:
    before = psutil_cpu_times()
    sum(i * i for i in range(300_000))  # let some CPU time pass
    after = psutil_cpu_times()
    assert 0 < before.busy_s <= before.total_s
    assert after.total_s > before.total_s
    assert after.busy_s >= before.busy_s


def test_cpu_busy_meter_counts_between_reads() -> None:
    readings = iter([CpuTimes(5.0, 50.0), CpuTimes(5.0, 50.0), CpuTimes(95.0, 150.0), CpuTimes(100.0, 160.0)])
    meter = CpuBusyMeter(lambda: next(readings))
    assert meter.read() is None
    assert meter.read() is None  # no time passed: cannot tell
    assert meter.read() == pytest.approx(90.0)
    assert meter.read() == pytest.approx(50.0)
