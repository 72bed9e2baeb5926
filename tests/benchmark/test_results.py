"""Benchmark results: the record, its JSON form, the store of the latest good result, and re-run rules."""

from __future__ import annotations

import json
import logging
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from sparecycles.agent.benchmark.errors import ResultFormatError
from sparecycles.agent.benchmark.measure import Plan, run
from sparecycles.agent.benchmark.outliers import Flag
from sparecycles.agent.benchmark.reference import reference_by_key
from sparecycles.agent.benchmark.results import BenchmarkResult, ResultStore, needs_rerun
from sparecycles.agent.benchmark.sampler import PhaseSampler
from sparecycles.agent.benchmark.score import score_figures
from tests.fakes.benchmark_backends import SimulatedBackend

MIB = 1024**2
PLAN = Plan(
    mode="quick",
    matmul_size=1024,
    copy_size_bytes=64 * MIB,
    transfer_size_bytes=16 * MIB,
    warmup_s=0.01,
    budget_s=0.05,
    batches=3,
    vram_start_bytes=256 * MIB,
    vram_granularity_bytes=256 * MIB,
)
UUID = "GPU-11111111-2222-3333-4444-555555555555"
WHEN = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def make_result(uuid: str = UUID, driver: str = "550.54.14", bf16_tflops: float = 750.0) -> BenchmarkResult:
    backend = SimulatedBackend(tflops={"fp32": 50.0, "fp16": 740.0, "bf16": bf16_tflops}, memory_gbps=2900.0)
    measurement = run(backend, PLAN, sampler=PhaseSampler(lambda: (640.0, 71.0), interval_s=0.001))
    return BenchmarkResult.from_measurement(
        measurement,
        gpu_index=0,
        gpu_uuid=uuid,
        gpu_name="NVIDIA H100 80GB HBM3",
        driver_version=driver,
        runner="in-process: torch",
        measured_at=WHEN,
        reference=reference_by_key("h100-sxm"),
    )


def test_a_result_is_scored_checked_and_recorded_with_its_gpu() -> None:
    result = make_result()
    assert result.score == pytest.approx(score_figures(result.figures))
    assert result.reference_model == "h100-sxm"
    assert result.flags == ()  # 50 TFLOP/s FP32, 750 BF16, 2900 GB/s, 50 GB/s: all typical for an H100 SXM
    assert result.figures.bf16_tflops == pytest.approx(750.0)
    bf16 = next(phase for phase in result.phases if phase.phase == "matmul_bf16")
    assert (bf16.mean_power_w, bf16.max_power_w, bf16.max_temperature_c) == (640.0, 640.0, 71.0)
    assert bf16.tflops_per_watt == pytest.approx(750.0 / 640.0)
    assert bf16.operations > 0
    assert result.is_good


def test_a_low_figure_is_flagged_in_the_result() -> None:
    result = make_result(bf16_tflops=989.4 * 0.70 * 0.75)  # 25 % below typical
    assert [flag.figure for flag in result.flags] == ["bf16_tflops"]
    assert result.is_good  # a slow GPU's figures are real: kept, and shown with the flag


def test_json_round_trip_keeps_everything() -> None:
    result = make_result(bf16_tflops=500.0)
    text = result.to_json()
    again = BenchmarkResult.from_json(text)
    assert again == result
    data = json.loads(text)
    assert data["schema"] == 1
    assert data["measured_at"] == "2026-03-01T12:30:00Z"
    assert data["runner"] == "in-process: torch"
    assert data["figures"]["bf16_tflops"] == pytest.approx(500.0)
    assert data["flags"][0]["kind"] == "below_typical"
    assert {phase["phase"] for phase in data["phases"]} >= {"matmul_fp32", "device_copy", "device_to_host"}


