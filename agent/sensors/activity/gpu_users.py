"""Which foreign processes really use a GPU: pure functions of one GPU's sample, no I/O.

Per GPU by construction: each sample carries only its own GPU's processes, so a game on GPU 0
never marks GPU 1 as used. Processes on the ignore list (compositors, browsers) count only when
really busy. A process whose use the driver does not report (Windows' WDDM gives no per-process
figures) cannot be judged on its own: on a GPU none of our jobs runs on, the GPU's total utilization
can only be someone else's, so a busy GPU counts as used by it; on a GPU a job of ours runs on, that
total is partly ours, and such a process is left to Steam and the pause list.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

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


def _unreported(process: GpuProcess) -> bool:
    return process.vram_used_bytes is None and process.gpu_utilization_percent is None


def _unreported_user(sample: GpuSample, ignore: ProcessNameList, thresholds: GpuUseThresholds) -> GpuUser | None:
    """Whoever the driver gives no figures for, when the whole GPU is busy (none of our jobs runs on it).

    The total is an upper bound on each process's share, and the only figure there is: like every rule
    here, it leans towards handing the GPU back. Processes off the ignore list are named first.
    """
    limit, total = thresholds.unreported_utilization_percent, sample.utilization_gpu_percent
    if limit is None or total is None or total < limit:
        return None
    unreported = [process for process in sample.foreign_processes if _unreported(process)]
    if not unreported:
        return None
    listed = [p for p in unreported if ignore.match(p.name, truncated=may_be_truncated(p.name)) is None]
    chosen = listed or unreported
    names = [display_name(process.name) or f"pid {process.pid}" for process in chosen]
    label = ", ".join(names) + ("" if listed else " (usually ignored)")
    reason = f"{label} may be using it: the GPU is {total:.0f} % busy and the driver does not say by whom"
    return GpuUser(sample.index, chosen[0].pid, names[0], reason)


def gpu_users(
    sample: GpuSample, ignore: ProcessNameList, thresholds: GpuUseThresholds, *, job_here: bool = True
) -> tuple[GpuUser, ...]:
    """The foreign processes really using ``sample``'s GPU, each with its reason.

    ``job_here``: a job of ours runs on this GPU, so its total utilization says nothing of the others
    (the cautious default for a caller that does not know).
    """
    users: list[GpuUser] = []
    for process in sample.foreign_processes:
        ignored = ignore.match(process.name, truncated=may_be_truncated(process.name)) is not None
        reasons = _reasons(process, ignored, thresholds)
        if not reasons:
            continue
        name = display_name(process.name) or f"pid {process.pid}"
        label = f"{name} (usually ignored)" if ignored else name
        users.append(GpuUser(sample.index, process.pid, name, f"{label} uses {' and '.join(reasons)}"))
    if not job_here and (unreported := _unreported_user(sample, ignore, thresholds)) is not None:
        users.append(unreported)
    return tuple(users)


def gpu_users_by_gpu(
    samples: Iterable[GpuSample],
    ignore: ProcessNameList,
    thresholds: GpuUseThresholds,
    *,
    jobs_on: Collection[int] | None = None,
) -> dict[int, tuple[GpuUser, ...]]:
    """``gpu_users`` for every GPU, keyed by GPU index (an empty tuple: nobody else uses it).

    ``jobs_on``: the GPUs our jobs run on (None: unknown, as if on every one).
    """
    return {
        sample.index: gpu_users(sample, ignore, thresholds, job_here=jobs_on is None or sample.index in jobs_on)
        for sample in samples
    }


def gpus_running(pids: Iterable[int], samples: Iterable[GpuSample]) -> frozenset[int]:
    """The GPUs on which any of ``pids`` holds a context, whatever its use: where a game from the
    pause list actually runs, so that only those GPUs need pausing."""
    wanted = set(pids)
    return frozenset(
        sample.index for sample in samples if any(process.pid in wanted for process in sample.foreign_processes)
    )
