"""The ledger's commands against a real agent: the tariff and the token rate set and shown, the earnings table and
JSON, and the export as CSV and JSON adding up exactly to the earnings' total.

Known leases are written into the agent's ledger file while it is stopped (as the agent would have recorded
them, costed under the example tariff), then the agent is started again on the same home.
"""

from __future__ import annotations

import csv
import io
import json
import stat
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sparecycles.agent.ledger.recorder import EnergyRecorder
from sparecycles.agent.ledger.store import JobEnd, JobStart, LedgerStore
from sparecycles.agent.ledger.tariff_file import load_tariff
from sparecycles.agent.ledger.tariffs import TariffHistory
from sparecycles.agent.sensors.gpu.model import GpuSample
from sparecycles.control.client import ControlClient
from sparecycles.control.errors import AgentRequestError
from sparecycles.ledger_cli import EXPORT_COLUMNS
from tests.conftest import REPO, RunningAgent, run_cli, start_agent

EXAMPLE_TARIFF = REPO / "examples" / "tariff.toml"
BERLIN = ZoneInfo("Europe/Berlin")
GPU = "GPU-5eed1ed9-0000-4000-8000-00000000cafe"
PAYOUT = "0x" + "cd" * 20
TOKEN = 10**18
CENT = TOKEN // 100  # a hundredth of a token, in base units
MJ_PER_WH = 3_600_000


@pytest.fixture
def berlin_home(home: Path) -> Path:
    """A home whose agent keeps its ledger in Berlin time, the example tariff's zone."""
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[general]\ntimezone = "Europe/Berlin"\n')
    return home


@pytest.fixture
def berlin_agent(berlin_home: Path) -> Iterator[RunningAgent]:
    running = start_agent(berlin_home, "--simulated-gpus", "1")
    yield running
    running.stop()


def ok(home: Path, *args: str) -> str:
    result = run_cli(home, *args)
    assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def record_lease(
    store: LedgerStore,
    tariffs: TariffHistory,
    lease: str,
    *,
    at: datetime,
    wh: int,
    gross: int | None,
    paid: int = 0,
) -> None:
    """A 10 s lease from ``at`` (Berlin) that used ``wh`` watt-hours, credited ``gross`` base units (None:
    unpaid) a second after; ``paid`` is what the payout address was paid in all, this lease included."""
    when = at.replace(tzinfo=BERLIN).astimezone(UTC)
    store.job_started(JobStart(lease, "http://market.test", f"job-{lease}", (GPU,), 1, 1000, when))
    recorder = EnergyRecorder(boot_id="test-boot")
    for second in range(11):
        counter = wh * MJ_PER_WH * second // 10
        samples = [GpuSample(index=0, uuid=GPU, monotonic_s=0.0, power_draw_w=360.0, energy_total_mj=counter)]
        jobs: dict[str, str | None] = {GPU: lease}
        intervals = recorder.observe(when + timedelta(seconds=second), samples, jobs)
        if intervals:
            store.record_energy(intervals, tariffs)
            recorder.committed(intervals, samples, jobs)
    store.job_ended(JobEnd(lease, when + timedelta(seconds=10), 10.0, 0.0, "finished"))
    if gross is not None:
        store.credited(lease, gross, paid, PAYOUT, when + timedelta(seconds=11))


def october(day: int, hour: int) -> datetime:
    """A local time in October 2026 (Berlin: summer time, UTC+2)."""
    return datetime(2026, 10, day, hour)


def write_known_leases(agent: RunningAgent, home: Path) -> None:
    """Stop the agent, write four leases in October 2026 (two ISO weeks) into its ledger, start it again.

    Their energy is costed under the example tariff as if it had been in force since January: 0.45 EUR/kWh
    on weekday evenings, 0.22 at night, 0.32 otherwise.
    """
    assert agent.stop() == 0
    tariffs = TariffHistory()
    tariffs.set(datetime(2026, 1, 1, tzinfo=UTC), load_tariff(EXAMPLE_TARIFF))
    store = LedgerStore.open(agent.paths.state_dir / "ledger.sqlite3", BERLIN)
    try:
        # Week 41: Tuesday evening (peak), Thursday night; week 42: Monday morning unpaid, Saturday noon.
        record_lease(store, tariffs, "lease-a", at=october(6, 18), wh=2, gross=150 * CENT, paid=150 * CENT)
        record_lease(store, tariffs, "lease-b", at=october(8, 3), wh=1, gross=25 * CENT, paid=175 * CENT)
        record_lease(store, tariffs, "lease-d", at=october(12, 10), wh=1, gross=None)
        record_lease(store, tariffs, "lease-c", at=october(17, 12), wh=3, gross=200 * CENT, paid=375 * CENT)
        # A voucher for the first 1.5 tokens: lease-a is confirmed, the others stay pending.
        assert store.voucher_covers(PAYOUT, 150 * CENT, "voucher-1", datetime(2026, 10, 20, tzinfo=UTC)) == 1
    finally:
        store.close()
    restarted = start_agent(home, "--simulated-gpus", "1")
    agent.process, agent.endpoint, agent.console_file = restarted.process, restarted.endpoint, restarted.console_file


