"""The onboarding's benchmark bar: which GPU is measured and how far, from the status documents the agent
sends about once a second (each GPU's run: its start and how long a run takes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sparecycles.control.benchmark import GpuBenchmarkStatus
from sparecycles.control.models import GpuState, GpuStatus
from sparecycles.ui.onboarding.work_steps import benchmark_progress

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def gpu(index: int, benchmark: GpuBenchmarkStatus | None) -> GpuStatus:
    return GpuStatus(
        index=index, uuid=f"GPU-{index}", name="NVIDIA RTX 4090", state=GpuState.STOPPED, reason="benchmark",
        benchmark=benchmark,
    )  # fmt: skip


def running(seconds_ago: float, expected: float | None = 25.0) -> GpuBenchmarkStatus:
    return GpuBenchmarkStatus(
        state="running", started=NOW - timedelta(seconds=seconds_ago), expected_seconds=expected, problem=None,
        result=None,
    )  # fmt: skip


def test_the_second_of_two_gpus_ten_seconds_into_its_run_is_seventy_percent_done() -> None:
    done = GpuBenchmarkStatus(state="done", started=None, problem=None, result=None)
    progress = benchmark_progress([gpu(0, done), gpu(1, running(10))], NOW)
    assert progress is not None
    assert (progress.percent, progress.gpu_number, progress.gpu_count) == (70, 2, 2)  # (1 + 10/25) / 2
    assert progress.seconds_left == 15


def test_a_run_past_its_expected_time_waits_short_of_the_end() -> None:
    progress = benchmark_progress([gpu(0, running(60))], NOW)
    assert progress is not None
    assert progress.percent == 95
    assert progress.seconds_left == 0


def test_nothing_to_show_before_the_agent_reports_a_run() -> None:
    assert benchmark_progress([gpu(0, None)], NOW) is None
    assert benchmark_progress([gpu(0, running(5, expected=None))], NOW) is None
    assert benchmark_progress([], NOW) is None
