"""`sparecycles status` tells the owner when the market pays less than their electricity: a real agent with a
tariff and a token rate in its ledger, a real marketplace process whose only job pays less than that."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from eth_account import Account

from sparecycles.agent.ledger.floor import TokenRate
from sparecycles.agent.ledger.store import LedgerStore
from tests.conftest import run_cli, start_agent

from .conftest import BUSYBOX
from .market_process import MarketProcess
from .test_provider_ledger import CORE_HOUR_FLOOR, FLAT


@pytest.fixture
def market(tmp_path: Path) -> Iterator[MarketProcess]:
    running = MarketProcess(tmp_path / "market")
    running.start()
    yield running
    running.stop()


def test_status_says_the_market_pays_less_than_the_electricity_and_the_floor_it_bids(
    tmp_path: Path, market: MarketProcess
) -> None:
    home = tmp_path / "provider"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(
        '[work]\nmode = "schedule"\n[schedule]\nwindows = ["daily"]\n[jobs]\nmax_cpus = 2\n'
        f'[marketplace]\nurl = "{market.url()}"\npayout_address = "{Account.create().address}"\n'
        f'identity_key_file = "{home / "identity.key"}"\n'
        "[ledger]\nmargin = 0.2\ncpu_watts_per_core = 30.0\n"
    )
    # The owner set a tariff and a token rate earlier (the ledger keeps them); 0.0216 token per core-hour.
    ledger = LedgerStore.open(home / "state" / "ledger.sqlite3", ZoneInfo("UTC"))
    ledger.set_tariff(FLAT, datetime(2026, 1, 1, tzinfo=UTC))
    ledger.set_token_rate(TokenRate("EUR", Decimal("0.50")), datetime(2026, 1, 1, tzinfo=UTC))
    ledger.close()

    key = market.operator("add-requester", "studio")
    market.operator("credit", "studio", str(10**18))
    spec = {"image": BUSYBOX, "command": ["true"], "cpus": 1.0}
    with httpx.Client(base_url=market.url(), headers={"Authorization": f"Bearer {key}"}, timeout=10) as requester:
        submitted = requester.post("/v1/jobs", json={"spec": spec, "max_price_per_core_hour": CORE_HOUR_FLOOR - 1})
        assert submitted.status_code == 201, submitted.text

        agent = start_agent(home)
        try:
            deadline = time.monotonic() + 60
            shown = None
            while time.monotonic() < deadline:
                status = run_cli(home, "status", "--json")
                assert status.returncode == 0, status.stderr
                shown = json.loads(status.stdout)["marketplace"]
                if shown and shown["price_note"] and shown["price_note"].startswith("market pays"):
                    break
                time.sleep(0.5)
            assert shown is not None, agent.console
            assert shown["floor_per_core_hour"] == CORE_HOUR_FLOOR
            assert shown["price_note"].startswith("market pays less than your electricity"), (shown, agent.console)
            assert f"your floor is {CORE_HOUR_FLOOR}" in shown["price_note"]
            printed = run_cli(home, "status").stdout
            assert "market pays less than your electricity" in printed
            assert f"{CORE_HOUR_FLOOR} per core-hour" in printed
            job = requester.get(f"/v1/jobs/{submitted.json()['job_id']}").json()
            assert job["leases"] == []  # not taken
        finally:
            agent.stop()