def test_the_tariff_and_the_rate_set_through_the_cli_are_shown_back(
    berlin_agent: RunningAgent, berlin_home: Path
) -> None:
    assert "No tariff set" in ok(berlin_home, "tariff", "show")
    assert "No token rate set" in ok(berlin_home, "rate", "show")
    missing = json.loads(ok(berlin_home, "earnings", "--json"))["missing"]
    assert any("no tariff" in note for note in missing)
    assert any("no token rate" in note for note in missing)

    said = ok(berlin_home, "tariff", "set", str(EXAMPLE_TARIFF))
    assert "EUR 0.32 per kWh by default, 2 time-of-use windows" in said
    shown = ok(berlin_home, "tariff", "show")
    assert shown.startswith("# The tariff in force since ")
    assert tomllib.loads(shown) == tomllib.loads(EXAMPLE_TARIFF.read_text())  # it can be saved and set again
    assert shown.split("\n", 1)[1].rstrip() == EXAMPLE_TARIFF.read_text().rstrip()

    assert "1 token = 0.80 EUR" in ok(berlin_home, "rate", "set", "0.80", "eur")
    assert ok(berlin_home, "rate", "show").strip() == "1 token = 0.80 EUR (the token has 18 decimals)"
    assert ok(berlin_home, "rate", "set", "2.5", "USD", "--decimals", "6")
    assert ok(berlin_home, "rate", "show").strip() == "1 token = 2.5 USD (the token has 6 decimals)"

    for bad, problem in [
        (("0", "EUR"), "above 0"),
        (("--", "-1", "EUR"), "above 0"),
        (("abc", "EUR"), "is not an amount"),
        (("1", "EURO"), "not a currency code"),
        (("1", "EUR", "--decimals", "40"), "from 0 to 36"),
    ]:
        refused = run_cli(berlin_home, "rate", "set", *bad)
        assert refused.returncode == 2, (bad, refused.stderr)
        assert problem in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert ok(berlin_home, "rate", "show").strip() == "1 token = 2.5 USD (the token has 6 decimals)"
    # The agent's figures name what stays missing: the rate is in USD, the tariff in EUR.
    assert any("USD" in note for note in json.loads(ok(berlin_home, "earnings", "--json"))["missing"])


def test_a_bad_tariff_file_is_refused_naming_the_problem_and_the_tariff_in_force_stays(
    berlin_agent: RunningAgent, berlin_home: Path, tmp_path: Path
) -> None:
    ok(berlin_home, "tariff", "set", str(EXAMPLE_TARIFF))
    before = ok(berlin_home, "tariff", "show")

    backwards = tmp_path / "backwards.toml"
    backwards.write_text(
        'currency = "EUR"\ntime_zone = "Europe/Berlin"\nprice_per_kwh = "0.30"\n'
        '[[window]]\ndays = "weekdays"\nfrom = "21:00"\nto = "17:00"\nprice_per_kwh = "0.45"\n'
    )
    broken = tmp_path / "broken.toml"
    broken.write_text('currency = "EUR"\ntime_zone = "Europe/Berlin"\nprice_per_kwh = 0.30 kWh\n')
    unknown_zone = tmp_path / "zone.toml"
    unknown_zone.write_text('currency = "EUR"\ntime_zone = "Europe/Atlantis"\nprice_per_kwh = "0.30"\n')
    for path, problem in [
        (backwards, "window 1: a time-of-use window must end after it starts (21:00-17:00)"),
        (broken, "is not valid TOML"),
        (broken, "line 3"),
        (unknown_zone, "'Europe/Atlantis' is not a time zone"),
        (tmp_path / "missing.toml", "cannot read the tariff file"),
    ]:
        refused = run_cli(berlin_home, "tariff", "set", str(path))
        assert refused.returncode == 2, refused
        message = " ".join(refused.stderr.split())  # the console may wrap a long line
        assert str(path) in message, message
        assert problem in message, message
        assert "The tariff in force is unchanged" in message
    assert ok(berlin_home, "tariff", "show") == before

    # The agent checks too: a bad tariff sent past the CLI's check is refused, and nothing changes.
    with ControlClient(berlin_agent.endpoint) as client, pytest.raises(AgentRequestError) as refusal:
        client.set_tariff(backwards.read_text())
    assert refusal.value.status_code == 422
    assert "must end after it starts" in str(refusal.value)
    assert ok(berlin_home, "tariff", "show") == before


