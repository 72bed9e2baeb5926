"""The benchmark as the owner asks for it (``sparecycles bench``, the control API) and as the agent runs it
by itself: which GPUs, refusals in words, and the automatic run of GPUs that are due.

Nothing is faked: with no NVIDIA GPU, or only simulated ones, a benchmark is refused and says why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sparecycles.agent.benchmark.errors import BenchmarkError, BenchmarkInterrupted
from sparecycles.agent.benchmark.service import BenchmarkService, Mode, result_view
from sparecycles.agent.engine import EngineSnapshot
from sparecycles.agent.policy.model import Action
from sparecycles.agent.sensors.gpu import GpuIdentity
from sparecycles.control.benchmark import BenchmarkList

log = logging.getLogger(__name__)

AUTO_EVERY_S = 60.0  # how often the agent looks for GPUs due a benchmark


class BenchmarkRefused(Exception):
    """A benchmark that cannot run here; ``str()`` says why and what to do."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


def chosen_gpus(snapshot: EngineSnapshot, index: int | None) -> list[GpuIdentity]:
    """The real GPUs a benchmark request names (None: all of them); BenchmarkRefused with the reason."""
    discovery = snapshot.discovery
    if not discovery.available or not discovery.gpus:
        why = discovery.reason or "the NVIDIA driver found none"
        raise BenchmarkRefused(f"no NVIDIA GPU found ({why}): there is nothing to benchmark; `sparecycles doctor`")
    if discovery.backend == "simulated":
        raise BenchmarkRefused(
            "the GPUs are simulated: a benchmark measures a real GPU, so there is nothing to measure"
        )
    if index is None:
        return list(discovery.gpus)
    for gpu in discovery.gpus:
        if gpu.index == index:
            return [gpu]
    known = ", ".join(str(gpu.index) for gpu in discovery.gpus)
    raise BenchmarkRefused(f"there is no GPU {index} (this machine has GPU {known})", status=404)


class BenchmarkControl:
    def __init__(
        self,
        service: BenchmarkService,
        snapshot: Callable[[], EngineSnapshot],
        busy_gpus: Callable[[], frozenset[int]],
        *,
        automatic: Callable[[], bool] = lambda: True,
    ) -> None:
        self.service = service
        self._snapshot = snapshot
        self._busy = busy_gpus
        self._automatic = automatic
        self._auto_task: asyncio.Task[None] | None = None

    def results(self) -> BenchmarkList:
        gpus = self._snapshot().discovery.gpus
        kept = [self.service.latest(gpu.uuid) for gpu in gpus]
        return BenchmarkList(results=[result_view(result) for result in kept if result is not None], problems=[])

    async def run(self, index: int | None, mode: Mode) -> BenchmarkList:
        """Benchmark the GPUs asked for, one after another (a GPU running a job is refused, not disturbed)."""
        snapshot = self._snapshot()
        gpus = chosen_gpus(snapshot, index)
        busy = self._busy()
        if index is not None and index in busy:
            raise BenchmarkRefused(f"GPU {index} is running a job now: benchmark it when the job has ended")
        results, problems = [], []  # problems: (GPU index, why)
        for gpu in gpus:
            if gpu.index in busy:
                problems.append((gpu.index, "running a job now, not benchmarked"))
                continue
            try:
                results.append(result_view(await self.service.run(gpu, mode, asked=True)))
            except BenchmarkInterrupted:
                problems.append((gpu.index, f"stopped ({self._stop_reason(gpu)}); the last result stands"))
            except BenchmarkError as exc:
                problems.append((gpu.index, str(exc)))
        if not results and index is not None and problems:
            raise BenchmarkRefused(problems[0][1], status=422)
        return BenchmarkList(results=results, problems=[f"GPU {gpu}: {why}" for gpu, why in problems])

    def _stop_reason(self, gpu: GpuIdentity) -> str:
        decision = self._snapshot().decisions.get(gpu.index)
        return decision.reason if decision is not None else "the agent is stopping"

    def policy_changed(self) -> None:
        """The engine re-decided: stop a benchmark whose GPU it takes back."""
        self.service.apply(self._snapshot().decisions)

    async def auto_round(self) -> None:
        """Start a benchmark of one due GPU that may work and runs no job (one at a time, in the background)."""
        if not self._automatic() or (self._auto_task is not None and not self._auto_task.done()):
            return
        snapshot = self._snapshot()
        if snapshot.discovery.backend == "simulated" or not snapshot.discovery.available:
            return
        busy = self._busy()
        for gpu in self.service.due(snapshot.discovery.gpus):
            decision = snapshot.decisions.get(gpu.index)
            if gpu.index in busy or decision is None or decision.action is not Action.WORK:
                continue
            self._auto_task = asyncio.create_task(self._auto(gpu), name=f"benchmark-{gpu.index}")
            return

    async def _auto(self, gpu: GpuIdentity) -> None:
        try:
            await self.service.run(gpu, "quick", asked=False)
        except BenchmarkError as exc:  # logged by the service; the last good result stands
            log.debug("Automatic benchmark of GPU %d ended without a result: %s", gpu.index, exc)

    async def close(self) -> None:
        self.service.stop_all("the agent is stopping")
        if self._auto_task is not None:
            await asyncio.gather(self._auto_task, return_exceptions=True)
