"""Where the agent's jobs come from and where their results go, around the :class:`JobRuntime`.

Until the marketplace client exists, jobs come from the owner: `sparecycles job run FILE` submits a
job spec through the control API (a studio testing its render job on one machine). Each job is
checked against the owner's limits, given free GPUs the policy lets work, and leased locally for its
maximum run time. At start the service recovers what an agent that died left running.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.events import EventBus
from sparecycles.agent.jobs.downloads import DownloadGate, Throttle, download_gate
from sparecycles.agent.jobs.egress import egress_opener
from sparecycles.agent.jobs.image_cache import ImageCache
from sparecycles.agent.jobs.inputs import InputCache
from sparecycles.agent.jobs.limits import provider_limits
from sparecycles.agent.jobs.runtime import (
    JobRecord,
    JobRecordStore,
    JobResult,
    JobRuntime,
    Lease,
    attach_to_engine,
    governing_decision,
)
from sparecycles.agent.policy.model import Action
from sparecycles.agent.system.metered import create_metered_check
from sparecycles.config import Settings
from sparecycles.control.models import EventType
from sparecycles.fileio import atomic_write_text
from sparecycles.protocol.job_refusal import JobRefused, check_job
from sparecycles.sizes import parse_size

log = logging.getLogger(__name__)

LEASE_MARGIN = timedelta(minutes=10)  # a local lease outlives the job's own run-time limit by this much
STOPPING_REASON = "preempted: the agent is stopping"
ENDING = "ending"  # listed for a job whose container is done, until its result is recorded


class JobService:
    def __init__(
        self,
        *,
        runtime: JobRuntime,
        engine: WorkEngine,
        settings: Callable[[], Settings],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._runtime = runtime
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: dict[str, JobResult] = {}
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    def container_ids(self) -> frozenset[str]:
        return self._runtime.container_ids()

    @property
    def runtime(self) -> JobRuntime:
        """The runtime that runs every job here, the owner's and the marketplace's alike."""
        return self._runtime

    @property
    def problem(self) -> str | None:
        """Why jobs cannot run now (the Docker engine is not reachable...), or None."""
        return self._runtime.engine_problem

    def _lease_valid(self, record: JobRecord) -> bool:
        return record.lease.expires_at > self._clock()

    async def start(self) -> None:
        """Let the policy steer every job, then take back jobs that outlived a crash.

        In that order, so that a job taken back is steered by the decision in force from its first moment
        (a job the crashed agent froze while the owner was here is not thawed first). Its processes count as
        ours from the moment the runtime read its records, so that decision does not take it for a stranger.
        """
        attach_to_engine(self._runtime, self._engine)
        recovery = await self._runtime.recover(self._lease_valid)
        for job_id, task in recovery.adopted.items():
            log.info("Re-adopted job %s after a restart", job_id)
            self._follow(task)
        for result in recovery.interrupted:
            log.warning("Job %s was interrupted: %s", result.job_id, result.reason)
            self._results[result.job_id] = result
        self._watch = asyncio.create_task(self._runtime.watch_engine(self._lease_valid))

    def submit(self, raw: Mapping[str, Any]) -> str:
        """Check a job spec and start it; raises :class:`JobRefused` with the reason."""
        if self._stopping:  # a job started now would run on with nothing to govern it
            raise JobRefused("refused: the agent is stopping; submit the job again once it has restarted")
        snapshot = self._engine.snapshot()
        gpus = snapshot.discovery.gpus
        vram = min((gpu.vram_total_bytes for gpu in gpus if gpu.vram_total_bytes), default=None)
        limits = provider_limits(self._settings().jobs, gpu_count=len(gpus), gpu_vram_bytes=vram)
        spec = check_job(raw, limits)
        busy = self._runtime.busy_gpu_indices()
        free = [
            gpu
            for gpu in gpus
            if gpu.index not in busy
            and (decision := snapshot.decisions.get(gpu.index)) is not None
            and decision.action is Action.WORK
        ]
        if len(free) < spec.gpus:
            raise JobRefused(f"refused: job needs {spec.gpus} GPU(s) and {len(free)} may work now")
        machine = snapshot.machine
        if spec.gpus == 0 and machine is not None and machine.action is not Action.WORK:
            raise JobRefused(f"refused: this computer may not work now ({machine.reason})")
        chosen = free[: spec.gpus]
        now = self._clock()
        lease = Lease(
            job_id=f"local-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}",
            spec=spec,
            expires_at=now + timedelta(seconds=spec.max_runtime_s) + LEASE_MARGIN,
            gpu_indices=tuple(gpu.index for gpu in chosen),
            gpu_uuids=tuple(gpu.uuid for gpu in chosen),
            accepted_at=now,
        )
        log.info("Accepted local job %s (%d GPU(s))", lease.job_id, spec.gpus)
        self._follow(asyncio.create_task(self._runtime.run(lease)))
        return lease.job_id

    def _follow(self, task: asyncio.Task[JobResult]) -> None:
        async def keep_result() -> None:
            result = await task
            self._results[result.job_id] = result
            log.info("Job %s %s%s", result.job_id, result.state.value, f": {result.reason}" if result.reason else "")

        follower = asyncio.create_task(keep_result())
        self._tasks.add(follower)
        follower.add_done_callback(self._tasks.discard)

    def jobs(self) -> list[dict[str, Any]]:
        """Running jobs first, then the ones that ended since the agent started.

        A job the runtime has just ended is listed as ``ending`` until its result, with its outputs, is
        recorded here: listed under its final state before that, it would look finished with no outputs.
        The runtime is read before the results, so that a job recorded in between is listed once, ended.
        """
        running = self._runtime.jobs()
        results = dict(self._results)
        active = [
            {
                "job_id": job.job_id,
                "state": ENDING if job.state.ended else job.state.value,
                "reason": "recording how it ended" if job.state.ended else job.reason,
                "gpus": list(job.gpu_indices),
                "run_time_s": round(job.run_time_s, 1),
            }
            for job in running
            if job.job_id not in results
        ]
        ended = [
            {
                "job_id": result.job_id,
                "state": result.state.value,
                "reason": result.reason,
                "exit_code": result.exit_code,
                "outputs": [{"path": o.path, "size_bytes": o.size_bytes, "sha256": o.sha256} for o in result.outputs],
                "outputs_dir": str(result.outputs_dir) if result.outputs_dir else None,
            }
            for result in results.values()
        ]
        return active + ended

    def refuse_new_jobs(self) -> None:
        """From now on :meth:`submit` refuses every job: the agent is stopping."""
        self._stopping = True

    async def shutdown(self, timeout_s: float = 3.5) -> None:
        """Stop every job (preempted): while the agent is down nothing would hand the GPU back to the owner.

        Only a crash leaves containers behind, for :meth:`start` to recover the next time.
        """
        self.refuse_new_jobs()
        if self._watch is not None:
            self._watch.cancel()
        self._runtime.stop_all(STOPPING_REASON)
        # A job accepted just before registers with the runtime only once its task first runs: let it, then
        # stop it too (it is then stopped before its container starts).
        await asyncio.sleep(0)
        self._runtime.stop_all(STOPPING_REASON)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


STOP_GRACE_S = 3.0  # a job gets this long to stop by itself when the owner needs the GPU back


def agent_id(state_dir: Path) -> str:
    """This installation's id on container labels; kept in the state folder so a restart finds its jobs."""
    path = state_dir / "agent-id"
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    new = f"agent-{secrets.token_hex(6)}"
    atomic_write_text(path, new + "\n")
    return new


