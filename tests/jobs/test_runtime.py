"""The job runtime on the real engine: leased jobs run to results, steered by decisions, recovered after a crash."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from sparecycles.agent.jobs.containers import REASON_RUN_TIME, ContainerRunner, connect
from sparecycles.agent.jobs.downloads import DownloadGate
from sparecycles.agent.jobs.image_cache import ImageCache
from sparecycles.agent.jobs.inputs import InputCache
from sparecycles.agent.jobs.runtime import (
    ENGINE_PROBLEM,
    REASON_LEASE_EXPIRED,
    REASON_LEASE_GONE,
    JobRecord,
    JobRecordStore,
    JobRuntime,
    JobState,
    Lease,
    attach_to_engine,
    governing_decision,
    plan_for,
)
from sparecycles.agent.jobs.sandbox import MIB
from sparecycles.agent.policy.model import Action, Cause, GpuDecision, MachineDecision
from sparecycles.protocol.jobs import JobInput, JobSpec

from .conftest import remove_local_image

BUSY_LOOP = ["sh", "-c", "while :; do :; done"]
DIGEST = "sha256:" + "a" * 64
UUID0 = "GPU-00000000-0000-0000-0000-000000000000"
UUID1 = "GPU-11111111-1111-1111-1111-111111111111"
Events = list[tuple[str, dict[str, Any]]]


def spec(image: str, command: list[str], **fields: Any) -> JobSpec:
    values: dict[str, Any] = {"image": image, "command": command, "cpus": 0.5, "memory_bytes": 64 * MIB}
    return JobSpec(**(values | fields))


def inline(path: str, data: bytes) -> JobInput:
    return JobInput(path=path, sha256=hashlib.sha256(data).hexdigest(), content_base64=base64.b64encode(data).decode())


def lease(job_id: str, job_spec: JobSpec, *, expires_in_s: float = 600, **fields: Any) -> Lease:
    return Lease(job_id=job_id, spec=job_spec, expires_at=datetime.now(UTC) + timedelta(seconds=expires_in_s), **fields)


def decision(index: int, action: Action, reason: str = "") -> GpuDecision:
    return GpuDecision(index, UUID0 if index == 0 else UUID1, action, Cause.IDLE, reason or action.name.lower())


class Harness:
    """A runtime on the test's engine; ``runtime_options`` go to every runtime it makes (a restart's too)."""

    def __init__(self, tmp_path: Path, runner_factory: Callable[[], ContainerRunner], **runtime_options: Any) -> None:
        self.events: Events = []
        self.cache = InputCache(tmp_path / "inputs")
        self.records = JobRecordStore(tmp_path / "state" / "jobs.json")
        self.tmp_path = tmp_path
        self.runner_factory = runner_factory
        self.runtime_options = runtime_options
        self.runtime = self.new_runtime()

    def new_runtime(self) -> JobRuntime:
        return JobRuntime(
            self.runner_factory,
            self.cache,
            self.records,
            outputs_root=self.tmp_path / "outputs",
            on_event=lambda kind, data: self.events.append((kind, data)),
            stop_grace_s=2,
            poll_interval_s=0.1,
            retry_initial_s=0.05,
            retry_max_s=0.2,
            **self.runtime_options,
        )

    def states(self, job_id: str) -> list[str]:
        return [data["state"] for kind, data in self.events if kind == "job_state" and data["job_id"] == job_id]


@pytest.fixture
def harness(tmp_path: Path, runner: ContainerRunner) -> Harness:
    return Harness(tmp_path, lambda: runner)


async def until(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


def job_state(runtime: JobRuntime, job_id: str) -> JobState | None:
    return next((job.state for job in runtime.jobs() if job.job_id == job_id), None)


def container_state(runner: ContainerRunner, records: JobRecordStore, job_id: str) -> dict[str, Any]:
    container_id = records.load()[job_id].container_id
    return dict(runner.client.api.inspect_container(container_id)["State"])


def run(coroutine: Awaitable[None]) -> None:
    async def main() -> None:
        await coroutine

    asyncio.run(main())


# -- pure pieces ---------------------------------------------------------------------------------


def test_a_gpu_job_follows_its_own_gpus_and_a_cpu_job_the_machine() -> None:
    decisions = {0: decision(0, Action.WORK), 1: decision(1, Action.STOP, "too hot")}
    away = MachineDecision(Action.WORK, Cause.IDLE, "working: no input for 20 min")
    back = MachineDecision(Action.PAUSE, Cause.USER_ACTIVE, "paused: you are using the computer")
    assert governing_decision((0,), decisions, away) == (Action.WORK, "work")
    assert governing_decision((0, 1), decisions, away) == (Action.STOP, "too hot")
    assert governing_decision((), decisions, away) == (Action.WORK, away.reason)  # one GPU's heat is not its business
    assert governing_decision((), decisions, back) == (Action.PAUSE, back.reason)
    assert governing_decision((), {}, back) == (Action.PAUSE, back.reason)  # a machine without GPUs governs too
    assert governing_decision((), {}, None) == (Action.WORK, "")  # before the policy's first decision
    assert governing_decision((2,), decisions, back) == (Action.WORK, "")  # a GPU the policy no longer sees


def test_records_round_trip_and_a_corrupt_file_is_set_aside(tmp_path: Path) -> None:
    store = JobRecordStore(tmp_path / "jobs.json")
    job_spec = spec(f"registry.example.com/team/app@{DIGEST}", ["true"], inputs=[inline("a.txt", b"a")])
    record = JobRecord(lease("j1", job_spec, gpu_indices=(1,), gpu_uuids=(UUID1,)), "c0ffee", JobState.RUNNING)
    store.put(record)
    assert JobRecordStore(tmp_path / "jobs.json").load() == {"j1": record}
    assert (tmp_path / "jobs.json").stat().st_mode & 0o777 == 0o600
    store.remove("j1")
    assert store.load() == {}
    (tmp_path / "jobs.json").write_text("{not json")
    assert store.load() == {}
    assert (tmp_path / "jobs.corrupt").exists()


def test_a_lease_names_each_gpu_twice_and_carries_its_time_zone() -> None:
    job_spec = spec(f"registry.example.com/team/app@{DIGEST}", ["true"])
    with pytest.raises(ValueError, match="index and by UUID"):
        lease("j", job_spec, gpu_indices=(0,))
    with pytest.raises(ValueError, match="time zone"):
        Lease(job_id="j", spec=job_spec, expires_at=datetime(2030, 1, 1))


# -- on the engine -------------------------------------------------------------------------------


@pytest.mark.docker
def test_cpu_job_end_to_end_with_inputs_outputs_progress_and_a_cached_second_input(
    harness: Harness, docker_client: Any, busybox_image: str
) -> None:
    remove_local_image(docker_client, busybox_image)  # so that the pull and its progress are real
    data = b"hello from the studio\n"
    script = (
        "set -e; sha256sum /job/input/data/note.txt | cut -d' ' -f1 > /job/output/input.sha256; "
        "tr a-z A-Z < /job/input/data/note.txt > /job/output/NOTE.txt; echo done"
    )
    job_spec = spec(busybox_image, ["sh", "-c", script], inputs=[inline("data/note.txt", data)])

    async def scenario() -> None:
        first = await harness.runtime.run(lease("first", job_spec))
        assert (first.state, first.exit_code, first.reason) == (JobState.FINISHED, 0, None), first.logs_tail
        assert first.logs_tail == "done\n"
        assert first.outputs_dir is not None
        assert [output.path for output in first.outputs] == ["NOTE.txt", "input.sha256"]
        for output in first.outputs:
            content = (first.outputs_dir / output.path).read_bytes()
            assert (output.sha256, output.size_bytes) == (hashlib.sha256(content).hexdigest(), len(content))
        assert (first.outputs_dir / "NOTE.txt").read_bytes() == data.upper()
        assert (first.outputs_dir / "input.sha256").read_text().strip() == hashlib.sha256(data).hexdigest()
        assert harness.cache.hits == 0
        second = await harness.runtime.run(lease("second", job_spec))
        assert second.state is JobState.FINISHED
        assert harness.cache.hits == 1  # the same input, by its SHA-256, came from the cache

    run(scenario())
    assert harness.states("first") == ["pulling", "starting", "running", "finished"]
    progress = [data for kind, data in harness.events if kind == "pull_progress"]
    assert progress
    assert progress[0]["job_id"] == "first"
    assert all(0 <= item["current"] <= item["total"] and item["total"] > 0 for item in progress)
    assert harness.records.load() == {}
    assert harness.runtime.jobs() == []


@pytest.mark.docker
def test_decisions_pause_unpause_and_preempt_a_cpu_job(
    harness: Harness, runner: ContainerRunner, busybox_image: str
) -> None:
    runtime = harness.runtime

    async def scenario() -> None:
        task = asyncio.create_task(runtime.run(lease("busy", spec(busybox_image, BUSY_LOOP))))
        await until(lambda: job_state(runtime, "busy") is JobState.RUNNING)
        gpus = {0: decision(0, Action.WORK), 1: decision(1, Action.WORK)}
        runtime.apply(gpus, MachineDecision(Action.PAUSE, Cause.USER_ACTIVE, "the owner is back"))
        await until(lambda: job_state(runtime, "busy") is JobState.PAUSED)
        assert container_state(runner, harness.records, "busy")["Paused"] is True
        runtime.apply(gpus, MachineDecision(Action.WORK, Cause.IDLE, "away"))
        await until(lambda: job_state(runtime, "busy") is JobState.RUNNING)
        assert container_state(runner, harness.records, "busy")["Paused"] is False
        runtime.apply(gpus, MachineDecision(Action.STOP, Cause.GAME, "a game started"))
        result = await asyncio.wait_for(task, 20)
        assert (result.state, result.reason) == (JobState.PREEMPTED, "preempted: a game started")
        assert result.exit_code is not None
        assert result.exit_code != 0

    run(scenario())
    assert harness.states("busy") == ["pulling", "starting", "running", "paused", "running", "preempted"]


@pytest.mark.docker
def test_a_job_on_a_held_back_gpu_waits_to_start(harness: Harness, busybox_image: str) -> None:
    runtime = harness.runtime
    runtime.apply({0: decision(0, Action.PAUSE), 1: decision(1, Action.WORK)})
    job_lease = lease("gpu", spec(busybox_image, ["true"]), gpu_indices=(0,), gpu_uuids=(UUID0,))

    async def scenario() -> None:
        task = asyncio.create_task(runtime.run(job_lease))
        await until(lambda: job_state(runtime, "gpu") is JobState.STARTING)
        assert runtime.busy_gpu_indices() == {0}
        await asyncio.sleep(0.3)
        assert job_state(runtime, "gpu") is JobState.STARTING  # created, not started
        runtime.apply({0: decision(0, Action.STOP, "the owner wants the GPU"), 1: decision(1, Action.WORK)})
        result = await asyncio.wait_for(task, 20)
        assert (result.state, result.reason) == (JobState.PREEMPTED, "preempted: the owner wants the GPU")

    run(scenario())
    assert runtime.busy_gpu_indices() == frozenset()


@pytest.mark.docker
def test_run_time_limit_and_lease_expiry_stop_the_job(harness: Harness, busybox_image: str) -> None:
    runtime = harness.runtime

    async def scenario() -> None:
        slow, expiring = spec(busybox_image, ["sleep", "30"], max_runtime_s=1), spec(busybox_image, ["sleep", "30"])
        results = await asyncio.gather(
            runtime.run(lease("slow", slow)), runtime.run(lease("expiring", expiring, expires_in_s=1.5))
        )
        assert [(result.state, result.reason) for result in results] == [
            (JobState.FAILED, REASON_RUN_TIME),
            (JobState.INTERRUPTED, REASON_LEASE_EXPIRED),
        ]

    run(scenario())


@pytest.mark.docker
def test_after_a_crash_a_job_with_a_valid_lease_is_adopted_and_completes(
    harness: Harness, runner: ContainerRunner, busybox_image: str
) -> None:
    script = "echo started; sleep 2; echo finished > /job/output/result.txt"

    async def scenario() -> None:
        crashed = asyncio.create_task(harness.runtime.run(lease("long", spec(busybox_image, ["sh", "-c", script]))))
        await until(lambda: job_state(harness.runtime, "long") is JobState.RUNNING)
        crashed.cancel()  # the agent goes away; its container does not
        with pytest.raises(asyncio.CancelledError):
            await crashed
        assert harness.records.load()["long"].state is JobState.RUNNING

        restarted = harness.new_runtime()
        recovery = await restarted.recover(lambda record: record.lease.expires_at > datetime.now(UTC))
        assert list(recovery.adopted) == ["long"]
        assert (recovery.interrupted, recovery.removed_orphans) == ((), 0)
        assert job_state(restarted, "long") is JobState.RUNNING
        result = await asyncio.wait_for(recovery.adopted["long"], 20)
        assert (result.state, result.exit_code) == (JobState.FINISHED, 0)
        assert [output.path for output in result.outputs] == ["result.txt"]
        assert result.outputs_dir is not None
        assert (result.outputs_dir / "result.txt").read_text() == "finished\n"
        assert "started" in result.logs_tail

    run(scenario())
    assert harness.records.load() == {}
    assert runner.find_labelled() == []


@pytest.mark.docker
def test_after_a_crash_a_job_whose_lease_expired_is_interrupted_and_removed(
    harness: Harness, runner: ContainerRunner, busybox_image: str
) -> None:
    script = "echo partial > /job/output/partial.txt; sleep 60"

    async def scenario() -> None:
        crashed = asyncio.create_task(harness.runtime.run(lease("stale", spec(busybox_image, ["sh", "-c", script]))))
        await until(lambda: job_state(harness.runtime, "stale") is JobState.RUNNING)
        await asyncio.sleep(0.3)
        crashed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await crashed
        runner.create(plan_for(lease("orphan", spec(busybox_image, ["true"]))))  # labelled, never recorded

        restarted = harness.new_runtime()
        recovery = await restarted.recover(lambda record: False)
        assert recovery.adopted == {}
        assert recovery.removed_orphans >= 1
        [result] = recovery.interrupted
        assert (result.job_id, result.state, result.reason) == ("stale", JobState.INTERRUPTED, REASON_LEASE_GONE)
        assert [output.path for output in result.outputs] == ["partial.txt"]

    run(scenario())
    assert harness.states("stale")[-1] == "interrupted"
    assert harness.records.load() == {}
    assert runner.find_labelled() == []


def test_an_unreachable_engine_is_a_state_not_a_crash(tmp_path: Path) -> None:
    harness = Harness(tmp_path, _dead_engine)
    runtime = harness.runtime
    job_spec = spec(f"127.0.0.1:5000/team/app@{DIGEST}", ["true"])

    async def scenario() -> None:
        result = await runtime.run(lease("nowhere", job_spec))
        assert result.state is JobState.INTERRUPTED
        assert result.reason is not None
        assert result.reason.startswith(ENGINE_PROBLEM)
        recovery = await runtime.recover(lambda record: True)
        assert recovery.engine_problem is not None
        assert recovery.engine_problem.startswith(ENGINE_PROBLEM)
        with pytest.raises(TimeoutError):  # it keeps trying, and never raises
            await asyncio.wait_for(runtime.watch_engine(lambda record: True), 0.5)

    run(scenario())
    assert runtime.engine_problem is not None
    assert runtime.engine_problem.startswith(ENGINE_PROBLEM)
    assert ("engine", {"problem": runtime.engine_problem}) in harness.events
    assert runtime.jobs() == []
    assert harness.records.load() == {}


def _dead_engine() -> ContainerRunner:
    connect("unix:///tmp/sparecycles-test-no-engine.sock", timeout_s=1)
    raise AssertionError("a dead socket answered")


class FakeEngine:
    def __init__(self) -> None:
        self.listeners: list[Callable[[], None]] = []
        self.decisions: dict[int, GpuDecision] = {}
        self.machine: MachineDecision | None = None
        self.busy: list[tuple[frozenset[int], bool]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        self.listeners.append(listener)

    def snapshot(self) -> Any:
        return SimpleNamespace(decisions=dict(self.decisions), machine=self.machine)

    def set_busy(self, indices: Iterable[int], *, cpu_only: bool = False) -> None:
        self.busy.append((frozenset(indices), cpu_only))


def test_the_engine_steers_the_runtime_and_learns_its_busy_gpus(tmp_path: Path) -> None:
    harness = Harness(tmp_path, _dead_engine)
    engine = FakeEngine()
    attach_to_engine(harness.runtime, cast(Any, engine))
    assert engine.busy == [(frozenset(), False)]
    engine.decisions = {0: decision(0, Action.STOP, "a game started"), 1: decision(1, Action.WORK)}
    for listener in engine.listeners:
        listener()
    stopped = lease(
        "on-gpu0", spec(f"127.0.0.1:5000/team/app@{DIGEST}", ["true"]), gpu_indices=(0,), gpu_uuids=(UUID0,)
    )
    result = asyncio.run(harness.runtime.run(stopped))
    assert (result.state, result.reason) == (JobState.PREEMPTED, "preempted: a game started")
    assert engine.busy == [(frozenset(), False), (frozenset({0}), False), (frozenset(), False)]
    assert harness.runtime.engine_problem is None  # the engine was never needed
    engine.machine = MachineDecision(Action.STOP, Cause.GAME, "stopped: game running — eldenring.exe")
    for listener in engine.listeners:
        listener()
    cpu_job = lease("cpu", spec(f"127.0.0.1:5000/team/app@{DIGEST}", ["true"]))
    result = asyncio.run(harness.runtime.run(cpu_job))
    assert (result.state, result.reason) == (JobState.PREEMPTED, "preempted: stopped: game running — eldenring.exe")
    assert engine.busy[-2:] == [(frozenset(), True), (frozenset(), False)]


def test_downloads_wait_while_the_gate_says_so_and_nothing_is_pulled_meanwhile(
    tmp_path: Path, runner: ContainerRunner, docker_client: Any, busybox_image: str, local_registry: Any
) -> None:
    remove_local_image(docker_client, busybox_image)
    allowed = threading.Event()
    events: Events = []
    runtime = JobRuntime(
        lambda: runner,
        InputCache(tmp_path / "inputs"),
        JobRecordStore(tmp_path / "jobs.json"),
        outputs_root=tmp_path / "outputs",
        on_event=lambda kind, data: events.append((kind, data)),
        poll_interval_s=0.05,
        download_gate=lambda _lease: (
            DownloadGate(True, "downloads allowed")
            if allowed.is_set()
            else DownloadGate(False, "downloads wait: the connection is metered")
        ),
    )
    manifests_before = local_registry.log.count("/manifests/")

    async def scenario() -> None:
        task = asyncio.create_task(runtime.run(lease("gated", spec(busybox_image, ["true"]))))
        await asyncio.sleep(1.0)
        assert not task.done()
        assert local_registry.log.count("/manifests/") == manifests_before  # nothing pulled while waiting
        allowed.set()
        result = await task
        assert result.state is JobState.FINISHED

    run(scenario())
    reasons = [data.get("reason") for kind, data in events if kind == "job_state" and data["state"] == "pulling"]
    assert reasons[0] == "downloads wait: the connection is metered"


@pytest.mark.docker
def test_images_pulled_for_jobs_are_evicted_beyond_the_budget_once_no_job_needs_them(
    tmp_path: Path, runner: ContainerRunner, docker_client: Any, busybox_image: str
) -> None:
    remove_local_image(docker_client, busybox_image)  # pulled for the job, so the cache may evict it
    images = ImageCache(tmp_path / "images.json", lambda: 0)  # no room at all: keep only what runs
    harness = Harness(tmp_path, lambda: runner, image_cache=images)

    async def scenario() -> None:
        task = asyncio.create_task(harness.runtime.run(lease("cached", spec(busybox_image, ["sleep", "1"]))))
        await until(lambda: job_state(harness.runtime, "cached") is JobState.RUNNING)
        assert await asyncio.to_thread(harness.runtime.enforce_image_budget) == []  # the running job needs it
        assert runner.has_image(busybox_image)
        assert (await task).state is JobState.FINISHED

    run(scenario())
    assert not runner.has_image(busybox_image)  # evicted after the job, the least recently used beyond budget
    assert images.known() == set()


@pytest.mark.docker
def test_an_image_that_was_here_before_the_job_is_never_evicted(
    tmp_path: Path, runner: ContainerRunner, docker_client: Any, busybox_image: str
) -> None:
    runner.pull(busybox_image)  # the owner's own copy, present before any job asked for it
    images = ImageCache(tmp_path / "images.json", lambda: 0)
    harness = Harness(tmp_path, lambda: runner, image_cache=images)

    async def scenario() -> None:
        assert (await harness.runtime.run(lease("owners", spec(busybox_image, ["true"])))).state is JobState.FINISHED

    try:
        run(scenario())
        assert runner.has_image(busybox_image)
        assert images.known() == set()
    finally:
        remove_local_image(docker_client, busybox_image)


@pytest.mark.docker
def test_time_a_job_spent_paused_before_a_crash_does_not_count_as_run_time_after_re_adoption(
    harness: Harness, runner: ContainerRunner, busybox_image: str
) -> None:
    frozen = MachineDecision(Action.PAUSE, Cause.USER_ACTIVE, "the owner is back")

    async def scenario() -> None:
        started = time.monotonic()
        crashed = asyncio.create_task(harness.runtime.run(lease("frozen", spec(busybox_image, BUSY_LOOP))))
        await until(lambda: job_state(harness.runtime, "frozen") is JobState.RUNNING)
        harness.runtime.apply({}, frozen)
        await until(lambda: job_state(harness.runtime, "frozen") is JobState.PAUSED)
        ran_at_most = time.monotonic() - started  # it ran only between these two moments
        assert harness.records.load()["frozen"].paused_since is not None
        await asyncio.sleep(max(1.5, 2 * ran_at_most))  # frozen for longer than it ever ran
        crashed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await crashed

        restarted = harness.new_runtime()
        restarted.apply({}, frozen)  # the owner is still here
        recovery = await restarted.recover(lambda record: True)
        assert job_state(restarted, "frozen") is JobState.PAUSED
        [status] = restarted.jobs()
        assert status.run_time_s <= ran_at_most
        restarted.apply({}, MachineDecision(Action.STOP, Cause.GAME, "a game started"))
        result = await asyncio.wait_for(recovery.adopted["frozen"], 20)
        assert result.state is JobState.PREEMPTED

    run(scenario())
