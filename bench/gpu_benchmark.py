"""On a machine with an NVIDIA GPU: the benchmark worker twice in quick mode, and how its runs compare.

It runs ``python -m sparecycles.agent.benchmark.worker --quick --gpu N --json`` twice, one after the
other, and prints per figure both runs, the difference between them, and the share of the model's
published peak; per phase the board's power and temperature; the score, and each run's time. Needs
only PyTorch (or CuPy), nvidia-ml-py and the sparecycles package.

    python bench/gpu_benchmark.py [--gpu 0] [--runs 2] [--full] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sparecycles.agent.benchmark.measure import PHASE_TITLES
from sparecycles.agent.benchmark.outliers import FigureName, expected
from sparecycles.agent.benchmark.reference import GpuReference, reference_by_key
from sparecycles.agent.benchmark.results import BenchmarkResult
from sparecycles.agent.benchmark.score import reference_score

FIGURES: list[tuple[FigureName, str, str, Callable[[GpuReference], float | None]]] = [
    # field, title, unit, published peak
    ("fp32_tflops", "FP32 matrix multiply", "TFLOP/s", lambda r: r.fp32_tflops),
    ("fp16_tflops", "FP16 matrix multiply", "TFLOP/s", lambda r: r.fp16_tensor_tflops),
    ("bf16_tflops", "BF16 matrix multiply", "TFLOP/s", lambda r: r.bf16_tensor_tflops),
    ("memory_gbps", "memory bandwidth (device copy)", "GB/s", lambda r: r.memory_gbps),
    ("host_to_device_gbps", "host to device (pinned)", "GB/s", lambda r: r.host_link_gbps),
    ("device_to_host_gbps", "device to host (pinned)", "GB/s", lambda r: r.host_link_gbps),
]


def run_worker(gpu: int, mode: str) -> tuple[BenchmarkResult, float]:
    command = [sys.executable, "-m", "sparecycles.agent.benchmark.worker", f"--{mode}", "--gpu", str(gpu), "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the worker exited with {done.returncode}:\n{done.stderr}")
    if done.stderr.strip():
        print(done.stderr.strip(), file=sys.stderr)
    return BenchmarkResult.from_json(done.stdout), wall_s


def between(values: Sequence[float]) -> str:
    """How far the runs are apart: (largest − smallest) / mean."""
    if len(values) < 2:
        return "—"
    return f"{100 * (max(values) - min(values)) / statistics.fmean(values):.1f} %"


def figure_rows(results: Sequence[BenchmarkResult], reference: GpuReference | None) -> list[str]:
    runs = " | ".join(f"run {n}" for n in range(1, len(results) + 1))
    rows = [
        f"| figure | {runs} | between runs | published peak | % of peak | typical (peak × efficiency) |",
        "|---" * (len(results) + 5) + "|",
    ]
    for field, title, unit, peak_of in FIGURES:
        values = [getattr(result.figures, field) for result in results]
        measured = [value for value in values if value is not None]
        cells = " | ".join(f"{value:.1f}" if value is not None else "unsupported" for value in values)
        peak = peak_of(reference) if reference is not None else None
        typical = expected(field, reference) if reference is not None else None
        share = " / ".join(f"{100 * value / peak:.0f} %" for value in measured) if peak and measured else "—"
        rows.append(
            f"| {title} ({unit}) | {cells} | {between(measured)} | {f'{peak:.1f}' if peak else '—'} | {share} | "
            f"{f'{typical:.1f}' if typical else '—'} |"
        )
    vram = [result.figures.vram_usable_bytes for result in results]
    cells = " | ".join(f"{value / 2**30:.1f}" if value is not None else "—" for value in vram)
    published = f"{reference.vram_gib:g}" if reference is not None else "—"
    share = (
        " / ".join(f"{100 * value / 2**30 / reference.vram_gib:.0f} %" for value in vram if value is not None)
        if reference is not None
        else "—"
    )
    rows.append(f"| usable VRAM, one allocation (GiB) | {cells} | — | {published} | {share} | — |")
    return rows


def power_rows(result: BenchmarkResult, run: int) -> list[str]:
    rows = [
        f"| run {run}: phase | figure | within-run spread | operations | seconds | mean W | max W | max °C | "
        "TFLOP/s per W |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in result.phases:
        if phase.value is None:
            rows.append(
                f"| {PHASE_TITLES.get(phase.phase, phase.phase)} | unsupported: {phase.unsupported} |" + " |" * 7
            )
            continue

        def number(value: float | None, digits: int = 0) -> str:
            return f"{value:.{digits}f}" if value is not None else "—"

        rows.append(
            f"| {PHASE_TITLES.get(phase.phase, phase.phase)} | {phase.value:.1f} {phase.unit} | "
            f"{100 * (phase.spread or 0):.1f} % | {phase.operations} | {phase.seconds:.2f} | "
            f"{number(phase.mean_power_w)} | {number(phase.max_power_w)} | {number(phase.max_temperature_c)} | "
            f"{number(phase.tflops_per_watt, 2)} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", type=int, default=0, help="CUDA device number (PCI bus order, as nvidia-smi)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="full mode instead of quick")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args()
    mode = "full" if arguments.full else "quick"

    runs = [run_worker(arguments.gpu, mode) for _ in range(arguments.runs)]
    results = [result for result, _ in runs]
    first = results[0]
    reference = reference_by_key(first.reference_model) if first.reference_model else None
    print(f"# GPU benchmark: {first.gpu_name}, {mode} mode, {len(results)} runs\n")
    print(f"- GPU {first.gpu_index}: {first.gpu_uuid}, driver {first.driver_version}, {first.runner}")
    print(f"- reference model: {reference.model if reference else 'not in the reference table (no outlier check)'}")
    if reference is not None:
        print(f"- source of its figures: {reference.source}")
    print()
    print("\n".join(figure_rows(results, reference)))
    print()
    for number, result in enumerate(results, start=1):
        print("\n".join(power_rows(result, number)))
        print()
    scores = [result.score for result in results if result.score is not None]
    print(f"- score: {' / '.join(f'{value:.1f}' for value in scores)} (between runs {between(scores)})", end="")
    print(f"; the model's published figures score {reference_score(reference):.1f}" if reference else "")
    for number, (result, wall_s) in enumerate(runs, start=1):
        print(f"- run {number}: {result.elapsed_s:.1f} s measuring, {wall_s:.1f} s with start-up (the worker process)")
        for flag in result.flags:
            print(f"  - flag: {flag.message}")
    if arguments.json is not None:
        arguments.json.write_text(json.dumps([result.to_dict() for result in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
