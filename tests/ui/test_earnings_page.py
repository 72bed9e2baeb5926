"""The earnings page against a real agent whose ledger holds four known leases in October 2026 (written as the
agent records them, costed under the example tariff, with a token rate set through the API): the chart and its
readout show the agent's figures, the jobs table sorts and filters, the CSV is the CLI's export, and without a
payout vault the Claim button stays off with the agent's reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from PySide6.QtCore import QDate, QPointF, Qt
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from sparecycles.control.client import ControlClient
from sparecycles.control.errors import AgentRequestError
from sparecycles.ledger_cli import export_csv, money_text
from sparecycles.ui.agent_link import AgentLink, LinkState
from sparecycles.ui.ledger_table import SORT_ROLE
from sparecycles.ui.pages.earnings import EarningsPage
from tests.conftest import RunningAgent, start_agent
from tests.test_ledger_cli import EXAMPLE_TARIFF, write_known_leases

OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))
RATE = Decimal("0.5")  # EUR per token


@pytest.fixture(scope="module")
def ledger_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    """The agent with the known leases, the tariff and the rate (seconds to set up: it is started, stopped to
    write the leases and started again). The tests only read its figures, so they share it; each has its own
    page and link."""
    home = tmp_path_factory.mktemp("earnings") / "home"
    home.mkdir()
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'[general]\ntimezone = "Europe/Berlin"\n[marketplace]\nidentity_key_file = "{home / "identity.key"}"\n'
    )
    agent = start_agent(home, "--simulated-gpus", "1")
    try:
        write_known_leases(agent, home)
        with ControlClient.from_lock_file(agent.paths.agent_lock_file) as client:
            client.set_tariff(EXAMPLE_TARIFF.read_text())
            client.set_token_rate(RATE, "EUR")
        yield agent
    finally:
        agent.stop()


@pytest.fixture
def client(ledger_agent: RunningAgent) -> Iterator[ControlClient]:
    with ControlClient.from_lock_file(ledger_agent.paths.agent_lock_file, timeout=30) as opened:
        yield opened


@pytest.fixture
def page(ledger_agent: RunningAgent, qtbot: QtBot) -> Iterator[EarningsPage]:
    link = AgentLink(ledger_agent.paths)
    link.start()
    qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=20_000)
    shown = EarningsPage(link)
    qtbot.addWidget(shown)
    shown.resize(1000, 800)
    shown.show()
    shown.since.setDate(QDate(OCTOBER[0]))
    shown.until.setDate(QDate(OCTOBER[1]))
    yield shown
    link.close()


def wait_for_october(page: EarningsPage, qtbot: QtBot, by: str = "day") -> None:
    qtbot.waitUntil(
        lambda: (
            page.summary is not None and (page.summary.since, page.summary.until) == OCTOBER and page.summary.by == by
        ),
        timeout=20_000,
    )


def test_the_chart_shows_the_ledgers_figures_and_reads_them_out_on_hover(
    page: EarningsPage, client: ControlClient, qtbot: QtBot
) -> None:
    page.by.setCurrentIndex(page.by.findData("week"))
    wait_for_october(page, qtbot, "week")
    answer = client.earnings(*OCTOBER, "week")
    assert page.summary == answer
    assert answer.missing == []  # a tariff and a token rate are set: net is known
    rows = [row for row in answer.rows if row.gross_base_units or row.energy_wh]
    assert [row.bucket for row in rows] == ["2026-W41", "2026-W42"]
    charted = {figure.label: figure for figure in page.chart.figures}
    for row in rows:
        figure = charted[row.bucket]
        assert row.net is not None
        assert row.start is not None
        assert figure.start_s == row.start.timestamp()
        assert Decimal(str(figure.gross)) == row.net + row.power_cost
        assert figure.power_cost == float(row.power_cost)
        assert figure.net == float(row.net)
        # gross at the rate: the ledger's base units times 0.5 EUR per token
        assert row.net + row.power_cost == Decimal(row.gross_base_units).scaleb(-18) * RATE

    # Hover over the middle of week 42: the readout names it and its three figures.
    week42 = next(row for row in rows if row.bucket == "2026-W42")
    assert week42.start is not None
    assert week42.net is not None
    view = page.chart.plot.getPlotItem().vb
    view.setXRange(week42.start.timestamp() - 86_400 * 10, week42.start.timestamp() + 86_400 * 10, padding=0)
    middle = view.mapViewToScene(QPointF(week42.start.timestamp() + 3.5 * 86_400, 0.0))
    page.chart.plot.scene().sigMouseMoved.emit(middle)
    readout = page.chart.readout.text()
    gross = money_text(week42.net + week42.power_cost)
    assert readout == (
        f"2026-W42: gross {gross} EUR, power cost {money_text(week42.power_cost)} EUR, net {money_text(week42.net)} EUR"
    )
    assert page.chart.crosshair.isVisible()


def test_the_jobs_table_holds_the_export_and_sorts_and_filters(
    page: EarningsPage, client: ControlClient, qtbot: QtBot
) -> None:
    wait_for_october(page, qtbot)
    exported = client.export(*OCTOBER)
    assert page.export == exported
    assert len(exported.rows) == 4
    proxy = page.proxy

    def leases() -> list[str]:
        return [page.jobs.rows[proxy.mapToSource(proxy.index(r, 0)).row()].lease_id for r in range(proxy.rowCount())]

    gross_column = 5
    page.table.sortByColumn(gross_column, Qt.SortOrder.DescendingOrder)
    by_gross = sorted(exported.rows, key=lambda row: row.gross_base_units, reverse=True)
    assert leases() == [row.lease_id for row in by_gross]
    assert proxy.index(0, gross_column).data() == "2"  # 2 whole tokens, the CLI's token text
    assert proxy.index(0, gross_column).data(SORT_ROLE) == float(by_gross[0].gross_base_units)

    page.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    assert leases() == [row.lease_id for row in sorted(exported.rows, key=lambda row: row.started_utc)]

    page.filter.setText("PENDING")  # the voucher column, any case
    assert sorted(leases()) == sorted(row.lease_id for row in exported.rows if row.voucher_status == "pending")
    assert leases()
    assert all(proxy.index(r, 7).data() == "pending" for r in range(proxy.rowCount()))
    page.filter.setText("2026-10-06")
    assert leases() == ["lease-a"]
    page.filter.clear()
    assert proxy.rowCount() == 4


def test_the_csv_export_writes_the_agents_export_rows(
    page: EarningsPage, client: ControlClient, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wait_for_october(page, qtbot)
    target = tmp_path / "jobs.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_args, **_kw: (str(target), "CSV files (*.csv)"))
    qtbot.waitUntil(page.export_button.isEnabled, timeout=10_000)
    qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
    assert target.read_bytes() == export_csv(client.export(*OCTOBER)).encode("utf-8")
    assert "Wrote 4 jobs" in page.export_message.text()


def test_without_a_payout_vault_the_claim_button_stays_off_and_says_why(
    page: EarningsPage, client: ControlClient, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: bool(page.claim_message.text()), timeout=20_000)
    try:
        view = client.wallet_call("GET", "/claimable")
    except AgentRequestError as refused:
        expected = str(refused)
    else:
        expected = view["problem"]
    assert expected
    assert expected in page.claim_message.text()
    assert not page.claim_button.isEnabled()
