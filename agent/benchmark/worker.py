"""Benchmark one GPU and print the result: ``python -m sparecycles.agent.benchmark.worker``.

    python -m sparecycles.agent.benchmark.worker [--quick | --full] [--gpu N] [--json]

It drives the GPU with PyTorch if it is installed with CUDA, else with CuPy, and reads power and
temperature through NVML where nvidia-ml-py is installed. ``--gpu`` is the CUDA device number; devices
are numbered in PCI bus order, as NVML and nvidia-smi number them. The same module runs inside the
benchmark's container image, so it imports nothing beyond this package until it runs.

Exit codes: 0 a result was printed; 1 the benchmark failed (the message says why); 2 no GPU array
library; 3 interrupted (SIGINT or SIGTERM), with no result.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sparecycles.agent.benchmark.backend import ArrayBackend
from sparecycles.agent.benchmark.errors import BenchmarkError, BenchmarkInterrupted, NoArrayLibraryError
from sparecycles.agent.benchmark.measure import PHASE_TITLES, PLANS, Plan, run
from sparecycles.agent.benchmark.reference import match_reference
from sparecycles.agent.benchmark.results import BenchmarkResult
from sparecycles.agent.benchmark.sampler import PhaseSampler
from sparecycles.agent.benchmark.telemetry import NvmlTelemetry, TelemetryUnavailable

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NO_LIBRARY = 2
EXIT_INTERRUPTED = 3
NO_LIBRARY_MESSAGE = "no GPU array library: install the benchmark extra (PyTorch or CuPy)"

BackendOpener = Callable[[int], ArrayBackend]


def open_backend(index: int, openers: Sequence[BackendOpener] | None = None) -> ArrayBackend:
    """The first array library that can drive GPU ``index``: PyTorch, then CuPy.

    Raises NoArrayLibraryError with :data:`NO_LIBRARY_MESSAGE` and each library's reason.
    """
    if openers is None:
        from sparecycles.agent.benchmark.cupy_backend import CupyBackend
        from sparecycles.agent.benchmark.torch_backend import TorchBackend

        openers = (TorchBackend.open, CupyBackend.open)
    reasons = []
    for opener in openers:
        try:
            return opener(index)
        except NoArrayLibraryError as exc:
            reasons.append(str(exc))
    raise NoArrayLibraryError("\n  ".join([NO_LIBRARY_MESSAGE, *reasons]))


def nvml_target(cuda_index: int, visible_devices: str | None) -> int | str:
    """The NVML index or UUID of CUDA device ``cuda_index`` under ``CUDA_VISIBLE_DEVICES``.

    Without the variable, CUDA (in PCI bus order) and NVML number GPUs alike. With it, CUDA device N is
    the Nth entry of the list, given as an NVML index or a UUID.
    """
    if not visible_devices:
        return cuda_index
    entries = [entry.strip() for entry in visible_devices.split(",") if entry.strip()]
    if not 0 <= cuda_index < len(entries):
        raise BenchmarkError(
            f"there is no GPU {cuda_index}: CUDA_VISIBLE_DEVICES={visible_devices} lists {len(entries)}"
        )
    entry = entries[cuda_index]
    return int(entry) if entry.isdigit() else entry


def benchmark(
    backend: ArrayBackend,
    plan: Plan,
    *,
    cuda_index: int,
    telemetry: NvmlTelemetry | None,
    should_stop: Callable[[], bool],
    runner: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BenchmarkResult:
    """Run ``plan`` on ``backend``, sampling ``telemetry`` during each phase, and build the result."""
    sampler = PhaseSampler(telemetry.read) if telemetry is not None else None
    measured_at = now()
    measurement = run(backend, plan, sampler=sampler, should_stop=should_stop)
    facts = telemetry.facts if telemetry is not None else None
    name = facts.name if facts is not None else backend.device_name
    memory = facts.memory_total_bytes if facts is not None else backend.memory_total_bytes()
    return BenchmarkResult.from_measurement(
        measurement,
        gpu_index=facts.index if facts is not None and facts.index is not None else cuda_index,
        gpu_uuid=facts.uuid if facts is not None else (backend.device_uuid or "unknown"),
        gpu_name=name,
        driver_version=facts.driver_version if facts is not None else None,
        runner=runner or f"in-process: {backend.name}",
        measured_at=measured_at,
        reference=match_reference(name, memory),
    )


def open_telemetry(
    uuid: str | None, index_target: int | str, opener: Callable[[int | str], NvmlTelemetry] | None = None
) -> NvmlTelemetry | None:
    """NVML for the benchmarked GPU: by the UUID the array library reports, else by its mapped index.

    The UUID is exact whatever the numbering; the index is the fallback for libraries that do not say.
    Without NVML the benchmark still runs, without power and temperature.
    """
    open_nvml = opener or NvmlTelemetry.open
    reasons = []
    for target in (uuid, index_target) if uuid is not None else (index_target,):
        try:
            return open_nvml(target)
        except TelemetryUnavailable as exc:
            reasons.append(str(exc))
    log.warning("%s", "; ".join(reasons))
    return None


def summary(result: BenchmarkResult) -> str:
    """The result for a person: one line per phase, the score and any flags."""
    lines = [f"{result.gpu_name} ({result.gpu_uuid}), driver {result.driver_version or 'unknown'}, {result.mode} mode"]
    for phase in result.phases:
        title = PHASE_TITLES.get(phase.phase, phase.phase)
        if phase.value is None:
            lines.append(f"  {title:<24} unsupported: {phase.unsupported}")
            continue
        power = f", {phase.mean_power_w:.0f} W mean" if phase.mean_power_w is not None else ""
        lines.append(f"  {title:<24} {phase.value:10.1f} {phase.unit:<8} ±{100 * (phase.spread or 0):.1f} %{power}")
    if result.figures.vram_usable_bytes is not None:
        lines.append(f"  {'usable VRAM':<24} {result.figures.vram_usable_bytes / 2**30:10.1f} GiB")
    lines.append(f"score {result.score:.1f}" if result.score is not None else "score: not computed")
    lines.extend(f"! {flag.message}" for flag in result.flags)
    return "\n".join(lines)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sparecycles.agent.benchmark.worker", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick", help="about 25 s (the default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full", help="about 80 s, steadier figures")
    parser.add_argument("--gpu", type=int, default=0, help="CUDA device number, in PCI bus order (default 0)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(mode="quick")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Before CUDA starts: number devices as NVML does, so that --gpu N is nvidia-smi's GPU N.
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    try:
        backend = open_backend(arguments.gpu)
        by_index = nvml_target(arguments.gpu, os.environ.get("CUDA_VISIBLE_DEVICES"))
    except NoArrayLibraryError as exc:
        print(exc, file=sys.stderr)
        return EXIT_NO_LIBRARY
    except BenchmarkError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    telemetry = open_telemetry(backend.device_uuid, by_index)
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = benchmark(
            backend, PLANS[arguments.mode], cuda_index=arguments.gpu, telemetry=telemetry, should_stop=stop.is_set
        )
    except BenchmarkInterrupted as exc:
        print(exc, file=sys.stderr)
        return EXIT_INTERRUPTED
    except BenchmarkError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if telemetry is not None:
            telemetry.close()
    print(result.to_json() if arguments.json else summary(result))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
