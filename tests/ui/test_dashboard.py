"""The dashboard against a real agent: a card per simulated GPU filled from the live status, and a job
submitted through the control API shown running with its elapsed time (Docker and the busybox image)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from sparecycles.control.client import ControlClient
from sparecycles.control.models import AgentState
from sparecycles.ui.agent_link import AgentLink, LinkState
from sparecycles.ui.pages.dashboard import DashboardPage
from tests.conftest import RunningAgent, start_agent
from tests.jobs.conftest import LocalRegistry, busybox_image, docker_client, docker_exec_works, local_registry
from tests.ui.conftest import WORK_ANY_TIME

__all__ = ["busybox_image", "docker_client", "docker_exec_works", "local_registry"]  # fixtures used by name


def test_a_card_per_gpu_follows_the_live_status(link: AgentLink, qtbot: QtBot) -> None:
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
