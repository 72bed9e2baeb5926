"""The studio fleet in the desktop app, against a real marketplace process and a real agent (simulated GPU): the
onboarding's "join a studio" choice enrols the machine, the dashboard says whose schedule it follows and its
Leave button leaves, and the Fleet page, given an admin token, lists the machine and drains it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from pytestqt.qtbot import QtBot

from sparecycles.control.client import ControlClient
from sparecycles.ui.agent_link import AgentLink, LinkState
from tests.conftest import RunningAgent, start_agent
from tests.market.market_process import MarketProcess
from tests.ui.conftest import WORK_ANY_TIME


@pytest.fixture
def market(tmp_path: Path) -> Iterator[MarketProcess]:
    running = MarketProcess(tmp_path / "market", serve_arguments=("--fleet-report-every", "1"))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def member_agent(home: Path, market: MarketProcess) -> Iterator[RunningAgent]:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        WORK_ANY_TIME + f'[marketplace]\nurl = "{market.url()}"\npayout_address = "{Account.create().address}"\n'
        f'identity_key_file = "{home / "identity.key"}"\n'
    )
    agent = start_agent(home, "--simulated-gpus", "1")
    yield agent
    agent.stop()


@pytest.fixture
def member_link(member_agent: RunningAgent, qtbot: QtBot) -> Iterator[AgentLink]:
    link = AgentLink(member_agent.paths)
    link.start()
    qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED and link.status is not None, timeout=20_000)
    yield link
    link.close()


def test_join_from_onboarding_leave_from_the_dashboard_and_drain_from_the_fleet_page(
    market: MarketProcess, member_agent: RunningAgent, member_link: AgentLink, qtbot: QtBot
) -> None:
    from sparecycles.ui.onboarding.market_steps import MarketplaceStep
    from sparecycles.ui.pages.dashboard import DashboardPage
    from sparecycles.ui.pages.fleet import FleetPage
    from sparecycles.ui.pages.schedule import SchedulePage

    code = json.loads(market.operator("enrol-code", "--group", "artists", "--json"))["code"]
    market.operator("group-policy", "artists", "--window=Sat-Sun", "--max-temperature", "75")
    step = MarketplaceStep(member_link)
    qtbot.addWidget(step)
    step.studio.setChecked(True)
    step.url.setText(market.url())
    assert step.validatePage() is False  # a studio needs its code: refused in words, nothing sent
    assert "code" in step.problem.text()
    step.code.setText(code)
    step.validatePage()  # sent to the agent, which signs in there and joins

    def fleet_status() -> object:
        with ControlClient(member_agent.endpoint) as client:
            return client.status().fleet

    qtbot.waitUntil(lambda: fleet_status() is not None, timeout=30_000)

    schedule = SchedulePage(member_link)
    qtbot.addWidget(schedule)
    qtbot.waitUntil(lambda: schedule.studio_note.isVisibleTo(schedule), timeout=15_000)
    assert "stricter" in schedule.studio_note.text()

    dashboard = DashboardPage(member_link)
    qtbot.addWidget(dashboard)
    qtbot.waitUntil(lambda: dashboard.studio.isVisibleTo(dashboard), timeout=15_000)
    assert "Schedule set by" in dashboard.studio.text()
    assert "artists" in dashboard.studio.text()
    dashboard.confirm_leave = lambda _parent: True  # type: ignore[method-assign]
    dashboard.leave_button.click()
    qtbot.waitUntil(lambda: fleet_status() is None, timeout=30_000)
    qtbot.waitUntil(lambda: not dashboard.studio.isVisibleTo(dashboard), timeout=15_000)

    with ControlClient(member_agent.endpoint) as client:
        client.join_studio(market.url(), code)
        address = client.status().marketplace.provider_address  # type: ignore[union-attr]
    token = market.operator("admin-token", "lead")
    page = FleetPage(member_link)
    qtbot.addWidget(page)
    page.url.setText(market.url())
    page.token.setText(token)
    page.connect_button.click()
    assert page.token.text() == ""  # not left in the widget
    qtbot.waitUntil(lambda: page.table.rowCount() == 1 and page.table.item(0, 2) is not None, timeout=30_000)
    assert page.table.item(0, 1).text() == "artists"
    page.table.selectRow(0)
    assert page.drain_button.isEnabled()
    page.drain_button.click()

    def drained() -> bool:
        machines = httpx.get(
            f"{market.url()}/v1/admin/fleet", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
        return any(machine["address"] == address and machine["drain"] for machine in machines)

    qtbot.waitUntil(drained, timeout=15_000)
    qtbot.waitUntil(lambda: "draining" in page.table.item(0, 2).text(), timeout=15_000)

    # The token was kept in the session's keyring, not in a file: the page opened again connects by itself.
    assert token not in (member_agent.paths.config_dir / "gui.ini").read_text()
    again = FleetPage(member_link)
    qtbot.addWidget(again)
    assert again.url.text() == market.url()
    qtbot.waitUntil(lambda: again.table.rowCount() == 1, timeout=30_000)
