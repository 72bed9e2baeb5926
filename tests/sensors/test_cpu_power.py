"""The CPU power sensor: RAPL counters read from a powercap tree laid out as the kernel does, and the estimate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sparecycles.agent.sensors.cpu_power import (
    CONFIGURED_SOURCE,
    MEASURED_SOURCE,
    CpuPowerEstimate,
    RaplMeter,
    cpu_watts_per_core,
)

J = 1_000_000  # microjoules per joule
RANGE_UJ = 262_143_328_850  # a real package's max_energy_range_uj


def _zone(root: Path, zone: str, name: str, energy_uj: int, range_uj: int = RANGE_UJ) -> Path:
    path = root / zone
    path.mkdir(parents=True, exist_ok=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{range_uj}\n")
    (path / "enabled").write_text("1\n")
    return path


def _set_energy(root: Path, zone: str, energy_uj: int) -> None:
    (root / zone / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    """Two sockets with their subzones, plus the zones that repeat the packages and must not be added."""
    root = tmp_path / "powercap"
    _zone(root, "intel-rapl:0", "package-0", 1_000 * J)
    _zone(root, "intel-rapl:0:0", "core", 700 * J)
    _zone(root, "intel-rapl:0:1", "dram", 90 * J)
    _zone(root, "intel-rapl:1", "package-1", 2_000 * J)
    _zone(root, "intel-rapl:1:0", "core", 1_500 * J)
    _zone(root, "intel-rapl:2", "psys", 9_000 * J)  # the whole platform, packages included
    _zone(root, "intel-rapl-mmio:0", "package-0", 1_000 * J)  # the same package through MMIO
    return root


def test_reads_the_sum_of_the_packages_only(powercap: Path) -> None:
    meter = RaplMeter(powercap)

    assert meter.available() is None
    assert meter.read_uj() == 3_000 * J


def test_later_readings_add_each_packages_increase(powercap: Path) -> None:
    meter = RaplMeter(powercap)
    meter.read_uj()
    _set_energy(powercap, "intel-rapl:0", 1_250 * J)
    _set_energy(powercap, "intel-rapl:1", 2_100 * J)
    _set_energy(powercap, "intel-rapl:0:0", 999_999 * J)  # a subzone moving changes nothing

    assert meter.read_uj() == 3_350 * J


def test_undoes_one_packages_wraparound_with_its_range(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", "package-0", 9_000, range_uj=10_000)
    _zone(tmp_path, "intel-rapl:1", "package-1", 5_000, range_uj=50_000)
    meter = RaplMeter(tmp_path)
    assert meter.read_uj() == 14_000

    _set_energy(tmp_path, "intel-rapl:0", 1_000)  # wrapped: 9 000 -> 10 000 -> 0 -> 1 000 is 2 000
    _set_energy(tmp_path, "intel-rapl:1", 5_500)
    assert meter.read_uj() == 16_500

    _set_energy(tmp_path, "intel-rapl:0", 1_400)
    assert meter.read_uj() == 16_900


def test_a_counter_that_went_back_without_a_range_counts_from_zero(tmp_path: Path) -> None:
    zone = _zone(tmp_path, "intel-rapl:0", "package-0", 9_000)
    (zone / "max_energy_range_uj").unlink()
    meter = RaplMeter(tmp_path)
    meter.read_uj()

    _set_energy(tmp_path, "intel-rapl:0", 300)

    assert meter.read_uj() == 9_300


def test_unreadable_counter_is_reported_with_its_path_and_error(powercap: Path) -> None:
    counter = powercap / "intel-rapl:1" / "energy_uj"
    counter.unlink()
    counter.mkdir()  # reading it raises IsADirectoryError, as root too
    meter = RaplMeter(powercap)

    reason = meter.available()

    assert reason == (
        f"RAPL energy counter not readable ({counter}: Is a directory): the configured watts per core is used"
    )
    assert meter.read_uj() is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_counter_readable_by_root_only_says_so(powercap: Path) -> None:
    counter = powercap / "intel-rapl:0" / "energy_uj"
    counter.chmod(0o000)
    meter = RaplMeter(powercap)

    assert meter.available() == (
        f"RAPL energy counters are readable by root only ({counter}: Permission denied): "
        "the configured watts per core is used"
    )
    assert meter.read_uj() is None


def test_missing_powercap_says_there_are_no_counters(tmp_path: Path) -> None:
    root = tmp_path / "no-powercap"
    meter = RaplMeter(root)

    assert meter.available() == f"no RAPL energy counters (no {root}/intel-rapl:*)"
    assert meter.read_uj() is None


def test_powercap_without_rapl_says_there_are_no_counters(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", "psys", 5 * J)
    _zone(tmp_path, "dtpm:0", "soc", 5 * J)

    assert RaplMeter(tmp_path).available() == f"no RAPL energy counters (no {tmp_path}/intel-rapl:*)"


def test_estimate_idle_then_busy_gives_watts_per_core() -> None:
    estimate = CpuPowerEstimate()
    estimate.observe(0.0, 0, 0)
    assert estimate.idle_watts() is None
    estimate.observe(60.0, 2_400 * J, 0)  # 40 W for 60 s
    assert estimate.idle_watts() == pytest.approx(40.0)
    assert estimate.watts_per_core() is None

    estimate.observe(61.0, 2_500 * J, 4)  # a job started inside this interval: not counted
    assert estimate.watts_per_core() is None
    estimate.observe(121.0, 8_500 * J, 4)  # 100 W with 4 busy cores

    assert estimate.watts_per_core() == pytest.approx(15.0)
    assert estimate.idle_watts() == pytest.approx(40.0)


def test_estimate_needs_an_idle_baseline_before_busy_intervals_count() -> None:
    estimate = CpuPowerEstimate()
    estimate.observe(0.0, 0, 2)
    estimate.observe(60.0, 6_000 * J, 2)  # 100 W, but what of it is ours is unknown
    assert estimate.watts_per_core() is None

    estimate.observe(60.0, 6_000 * J, 0)  # same moment: skipped, the jobs stopped
    estimate.observe(120.0, 8_400 * J, 0)  # 40 W idle
    estimate.observe(120.0, 8_400 * J, 2)
    estimate.observe(180.0, 13_200 * J, 2)  # 80 W with 2 busy cores

    assert estimate.watts_per_core() == pytest.approx(20.0)


def test_estimate_weighs_by_time_with_the_half_life() -> None:
    estimate = CpuPowerEstimate(half_life_s=300.0)
    estimate.observe(0.0, 0, 0)
    estimate.observe(60.0, 2_400 * J, 0)  # 40 W
    estimate.observe(360.0, 2_400 * J + 24_000 * J, 0)  # 80 W for one half-life: halfway

    assert estimate.idle_watts() == pytest.approx(60.0)


def test_estimate_never_gives_negative_watts_per_core() -> None:
    estimate = CpuPowerEstimate()
    estimate.observe(0.0, 0, 0)
    estimate.observe(60.0, 3_000 * J, 0)  # 50 W idle (someone else was busy)
    estimate.observe(60.5, 3_020 * J, 3)
    estimate.observe(120.5, 5_420 * J, 3)  # 40 W with our jobs: below the baseline

    assert estimate.watts_per_core() == 0.0


def test_estimate_counts_a_wrap_in_the_middle() -> None:
    range_uj = 1_000 * J
    estimate = CpuPowerEstimate(counter_range_uj=range_uj)
    estimate.observe(0.0, 800 * J, 0)
    estimate.observe(10.0, 200 * J, 0)  # 800 -> 1 000 -> 0 -> 200 J: 400 J in 10 s
    assert estimate.idle_watts() == pytest.approx(40.0)

    estimate.observe(11.0, 240 * J, 2)
    estimate.observe(21.0, 940 * J, 2)  # 70 W
    estimate.observe(31.0, 640 * J, 2)  # 940 -> 1 000 -> 0 -> 640 J: 700 J in 10 s, 70 W again

    assert estimate.watts_per_core() == pytest.approx(15.0)


def test_estimate_skips_a_counter_reset() -> None:
    estimate = CpuPowerEstimate(counter_range_uj=1_000 * J)
    estimate.observe(0.0, 5_000 * J, 0)
    estimate.observe(10.0, 5_400 * J, 0)  # 40 W
    estimate.observe(20.0, 10 * J, 0)  # back by more than the range: restarted, skipped
    estimate.observe(30.0, 1_010 * J, 0)  # 100 W, counted from the restart

    assert estimate.idle_watts() == pytest.approx(40.0 + (1.0 - 0.5 ** (10 / 600)) * (100.0 - 40.0))


def test_estimate_without_a_range_skips_any_counter_going_back() -> None:
    estimate = CpuPowerEstimate()
    estimate.observe(0.0, 900 * J, 0)
    estimate.observe(10.0, 1_300 * J, 0)  # 40 W
    estimate.observe(20.0, 100 * J, 0)

    assert estimate.idle_watts() == pytest.approx(40.0)


def test_estimate_skips_time_that_did_not_advance() -> None:
    estimate = CpuPowerEstimate()
    estimate.observe(10.0, 0, 0)
    estimate.observe(10.0, 500 * J, 0)  # same moment: no interval
    estimate.observe(5.0, 900 * J, 0)  # went back: no interval
    assert estimate.idle_watts() is None

    estimate.observe(15.0, 1_300 * J, 0)  # 400 J in the 10 s since the last reading

    assert estimate.idle_watts() == pytest.approx(40.0)


def test_estimate_skips_a_draw_no_cpu_reaches() -> None:
    estimate = CpuPowerEstimate(counter_range_uj=RANGE_UJ, max_package_w=2_000.0)
    estimate.observe(0.0, 200_000 * J, 0)
    estimate.observe(10.0, 200_400 * J, 0)  # 40 W
    estimate.observe(20.0, 1 * J, 0)  # a restart that looks like a wrap: ~62 kJ in 10 s

    assert estimate.idle_watts() == pytest.approx(40.0)


def test_estimate_rejects_negative_busy_cores() -> None:
    with pytest.raises(ValueError, match="busy_cores"):
        CpuPowerEstimate().observe(0.0, 0, -1)


def test_meter_feeds_the_estimate_across_a_package_wrap(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", "package-0", 900 * J, range_uj=1_000 * J)
    _zone(tmp_path, "intel-rapl:1", "package-1", 0, range_uj=1_000 * J)
    meter = RaplMeter(tmp_path)
    estimate = CpuPowerEstimate()

    def observe(monotonic_s: float, busy_cores: float) -> None:
        total = meter.read_uj()
        assert total is not None
        estimate.observe(monotonic_s, total, busy_cores)

    observe(0.0, 0)
    _set_energy(tmp_path, "intel-rapl:0", 100 * J)  # +200 J across the wrap
    _set_energy(tmp_path, "intel-rapl:1", 200 * J)  # +200 J
    observe(10.0, 0)  # 40 W
    observe(10.0, 1)
    _set_energy(tmp_path, "intel-rapl:0", 350 * J)  # +250 J
    _set_energy(tmp_path, "intel-rapl:1", 450 * J)  # +250 J
    observe(20.0, 1)  # 50 W with one busy core

    assert estimate.idle_watts() == pytest.approx(40.0)
    assert estimate.watts_per_core() == pytest.approx(10.0)


def test_measured_watts_per_core_win_over_the_configured() -> None:
    assert cpu_watts_per_core(12.5, 10.0) == (12.5, MEASURED_SOURCE)
    assert cpu_watts_per_core(None, 10.0) == (10.0, CONFIGURED_SOURCE)
    assert MEASURED_SOURCE == "measured with RAPL"
    assert CONFIGURED_SOURCE == "configured (ledger.cpu_watts_per_core)"


def test_real_powercap_reads_when_readable() -> None:
    meter = RaplMeter()
    reason = meter.available()
    if reason is not None:
        pytest.skip(reason)

    first = meter.read_uj()
    second = meter.read_uj()

    assert first is not None
    assert second is not None
    assert second >= first
