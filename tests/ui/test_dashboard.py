"""The dashboard against a real agent: a card per simulated GPU filled from the live status, and a job
submitted through the control API shown running with its elapsed time (Docker and the busybox image)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from sparecycles.control.client import ControlClient
from sparecycles.control.models import AgentState, GpuState
from sparecycles.paths import AppPaths
from sparecycles.ui.agent_link import AgentLink, LinkState
from sparecycles.ui.pages.dashboard import DashboardPage, running_jobs
from tests.conftest import RunningAgent, start_agent
from tests.jobs.conftest import LocalRegistry, busybox_image, docker_client, docker_exec_works, local_registry
from tests.ui.conftest import WORK_ANY_TIME
from tests.ui.statuses import status as plain_status_of


def plain_status() -> object:
    return plain_status_of(AgentState.WORKING, GpuState.WORKING, "idle")


__all__ = ["busybox_image", "docker_client", "docker_exec_works", "local_registry"]  # fixtures used by name


def test_a_card_per_gpu_follows_the_live_status(link: AgentLink, sim_agent: RunningAgent, qtbot: QtBot) -> None:
    page = DashboardPage(link)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: 0 in page.cards and page.cards[0].temperature.text().endswith("°C"), timeout=10_000)
    card = page.cards[0]
    assert card.simulated.isVisible()
    assert card.reason.text()
    assert "GiB" in card.vram.text()
    assert card.power.text().endswith("W")
    first = card

    def hold_of_gpu_0() -> object:
        with ControlClient(sim_agent.endpoint) as client:
            return client.status().gpus[0].owner_hold

    card.pause_action.trigger()  # the card's "This GPU" menu: this GPU alone
    qtbot.waitUntil(lambda: hold_of_gpu_0() is not None and card.resume_action.isEnabled(), timeout=10_000)
    assert card.reason.text() == "stopped: you paused this GPU"
    assert page.state.text() != "Paused"  # the machine itself is not paused
    card.resume_action.trigger()
    qtbot.waitUntil(lambda: hold_of_gpu_0() is None and not card.resume_action.isEnabled(), timeout=10_000)
    link.call(lambda client: client.pause())
    qtbot.waitUntil(lambda: page.state.text() == "Paused" and page.resume_button.isEnabled(), timeout=10_000)
    assert page.cards[0] is first  # updated in place, not made again
    qtbot.waitUntil(lambda: page.gross.text() != "—", timeout=10_000)  # today's figure read from the ledger


@pytest.fixture
def job_agent(home: Path, local_registry: LocalRegistry) -> Iterator[RunningAgent]:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        WORK_ANY_TIME
        + f'[jobs]\nallowed_registries = ["{local_registry.host}"]\nmax_cpus = 1\n'
        + f'[marketplace]\nidentity_key_file = "{home / "identity.key"}"\n'
    )
    agent = start_agent(home, "--simulated-gpus", "1")
    yield agent
    agent.stop()


@pytest.mark.docker
def test_a_submitted_job_shows_as_running(
    job_agent: RunningAgent, busybox_image: str, docker_exec_works: None, qtbot: QtBot
) -> None:
    link = AgentLink(job_agent.paths)
    link.start()
    try:
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=20_000)
        page = DashboardPage(link)
        qtbot.addWidget(page)
        page.show()
        with ControlClient(job_agent.endpoint) as client:
            qtbot.waitUntil(lambda: client.status().state is not AgentState.WAITING, timeout=20_000)
            job_id = client.submit_job({"image": busybox_image, "command": ["sh", "-c", "sleep 60"]})
        qtbot.waitUntil(
            lambda: any(job.job_id == job_id and job.state == "running" for job in page.jobs), timeout=60_000
        )
        assert page.cpu_jobs.isVisible()
        assert job_id in page.cpu_jobs.text()
        assert "running" in page.cpu_jobs.text()
    finally:
        link.close()


def test_a_gpu_job_shows_on_its_card_with_its_elapsed_time(qtbot: QtBot, agent_home: Path) -> None:
    """Plain values, no agent: a job on GPU 0 as the agent lists it, its run time ticking on after the read."""
    link = AgentLink(AppPaths.from_environment({"SPARECYCLES_HOME": str(agent_home)}))  # never started
    page = DashboardPage(link)
    qtbot.addWidget(page)
    listed = [
        {"job_id": "local-1", "state": "running", "reason": None, "gpus": [0], "run_time_s": 65.0},
        {"job_id": "local-0", "state": "finished", "reason": None, "exit_code": 0, "outputs": []},
    ]
    page.jobs = running_jobs(listed, time.monotonic() - 10)
    page.show_status(plain_status())
    text = page.cards[0].job.text()
    assert "local-1" in text
    assert "running" in text
    assert "1:1" in text  # 65 s read 10 s ago: 1:15, give or take the test's own time
    assert page.cards[0].simulated.isVisibleTo(page)
    assert not page.cpu_jobs.isVisibleTo(page)
