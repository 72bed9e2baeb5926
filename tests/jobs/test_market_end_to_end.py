"""End to end: a real marketplace process (`sparecycles market serve`), a real agent process taking work
from it, a real Docker engine running the job, and a requester speaking protocol v1 over HTTP."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from sparecycles.agent.jobs.containers import ContainerRunner
from sparecycles.control.client import ControlClient
from sparecycles.protocol.market import Voucher, lease_amount
from sparecycles.protocol.signing import VoucherTerms, voucher_problem
from tests.conftest import CLI, RunningAgent, run_cli, start_agent
from tests.jobs.conftest import LocalRegistry
from tests.market.market_process import MarketProcess

pytestmark = pytest.mark.docker

CORE_FLOOR = 3_600_000  # base units per core-hour: 1000 per core-second
FAST_LEASES = ("--heartbeat-interval", "1", "--lease-timeout", "5")  # a lost provider is noticed in seconds


@pytest.fixture
def market(tmp_path: Path, database_url: str) -> Iterator[MarketProcess]:
    """A marketplace server process, on SQLite and (a second run of each test) on PostgreSQL."""
    running = MarketProcess(
        tmp_path / "market",
        db_url=None if database_url.startswith("sqlite") else database_url,
        serve_arguments=FAST_LEASES,
    )
    running.start()
    yield running
    running.stop()


def configure_provider(home: Path, registry: LocalRegistry, market_url: str, payout: str, floor: int) -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        '[work]\nmode = "schedule"\n[schedule]\nwindows = ["daily"]\n'
        f'[jobs]\nallowed_registries = ["{registry.host}"]\nmax_cpus = 2\n'
        f'[marketplace]\nurl = "{market_url}"\npayout_address = "{payout}"\n'
        f"price_floor_per_core_hour = {floor}\n"
        f'identity_key_file = "{home / "identity.key"}"\n'
    )


def provider_home(tmp_path: Path, name: str, registry: LocalRegistry, market_url: str, floor: int) -> tuple[Path, str]:
    """A provider's SPARECYCLES_HOME, configured for ``market_url``; and its payout address."""
    payout = Account.create().address
    home = tmp_path / name
    home.mkdir()
    configure_provider(home, registry, market_url, payout, floor)
    return home, payout


def studio(market: MarketProcess) -> httpx.Client:
    """A requester with plenty of credit, as an HTTP client of the marketplace."""
    key = market.operator("add-requester", "studio")
    market.operator("credit", "studio", str(10**15))
    return httpx.Client(base_url=market.url(), headers={"Authorization": f"Bearer {key}"}, timeout=10)


def wait_for(
    condition: Callable[[], Any],
    timeout_s: float = 90,
    what: str = "condition",
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll ``condition`` until it is truthy; on timeout fail with ``explain()`` (what the parts say) appended."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{explain()}" if explain is not None else ""))


def test_a_cpu_job_is_auctioned_run_in_docker_reported_and_paid_exactly(
    tmp_path: Path,
    market: MarketProcess,
    local_registry: LocalRegistry,
    busybox_image: str,
    docker_exec_works: None,
) -> None:
    home, payout = provider_home(tmp_path, "provider", local_registry, market.url(), CORE_FLOOR)
    agent: RunningAgent = start_agent(home)
    requester = studio(market)
    try:
        spec = {
            "image": busybox_image,
            "command": ["sh", "-c", "sleep 1; echo rendered frame 1 > /job/output/frame.txt"],
            "cpus": 1.0,
            "max_runtime_s": 120,
        }
        submitted = requester.post(
            "/v1/jobs", json={"spec": spec, "max_price_per_core_hour": 5_000_000, "bidding_window_s": 1}
        )
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json()["job_id"]

        def completed() -> dict[str, Any] | None:
            view = requester.get(f"/v1/jobs/{job_id}").json()
            return view if view["state"] == "completed" else None

        view = wait_for(completed, what=f"job {job_id} to complete ({agent.console_file})")
        [lease] = view["leases"]
        assert lease["price_per_unit_hour"] == CORE_FLOOR
        assert lease["units"] == 1
        amount = lease_amount(CORE_FLOOR, 1, lease["run_time_ms"])
        assert lease["run_time_ms"] >= 1000  # it slept a second, at least
        assert lease["amount_base_units"] == amount

        [output] = view["outputs"]
        downloaded = requester.get(f"/v1/jobs/{job_id}/outputs/{output['path']}").content
        assert downloaded == b"rendered frame 1\n"
        assert hashlib.sha256(downloaded).hexdigest() == output["sha256"]

        account = requester.get("/v1/requester").json()
        assert view["charged_base_units"] == amount
        assert account == {"name": "studio", "credit_base_units": 10**15 - amount, "held_base_units": 0}

        voucher_file = home / "state" / "provider" / "voucher.json"
        wait_for(voucher_file.exists, 30, "the provider to keep its voucher")
        voucher = Voucher.model_validate(json.loads(voucher_file.read_text()))
        info = httpx.get(f"{market.url()}/v1/info").json()
        terms = VoucherTerms(info["operator_address"], info["chain_id"], info["voucher_contract"], payout)
        assert voucher_problem(voucher, terms) is None
        assert voucher.cumulative_amount == amount
        with ControlClient(agent.endpoint) as control:
            shown = control.status().marketplace
        assert shown is not None
        assert (shown.url, shown.private, shown.connected) == (market.url(), False, True)
        assert shown.earned_base_units == amount
    finally:
        requester.close()
        agent.stop()