def test_the_export_adds_up_exactly_to_the_earnings_total(
    berlin_agent: RunningAgent, berlin_home: Path, tmp_path: Path
) -> None:
    ok(berlin_home, "tariff", "set", str(EXAMPLE_TARIFF))
    ok(berlin_home, "rate", "set", "0.8", "EUR")
    write_known_leases(berlin_agent, berlin_home)
    period = ("--since", "2026-10-01", "--until", "2026-10-31")

    summary = json.loads(ok(berlin_home, "earnings", "--json", *period))
    total = summary["total"]
    rows = list(csv.DictReader(io.StringIO(ok(berlin_home, "export", "--format", "csv", *period), newline="")))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [row["lease_id"] for row in rows] == ["lease-a", "lease-b", "lease-d", "lease-c"]
    assert sum(int(row["gross_base_units"]) for row in rows) == int(total["gross_base_units"]) == 375 * CENT
    assert sum(Decimal(row["power_cost"]) for row in rows) == Decimal(total["power_cost"]) == Decimal("0.0024")
    assert sum(Decimal(row["net"]) for row in rows) == Decimal(total["net"]) == Decimal("2.9976")
    assert sum(int(row["net_base_units"]) for row in rows) == int(total["net_base_units"])
    assert sum(Decimal(row["energy_wh"]) for row in rows) == Decimal(total["energy_wh"]) == Decimal(7)
    assert total["currency"] == "EUR"
    assert summary["missing"] == []

    # Each lease as an accountant reads it: the evening peak at 0.45 EUR/kWh, the night at 0.22, UTC and local.
    lease_a = rows[0]
    assert lease_a["started_utc"] == "2026-10-06T16:00:00+00:00"
    assert lease_a["started_local"] == "2026-10-06T18:00:00+02:00"
    assert (lease_a["energy_wh"], lease_a["power_cost"], lease_a["net"]) == ("2.000", "0.0009", "1.1991")
    assert (lease_a["voucher_status"], lease_a["voucher_ref"]) == ("confirmed", "voucher-1")
    assert (rows[1]["power_cost"], rows[1]["voucher_status"]) == ("0.00022", "pending")
    assert (rows[2]["gross_base_units"], rows[2]["net"], rows[2]["voucher_status"]) == ("0", "-0.00032", "unpaid")
    assert rows[2]["voucher_ref"] == ""

    exported = json.loads(ok(berlin_home, "export", "--format", "json", *period))
    assert [row["lease_id"] for row in exported["rows"]] == ["lease-a", "lease-b", "lease-d", "lease-c"]
    assert exported["time_zone"] == "Europe/Berlin"
    assert exported["since"] == "2026-10-01"

    # A shorter period leaves out what is outside it, in both.
    week = ("--since", "2026-10-12", "--until", "2026-10-18")
    assert [r["lease_id"] for r in csv.DictReader(io.StringIO(ok(berlin_home, "export", *week)))] == [
        "lease-d",
        "lease-c",
    ]
    assert json.loads(ok(berlin_home, "earnings", "--json", *week))["total"]["gross_base_units"] == 2 * TOKEN


