"""The agent's job list never shows a job as ended without what it ended with.

The runtime marks a job ended (from a worker thread) a moment before the job service records its result,
with its outputs. A listing read in that moment used to show the job ``finished`` with no outputs, and a
client waiting for ``finished`` then found no ``outputs`` at all (a CI run caught it in
``test_agent_jobs``). The runtime here is a stub holding a fixed list: the moment is set up, not raced.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.jobs.runtime import JobResult, JobRuntime, JobState, JobStatus, OutputFile
from sparecycles.agent.jobs.service import ENDING, JobService
from sparecycles.config import Settings


class ListedRuntime:
    """Only what :meth:`JobService.jobs` reads of a runtime: its active jobs."""

    def __init__(self, *states: tuple[str, JobState]) -> None:
        self.active = [
            JobStatus(job_id, state, None, (0,), 12.0, datetime(2026, 11, 27, tzinfo=UTC)) for job_id, state in states
        ]

    def jobs(self) -> list[JobStatus]:
        return list(self.active)


def service_over(runtime: ListedRuntime) -> JobService:
    settings = Settings()
    return JobService(runtime=cast(JobRuntime, runtime), engine=cast(WorkEngine, None), settings=lambda: settings)


def record(service: JobService, result: JobResult) -> None:
    """Hand the service a job's result the way the runtime does: as the value of the job's task."""

    async def hand_over() -> None:
        async def ended() -> JobResult:
            return result

        service._follow(asyncio.ensure_future(ended()))
        await asyncio.gather(*service._tasks)

    asyncio.run(hand_over())


FINISHED = JobResult(
    "local-b",
    JobState.FINISHED,
    0,
    None,
    (OutputFile("frame.txt", 9, "0" * 64),),
    Path("/outputs/local-b"),
)


def test_a_job_ended_but_not_yet_recorded_is_listed_as_ending_not_as_finished() -> None:
    service = service_over(ListedRuntime(("local-a", JobState.RUNNING), ("local-b", JobState.FINISHED)))

    listed = {job["job_id"]: job for job in service.jobs()}

    assert listed["local-a"]["state"] == "running"
    assert listed["local-b"]["state"] == ENDING
    assert listed["local-b"]["reason"] == "recording how it ended"
    assert all(job["state"] != "finished" or "outputs" in job for job in listed.values())


def test_once_recorded_a_job_still_held_by_the_runtime_is_listed_once_with_its_outputs() -> None:
    runtime = ListedRuntime(("local-b", JobState.FINISHED))
    service = service_over(runtime)

    record(service, FINISHED)

    (job,) = service.jobs()
    assert job["state"] == "finished"
    assert job["outputs"] == [{"path": "frame.txt", "size_bytes": 9, "sha256": "0" * 64}]
    assert job["outputs_dir"] == str(Path("/outputs/local-b"))
