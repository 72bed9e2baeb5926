"""Benchmarks in the agent: which GPUs are due, running the measuring worker, stopping it the moment the GPU
is no longer the agent's to use, and keeping the latest good result per GPU.

The worker (:mod:`sparecycles.agent.benchmark.worker`) runs one of two ways, with the same measuring code:

- :class:`ProcessRunner`: a child process of the agent, driving the GPU through PyTorch or CuPy when one is
  installed (the ``benchmark`` extra). ``CUDA_VISIBLE_DEVICES`` names the GPU by UUID, so the worker can
  only touch that one.
- :class:`ImageRunner`: a job in the configured benchmark image (``[benchmark] image``, by digest), run by
  the job runtime like marketplace work: the same sandbox, GPU passthrough by UUID, and the policy
  pausing or stopping it.

A failed or interrupted benchmark keeps the last good result: earning never waits on a benchmark. A GPU
is due when it has no result, or its driver changed (:func:`~sparecycles.agent.benchmark.results.needs_rerun`);
one that failed is not tried again automatically for ``retry_after_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from sparecycles.agent.benchmark.errors import BenchmarkError, BenchmarkInterrupted, ResultFormatError
from sparecycles.agent.benchmark.measure import PLANS
from sparecycles.agent.benchmark.results import BenchmarkResult, ResultStore, needs_rerun
from sparecycles.agent.policy.model import Action, Cause, GpuDecision
from sparecycles.control.benchmark import BenchmarkPhase, BenchmarkResultView, GpuBenchmarkStatus

if TYPE_CHECKING:
    from sparecycles.agent.jobs.runtime import JobResult, Lease
    from sparecycles.agent.sensors.gpu import GpuIdentity

log = logging.getLogger(__name__)

Mode = Literal["quick", "full"]
WORKER_MODULE = "sparecycles.agent.benchmark.worker"
EXIT_NO_LIBRARY, EXIT_INTERRUPTED = 2, 3  # the worker's exit codes (worker.py)
STOP_GRACE_S = 10.0  # the worker stops between timed batches; then it is killed
RETRY_AFTER_S = 6 * 3600.0  # a benchmark that failed by itself is tried again automatically after this
# The phase whose mean board power stands for "power under load" (the ledger's price floor): tensor
# matrix products draw the most; FP32 where a GPU has no tensor type.
LOAD_PHASES = ("matmul_bf16", "matmul_fp16", "matmul_fp32")


# An owner who asks for a benchmark is at the machine on purpose: their presence and the schedule do not
# stop it. A game, a fullscreen video, another program on the GPU, heat, a pause or a snooze do, as they
# stop any job; an automatic benchmark stops for everything that stops work.
_ASKED_FOR_DESPITE = frozenset(
    {
        Cause.IDLE,
        Cause.LOCKED,
        Cause.SCHEDULED,
        Cause.USER_ACTIVE,
        Cause.WAITING_FOR_IDLE,
        Cause.PRESENCE_UNKNOWN,
        Cause.OUTSIDE_SCHEDULE,
    }
)


def stop_reason(decision: GpuDecision | None, *, asked: bool) -> str | None:
    """Why the policy's ``decision`` stops a benchmark on its GPU (``asked``: the owner requested it), or None."""
    if decision is None or decision.action is Action.WORK:
        return None
    if asked and decision.cause in _ASKED_FOR_DESPITE:
        return None
    return decision.reason


class BenchmarkFailed(BenchmarkError):
    """The benchmark ran and failed, or could not start; ``str()`` says why and what to do."""


class Runner(Protocol):
    """Runs the worker for one GPU; raises BenchmarkFailed, or BenchmarkInterrupted once ``stop`` is set."""

    description: str

    async def run(self, gpu: GpuIdentity, mode: Mode, stop: asyncio.Event) -> BenchmarkResult: ...


def worker_arguments(mode: Mode) -> list[str]:
    """The worker's options: the one GPU it is given is its device 0."""
    return [f"--{mode}", "--gpu", "0", "--json"]


def worker_program() -> tuple[str, ...]:
    """How this installation starts the worker: ``python -m`` the module, or a frozen bundle's own
    ``benchmark-worker`` subcommand (a bundle has no ``-m``)."""
    if getattr(sys, "frozen", False):
        return (sys.executable, "benchmark-worker")
    return (sys.executable, "-m", WORKER_MODULE)