def test_earnings_by_week_and_the_table(berlin_agent: RunningAgent, berlin_home: Path) -> None:
    ok(berlin_home, "tariff", "set", str(EXAMPLE_TARIFF))
    ok(berlin_home, "rate", "set", "0.8", "EUR")
    write_known_leases(berlin_agent, berlin_home)
    period = ("--since", "2026-10-01", "--until", "2026-10-31")

    weekly = json.loads(ok(berlin_home, "earnings", "--json", "--by", "week", *period))
    assert [(r["bucket"], r["gross_base_units"], r["pending_base_units"]) for r in weekly["rows"]] == [
        ("2026-W41", 175 * CENT, 25 * CENT),
        ("2026-W42", 2 * TOKEN, 2 * TOKEN),
    ]
    assert [Decimal(r["power_cost"]) for r in weekly["rows"]] == [Decimal("0.00112"), Decimal("0.00128")]
    assert weekly["rows"][0]["start"].startswith("2026-10-05T00:00:00")

    table = ok(berlin_home, "earnings", "--by", "week", *period).splitlines()
    assert table[0] == "Earnings 2026-10-01 to 2026-10-31 by week (Europe/Berlin); 1 token = 0.8 EUR"
    header = table[2].split()
    assert header[:3] == ["bucket", "gross", "(tokens)"]
    assert "(EUR)" in header
    assert table[4].split() == ["2026-W41", "1.75", "0.25", "3.000", "0.00112", "1.39888"]
    assert table[5].split() == ["2026-W42", "2", "2", "4.000", "0.00128", "1.59872"]
    assert table[7].split() == ["total", "3.75", "2.25", "7.000", "0.0024", "2.9976"]

    daily = json.loads(ok(berlin_home, "earnings", "--json", *period))
    assert [r["bucket"] for r in daily["rows"]] == ["2026-10-06", "2026-10-08", "2026-10-12", "2026-10-17"]
    by_job = json.loads(ok(berlin_home, "earnings", "--json", "--by", "job", *period))
    assert [r["bucket"] for r in by_job["rows"]] == ["lease-a", "lease-b", "lease-d", "lease-c"]

    # A rate in another currency than the tariff's: no net, and the table says why.
    ok(berlin_home, "rate", "set", "1", "USD")
    without = ok(berlin_home, "earnings", "--by", "month", *period)
    assert "the token rate is in USD, the tariff in EUR" in " ".join(without.split())
    assert "2026-10" in without

    with ControlClient(berlin_agent.endpoint) as client:
        assert client.today().day == datetime.now(BERLIN).date()


def test_the_export_is_written_to_a_file_whole_or_not_at_all(
    berlin_agent: RunningAgent, berlin_home: Path, tmp_path: Path
) -> None:
    write_known_leases(berlin_agent, berlin_home)
    period = ("--since", "2026-10-01", "--until", "2026-10-31")
    printed = ok(berlin_home, "export", *period)
    target = tmp_path / "leases.csv"
    assert "Wrote 4 leases" in ok(berlin_home, "export", "--format", "csv", *period, "--output", str(target))
    assert target.read_text() == printed
    assert target.read_bytes().count(b"\r\n") == 5  # the csv module's own line ends: a header and four leases
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # earnings are private

    nowhere = tmp_path / "no-such-folder" / "leases.csv"
    refused = run_cli(berlin_home, "export", *period, "--output", str(nowhere))
    assert refused.returncode == 2
    assert f"Cannot write {nowhere}" in " ".join(refused.stderr.split())
    folder = tmp_path / "a-folder"
    folder.mkdir()
    refused = run_cli(berlin_home, "export", *period, "--output", str(folder))
    assert refused.returncode == 2
    assert list(folder.iterdir()) == []
    assert list(tmp_path.glob(".*.tmp")) == []

    assert berlin_agent.stop() == 0
    stale = tmp_path / "stale.csv"
    no_agent = run_cli(berlin_home, "export", *period, "--output", str(stale))
    assert no_agent.returncode == 3
    assert "sparecycles agent" in no_agent.stderr
    assert not stale.exists()


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (("earnings", "--since", "2026-02-30"), "--since '2026-02-30' is not a day"),
        (("earnings", "--until", "yesterday"), "--until 'yesterday' is not a day"),
        (("earnings", "--since", "2026-10-10", "--until", "2026-10-01"), "is before --since"),
        (("earnings", "--by", "year"), "--by 'year': use one of hour, day, week, month, job"),
        (("export", "--format", "xlsx"), "--format 'xlsx': use csv or json"),
        (("export", "--since", "26-10-01"), "--since '26-10-01' is not a day"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_code_2(
    berlin_home: Path, arguments: tuple[str, ...], problem: str
) -> None:
    # No agent runs: the arguments are checked before it is asked (and would be answered with 3).
    result = run_cli(berlin_home, *arguments)
    assert result.returncode == 2, result
    assert result.stderr.strip() == f"Error: {problem}" or problem in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_an_agent_the_ledger_commands_say_so_with_exit_code_3(berlin_home: Path, tmp_path: Path) -> None:
    for arguments in (("earnings",), ("export",), ("tariff", "show"), ("rate", "show"), ("rate", "set", "1", "EUR")):
        result = run_cli(berlin_home, *arguments)
        assert result.returncode == 3, (arguments, result)
        assert "sparecycles agent" in result.stderr
    assert run_cli(berlin_home, "tariff", "set", str(EXAMPLE_TARIFF)).returncode == 3
    broken = tmp_path / "broken.toml"
    broken.write_text('currency = "EUR"\nprice_per_kwh = \n')
    refused = run_cli(berlin_home, "tariff", "set", str(broken))  # TOML is checked before the agent is asked
    assert refused.returncode == 2
    assert "is not valid TOML" in refused.stderr
    assert "line 2" in refused.stderr
