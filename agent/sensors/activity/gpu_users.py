"""Which foreign processes really use a GPU: pure functions of one GPU's sample, no I/O.

Per GPU by construction: each sample carries only its own GPU's processes, so a game on GPU 0
never marks GPU 1 as used. Processes on the ignore list (compositors, browsers) count only when
really busy; a process whose use the driver does not report (Windows' WDDM gives no per-process
VRAM) cannot be judged here and is left to Steam, the pause list and the GPU's total utilization.
"""

from __future__ import annotations

from collections.abc import Iterable

from sparecycles.agent.sensors.activity.model import GpuUser, GpuUseThresholds
from sparecycles.agent.sensors.activity.names import ProcessNameList, display_name, may_be_truncated
from sparecycles.agent.sensors.gpu.model import GpuProcess, GpuSample

_GIB = 1024**3
_MIB = 1024**2


def format_bytes(count: int) -> str:
    """VRAM as a person reads it: "6.1 GiB", "300 MiB"."""
    if count >= _GIB:
        return f"{count / _GIB:.1f} GiB"
    return f"{count / _MIB:.0f} MiB"


def _reasons(process: GpuProcess, ignored: bool, thresholds: GpuUseThresholds) -> list[str]:
    vram_limit = None if ignored else thresholds.vram_bytes
    utilization_limit = thresholds.ignored_utilization_percent if ignored else thresholds.utilization_percent
    reasons: list[str] = []
    vram = process.vram_used_bytes
    if vram_limit is not None and vram is not None and vram >= vram_limit:
        reasons.append(f"{format_bytes(vram)} VRAM")
    utilization = process.gpu_utilization_percent
    if utilization_limit is not None and utilization is not None and utilization >= utilization_limit:
        reasons.append(f"{utilization:.0f} % of the GPU")
    return reasons


def gpu_users(sample: GpuSample, ignore: ProcessNameList, thresholds: GpuUseThresholds) -> tuple[GpuUser, ...]:
    """The foreign processes really using ``sample``'s GPU, each with its reason."""
    users: list[GpuUser] = []
    for process in sample.foreign_processes:
        ignored = ignore.match(process.name, truncated=may_be_truncated(process.name)) is not None
        reasons = _reasons(process, ignored, thresholds)
        if not reasons:
            continue
        name = display_name(process.name) or f"pid {process.pid}"
        label = f"{name} (usually ignored)" if ignored else name
        users.append(GpuUser(sample.index, process.pid, name, f"{label} uses {' and '.join(reasons)}"))
    return tuple(users)


def gpu_users_by_gpu(
    samples: Iterable[GpuSample], ignore: ProcessNameList, thresholds: GpuUseThresholds
) -> dict[int, tuple[GpuUser, ...]]:
    """``gpu_users`` for every GPU, keyed by GPU index (an empty tuple: nobody else uses it)."""
    return {sample.index: gpu_users(sample, ignore, thresholds) for sample in samples}


def gpus_running(pids: Iterable[int], samples: Iterable[GpuSample]) -> frozenset[int]:
    """The GPUs on which any of ``pids`` holds a context, whatever its use: where a game from the
    pause list actually runs, so that only those GPUs need pausing."""
    wanted = set(pids)
    return frozenset(
        sample.index for sample in samples if any(process.pid in wanted for process in sample.foreign_processes)
    )