def parse_result(stdout: str, gpu: GpuIdentity, runner: str | None = None) -> BenchmarkResult:
    """The worker's JSON for ``gpu``: numbered as the agent numbers it, and refused if it is another GPU's."""
    try:
        result = BenchmarkResult.from_json(stdout)
    except ResultFormatError as exc:
        raise BenchmarkFailed(f"the benchmark's result cannot be read: {exc}") from None
    if result.gpu_uuid not in (gpu.uuid, "unknown"):
        raise BenchmarkFailed(f"the benchmark measured GPU {result.gpu_uuid}, not GPU {gpu.index} ({gpu.uuid})")
    changes: dict[str, object] = {"gpu_index": gpu.index, "gpu_uuid": gpu.uuid}
    if result.driver_version is None:
        changes["driver_version"] = gpu.driver_version
    if runner is not None:
        changes["runner"] = runner
    return dataclasses.replace(result, **changes)  # type: ignore[arg-type]


def _tail(text: str, lines: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class ProcessRunner:
    """The worker as a child process, with the agent's own Python (so a frozen bundle works too)."""

    description = "in-process (PyTorch or CuPy, the benchmark extra)"

    def __init__(
        self,
        *,
        program: Sequence[str] | None = None,
        environment: Mapping[str, str] | None = None,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self._program = worker_program() if program is None else tuple(program)
        self._environment = dict(os.environ if environment is None else environment)
        self._stop_grace_s = stop_grace_s

    async def run(self, gpu: GpuIdentity, mode: Mode, stop: asyncio.Event) -> BenchmarkResult:
        environment = {**self._environment, "CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": gpu.uuid}
        process = await asyncio.create_subprocess_exec(
            *self._program,
            *worker_arguments(mode),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
        )
        finished = asyncio.ensure_future(process.communicate())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not finished.done():
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)  # the worker stops between batches, exit code 3
                try:
                    await asyncio.wait_for(asyncio.shield(finished), self._stop_grace_s)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await finished
                raise BenchmarkInterrupted("stopped")
        finally:
            stopping.cancel()
            if not finished.done():  # the agent is stopping: leave no worker behind
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.gather(finished, return_exceptions=True)
        out, err = (part.decode(errors="replace") for part in finished.result())
        if process.returncode == 0:
            return parse_result(out, gpu)
        if process.returncode == EXIT_INTERRUPTED:
            raise BenchmarkInterrupted("stopped")
        if process.returncode == EXIT_NO_LIBRARY:
            raise BenchmarkFailed(
                f"{_tail(err)}\n(for example: pip install 'sparecycles[benchmark]', or set [benchmark] image "
                "to a benchmark image, see docs/benchmark.md)"
            )
        raise BenchmarkFailed(f"the benchmark failed (exit code {process.returncode}): {_tail(err) or 'no message'}")


class JobRunner(Protocol):
    """What :class:`ImageRunner` needs of the job runtime (agent/jobs/runtime.py)."""

    async def run(self, lease: Lease) -> JobResult: ...
    def stop_job(self, job_id: str, reason: str) -> None: ...


RESULT_FILE = "benchmark.json"


class ImageRunner:
    """The worker as a job in the benchmark image, through the job runtime (sandbox, GPU by UUID, policy)."""

    def __init__(self, runtime: JobRunner, image: str, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._runtime = runtime
        self.image = image
        self.description = f"container: {image}"
        self._clock = clock

    def lease(self, gpu: GpuIdentity, mode: Mode) -> Lease:
        """The job: the worker writes its JSON to the job's output folder; no network, one GPU."""
        from sparecycles.agent.jobs.runtime import Lease
        from sparecycles.protocol.jobs import JobSpec

        command = " ".join(["python3", "-m", WORKER_MODULE, *worker_arguments(mode)]) + f" > /job/output/{RESULT_FILE}"
        spec = JobSpec.model_validate(
            {"image": self.image, "command": ["sh", "-c", command], "gpus": 1, "max_runtime_s": 600, "cpus": 2.0}
        )
        now = self._clock()
        return Lease(
            job_id=f"benchmark-{gpu.index}-{now:%Y%m%d%H%M%S}",
            spec=spec,
            expires_at=now + timedelta(seconds=spec.max_runtime_s + 60),
            gpu_indices=(gpu.index,),
            gpu_uuids=(gpu.uuid,),
            accepted_at=now,
        )

    async def run(self, gpu: GpuIdentity, mode: Mode, stop: asyncio.Event) -> BenchmarkResult:
        from sparecycles.agent.jobs.runtime import JobState

        lease = self.lease(gpu, mode)
        job = asyncio.ensure_future(self._runtime.run(lease))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({job, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not job.done():
                self._runtime.stop_job(lease.job_id, "the benchmark was stopped")
            result = await job
        finally:
            stopping.cancel()
        try:
            if stop.is_set() or result.state in (JobState.PREEMPTED, JobState.INTERRUPTED):
                raise BenchmarkInterrupted("stopped")  # the policy took the GPU back, or the agent is stopping
            if result.state is not JobState.FINISHED or result.outputs_dir is None:
                why = result.reason or f"exit code {result.exit_code}"
                raise BenchmarkFailed(f"the benchmark job {result.state.value}: {why}\n{_tail(result.logs_tail)}")
            path = result.outputs_dir / RESULT_FILE
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise BenchmarkFailed(f"the benchmark job left no result ({exc}): {_tail(result.logs_tail)}") from None
            return parse_result(text, gpu, runner=self.description)
        finally:
            if result.outputs_dir is not None:
                shutil.rmtree(result.outputs_dir, ignore_errors=True)


@dataclass(frozen=True)
class GpuBenchmark:
    """One GPU's benchmark state: the kept result, a run under way, the last failure."""

    result: BenchmarkResult | None
    running: bool
    started: datetime | None
    problem: str | None  # the last run's failure, until one succeeds
    expected_s: float | None = None  # how long the run under way should take


class BenchmarkService:
    """One benchmark at a time per GPU; results kept in ``store``; ``runner()`` says how the next one runs;
    ``on_change`` hears of each start and end."""

    def __init__(
        self,
        store: ResultStore,
        runner: Callable[[], Runner],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        retry_after_s: float = RETRY_AFTER_S,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._runner = runner  # asked at each run: the settings may have changed the image
        self._clock = clock
        self._monotonic = monotonic
        self._retry_after_s = retry_after_s
        self._on_change = on_change
        self._results = store.load()
        self._running: dict[int, tuple[asyncio.Event, datetime, float]] = {}
        self._asked: set[int] = set()  # running because the owner asked
        self._problems: dict[str, tuple[str, float]] = {}  # uuid -> (why, when: monotonic)

    # -- what is known ------------------------------------------------------------------------------

    def latest(self, uuid: str) -> BenchmarkResult | None:
        return self._results.get(uuid)

    def view(self, gpu: GpuIdentity) -> GpuBenchmark:
        running = self._running.get(gpu.index)
        problem = self._problems.get(gpu.uuid)
        return GpuBenchmark(
            self._results.get(gpu.uuid),
            running is not None,
            running[1] if running else None,
            problem and problem[0],
            running[2] if running else None,
        )

    def held(self) -> frozenset[int]:
        """The GPUs a benchmark runs on now: not offered for work meanwhile."""
        return frozenset(self._running)

    def score(self, uuid: str) -> float | None:
        result = self._results.get(uuid)
        return result.score if result is not None else None

    def load_power_w(self) -> dict[str, float]:
        """Each benchmarked GPU's mean board power under load (its heaviest matrix phase), by UUID."""
        measured = {uuid: load_power(result) for uuid, result in self._results.items()}
        return {uuid: watts for uuid, watts in measured.items() if watts is not None}

    def due(self, gpus: Sequence[GpuIdentity]) -> list[GpuIdentity]:
        """GPUs without a result for their present driver, not running, and not recently failed."""
        now = self._monotonic()
        return [
            gpu
            for gpu in gpus
            if gpu.index not in self._running
            and needs_rerun(self._results.get(gpu.uuid), gpu.uuid, gpu.driver_version)
            and not ((problem := self._problems.get(gpu.uuid)) is not None and now - problem[1] < self._retry_after_s)
        ]

    # -- running and stopping -----------------------------------------------------------------------

    async def run(self, gpu: GpuIdentity, mode: Mode = "quick", *, asked: bool = True) -> BenchmarkResult:
        """Benchmark ``gpu`` (``asked``: the owner requested it; else it runs because it is due); its result,
        kept when good. BenchmarkFailed or BenchmarkInterrupted otherwise, the previous result left as it was."""
        if gpu.index in self._running:
            raise BenchmarkFailed(f"GPU {gpu.index} is being benchmarked already")
        stop = asyncio.Event()
        self._running[gpu.index] = (stop, self._clock(), PLANS[mode].expected_s)
        if asked:
            self._asked.add(gpu.index)
        self._on_change()
        runner = self._runner()
        log.info("Benchmarking GPU %d (%s), %s mode, %s", gpu.index, gpu.name, mode, runner.description)
        try:
            result = await runner.run(gpu, mode, stop)
        except BenchmarkInterrupted:
            log.info("The benchmark of GPU %d was stopped; the last result stands", gpu.index)
            raise
        except BenchmarkError as exc:
            self._problems[gpu.uuid] = (str(exc), self._monotonic())
            log.warning("The benchmark of GPU %d failed: %s", gpu.index, exc)
            raise
        finally:
            del self._running[gpu.index]
            self._asked.discard(gpu.index)
            self._on_change()
        if await asyncio.to_thread(self._store.keep, result):
            self._results[gpu.uuid] = result
            self._problems.pop(gpu.uuid, None)
            log.info("GPU %d benchmarked: score %.1f", gpu.index, result.score or 0)
        else:
            self._problems[gpu.uuid] = ("the result was not kept: a reading was implausible", self._monotonic())
        return result

    def stop(self, gpu_index: int, reason: str) -> bool:
        """Stop the benchmark on ``gpu_index`` (the policy took the GPU back); says whether one ran."""
        running = self._running.get(gpu_index)
        if running is None or running[0].is_set():
            return False
        log.info("Stopping the benchmark of GPU %d: %s", gpu_index, reason)
        running[0].set()
        return True

    def stop_all(self, reason: str) -> None:
        for index in list(self._running):
            self.stop(index, reason)

    def apply(self, decisions: Mapping[int, GpuDecision]) -> None:
        """Stop each benchmark whose GPU the policy takes back (see :func:`stop_reason`)."""
        for index in list(self._running):
            why = stop_reason(decisions.get(index), asked=index in self._asked)
            if why is not None:
                self.stop(index, why)

    def status(self, gpu: GpuIdentity) -> GpuBenchmarkStatus:
        found = self.view(gpu)
        if found.running:
            state = "running"
        elif found.problem is not None:
            state = "failed"
        else:
            state = "done" if found.result is not None else "none"
        return GpuBenchmarkStatus(
            state=state,
            started=found.started,
            expected_seconds=found.expected_s,
            problem=found.problem,
            result=result_view(found.result) if found.result is not None else None,
        )


def load_power(result: BenchmarkResult) -> float | None:
    """The mean board power of ``result``'s heaviest matrix phase: its power under load."""
    phases = {phase.phase: phase for phase in result.phases}
    for name in LOAD_PHASES:
        phase = phases.get(name)
        if phase is not None and phase.mean_power_w is not None:
            return phase.mean_power_w
    return None


def result_view(result: BenchmarkResult) -> BenchmarkResultView:
    figures = result.figures
    return BenchmarkResultView(
        gpu_index=result.gpu_index,
        gpu_uuid=result.gpu_uuid,
        gpu_name=result.gpu_name,
        driver_version=result.driver_version,
        measured_at=result.measured_at,
        mode=result.mode,
        runner=result.runner,
        score=result.score,
        fp32_tflops=figures.fp32_tflops,
        fp16_tflops=figures.fp16_tflops,
        bf16_tflops=figures.bf16_tflops,
        memory_gbps=figures.memory_gbps,
        host_to_device_gbps=figures.host_to_device_gbps,
        device_to_host_gbps=figures.device_to_host_gbps,
        vram_usable_bytes=figures.vram_usable_bytes,
        load_power_w=load_power(result),
        flags=[flag.message for flag in result.flags],
        reference_model=result.reference_model,
        elapsed_s=result.elapsed_s,
        phases=[
            BenchmarkPhase(
                phase=phase.phase,
                unit=phase.unit,
                value=phase.value,
                unsupported=phase.unsupported,
                spread=phase.spread,
                mean_power_w=phase.mean_power_w,
                max_temperature_c=phase.max_temperature_c,
                tflops_per_watt=phase.tflops_per_watt,
            )
            for phase in result.phases
        ],
    )
