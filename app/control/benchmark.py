"""The GPU benchmark on the control API and in the status document: per GPU, the kept result's figures,
score and flags, a run under way, and the last failure."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BenchmarkPhase(_Model):
    phase: str = Field(description="matmul_fp32, matmul_fp16, matmul_bf16, device_copy, host_to_device, …")
    unit: str
    value: float | None = Field(description="The figure (median of the timed batches); null when unsupported.")
    unsupported: str | None
    spread: float | None = Field(description="Spread of the timed batches, as a fraction (0.01 = 1 %).")
    mean_power_w: float | None
    max_temperature_c: float | None
    tflops_per_watt: float | None


class BenchmarkResultView(_Model):
    gpu_index: int
    gpu_uuid: str
    gpu_name: str
    driver_version: str | None
    measured_at: datetime
    mode: str
    runner: str = Field(description="How it ran: 'in-process: torch', 'in-process: cupy' or 'container: IMAGE'.")
    score: float | None = Field(description="1000 is an H100 SXM's published figures (docs/benchmark.md).")
    fp32_tflops: float | None
    fp16_tflops: float | None
    bf16_tflops: float | None
    memory_gbps: float | None
    host_to_device_gbps: float | None
    device_to_host_gbps: float | None
    vram_usable_bytes: int | None
    load_power_w: float | None = Field(description="Mean board power during the heaviest matrix phase.")
    flags: list[str] = Field(description="Figures far outside what this model should reach, in words.")
    reference_model: str | None
    elapsed_s: float
    phases: list[BenchmarkPhase]


class GpuBenchmarkStatus(_Model):
    state: Literal["none", "running", "done", "failed"] = Field(
        description="none: never benchmarked; failed: the last run failed (an earlier result may still stand)."
    )
    started: datetime | None = Field(description="When the run under way started.")
    expected_seconds: float | None = Field(
        None, description="How long the run under way should take on a current GPU (for a progress bar)."
    )
    problem: str | None = Field(description="Why the last run failed, and what to do.")
    result: BenchmarkResultView | None = Field(description="The latest good result, kept across runs.")


class RunBenchmark(_Model):
    gpu: int | None = Field(None, ge=0, description="The GPU's index; null: every GPU, one after another.")
    mode: Literal["quick", "full"] = "quick"


class BenchmarkList(_Model):
    results: list[BenchmarkResultView]
    problems: list[str] = Field(description="GPUs whose benchmark failed or was stopped this time, and why.")