def test_a_result_finished_while_the_marketplace_was_down_reaches_it_after_it_returns_exactly_once(
    tmp_path: Path,
    market: MarketProcess,
    local_registry: LocalRegistry,
    busybox_image: str,
    docker_exec_works: None,
) -> None:
    home, _payout = provider_home(tmp_path, "provider", local_registry, market.url(), CORE_FLOOR)
    agent = start_agent(home)
    requester = studio(market)
    outbox = home / "state" / "provider" / "outbox"
    try:
        spec = {"image": busybox_image, "command": ["sh", "-c", "sleep 3; echo done > /job/output/r.txt"]}
        job_id = requester.post(
            "/v1/jobs", json={"spec": spec, "max_price_per_core_hour": 5_000_000, "bidding_window_s": 1}
        ).json()["job_id"]
        wait_for(lambda: requester.get(f"/v1/jobs/{job_id}").json()["state"] == "running", what="the lease")
        market.stop()  # restarted mid-lease: down while the job finishes
        wait_for(lambda: list(outbox.glob("*.json")), 60, "the finished job's report to wait in the outbox")
        market.start()
        view = wait_for(
            lambda: (v := requester.get(f"/v1/jobs/{job_id}").json())["state"] == "completed" and v,
            what="the report to arrive after the restart",
        )
        wait_for(lambda: not list(outbox.glob("*.json")), 30, "the outbox to empty")
        assert len(view["leases"]) == 1, json.dumps(view["leases"], indent=1)
        [lease] = view["leases"]
        amount = lease_amount(CORE_FLOOR, 1, lease["run_time_ms"])
        assert (lease["state"], lease["amount_base_units"]) == ("accepted", amount)
        assert view["charged_base_units"] == amount
        voucher_file = home / "state" / "provider" / "voucher.json"
        wait_for(voucher_file.exists, 60, "the voucher")
        assert Voucher.model_validate_json(voucher_file.read_text()).cumulative_amount == amount  # paid once
    finally:
        requester.close()
        agent.stop()


def test_a_provider_killed_mid_lease_loses_it_unpaid_and_another_provider_completes_the_job(  # noqa: PLR0917
    tmp_path: Path,
    market: MarketProcess,
    local_registry: LocalRegistry,
    busybox_image: str,
    docker_exec_works: None,
    docker_client: Any,
) -> None:
    homes = {
        name: provider_home(tmp_path, name, local_registry, market.url(), floor)[0]
        for name, floor in (("cheap", CORE_FLOOR), ("dear", 2 * CORE_FLOOR))
    }
    cheap = start_agent(homes["cheap"])
    requester = studio(market)
    dear: RunningAgent | None = None
    try:
        spec = {"image": busybox_image, "command": ["sh", "-c", "sleep 4; echo ok > /job/output/r.txt"]}
        job_id = requester.post(
            "/v1/jobs", json={"spec": spec, "max_price_per_core_hour": 5 * CORE_FLOOR, "bidding_window_s": 2}
        ).json()["job_id"]
        dear = start_agent(homes["dear"])
        wait_for(lambda: requester.get(f"/v1/jobs/{job_id}").json()["state"] == "running", what="the first lease")
        leases = requester.get(f"/v1/jobs/{job_id}").json()["leases"]
        assert [lease["price_per_unit_hour"] for lease in leases] == [CORE_FLOOR], (  # the lower floor won
            json.dumps(leases, indent=1) + cheap.console_file.read_text()[-3000:]
        )
        cheap.process.kill()  # SIGKILL mid-lease: no more heartbeats
        cheap.process.wait(10)
        view = wait_for(
            lambda: (v := requester.get(f"/v1/jobs/{job_id}").json())["state"] == "completed" and v,
            what="the job to complete on the other provider",
        )
        by_price = {lease["price_per_unit_hour"]: lease for lease in view["leases"]}
        assert (by_price[CORE_FLOOR]["state"], by_price[CORE_FLOOR]["amount_base_units"]) == ("lost", None)
        second = by_price[2 * CORE_FLOOR]
        assert second["state"] == "accepted"
        assert view["charged_base_units"] == second["amount_base_units"]
        assert not (homes["cheap"] / "state" / "provider" / "voucher.json").exists()
    finally:
        requester.close()
        if dear is not None:
            dear.stop()
        agent_id = (homes["cheap"] / "state" / "agent-id").read_text().strip()
        ContainerRunner(docker_client, agent_id=agent_id).remove_leftovers()  # what the killed agent left


