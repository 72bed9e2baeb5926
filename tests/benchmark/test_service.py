"""The benchmark in the agent: the worker run as a child process (a stand-in at the hardware edge:
tests/fakes/benchmark_worker.py, the real measuring code on a simulated GPU), results kept per GPU, a run
stopped when the policy takes the GPU back, failures that leave the last good result, the job-image path
through a stand-in job runtime, and the choice of GPUs for a request."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sparecycles.agent.benchmark.control import BenchmarkControl, BenchmarkRefused, chosen_gpus
from sparecycles.agent.benchmark.errors import BenchmarkInterrupted
from sparecycles.agent.benchmark.measure import QUICK
from sparecycles.agent.benchmark.results import BenchmarkResult, ResultStore
from sparecycles.agent.benchmark.service import (
    RESULT_FILE,
    BenchmarkFailed,
    BenchmarkService,
    ImageRunner,
    ProcessRunner,
    Runner,
    parse_result,
    stop_reason,
)
from sparecycles.agent.engine import EngineSnapshot
from sparecycles.agent.jobs.runtime import JobResult, JobState, Lease
from sparecycles.agent.policy.model import Action, Cause, GpuDecision
from sparecycles.agent.sensors.gpu import GpuDiscovery, GpuIdentity
from sparecycles.agent.sensors.gpu.model import GpuBackendKind
from sparecycles.agent.sensors.user.model import PresenceSample

FAKE_WORKER = Path(__file__).resolve().parents[1] / "fakes" / "benchmark_worker.py"
GPU0 = GpuIdentity(
    index=0, uuid="GPU-11111111-2222-3333-4444-555555555555", name="NVIDIA H100 80GB HBM3", driver_version="580.159.04"
)
GPU1 = GpuIdentity(
    index=1, uuid="GPU-66666666-2222-3333-4444-555555555555", name="NVIDIA H100 80GB HBM3", driver_version="580.159.04"
)


def fake_runner(behaviour: str = "ok", **options: float) -> ProcessRunner:
    environment = {"PATH": "/usr/bin:/bin", "FAKE_BENCHMARK": behaviour, "PYTHONPATH": ":".join(sys.path)}
    return ProcessRunner(program=(sys.executable, str(FAKE_WORKER)), environment=environment, **options)


async def until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def service(tmp_path: Path, runner: Runner, **options: Any) -> BenchmarkService:
    return BenchmarkService(ResultStore(tmp_path / "benchmarks.json"), lambda: runner, **options)


def test_a_benchmark_is_run_in_a_child_process_and_kept_for_its_gpu(tmp_path: Path) -> None:
    benchmarks = service(tmp_path, fake_runner())
    assert benchmarks.due([GPU0]) == [GPU0]
    result = asyncio.run(benchmarks.run(GPU1))
    assert (result.gpu_index, result.gpu_uuid, result.driver_version) == (1, GPU1.uuid, "580.159.04")
    assert result.reference_model == "h100-sxm"
    assert result.score is not None
    assert result.score > 700
    assert benchmarks.load_power_w() == {GPU1.uuid: 655.0}  # the fake NVML's board power under the BF16 phase
    assert benchmarks.score(GPU1.uuid) == result.score
    assert benchmarks.due([GPU0, GPU1]) == [GPU0]
    shown = benchmarks.status(GPU1)
    assert (shown.state, shown.problem) == ("done", None)
    assert shown.result is not None
    assert shown.result.load_power_w == 655.0
    # Kept on disk: a restarted agent knows it, and a new driver makes it due again.
    reopened = service(tmp_path, fake_runner())
    assert reopened.latest(GPU1.uuid) == result
    updated = GpuIdentity(index=1, uuid=GPU1.uuid, name=GPU1.name, driver_version="590.10")
    assert reopened.due([updated]) == [updated]


def test_a_stopped_benchmark_leaves_the_last_good_result(tmp_path: Path) -> None:
    benchmarks = service(tmp_path, fake_runner())
    first = asyncio.run(benchmarks.run(GPU0))
    slow = service(tmp_path, fake_runner("slow"))

    async def stopped_while_running() -> None:
        running = asyncio.create_task(slow.run(GPU0))
        await until(lambda: GPU0.index in slow.held())
        await asyncio.sleep(0.5)  # the worker is under way
        assert slow.status(GPU0).state == "running"
        assert slow.status(GPU0).expected_seconds == QUICK.expected_s  # for the onboarding's progress bar
        assert slow.stop(GPU0.index, "a game started")
        with pytest.raises(BenchmarkInterrupted):
            await running

    asyncio.run(stopped_while_running())
    assert slow.latest(GPU0.uuid) == first
    assert slow.held() == frozenset()
    assert slow.status(GPU0).state == "done"


def test_a_worker_that_ignores_the_stop_is_killed(tmp_path: Path) -> None:
    stubborn = service(tmp_path, fake_runner("stubborn", stop_grace_s=0.5))

    async def stop_it() -> None:
        running = asyncio.create_task(stubborn.run(GPU0))
        await until(lambda: GPU0.index in stubborn.held())
        await asyncio.sleep(1.0)  # it has set its signal handler by now
        stubborn.stop(GPU0.index, "the owner came back")
        with pytest.raises(BenchmarkInterrupted):
            await running

    asyncio.run(stop_it())
    assert stubborn.held() == frozenset()


def test_a_failure_says_why_keeps_the_last_result_and_is_not_retried_at_once(tmp_path: Path) -> None:
    good = asyncio.run(service(tmp_path, fake_runner()).run(GPU0))
    ticks = [0.0]
    failing = service(tmp_path, fake_runner("fail"), monotonic=lambda: ticks[0], retry_after_s=3600)
    newer = GpuIdentity(index=0, uuid=GPU0.uuid, name=GPU0.name, driver_version="590.10")
    with pytest.raises(BenchmarkFailed, match=r"(?s)exit code 1.*illegal memory access"):
        asyncio.run(failing.run(newer))
    assert failing.latest(GPU0.uuid) == good
    shown = failing.status(newer)
    assert shown.state == "failed"
    assert shown.problem is not None
    assert "illegal memory access" in shown.problem
    assert failing.due([newer]) == []  # not again at once
    ticks[0] = 3600.0
    assert failing.due([newer]) == [newer]


def test_without_an_array_library_the_message_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkFailed, match=r"(?s)no GPU array library.*sparecycles\[benchmark\]"):
        asyncio.run(service(tmp_path, fake_runner("nolib")).run(GPU0))


def test_a_result_for_another_gpu_is_refused() -> None:
    result = asyncio.run(fake_runner().run(GPU0, "quick", asyncio.Event()))
    with pytest.raises(BenchmarkFailed, match=r"measured GPU GPU-1111.*, not GPU 1"):
        parse_result(result.to_json(), GPU1)


# -- the policy ---------------------------------------------------------------------------------------


def decision(action: Action, cause: Cause, index: int = 0) -> GpuDecision:
    uuid = (GPU0, GPU1)[index].uuid
    return GpuDecision(index=index, uuid=uuid, action=action, reason=f"because {cause.value}", cause=cause)


def test_what_stops_a_benchmark_the_owner_asked_for_and_an_automatic_one() -> None:
    assert stop_reason(decision(Action.WORK, Cause.IDLE), asked=False) is None
    assert stop_reason(decision(Action.STOP, Cause.USER_ACTIVE), asked=False) == "because user_active"
    assert stop_reason(decision(Action.STOP, Cause.USER_ACTIVE), asked=True) is None  # they are there on purpose
    assert stop_reason(decision(Action.STOP, Cause.OUTSIDE_SCHEDULE), asked=True) is None
    for cause in (Cause.GAME, Cause.FULLSCREEN, Cause.GPU_IN_USE, Cause.TOO_HOT, Cause.PAUSED_BY_OWNER):
        assert stop_reason(decision(Action.PAUSE, cause), asked=True) == f"because {cause.value}"


def snapshot(
    *gpus: GpuIdentity, backend: GpuBackendKind = "nvml", decisions: dict[int, GpuDecision] | None = None
) -> EngineSnapshot:
    reason = None if gpus else "NVML: Driver Not Loaded"
    return EngineSnapshot(
        discovery=GpuDiscovery(backend=backend, available=bool(gpus), reason=reason, gpus=tuple(gpus)),
        samples={},
        presence=PresenceSample(source="test"),
        presence_source="test",
        activity=None,
        decisions=decisions or {},
    )


def test_a_request_names_real_gpus_only() -> None:
    with pytest.raises(BenchmarkRefused, match=r"no NVIDIA GPU found \(NVML: Driver Not Loaded\)"):
        chosen_gpus(snapshot(), None)
    with pytest.raises(BenchmarkRefused, match="simulated"):
        chosen_gpus(snapshot(GPU0, backend="simulated"), None)
    with pytest.raises(BenchmarkRefused, match="there is no GPU 3") as refused:
        chosen_gpus(snapshot(GPU0, GPU1), 3)
    assert refused.value.status == 404
    assert chosen_gpus(snapshot(GPU0, GPU1), 1) == [GPU1]
    assert chosen_gpus(snapshot(GPU0, GPU1), None) == [GPU0, GPU1]


def test_the_policy_stops_an_automatic_benchmark_and_a_due_gpu_is_started_when_free(tmp_path: Path) -> None:
    state = {
        "snapshot": snapshot(
            GPU0, GPU1, decisions={0: decision(Action.WORK, Cause.IDLE), 1: decision(Action.WORK, Cause.IDLE, 1)}
        )
    }
    busy = {"gpus": frozenset({0})}  # GPU 0 runs a job: not benchmarked meanwhile
    control = BenchmarkControl(service(tmp_path, fake_runner("slow")), lambda: state["snapshot"], lambda: busy["gpus"])

    async def round_then_owner_returns() -> None:
        await control.auto_round()
        await until(lambda: control.service.held() == {1})
        await control.auto_round()  # one at a time
        assert control.service.held() == {1}
        state["snapshot"] = snapshot(
            GPU0, GPU1, decisions={0: decision(Action.WORK, Cause.IDLE), 1: decision(Action.STOP, Cause.USER_ACTIVE, 1)}
        )
        control.policy_changed()
        await control.close()

    asyncio.run(round_then_owner_returns())
    assert control.service.held() == frozenset()
    assert control.service.latest(GPU1.uuid) is None  # stopped: nothing kept, nothing faked


# -- the job image ------------------------------------------------------------------------------------


class FakeRuntime:
    """The job runtime's interface; the job "runs" by writing what the worker would have written."""

    def __init__(self, tmp_path: Path, result: BenchmarkResult | None, state: JobState = JobState.FINISHED) -> None:
        self.tmp_path = tmp_path
        self.result = result
        self.state = state
        self.leases: list[Lease] = []
        self.stopped: list[str] = []

    async def run(self, lease: Lease) -> JobResult:
        self.leases.append(lease)
        outputs = self.tmp_path / "outputs" / lease.job_id
        outputs.mkdir(parents=True)
        if self.result is not None:
            (outputs / RESULT_FILE).write_text(self.result.to_json())
        return JobResult(lease.job_id, self.state, 0, None, outputs_dir=outputs, logs_tail="worker log")

    def stop_job(self, job_id: str, reason: str) -> None:
        self.stopped.append(job_id)


