"""The job runtime: one leased job from pull to results, steered by the work policy, and found again after a crash.

A job goes ``pulling → starting → running ⇄ paused`` and ends ``finished``, ``failed``, ``preempted``
(the policy took its GPU back: requeue it) or ``interrupted`` (the agent or the engine went away, or the
lease ran out). Blocking engine calls run in worker threads; the policy steers jobs through
:meth:`JobRuntime.apply`, which never blocks (each job's pause/unpause/stop runs in that job's own
worker, in order, the latest wish winning).

What the runtime ran is kept in a small JSON file (:class:`JobRecordStore`), so that after a crash
:meth:`JobRuntime.recover` can tell its containers from strangers' and re-adopt those whose lease still
holds. Cancelling :meth:`JobRuntime.run` *detaches* the job (the agent is going away): its container keeps
running and its record stays, for the next :meth:`recover`.

A Docker engine that does not answer is a state, not a crash: :attr:`JobRuntime.engine_problem` says
"Docker engine not reachable…", jobs that needed it end ``interrupted``, and :meth:`watch_engine`
tries again with a growing delay. A job given up that way may still have a running container: its record
is kept, its processes still count as ours, and the next recovery stops it and takes what it left.

Steering waits for the policy: until a first decision comes, a job is left as it is (a job the crashed
agent had frozen stays frozen). A pause, thaw or stop the engine refuses is tried again with a growing
delay, whatever the decisions do meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparecycles.agent.jobs.containers import (
    REASON_OUTPUT_CAP,
    REASON_RUN_TIME,
    ContainerRunner,
    JobContainer,
    PullProgress,
)
from sparecycles.agent.jobs.downloads import DownloadGate
from sparecycles.agent.jobs.egress import EgressOpener, JobEgress, egress_opener
from sparecycles.agent.jobs.errors import (
    ContainerStateError,
    EngineUnreachableError,
    JobRuntimeError,
    OutputCapExceededError,
)
from sparecycles.agent.jobs.image_cache import ImageCache
from sparecycles.agent.jobs.inputs import InputCache, InputError
from sparecycles.agent.jobs.sandbox import ROLE_JOB, ContainerPlan
from sparecycles.agent.jobs.scratch import OutputFile
from sparecycles.agent.policy.model import Action, GpuDecision, MachineDecision
from sparecycles.fileio import atomic_write_text
from sparecycles.protocol.jobs import JobSpec

if TYPE_CHECKING:
    from sparecycles.agent.engine import WorkEngine

log = logging.getLogger(__name__)

ENGINE_PROBLEM = "Docker engine not reachable"
REASON_LEASE_EXPIRED = "the lease expired"
REASON_EGRESS_GONE = "the job's egress network or proxy could not be restored after the restart"
REASON_LEASE_GONE = "the agent restarted and the job's lease is no longer valid"
REASON_CONTAINER_GONE = "the job's container did not survive the agent's restart"
REASON_ENDED_UNWATCHED = "the job ended while the agent was not running"
REASON_GIVEN_UP = "the job was given up when the Docker engine stopped answering"

EventSink = Callable[[str, dict[str, Any]], None]
_PROGRESS_INTERVAL_S = 0.25
_LOGS_TAIL_CHARS = 64 * 1024
_STEER_RETRY_MAX_S = 15.0  # a refused stop is tried again at least this often: the owner waits for the GPU


class JobState(StrEnum):
    PULLING = "pulling"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"  # exited 0 on its own
    FAILED = "failed"  # non-zero exit, run time or output cap, a refused image, a bad input
    PREEMPTED = "preempted"  # the policy stopped it to free its GPU: requeue
    INTERRUPTED = "interrupted"  # the agent, the engine or the lease went away: requeue

    @property
    def ended(self) -> bool:
        return self in _ENDED


_ENDED = frozenset({JobState.FINISHED, JobState.FAILED, JobState.PREEMPTED, JobState.INTERRUPTED})


@dataclass(frozen=True)
class Lease:
    """A job this agent accepted: its spec, the GPUs it was given (index and UUID alike), until when it holds."""

    job_id: str
    spec: JobSpec
    expires_at: datetime
    gpu_indices: tuple[int, ...] = ()
    gpu_uuids: tuple[str, ...] = ()
    accepted_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if len(self.gpu_indices) != len(self.gpu_uuids):
            raise ValueError("a lease names each GPU by index and by UUID")
        if self.expires_at.tzinfo is None or self.accepted_at.tzinfo is None:
            raise ValueError("lease times must carry their time zone")
        object.__setattr__(self, "gpu_indices", tuple(self.gpu_indices))
        object.__setattr__(self, "gpu_uuids", tuple(self.gpu_uuids))


@dataclass(frozen=True)
class JobRecord:
    """What the record store keeps of an active job: its lease, its container, its last state."""

    lease: Lease
    container_id: str | None = None
    state: JobState = JobState.PULLING
    egress_port: int | None = None  # where its proxy listened: the job's environment points there
    paused_s: float = 0.0  # finished pauses, left out of its run time
    paused_since: float | None = None  # wall-clock start of the pause under way

    @property
    def job_id(self) -> str:
        return self.lease.job_id

    def to_json(self) -> dict[str, Any]:
        lease = self.lease
        return {
            "job_id": lease.job_id,
            "spec": lease.spec.model_dump(mode="json"),
            "gpu_indices": list(lease.gpu_indices),
            "gpu_uuids": list(lease.gpu_uuids),
            "expires_at": lease.expires_at.isoformat(),
            "accepted_at": lease.accepted_at.isoformat(),
            "container_id": self.container_id,
            "state": self.state.value,
            "egress_port": self.egress_port,
            "paused_s": self.paused_s,
            "paused_since": self.paused_since,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobRecord:
        lease = Lease(
            job_id=str(data["job_id"]),
            spec=JobSpec.model_validate_json(json.dumps(data["spec"])),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            gpu_indices=tuple(int(index) for index in data["gpu_indices"]),
            gpu_uuids=tuple(str(uuid) for uuid in data["gpu_uuids"]),
            accepted_at=datetime.fromisoformat(data["accepted_at"]),
        )
        container_id = data.get("container_id")
        egress_port = data.get("egress_port")
        paused_since = data.get("paused_since")
        return cls(
            lease,
            str(container_id) if container_id else None,
            JobState(data["state"]),
            int(egress_port) if egress_port is not None else None,
            float(data.get("paused_s", 0.0)),
            float(paused_since) if paused_since is not None else None,
        )


class JobRecordStore:
    """The active jobs, one JSON file in the agent's state folder, replaced atomically on every change.

    An unreadable file is logged and set aside (``.corrupt``), never fatal: recovery then removes every
    container this agent labelled, as it cannot vouch for any of them.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def load(self) -> dict[str, JobRecord]:
        with self._lock:
            return self._read()

    def put(self, record: JobRecord) -> None:
        with self._lock:
            records = self._read()
            records[record.job_id] = record
            self._write(records)

    def remove(self, job_id: str) -> None:
        with self._lock:
            records = self._read()
            if records.pop(job_id, None) is not None:
                self._write(records)

    def _read(self) -> dict[str, JobRecord]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            return {job_id: JobRecord.from_json(item) for job_id, item in data["jobs"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("The job records in %s cannot be read (%s); they are set aside", self._path, exc)
            with contextlib.suppress(OSError):
                self._path.replace(self._path.with_suffix(".corrupt"))
            return {}

    def _write(self, records: Mapping[str, JobRecord]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps({"jobs": {job_id: record.to_json() for job_id, record in records.items()}}, indent=1)
        atomic_write_text(self._path, text + "\n")


@dataclass(frozen=True)
class JobResult:
    """How a job ended; ``outputs`` lie under ``outputs_dir`` (the caller removes it once they are sent)."""

    job_id: str
    state: JobState
    exit_code: int | None
    reason: str | None
    outputs: tuple[OutputFile, ...] = ()
    outputs_dir: Path | None = None
    logs_tail: str = ""
    run_time_s: float = 0.0  # how long it ran, paused time not counted
    paused_s: float = 0.0  # how long it was paused (frozen while its owner used the machine)


@dataclass(frozen=True)
class JobStatus:
    """One active job, for the status document."""

    job_id: str
    state: JobState
    reason: str | None
    gpu_indices: tuple[int, ...]
    run_time_s: float
    expires_at: datetime
    cpus: float = 0.0  # the CPU time it may use, in CPUs


@dataclass(frozen=True)
class Recovery:
    """What :meth:`JobRuntime.recover` found: jobs taken back (their results to come) and jobs it ended."""

    adopted: Mapping[str, asyncio.Task[JobResult]] = field(default_factory=dict)
    interrupted: tuple[JobResult, ...] = ()
    removed_orphans: int = 0
    engine_problem: str | None = None


def plan_for(lease: Lease, egress: JobEgress | None = None) -> ContainerPlan:
    """The container plan of a leased job: the spec inside the sandbox, on the GPUs the lease gave it, and
    on its own egress network with its proxy in the environment when it has one."""
    spec = lease.spec
    return ContainerPlan(
        job_id=lease.job_id,
        image=spec.image_reference.canonical,
        command=tuple(spec.command) if spec.command is not None else None,
        entrypoint=tuple(spec.entrypoint) if spec.entrypoint is not None else None,
        env=dict(spec.env) | (egress.environment() if egress is not None else {}),
        network=egress.network.name if egress is not None else None,
        gpu_uuids=lease.gpu_uuids,
        cpus=spec.cpus,
        memory_bytes=spec.memory_bytes,
        shm_bytes=spec.shm_bytes,
        max_output_bytes=spec.max_output_bytes,
        output_dir=spec.output_dir,
    )


def governing_decision(
    gpu_indices: Iterable[int], decisions: Mapping[int, GpuDecision], machine: MachineDecision | None
) -> tuple[Action, str]:
    """The action (and its reason) that governs a job: the strongest over its GPUs.

    A CPU-only job (no GPUs) follows the machine's decision: the owner's presence, schedule, games,
    pause and snooze, but not one GPU's heat or its other users. Before the policy's first decision
    (``machine`` None) nothing holds it back. A leased GPU the policy no longer mentions has no say.
    """
    indices = tuple(gpu_indices)
    if not indices:
        return (machine.action, machine.reason) if machine is not None else (Action.WORK, "")
    relevant = [decisions[index] for index in indices if index in decisions]
    if not relevant:
        return Action.WORK, ""
    strongest = max(relevant, key=lambda decision: (decision.action, -decision.index))
    return strongest.action, strongest.reason


class _Job:
    """An active job's mutable state; ``lock`` guards ``desired``, ``stop_request`` and ``stop_sent``."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.state = JobState.PULLING
        self.reason: str | None = None
        self.container: JobContainer | None = None
        self.egress: JobEgress | None = None
        self.lock = threading.Lock()
        self.desired = Action.WORK
        self.stop_request: tuple[JobState, str] | None = None
        self.stop_sent = False  # the engine took the stop: nothing more to ask
        self.steer_retry_s = 0.0  # the delay before the next try of a refused pause, thaw or stop
        self.retry_pending = False  # such a try is scheduled already
        self.left_behind = False  # given up with its container possibly running: its record stays
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"job-{lease.job_id}-control")


def _ignore_event(_kind: str, _data: dict[str, Any]) -> None:
    pass


class JobRuntime:
    """Runs leased jobs' containers, steers them by the policy's decisions, and recovers them after a crash.

    ``runner_factory`` connects to the engine (raising :class:`EngineUnreachableError` when it cannot);
    it is called again after the engine went away. ``open_egress`` starts the proxy of a job that declared
    egress (the job's limits were checked before it was leased); ``image_cache``, when given, keeps the
    images pulled for jobs within its budget after every pull and every job. ``on_event`` receives
    ``("job_state", {job_id, state, reason})``, ``("pull_progress", {job_id, current, total})`` and
    ``("engine", {problem})``, always on the event loop's thread.
    """

    def __init__(
        self,
        runner_factory: Callable[[], ContainerRunner],
        input_cache: InputCache,
        records: JobRecordStore,
        *,
        outputs_root: Path,
        on_event: EventSink = _ignore_event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop_grace_s: float = 10.0,
        poll_interval_s: float = 1.0,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 60.0,
        download_gate: Callable[[Lease], DownloadGate] | None = None,
        open_egress: EgressOpener | None = None,
        image_cache: ImageCache | None = None,
    ) -> None:
        self._runner_factory = runner_factory
        self._inputs = input_cache
        self._records = records
        self._outputs_root = outputs_root
        self._on_event = on_event
        self._clock = clock
        self._grace_s = stop_grace_s
        self._poll_s = poll_interval_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._download_gate = download_gate
        self._open_egress = open_egress or egress_opener()
        self._images = image_cache
        self._runner: ContainerRunner | None = None
        self._runner_lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        # Recorded jobs this runtime does not follow: a crashed agent's until recovery, or one given up when
        # the engine went away. Their containers may be running: their processes are ours, their GPUs busy.
        # Replaced whole, never changed in place: sensor threads read it.
        self._left_behind: Mapping[str, JobRecord] = records.load()
        self._needs_recovery = False
        self._recovery_wanted: asyncio.Event | None = None  # wakes watch_engine
        self._decisions: dict[int, GpuDecision] = {}
        self._machine: MachineDecision | None = None
        self._decided = False  # a decision of the policy came: until then, jobs are left as they are
        self._busy_listeners: list[Callable[[frozenset[int], bool], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.engine_problem: str | None = None

    # -- status -------------------------------------------------------------------------------------

    def jobs(self) -> list[JobStatus]:
        return [
            JobStatus(
                job.lease.job_id,
                job.state,
                job.reason,
                job.lease.gpu_indices,
                job.container.run_time_s if job.container is not None else 0.0,
                job.lease.expires_at,
                job.lease.spec.cpus,
            )
            for job in list(self._jobs.values())
        ]

    def container_ids(self) -> frozenset[str]:
        """The full IDs of the active jobs' containers, and of recorded ones not yet recovered (their processes
        are ours, not the owner's: from the start, so that a job a crashed agent left is never taken for a
        stranger on its GPU)."""
        active = {job.container.id for job in list(self._jobs.values()) if job.container is not None}
        recorded = {record.container_id for record in self._left_behind.values() if record.container_id}
        return frozenset(active | recorded)

    def busy_gpu_indices(self) -> frozenset[int]:
        """The GPUs leased to active jobs (pulling included: the machine should stay awake for them), and to
        recorded jobs not yet recovered (their containers may hold them)."""
        leases = [job.lease for job in list(self._jobs.values())] + [r.lease for r in self._left_behind.values()]
        return frozenset(index for lease in leases for index in lease.gpu_indices)

    def cpu_only_busy(self) -> bool:
        """Whether an active (or not yet recovered) job uses no GPU (the machine should stay awake for it too)."""
        leases = [job.lease for job in list(self._jobs.values())] + [r.lease for r in self._left_behind.values()]
        return any(not lease.gpu_indices for lease in leases)

    def on_busy_change(self, listener: Callable[[frozenset[int], bool], None]) -> None:
        """``listener(busy_gpu_indices, cpu_only_busy)`` whenever a job starts or ends."""
        self._busy_listeners.append(listener)

    def extend_lease(self, job_id: str, expires_at: datetime) -> None:
        """The marketplace renewed a job's lease."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.lease = replace(job.lease, expires_at=expires_at)
        self._save(job)

    # -- steering -----------------------------------------------------------------------------------

    def apply(self, decisions: Mapping[int, GpuDecision], machine: MachineDecision | None = None) -> None:
        """Steer every active job by the policy's decisions (per GPU, and the machine's for CPU-only jobs):
        STOP preempts, PAUSE freezes, WORK thaws.

        Takes decisions rather than bare actions, so that a preempted job says why. Never blocks. Nothing
        (no decision, no machine decision) is no decision yet: jobs are then left as they are.
        """
        self._decisions = dict(decisions)
        self._machine = machine
        self._decided = self._decided or machine is not None or bool(decisions)
        for job in list(self._jobs.values()):
            self._steer(job)

    def _steer(self, job: _Job) -> None:
        if not self._decided:
            return  # before the policy's first word: a frozen job stays frozen, a running one runs
        action, reason = governing_decision(job.lease.gpu_indices, self._decisions, self._machine)
        with job.lock:
            if job.stop_request is None:
                job.desired = action
                if action is Action.STOP:
                    job.stop_request = (JobState.PREEMPTED, f"preempted: {reason}")
        self._submit(job)  # a stop already asked for is sent again if the engine refused it

    def stop_all(self, reason: str) -> None:
        """Stop every job now, reported preempted with ``reason`` (the agent is shutting down: no job may
        run ungoverned while nothing watches for the owner). Never blocks."""
        for job in list(self._jobs.values()):
            self._request_stop(job, JobState.PREEMPTED, reason)

    def stop_job(self, job_id: str, reason: str) -> None:
        """Stop one job (the marketplace cancelled its lease); it ends ``interrupted`` with ``reason``."""
        job = self._jobs.get(job_id)
        if job is not None:
            self._request_stop(job, JobState.INTERRUPTED, reason)

    def _request_stop(self, job: _Job, state: JobState, reason: str) -> None:
        with job.lock:
            if job.stop_request is None:
                job.stop_request = (state, reason)
        self._submit(job)

    def _submit(self, job: _Job) -> None:
        if job.container is not None and job.state in (JobState.RUNNING, JobState.PAUSED):
            with contextlib.suppress(RuntimeError):  # the executor was shut down: the job has ended
                job.executor.submit(self._govern, job)

    def _govern(self, job: _Job) -> None:
        """Bring the job's container to the latest wish (in the job's control thread)."""
        container = job.container
        if container is None:
            return
        with job.lock:
            desired, stop, stop_sent = job.desired, job.stop_request, job.stop_sent
        try:
            if stop is not None:
                if not stop_sent:
                    container.stop(self._grace_s, stop[1])
                    with job.lock:
                        job.stop_sent = True
            elif desired is Action.PAUSE and not container.paused:
                container.pause()
                self._set_state(job, JobState.PAUSED, "paused by the work policy")
            elif desired is Action.WORK and container.paused and self._decided:
                container.unpause()
                self._set_state(job, JobState.RUNNING)
        except ContainerStateError:
            pass  # it ended meanwhile; its runner reports how
        except EngineUnreachableError as exc:
            self._engine_lost(exc)
            self._steer_again_later(job)
        except JobRuntimeError as exc:
            log.warning("Could not steer job %s: %s", job.lease.job_id, exc)
            self._steer_again_later(job)
        else:
            job.steer_retry_s = 0.0

    def _steer_again_later(self, job: _Job) -> None:
        """Try a refused pause, thaw or stop again after a growing delay (the job's control thread): the
        decision that asked for it may stand unchanged for hours, and the owner waits on it."""
        cap = min(self._retry_max_s, _STEER_RETRY_MAX_S)
        delay = job.steer_retry_s = min(cap, max(self._retry_initial_s, job.steer_retry_s * 2))
        loop = self._loop
        if job.retry_pending or loop is None or loop.is_closed():
            return
        job.retry_pending = True
        log.info("Job %s: steering tried again in %.1f s", job.lease.job_id, delay)

        def again() -> None:
            job.retry_pending = False
            self._submit(job)

        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the agent is going
            loop.call_soon_threadsafe(loop.call_later, delay, again)

    # -- running ------------------------------------------------------------------------------------

    async def run(self, lease: Lease) -> JobResult:
        """Run one leased job to its end. Cancelling it detaches the job (see the module's documentation)."""
        self._loop = asyncio.get_running_loop()
        if lease.job_id in self._jobs:
            raise ValueError(f"job {lease.job_id} is already running here")
        job = self._register(lease)
        detached = False
        try:
            result = await self._run(job)
        except asyncio.CancelledError:
            detached = True
            log.info("Job %s detached; its container keeps running for the next recovery", lease.job_id)
            raise
        finally:
            self._unregister(job, keep_record=detached or job.left_behind)
        await asyncio.to_thread(self.enforce_image_budget)
        return result

    async def _run(self, job: _Job) -> JobResult:
        try:
            ended = await self._prepare(job)
            if ended is None:
                ended = await self._start(job)
        except EngineUnreachableError as exc:
            self._engine_lost(exc)
            self._close_egress(job)
            result = self._result(job, JobState.INTERRUPTED, str(exc))
            if job.container is not None:  # created, maybe started: the next recovery removes it
                self._leave_behind(job)
            return result
        except (JobRuntimeError, InputError) as exc:
            await asyncio.to_thread(self._remove, job)
            return self._result(job, JobState.FAILED, str(exc))
        if ended is not None:
            return ended
        return await self._follow(job)

    async def _prepare(self, job: _Job) -> JobResult | None:
        """Pull the image, fetch the inputs, create the container; a result if the job ended before that."""
        lease = job.lease
        plan = plan_for(lease)
        if (stopped := self._stopped_before_start(job)) is not None:  # its GPUs were taken back already
            return stopped
        if (stopped := await self._wait_for_downloads(job)) is not None:
            return stopped
        self._set_state(job, JobState.PULLING)
        runner = await asyncio.to_thread(self._connected_runner)
        present = await asyncio.to_thread(runner.has_image, plan.image)
        await asyncio.to_thread(runner.pull, plan.image, self._progress_reporter(job))
        if self._images is not None:
            await asyncio.to_thread(self._images.used, plan.image, pulled=not present)
            await asyncio.to_thread(self.enforce_image_budget)
        if (stopped := self._stopped_before_start(job)) is not None:
            return stopped
        inputs = {item.path: await self._inputs.fetch(item) for item in lease.spec.inputs}
        self._set_state(job, JobState.STARTING)
        if lease.spec.egress:
            network = await asyncio.to_thread(runner.create_egress_network, lease.job_id)
            job.egress = await asyncio.to_thread(self._open_egress, lease.job_id, lease.spec.egress, network, 0)
            plan = plan_for(lease, job.egress)
        job.container = await asyncio.to_thread(runner.create, plan, inputs or None)
        self._save(job)
        return None

    async def _wait_for_downloads(self, job: _Job) -> JobResult | None:
        """Hold the pull and the input downloads until the gate allows them (the owner's game, a metered
        connection); a result if the job is stopped meanwhile."""
        if self._download_gate is None:
            return None
        waiting_for: str | None = None
        while not (gate := self._download_gate(job.lease)).allowed:
            if gate.reason != waiting_for:
                waiting_for = gate.reason
                self._set_state(job, JobState.PULLING, gate.reason)
            if (stopped := self._stopped_before_start(job)) is not None:
                return stopped
            await asyncio.sleep(self._poll_s)
        return None

    async def _start(self, job: _Job) -> JobResult | None:
        """Start the created container once its GPUs are not held back; a result if it was stopped first."""
        container = job.container
        assert container is not None  # noqa: S101 - created by _prepare
        # Steering may come from any thread, so this polls rather than awaiting an asyncio.Event.
        while job.desired is Action.PAUSE and job.stop_request is None:  # noqa: ASYNC110
            await asyncio.sleep(self._poll_s / 4)
        if (stopped := self._stopped_before_start(job)) is not None:
            await asyncio.to_thread(self._remove, job)
            return stopped
        await asyncio.to_thread(container.start)
        self._set_state(job, JobState.RUNNING)
        self._submit(job)  # a pause that came while it was starting
        return None

    def _stopped_before_start(self, job: _Job) -> JobResult | None:
        with job.lock:
            stop = job.stop_request
        return None if stop is None else self._result(job, *stop)

    async def _follow(self, job: _Job) -> JobResult:
        """Wait for a started (or adopted) job to end, then collect its outputs and remove its container."""
        container = job.container
        assert container is not None  # noqa: S101 - set before any caller gets here
        limit = job.lease.spec.max_runtime_s
        waiter = asyncio.ensure_future(asyncio.to_thread(container.wait, limit, grace_s=self._grace_s))
        try:
            while not (await asyncio.wait({waiter}, timeout=self._poll_s))[0]:
                if self._clock() >= job.lease.expires_at:
                    self._request_stop(job, JobState.INTERRUPTED, REASON_LEASE_EXPIRED)
            ended = waiter.result()
            return await asyncio.to_thread(self._conclude, job, ended.exit_code, ended.reason, ended.oom_killed)
        except EngineUnreachableError as exc:
            self._engine_lost(exc)
            result = self._result(job, JobState.INTERRUPTED, str(exc), logs=container.logs.text())
            self._leave_behind(job)  # its container may run on: the next recovery stops it
            return result
        except JobRuntimeError as exc:
            with contextlib.suppress(JobRuntimeError):
                await asyncio.to_thread(self._remove, job)
            return self._result(job, JobState.FAILED, str(exc), logs=container.logs.text())

    def _conclude(self, job: _Job, exit_code: int, stopped_for: str | None, oom: bool) -> JobResult:
        """Judge how the job ended, copy its outputs out, remove its container and scratch (worker thread)."""
        with job.lock:
            stop = job.stop_request
        if stopped_for in (REASON_RUN_TIME, REASON_OUTPUT_CAP):
            state, reason = JobState.FAILED, stopped_for
        elif stop is not None and stopped_for == stop[1]:
            state, reason = stop
        elif exit_code == 0:
            state, reason = JobState.FINISHED, None
        else:
            state, reason = JobState.FAILED, f"exited with code {exit_code}" + (" (out of memory)" if oom else "")
        outputs: tuple[OutputFile, ...] = ()
        dest = self._outputs_root / job.lease.job_id
        try:
            outputs = self._collect(job, dest)
        except OutputCapExceededError as exc:
            if state is JobState.FINISHED:
                state, reason = JobState.FAILED, str(exc)
        finally:
            self._remove(job)
        assert job.container is not None  # noqa: S101 - conclude follows a container
        return self._result(
            job, state, reason, exit_code=exit_code, outputs=outputs, dest=dest, logs=job.container.logs.text()
        )

    def _collect(self, job: _Job, dest: Path) -> tuple[OutputFile, ...]:
        assert job.container is not None  # noqa: S101
        shutil.rmtree(dest, ignore_errors=True)
        try:
            return tuple(job.container.collect_outputs(dest))
        except OutputCapExceededError:
            raise
        except JobRuntimeError as exc:
            log.warning("Could not collect the outputs of job %s: %s", job.lease.job_id, exc)
            return ()

    def _remove(self, job: _Job) -> None:
        """Remove the job's container and scratch, then its egress proxy and network (worker thread)."""
        if job.container is not None:
            try:
                job.container.remove()
            except JobRuntimeError as exc:
                log.warning("Could not remove the container of job %s: %s", job.lease.job_id, exc)
        self._close_egress(job)
        if job.lease.spec.egress:
            try:
                self._connected_runner().remove_egress_network(job.lease.job_id)
            except JobRuntimeError as exc:
                log.warning("Could not remove the egress network of job %s: %s", job.lease.job_id, exc)

    @staticmethod
    def _close_egress(job: _Job) -> None:
        egress, job.egress = job.egress, None
        if egress is not None:
            egress.close()

    def enforce_image_budget(self) -> list[str]:
        """Evict least recently used job images beyond the cache's budget, never one an active job needs
        (blocking: run it in a thread). Returns the references removed; engine trouble only logs."""
        if self._images is None:
            return []
        in_use = {job.lease.spec.image_reference.canonical for job in list(self._jobs.values())}
        try:
            return self._images.enforce(self._connected_runner(), in_use)
        except JobRuntimeError as exc:
            log.info("The image cache is enforced later: %s", exc)
            return []

    # -- recovery -----------------------------------------------------------------------------------

    async def recover(self, valid: Callable[[JobRecord], bool]) -> Recovery:
        """Reconcile the containers this agent labelled with its records (at start, and when the engine is back).

        A recorded job whose container still runs and whose lease ``valid`` accepts is re-adopted; any other
        recorded job is stopped, its outputs collected where its scratch survived, its container removed, and
        reported interrupted. Labelled containers and volumes without a record are removed.
        """
        self._loop = asyncio.get_running_loop()
        try:
            runner = await asyncio.to_thread(self._connected_runner)
            found = await asyncio.to_thread(runner.find_labelled)
        except EngineUnreachableError as exc:
            self._engine_lost(exc)
            self._needs_recovery = True  # whenever the engine answers again, even before the watch saw it away
            return Recovery(engine_problem=self.engine_problem)
        self._needs_recovery = False  # a job given up from now on asks again
        adopted: dict[str, asyncio.Task[JobResult]] = {}
        interrupted: list[JobResult] = []
        for record in self._records.load().values():
            if record.job_id in self._jobs:
                continue
            live = next(
                (
                    item
                    for item in found
                    if item.kind == "container" and item.role == ROLE_JOB and item.id == record.container_id
                ),
                None,
            )
            alive = live is not None and live.state in ("running", "paused")
            given_up = record.state.ended  # its result is out already: never run it on
            if alive and not given_up and valid(record):
                task = await self._adopt(runner, record)
                if task is not None:
                    self._forget_left_behind(record.job_id)
                    adopted[record.job_id] = task
                    continue
            reason = (
                REASON_CONTAINER_GONE
                if live is None
                else REASON_GIVEN_UP
                if given_up
                else REASON_LEASE_GONE
                if alive
                else REASON_ENDED_UNWATCHED
            )
            result = await asyncio.to_thread(
                self._salvage, runner, record, live is not None, reason, announce=not given_up
            )
            self._records.remove(record.job_id)
            self._forget_left_behind(record.job_id)
            interrupted.append(result)
        recorded = set(self._records.load())
        self._left_behind = {job_id: r for job_id, r in self._left_behind.items() if job_id in recorded}
        known = set(self._jobs)
        orphans = {item.job_id for item in found} - known
        removed = 0
        try:
            for job_id in sorted(orphans):
                removed += await asyncio.to_thread(runner.remove_leftovers, job_id)
        except EngineUnreachableError as exc:
            self._engine_lost(exc)
            self._needs_recovery = True
        return Recovery(adopted, tuple(interrupted), removed, self.engine_problem)

    async def _adopt(self, runner: ContainerRunner, record: JobRecord) -> asyncio.Task[JobResult] | None:
        assert record.container_id is not None  # noqa: S101 - only recorded containers are alive
        egress: JobEgress | None = None
        try:
            if record.lease.spec.egress:
                egress = await asyncio.to_thread(self._restore_egress, runner, record)
            container = await asyncio.to_thread(
                functools.partial(runner.adopt, paused_s=record.paused_s, paused_since=record.paused_since),
                plan_for(record.lease, egress),
                record.container_id,
            )
        except JobRuntimeError as exc:
            log.warning("Could not re-adopt job %s: %s", record.job_id, exc)
            if egress is not None:
                await asyncio.to_thread(egress.close)
            return None
        job = self._register(record.lease, container, egress)
        job.desired = Action.PAUSE if container.paused else Action.WORK  # as it is, until the policy says
        self._set_state(job, JobState.PAUSED if container.paused else JobState.RUNNING, "re-adopted after a restart")
        self._steer(job)
        log.info("Re-adopted job %s after a restart", record.job_id)
        return asyncio.create_task(self._adopted(job), name=f"job-{record.job_id}")

    async def _adopted(self, job: _Job) -> JobResult:
        detached = False
        try:
            result = await self._follow(job)
        except asyncio.CancelledError:
            detached = True
            raise
        finally:
            self._unregister(job, keep_record=detached or job.left_behind)
        await asyncio.to_thread(self.enforce_image_budget)
        return result

    def _restore_egress(self, runner: ContainerRunner, record: JobRecord) -> JobEgress:
        """Start a re-adopted job's proxy again where its environment expects it (worker thread)."""
        network = runner.egress_network(record.job_id)
        if network is None or record.egress_port is None:
            raise JobRuntimeError(REASON_EGRESS_GONE)
        return self._open_egress(record.job_id, record.lease.spec.egress, network, record.egress_port)

    def _salvage(
        self, runner: ContainerRunner, record: JobRecord, has_container: bool, reason: str, *, announce: bool = True
    ) -> JobResult:
        """End a recorded job that is not re-adopted: stop it, take what outputs survived, remove it (worker thread).

        ``announce``: tell the listeners it ended (not for a job given up before, which was reported then).
        """
        exit_code: int | None = None
        outputs: tuple[OutputFile, ...] = ()
        dest: Path | None = None
        logs = ""
        run_time_s = 0.0
        try:
            if has_container and record.container_id is not None:
                container = runner.adopt(plan_for(record.lease), record.container_id)
                container.stop(self._grace_s, reason)
                ended = container.wait()
                exit_code, run_time_s = ended.exit_code, ended.run_time_s
                logs = container.logs.text()
                dest = self._outputs_root / record.job_id
                shutil.rmtree(dest, ignore_errors=True)
                outputs = tuple(container.collect_outputs(dest))
        except JobRuntimeError as exc:
            log.info("Job %s: nothing more to collect (%s)", record.job_id, exc)
        finally:
            try:
                runner.remove_leftovers(record.job_id)
            except JobRuntimeError as exc:
                log.warning("Could not remove what job %s left: %s", record.job_id, exc)
        if announce:
            self._emit("job_state", {"job_id": record.job_id, "state": JobState.INTERRUPTED.value, "reason": reason})
        else:
            log.info("Job %s: its container, left when the Docker engine went away, is removed", record.job_id)
        return JobResult(
            record.job_id, JobState.INTERRUPTED, exit_code, reason, outputs, dest, logs[-_LOGS_TAIL_CHARS:], run_time_s
        )

    # -- the engine ---------------------------------------------------------------------------------

    def _connected_runner(self) -> ContainerRunner:
        with self._runner_lock:
            if self._runner is None:
                self._runner = self._runner_factory()
                if self.engine_problem is not None:
                    log.info("Docker engine reachable again")
                    self.engine_problem = None
                    self._emit("engine", {"problem": None})
            return self._runner

    def _engine_lost(self, exc: EngineUnreachableError) -> None:
        with self._runner_lock:
            self._runner = None
            problem = str(exc) if str(exc).startswith(ENGINE_PROBLEM) else f"{ENGINE_PROBLEM}: {exc}"
            changed = problem != self.engine_problem
            self.engine_problem = problem
        if changed:
            log.warning("%s", problem)
            self._emit("engine", {"problem": problem})

    def check_engine(self) -> bool:
        """Whether the engine answers now (blocking; run it in a thread); updates :attr:`engine_problem`."""
        try:
            runner = self._connected_runner()
            with runner.engine_calls("reach the Docker engine"):
                runner.client.ping()
        except EngineUnreachableError as exc:
            self._engine_lost(exc)
            return False
        except JobRuntimeError as exc:
            self._engine_lost(EngineUnreachableError(str(exc)))
            return False
        return True

    async def watch_engine(self, valid: Callable[[JobRecord], bool], *, interval_s: float = 30.0) -> None:
        """Check the engine for ever; recover when it comes back after being away, or at once when a job was
        given up with its container left (an engine call failed between two checks). Never raises but
        cancellation."""
        self._loop = asyncio.get_running_loop()
        wanted = self._recovery_wanted = asyncio.Event()
        delay = self._retry_initial_s
        was_down = False
        while True:
            wanted.clear()
            try:
                up = await asyncio.to_thread(self.check_engine)
                if up and (was_down or self._needs_recovery):
                    await self.recover(valid)
            except Exception:  # a bug must not end the watch: log it and keep watching
                log.exception("Checking the Docker engine failed")
                up = False
            was_down = not up
            if up:
                delay = self._retry_initial_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wanted.wait(), interval_s)
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)

    # -- bookkeeping --------------------------------------------------------------------------------

    def _register(self, lease: Lease, container: JobContainer | None = None, egress: JobEgress | None = None) -> _Job:
        job = _Job(lease)
        job.container = container
        job.egress = egress
        self._jobs[lease.job_id] = job
        self._save(job)
        self._steer(job)
        self._busy_changed()
        return job

    def _leave_behind(self, job: _Job) -> None:
        """Keep the record of a job given up while its container may run on (the engine stopped answering):
        marked ended, so that the next recovery stops and removes the container rather than re-adopting a job
        whose end was reported; until then its processes are ours and its GPUs busy (on the event loop)."""
        job.left_behind = True
        record = self._save(job)  # an ended job is recorded as interrupted
        self._left_behind = {**self._left_behind, record.job_id: record}
        self._needs_recovery = True
        if self._recovery_wanted is not None:
            self._recovery_wanted.set()

    def _forget_left_behind(self, job_id: str) -> None:
        if job_id in self._left_behind:
            self._left_behind = {key: record for key, record in self._left_behind.items() if key != job_id}

    def _unregister(self, job: _Job, *, keep_record: bool) -> None:
        self._jobs.pop(job.lease.job_id, None)
        job.executor.shutdown(wait=False)
        self._close_egress(job)  # detached: the agent is going; the next recovery starts the proxy again
        if not keep_record:
            self._records.remove(job.lease.job_id)
        self._busy_changed()

    def _save(self, job: _Job) -> JobRecord:
        container_id = job.container.id if job.container is not None else None
        state = job.state if not job.state.ended else JobState.INTERRUPTED
        egress_port = job.egress.port if job.egress is not None else None
        paused_s, paused_since = job.container.pauses() if job.container is not None else (0.0, None)
        record = JobRecord(job.lease, container_id, state, egress_port, paused_s, paused_since)
        self._records.put(record)
        return record

    def _busy_changed(self) -> None:
        busy, cpu_only = self.busy_gpu_indices(), self.cpu_only_busy()
        for listener in self._busy_listeners:
            self._call_on_loop(listener, busy, cpu_only)

    def _set_state(self, job: _Job, state: JobState, reason: str | None = None) -> None:
        job.state, job.reason = state, reason
        log.info("Job %s: %s%s", job.lease.job_id, state.value, f" ({reason})" if reason else "")
        if not state.ended:
            self._save(job)
        self._emit("job_state", {"job_id": job.lease.job_id, "state": state.value, "reason": reason})

    def _result(
        self,
        job: _Job,
        state: JobState,
        reason: str | None,
        *,
        exit_code: int | None = None,
        outputs: tuple[OutputFile, ...] = (),
        dest: Path | None = None,
        logs: str = "",
    ) -> JobResult:
        self._set_state(job, state, reason)
        run_time_s = job.container.run_time_s if job.container is not None else 0.0
        paused_s = job.container.pauses()[0] if job.container is not None else 0.0
        return JobResult(
            job.lease.job_id,
            state,
            exit_code,
            reason,
            outputs,
            dest if outputs else None,
            logs[-_LOGS_TAIL_CHARS:],
            run_time_s,
            paused_s,
        )

    def _progress_reporter(self, job: _Job) -> Callable[[PullProgress], None]:
        layers: dict[str, tuple[int, int]] = {}
        last = 0.0

        def report(progress: PullProgress) -> None:
            nonlocal last
            if progress.layer is None or progress.total_bytes is None:
                return
            layers[progress.layer] = (progress.current_bytes or 0, progress.total_bytes)
            now = time.monotonic()
            if now - last < _PROGRESS_INTERVAL_S:
                return
            last = now
            current = sum(done for done, _ in layers.values())
            total = sum(size for _, size in layers.values())
            self._emit("pull_progress", {"job_id": job.lease.job_id, "current": current, "total": total})

        return report

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        self._call_on_loop(self._on_event, kind, data)

    def _call_on_loop(self, function: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed():
            function(*args)
        else:
            loop.call_soon_threadsafe(function, *args)


def attach_to_engine(runtime: JobRuntime, engine: WorkEngine) -> None:
    """Let the work engine's decisions steer the runtime's jobs, and tell the engine which GPUs are busy."""

    def decisions_changed() -> None:
        snapshot = engine.snapshot()
        runtime.apply(snapshot.decisions, snapshot.machine)

    def busy_changed(gpu_indices: frozenset[int], cpu_only: bool) -> None:
        engine.set_busy(gpu_indices, cpu_only=cpu_only)

    engine.on_change(decisions_changed)
    runtime.on_busy_change(busy_changed)
    busy_changed(runtime.busy_gpu_indices(), runtime.cpu_only_busy())  # first: where jobs run shapes the decisions
    decisions_changed()