def test_times_are_kept_in_utc() -> None:
    result = make_result()
    local = replace(result, measured_at=WHEN.astimezone(timezone(timedelta(hours=2))))
    assert json.loads(local.to_json())["measured_at"] == "2026-03-01T12:30:00Z"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": 2}, "schema 2 is not 1"),
        ({"gpu_uuid": None}, "gpu_uuid is missing"),
        ({"gpu_index": "0"}, "gpu_index should be of type int"),
        ({"score": "high"}, "score is not a finite number"),
        ({"measured_at": "yesterday"}, "not an ISO 8601 time"),
        ({"measured_at": "2026-03-01T12:30:00"}, "has no time zone"),
        ({"figures": []}, "figures is not a JSON object"),
        ({"flags": [{"figure": "fp64_tflops", "kind": "implausible", "message": "?"}]}, "flag figure"),
    ],
)
def test_a_malformed_result_says_what_is_wrong(change: dict[str, object], message: str) -> None:
    data = make_result().to_dict() | change
    with pytest.raises(ResultFormatError, match=message):
        BenchmarkResult.from_dict(data)


def test_text_that_is_not_json_is_a_format_error() -> None:
    with pytest.raises(ResultFormatError, match="not JSON"):
        BenchmarkResult.from_json("{")


def test_the_store_keeps_the_latest_good_result_per_gpu(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "state" / "benchmarks.json")
    assert store.load() == {}
    assert store.latest(UUID) is None
    first = make_result()
    other_gpu = make_result(uuid="GPU-99999999-2222-3333-4444-555555555555")
    newer = replace(make_result(driver="560.35.03"), measured_at=WHEN + timedelta(days=1))
    assert store.keep(first)
    assert store.keep(other_gpu)
    assert store.keep(newer)
    assert store.latest(UUID) == newer
    assert store.latest(other_gpu.gpu_uuid) == other_gpu
    assert set(ResultStore(store.path).load()) == {UUID, other_gpu.gpu_uuid}  # read back from the file
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert [path.name for path in store.path.parent.iterdir()] == ["benchmarks.json"]  # no temporary left


def test_an_implausible_result_is_not_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = ResultStore(tmp_path / "benchmarks.json")
    good = make_result()
    store.keep(good)
    implausible = replace(good, flags=(Flag("fp16_tflops", "implausible", "FP16 matrix multiply … implausible"),))
    with caplog.at_level(logging.WARNING):
        assert not store.keep(implausible)
    assert store.latest(UUID) == good
    assert "not kept: FP16 matrix multiply … implausible" in caplog.text
    assert not store.keep(replace(good, score=None))


@pytest.mark.parametrize(
    "damage",
    [
        "{ not json",
        "[]",
        '{"schema": 7, "results": {}}',
        '{"schema": 1, "results": {"GPU-1": {"schema": 1}}}',
        b"\xff\xfe\x00",
    ],
)
def test_a_damaged_store_is_set_aside_and_read_as_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str | bytes
) -> None:
    path = tmp_path / "benchmarks.json"
    if isinstance(damage, bytes):
        path.write_bytes(damage)
    else:
        path.write_text(damage)
    store = ResultStore(path)
    with caplog.at_level(logging.WARNING):
        assert store.load() == {}
    aside = [entry for entry in tmp_path.iterdir() if entry.name.startswith("benchmarks.json.damaged-")]
    assert len(aside) == 1
    assert not path.exists()
    assert "are damaged" in caplog.text
    assert "benchmarked again" in caplog.text
    assert store.keep(make_result())  # and the store works again
    assert store.latest(UUID) is not None


def test_a_result_filed_under_another_gpu_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps({"schema": 1, "results": {"GPU-other": make_result().to_dict()}}))
    assert ResultStore(path).load() == {}
    assert not path.exists()


def test_a_gpu_is_benchmarked_when_it_has_no_result_or_its_gpu_or_driver_changed() -> None:
    result = make_result(driver="550.54.14")
    assert needs_rerun(None, UUID, "550.54.14")
    assert not needs_rerun(result, UUID, "550.54.14")
    assert needs_rerun(result, UUID, "560.35.03")
    assert needs_rerun(result, "GPU-another", "550.54.14")
    assert needs_rerun(result, UUID, None)
