"""``sparecycles bench``: benchmark the GPUs through the running agent, and show the figures.

The agent runs the benchmark (the policy stops it like any work when a game starts or the GPU gets too
hot), keeps the result, and sends the score to the marketplace. With no agent running, the command still
says whether there is an NVIDIA GPU to benchmark at all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated

import typer

from sparecycles import launcher
from sparecycles.command_wiring import Connect, Fail
from sparecycles.terminal import out, styled

if TYPE_CHECKING:  # the agent's client and its models load when the command runs, not with every command
    from sparecycles.control.benchmark import BenchmarkList, BenchmarkResultView
    from sparecycles.control.client import ControlClient


EXIT_NO_GPU = 1
PHASE_TITLES = {
    "matmul_fp32": "FP32 matrix multiply",
    "matmul_fp16": "FP16 matrix multiply",
    "matmul_bf16": "BF16 matrix multiply",
    "device_copy": "memory bandwidth",
    "host_to_device": "host to device",
    "device_to_host": "device to host",
}


def result_lines(result: BenchmarkResultView) -> Iterator[str]:
    score = f"score {result.score:.0f}" if result.score is not None else "no score"
    yield (
        f"GPU {result.gpu_index}: {result.gpu_name}, driver {result.driver_version or 'unknown'}: {score} "
        f"({result.mode} mode, {result.elapsed_s:.0f} s, {result.runner}, {result.measured_at:%Y-%m-%d %H:%M} UTC)"
    )
    for phase in result.phases:
        title = PHASE_TITLES.get(phase.phase, phase.phase)
        if phase.value is None:
            yield f"  {title:<22} unsupported: {phase.unsupported}"
            continue
        spread = f" ±{phase.spread * 100:.1f} %" if phase.spread is not None else ""
        power = f", {phase.mean_power_w:.0f} W" if phase.mean_power_w is not None else ""
        efficiency = f", {phase.tflops_per_watt:.2f} TFLOP/s per W" if phase.tflops_per_watt is not None else ""
        yield f"  {title:<22} {phase.value:10.1f} {phase.unit}{spread}{power}{efficiency}"
    if result.vram_usable_bytes is not None:
        yield f"  {'usable VRAM':<22} {result.vram_usable_bytes / 2**30:10.1f} GiB"
    yield from (f"  ! {flag}" for flag in result.flags)


def register_bench_command(app: typer.Typer, connect: Connect, fail: Fail) -> None:
    @app.command()
    def bench(
        gpu: Annotated[
            int | None, typer.Option("--gpu", help="Only this GPU (its index); default: every GPU.", min=0)
        ] = None,
        full: Annotated[bool, typer.Option("--full", help="The full run (about 80 s a GPU) instead of quick.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    ) -> None:
        """Benchmark the GPUs (compute, memory, PCIe, VRAM, power), under a minute per GPU in quick mode."""
        from sparecycles.control.errors import AgentUnavailable

        try:
            client_context = connect_quietly(connect)
        except AgentUnavailable:
            reason = launcher.no_gpu_reason()
            if reason is not None:
                fail(f"no NVIDIA GPU found ({reason}): there is nothing to benchmark", EXIT_NO_GPU)
            fail("the agent is not running: start it with `sparecycles agent`, then run the benchmark", 3)
        with client_context as client:
            if not as_json:
                out.print("Benchmarking; this takes under a minute per GPU…")
            found: BenchmarkList = client.run_benchmark(gpu, "full" if full else "quick")
        if as_json:
            sys.stdout.write(found.model_dump_json(indent=2) + "\n")
        else:
            for result in found.results:
                for line in result_lines(result):
                    out.print(line, soft_wrap=True)
            for problem in found.problems:
                out.print(styled((problem, "yellow")), soft_wrap=True)
        if not found.results:
            raise typer.Exit(EXIT_NO_GPU)


def connect_quietly(connect: Connect) -> AbstractContextManager[ControlClient]:
    """The agent's client, or AgentUnavailable (before anything is printed) when no agent runs."""
    from sparecycles.control.client import ControlClient
    from sparecycles.paths import AppPaths

    lock = AppPaths.from_environment().agent_lock_file
    client = ControlClient.from_lock_file(lock)  # raises AgentUnavailable without a running agent
    client.close()
    return connect()
