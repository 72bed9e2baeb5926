"""Once the agent is stopping, the job service takes no new job, and stops one accepted just before.

The API answers until the very end of a shutdown; a job it accepted after the service stopped its jobs
would start with nothing left to govern it, and keep the agent's process alive until it ended. Run against
the recording fake engine of ``test_recovery_edges``, wired as the agent wires the service.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from sparecycles.agent.engine import WorkEngine
from sparecycles.agent.jobs.containers import ContainerRunner
from sparecycles.agent.jobs.service import JobService
from sparecycles.agent.sensors.gpu.simulated import SimulatedGpuBackend
from sparecycles.config import Settings
from sparecycles.protocol.job_refusal import JobRefused
from tests.fakes.presence import ScriptedPresenceSource
from tests.test_engine import FakeActivity

from .test_recovery_edges import FakeRunner, new_runtime
from .test_runtime import until

RAW_JOB = {"image": f"registry.example.com/team/app@sha256:{'a' * 64}", "command": ["x"], "gpus": 0}


class Agent:
    """An idle computer (the owner away for an hour) whose job service runs on a fake engine."""

    def __init__(self, tmp_path: Path) -> None:
        settings = Settings.model_validate({"jobs": {"allowed_registries": ["registry.example.com"]}})
        self.engine = WorkEngine(
            gpu_backend=SimulatedGpuBackend(1),
            presence_source=ScriptedPresenceSource(idle_s=3600),
            activity=FakeActivity(),
            settings=settings,
            is_own_process=lambda _pid: False,
        )
        self.runner = FakeRunner()
        self.runtime = new_runtime(tmp_path, lambda: cast(ContainerRunner, self.runner))
        self.service = JobService(runtime=self.runtime, engine=self.engine, settings=lambda: settings)

    async def start(self) -> None:
        self.engine.discover()
        self.engine.read_gpus()
        self.engine.read_presence()
        self.engine.read_activity()
        self.engine.evaluate()
        await self.service.start()


def test_a_job_submitted_once_shutdown_began_is_refused_and_nothing_starts(tmp_path: Path) -> None:
    agent = Agent(tmp_path)

    async def scenario() -> None:
        await agent.start()
        first = agent.service.submit(RAW_JOB)  # accepted while the agent runs
        await until(lambda: "start" in agent.runner.calls, 5)
        shutdown = asyncio.create_task(agent.service.shutdown(2))
        await asyncio.sleep(0)  # shutdown has begun (its first step ran), the API still answers
        with pytest.raises(JobRefused, match="stopping"):
            agent.service.submit(RAW_JOB)
        await shutdown
        with pytest.raises(JobRefused, match="stopping"):
            agent.service.submit(RAW_JOB)
        assert agent.runner.calls.count("start") == 1
        assert agent.runtime.jobs() == []
        assert [job["job_id"] for job in agent.service.jobs()] == [first]
        assert agent.service.jobs()[0]["state"] == "preempted"

    asyncio.run(scenario())


def test_the_agent_refuses_new_jobs_as_soon_as_it_begins_to_stop(tmp_path: Path) -> None:
    agent = Agent(tmp_path)

    async def scenario() -> None:
        await agent.start()
        agent.service.refuse_new_jobs()  # what the agent does first on its way down
        with pytest.raises(JobRefused, match="stopping"):
            agent.service.submit(RAW_JOB)
        await agent.service.shutdown(2)
        assert agent.runner.calls == []

    asyncio.run(scenario())


def test_a_job_accepted_just_before_shutdown_is_stopped_before_its_container_starts(tmp_path: Path) -> None:
    agent = Agent(tmp_path)

    async def scenario() -> None:
        await agent.start()
        job_id = agent.service.submit(RAW_JOB)  # its task has not run yet when shutdown begins
        await agent.service.shutdown(2)
        assert "start" not in agent.runner.calls
        assert agent.runtime.jobs() == []
        (result,) = agent.service.jobs()
        assert (result["job_id"], result["state"]) == (job_id, "preempted")

    asyncio.run(scenario())