def run_the_example_job_on_the_private_marketplace(
    tmp_path: Path, registry: LocalRegistry, image: str, *, cli: str = CLI
) -> None:
    """The README's first job, as a new user runs it: an agent with no marketplace set (so the private
    one), ``submit`` the example job spec, wait for ``job`` to say completed, fetch its ``result``.
    ``cli`` is the command under test (the installed one, or the PyInstaller bundle)."""
    home, _payout = provider_home(tmp_path, "owner", registry, "", CORE_FLOOR)
    config = home / "config" / "config.toml"
    # No marketplace and no payout address: the private marketplace needs nothing set up.
    config.write_text(
        "\n".join(
            line for line in config.read_text().splitlines() if not line.startswith(("url =", "payout_address ="))
        )
        + "\n"
    )
    example = (Path(__file__).resolve().parents[2] / "examples" / "market-job.toml").read_text()
    image_line = next(line for line in example.splitlines() if line.startswith("image = "))
    job_file = tmp_path / "job.toml"
    job_file.write_text(
        example.replace(image_line, f'image = "{image}"').replace("bidding_window_s = 5", "bidding_window_s = 1")
    )
    agent = start_agent(home, cli=cli)
    try:
        wait_for((home / "state" / "market" / "endpoint.json").exists, 30, "the private marketplace")
        submitted = run_cli(home, "submit", str(job_file), cli=cli)
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.split()[1]

        def completed() -> bool:
            shown = run_cli(home, "job", job_id, "--json", cli=cli)
            assert shown.returncode == 0, shown.stderr
            return bool(json.loads(shown.stdout)["state"] == "completed")

        wait_for(completed, what=f"the example job to complete ({agent.console_file})")
        fetched = run_cli(home, "result", job_id, str(tmp_path / "results"), cli=cli)
        assert fetched.returncode == 0, fetched.stderr
        assert (tmp_path / "results" / "words.txt").read_text().strip() == "3"  # "Hello from SpareCycles!"
        assert job_id in run_cli(home, "jobs", cli=cli).stdout
        with ControlClient(agent.endpoint) as control:
            shown = control.status().marketplace
        assert shown is not None
        assert shown.private
    finally:
        agent.stop()


def test_the_example_job_runs_end_to_end_on_the_private_marketplace_of_a_machine_without_a_gpu(
    tmp_path: Path, local_registry: LocalRegistry, busybox_image: str, docker_exec_works: None
) -> None:
    run_the_example_job_on_the_private_marketplace(tmp_path, local_registry, busybox_image)


def test_two_replicas_on_two_real_agents_agree_and_both_are_paid(
    tmp_path: Path, market: MarketProcess, local_registry: LocalRegistry, busybox_image: str, docker_exec_works: None
) -> None:
    homes = [provider_home(tmp_path, name, local_registry, market.url(), CORE_FLOOR)[0] for name in ("one", "two")]
    agents = [start_agent(home) for home in homes]
    requester = studio(market)
    try:
        spec = {"image": busybox_image, "command": ["sh", "-c", "echo same answer > /job/output/a.txt"]}
        job_id = requester.post(
            "/v1/jobs",
            json={"spec": spec, "max_price_per_core_hour": 5_000_000, "bidding_window_s": 2, "replicas": 2},
        ).json()["job_id"]
        view = wait_for(
            lambda: (v := requester.get(f"/v1/jobs/{job_id}").json())["state"] == "completed" and v,
            what="both replicas to report and agree",
        )
        leases = view["leases"]
        assert len({lease["provider_address"] for lease in leases}) == 2  # two different providers
        assert all(lease["state"] == "accepted" for lease in leases)
        assert view["charged_base_units"] == sum(lease["amount_base_units"] for lease in leases)
    finally:
        requester.close()
        for agent in agents:
            agent.stop()