RUNTIME_EVENTS = {
    "job_state": EventType.JOB_STATE,
    "pull_progress": EventType.PULL_PROGRESS,
    "engine": EventType.JOBS_PROBLEM,
}


def create_job_service(
    *, state_dir: Path, engine: WorkEngine, settings: Callable[[], Settings], bus: EventBus | None = None
) -> JobService:
    """The job service with a Docker runner connected on first use (the SDK loads only then)."""
    from sparecycles.agent.jobs.containers import ContainerRunner, connect

    identity = agent_id(state_dir)

    def publish(kind: str, data: dict[str, Any]) -> None:
        """Job states, pull progress and engine trouble, out on the control API's event stream."""
        if bus is not None:
            bus.publish(RUNTIME_EVENTS[kind], data)

    def runner() -> ContainerRunner:
        jobs = settings().jobs
        return ContainerRunner(connect(), agent_id=identity, allowed_registries=jobs.allowed_registries)

    # Found on the first download rather than at start-up: it costs a D-Bus round trip.
    metered_check = functools.cache(create_metered_check)

    def downloads_may_run(lease: Lease) -> DownloadGate:
        """Pulls and input downloads run only while the job's GPUs may work, and not on a metered line."""
        snapshot = engine.snapshot()
        action, _reason = governing_decision(lease.gpu_indices, snapshot.decisions, snapshot.machine)
        return download_gate(
            work_allowed=action is Action.WORK,
            metered=metered_check().metered(),
            allow_metered=settings().jobs.allow_metered_downloads,
        )

    rate = settings().jobs.download_rate_limit
    images = ImageCache(state_dir / "images.json", lambda: parse_size(settings().jobs.image_cache))
    runtime = JobRuntime(
        runner,
        InputCache(
            state_dir / "inputs",
            throttle=Throttle(parse_size(rate) if rate else None),
            internal_allowed=lambda: settings().jobs.private_networks,  # as for the job's own connections
        ),
        JobRecordStore(state_dir / "jobs.json"),
        outputs_root=state_dir / "outputs",
        stop_grace_s=STOP_GRACE_S,
        on_event=publish,
        download_gate=downloads_may_run,
        open_egress=egress_opener(internal_allowed=lambda: settings().jobs.private_networks),
        image_cache=images,
    )
    return JobService(runtime=runtime, engine=engine, settings=settings)