IMAGE = "127.0.0.1:5000/sparecycles/benchmark@sha256:" + "ab" * 32


def test_the_image_path_runs_the_worker_as_a_sandboxed_job_on_that_gpu(tmp_path: Path) -> None:
    measured = asyncio.run(fake_runner().run(GPU0, "quick", asyncio.Event()))
    in_container = json.loads(measured.to_json())
    in_container["gpu_index"] = 0  # inside the container the one GPU it is given is GPU 0
    runtime = FakeRuntime(tmp_path, BenchmarkResult.from_dict(in_container))
    runner = ImageRunner(runtime, IMAGE, clock=lambda: datetime(2026, 11, 26, tzinfo=UTC))
    gpu = GpuIdentity(index=1, uuid=GPU0.uuid, name=GPU0.name)  # host GPU 1, measured by its UUID
    result = asyncio.run(runner.run(gpu, "quick", asyncio.Event()))
    [lease] = runtime.leases
    assert (lease.gpu_indices, lease.gpu_uuids) == ((1,), (GPU0.uuid,))
    assert lease.spec.gpus == 1
    assert lease.spec.image == IMAGE
    assert lease.spec.egress == []  # no network
    assert lease.spec.command[-1].endswith(f"--quick --gpu 0 --json > /job/output/{RESULT_FILE}")
    assert (result.gpu_index, result.runner) == (1, f"container: {IMAGE}")
    assert not (tmp_path / "outputs" / lease.job_id).exists()  # the job's outputs are cleaned up


def test_the_image_path_reports_a_failed_or_preempted_job(tmp_path: Path) -> None:
    failed = ImageRunner(FakeRuntime(tmp_path / "a", None, JobState.FAILED), IMAGE)
    with pytest.raises(BenchmarkFailed, match=r"(?s)benchmark job failed.*worker log"):
        asyncio.run(failed.run(GPU0, "quick", asyncio.Event()))
    preempted = ImageRunner(FakeRuntime(tmp_path / "b", None, JobState.PREEMPTED), IMAGE)
    with pytest.raises(BenchmarkInterrupted):
        asyncio.run(preempted.run(GPU0, "quick", asyncio.Event()))
    empty = ImageRunner(FakeRuntime(tmp_path / "c", None), IMAGE)
    with pytest.raises(BenchmarkFailed, match="left no result"):
        asyncio.run(empty.run(GPU0, "quick", asyncio.Event()))
