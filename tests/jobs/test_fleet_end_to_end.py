"""A studio's fleet end to end: a real marketplace process (`sparecycles market serve`), three real agent processes
(simulated GPUs, isolated homes) running CPU jobs in a real Docker engine, the operator's commands
(`market enrol-code`, `market group-policy`, `sparecycles fleet …`) and the machines' (`join`, `leave`,
`status --json`).

The tests share one fleet and run in file order: enrolment and policy, then the studio's own job preempting
outside work, then drain, cancel and pause-until, and last an agent killed to show offline.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from sparecycles.schedule import intersect_windows
from tests.conftest import CLI, RunningAgent, agent_env, run_cli, start_agent
from tests.jobs.conftest import LocalRegistry
from tests.jobs.test_market_end_to_end import CORE_FLOOR, wait_for
from tests.market.market_process import MarketProcess

pytestmark = pytest.mark.docker

GROUP = "render-farm"
NIGHTS = ["Mon-Fri 19:00-08:00", "Sat-Sun"]
OWN_WINDOWS = ["daily"]
PRICE = {"max_price_per_core_hour": 5 * CORE_FLOOR, "bidding_window_s": 1}


@dataclass
class Machine:
    name: str
    home: Path
    agent: RunningAgent
    address: str = ""

    def cli(self, *args: str) -> Any:
        return run_cli(self.home, *args)

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--json")
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))


@dataclass
class Studio:
    market: MarketProcess
    token: str
    code: str
    machines: list[Machine] = field(default_factory=list)
    requesters: dict[str, httpx.Client] = field(default_factory=dict)

    def fleet(self, *args: str) -> Any:
        """`sparecycles fleet …` as the studio's operator, from a machine of its own."""
        return subprocess.run(
            [CLI, "fleet", "--market", self.market.url(), "--admin-token", self.token, *args],
            env=agent_env(self.market.folder),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def machines_json(self) -> list[dict[str, Any]]:
        result = self.fleet("--json")
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout))

    def explain(self, client: httpx.Client, jobs: list[str]) -> str:
        """What a failed wait shows: the jobs as their requester sees them, the fleet's view of each machine,
        and the last lines of each agent's console and of the marketplace's log."""
        parts = [json.dumps([_view(client, job) for job in jobs], indent=1, default=str)]
        fleet = self.fleet("--json")
        parts.append(fleet.stdout or fleet.stderr)
        for machine in self.machines:
            parts.append(f"--- {machine.name} ({machine.address}) console:\n{machine.agent.console[-4000:]}")
        parts.append(f"--- marketplace log:\n{self.market.stderr[-4000:]}")
        return "\n".join(parts)

    def requester(self, name: str, group: str | None = None) -> httpx.Client:
        if name not in self.requesters:
            key = self.market.operator("add-requester", name)
            self.market.operator("credit", name, str(10**15))
            if group is not None:
                self.market.operator("requester-group", name, group)
            self.requesters[name] = httpx.Client(
                base_url=self.market.url(), headers={"Authorization": f"Bearer {key}"}, timeout=10
            )
        return self.requesters[name]


def configure(home: Path, registry: LocalRegistry, market_url: str | None, max_temperature: int | None) -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    url = f'url = "{market_url}"\n' if market_url else ""
    cap = f"[gpu]\nmax_temperature_c = {max_temperature}\n" if max_temperature else ""
    config.write_text(
        f'[work]\nmode = "schedule"\n[schedule]\nwindows = {json.dumps(OWN_WINDOWS)}\n{cap}'
        f'[jobs]\nallowed_registries = ["{registry.host}"]\nmax_cpus = 1\n'
        f'[marketplace]\n{url}payout_address = "{Account.create().address}"\n'
        f"price_floor_per_core_hour = {CORE_FLOOR}\n"
        f'identity_key_file = "{home / "identity.key"}"\n'
    )


@pytest.fixture(scope="module")
def studio(
    tmp_path_factory: pytest.TempPathFactory, local_registry: LocalRegistry, docker_exec_works: None
) -> Iterator[Studio]:
    folder = tmp_path_factory.mktemp("fleet")
    market = MarketProcess(
        folder / "market",
        serve_arguments=(
            *("--heartbeat-interval", "1", "--lease-timeout", "5"),
            *("--provider-online", "5", "--fleet-report-every", "1", "--name", "Acme Animation"),
        ),
    )
    market.start()
    token = market.operator("admin-token", "lead")
    code = json.loads(market.operator("enrol-code", "--group", GROUP, "--expires", "2h", "--json"))["code"]
    built = Studio(market, token, code)
    try:
        # Two machines configured for the studio's marketplace; the third joins from its private one.
        for index, (url, cap) in enumerate([(market.url(), 70), (market.url(), None), (None, None)]):
            home = folder / f"machine{index}"
            configure(home, local_registry, url, cap)
            built.machines.append(Machine(f"machine{index}", home, start_agent(home)))
        yield built
    finally:
        for client in built.requesters.values():
            client.close()
        for machine in built.machines:
            if machine.agent.process.poll() is None:
                machine.agent.stop()
        market.stop()


def join(studio: Studio, machine: Machine) -> dict[str, Any]:
    result = machine.cli("join", studio.market.url(), studio.code)
    assert result.returncode == 0, result.stderr + machine.agent.console
    status = machine.status()
    machine.address = status["marketplace"]["provider_address"]
    return status


def test_three_machines_enrol_and_report_the_groups_schedule_with_a_stricter_local_cap(studio: Studio) -> None:
    policy = ("--mode", "idle_in_schedule", *(f"--window={w}" for w in NIGHTS), "--max-temperature", "80")
    studio.market.operator("group-policy", GROUP, *policy)
    for machine in studio.machines:
        join(studio, machine)
    expected = intersect_windows(OWN_WINDOWS, NIGHTS)  # the owner's "daily" and the studio's nights
    for machine, cap in zip(studio.machines, (70, 80, 80), strict=True):
        fleet = wait_for(lambda m=machine: m.status()["fleet"], 30, f"{machine.name} to show its studio")
        assert fleet["group"] == GROUP
        assert fleet["policy"]["windows"] == NIGHTS
        assert fleet["note"] == f"schedule set by Acme Animation (group {GROUP})"
        assert fleet["applied"]["schedule_windows"] == expected
        assert fleet["applied"]["max_temperature_c"] == cap  # machine0's own 70 is stricter than the group's 80
        assert machine.status()["work_mode"] == "idle_in_schedule"  # the studio's mode, over the owner's "schedule"
    third = studio.machines[2].status()["marketplace"]
    assert (third["url"], third["private"]) == (studio.market.url(), False)  # joined from its private marketplace

    # The owner's own pause wins over the studio's schedule.
    first = studio.machines[0]
    assert first.cli("pause").returncode == 0
    paused = first.status()
    assert (paused["state"], paused["fleet"]["group"]) == ("paused", GROUP)
    assert first.cli("resume").returncode == 0

    # Leaving gives the machine its own settings back; it joins again for the tests below.
    left = first.cli("leave")
    assert left.returncode == 0, left.stderr
    status = first.status()
    assert (status["fleet"], status["work_mode"]) == (None, "schedule")
    assert first.address not in [machine["address"] for machine in studio.machines_json()]
    join(studio, first)

    # A new policy reaches every machine without a restart.
    studio.market.operator("group-policy", GROUP, "--window=daily", "--max-temperature", "78")
    for machine, cap in zip(studio.machines, (70, 78, 78), strict=True):
        wait_for(
            lambda m=machine, c=cap: m.status()["fleet"]["applied"]["max_temperature_c"] == c,
            30,
            f"{machine.name} to apply the new policy",
        )
        assert machine.status()["work_mode"] == "schedule"


def test_the_fleet_lists_every_machine_with_its_state_and_reason(studio: Studio) -> None:
    def all_reported() -> list[dict[str, Any]] | None:
        machines = studio.machines_json()
        ready = len(machines) == 3 and all(m["state"] and m["online"] and m["agent_version"] for m in machines)
        return machines if ready else None

    machines = wait_for(all_reported, 30, "every machine to report")
    assert {machine["address"] for machine in machines} == {machine.address for machine in studio.machines}
    for machine in machines:
        assert machine["group"] == GROUP
        assert machine["reason"]
    text = studio.fleet()
    assert text.returncode == 0, text.stderr
    for machine in studio.machines:
        assert machine.address in text.stdout


def _job(client: httpx.Client, seconds: int, **terms: Any) -> str:
    spec = {"image": terms.pop("image"), "command": ["sh", "-c", f"sleep {seconds}; echo done > /job/output/r.txt"]}
    answer = client.post("/v1/jobs", json={"spec": {**spec, "cpus": 1.0, "max_runtime_s": 300}, **PRICE, **terms})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["job_id"])


def _view(client: httpx.Client, job_id: str) -> dict[str, Any]:
    return dict(client.get(f"/v1/jobs/{job_id}").json())


def test_a_studio_job_preempts_outside_work_and_the_outside_job_completes_later(
    studio: Studio, busybox_image: str
) -> None:
    outside = studio.requester("outside")
    artist = studio.requester("artist", GROUP)
    outside_jobs = [_job(outside, 8, image=busybox_image) for _ in studio.machines]
    wait_for(
        lambda: all(_view(outside, job)["state"] == "running" for job in outside_jobs),
        90,
        "outside work on every machine",
        lambda: studio.explain(outside, outside_jobs),
    )
    studio_job = _job(artist, 1, image=busybox_image, project="sh010")
    # Within 30 s the studio's job has a machine: one outside lease was preempted for it.
    wait_for(
        lambda: _view(artist, studio_job)["state"] in ("running", "completed"),
        30,
        "the studio job to start",
        lambda: studio.explain(artist, [studio_job]) + studio.explain(outside, outside_jobs)[:3000],
    )
    preempted = [
        job for job in outside_jobs if any(lease["state"] == "preempted" for lease in _view(outside, job)["leases"])
    ]
    assert len(preempted) == 1, [_view(outside, job) for job in outside_jobs]
    wait_for(lambda: _view(artist, studio_job)["state"] == "completed", 60, "the studio job to complete")
    # The preempted outside job was requeued and completes later, as do the others.
    for job in outside_jobs:
        wait_for(
            lambda j=job: _view(outside, j)["state"] == "completed",
            120,
            f"outside job {job} to complete",
            lambda: studio.explain(outside, outside_jobs),
        )
    [again] = preempted
    states = [lease["state"] for lease in _view(outside, again)["leases"]]
    assert states.count("preempted") == 1, states
    assert states.count("accepted") == 1, states
    costs = json.loads(studio.market.operator("costs", "--by", "requester-project", "--format", "json"))
    [studio_costs] = [row for row in costs if (row["requester"], row["project"]) == ("artist", "sh010")]
    assert (studio_costs["jobs"], studio_costs["completed"]) == (1, 1)
    assert studio_costs["charged_base_units"] == _view(artist, studio_job)["charged_base_units"] > 0


def _machine_running(studio: Studio, job_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((m for m in studio.machines_json() if job_id in m["jobs"]), None)

    return dict(wait_for(found, 60, f"a machine to run {job_id}"))


def test_a_drained_machine_finishes_its_job_and_takes_no_new_one(studio: Studio, busybox_image: str) -> None:
    outside = studio.requester("outside")
    first = _job(outside, 6, image=busybox_image)
    drained = _machine_running(studio, first)
    result = studio.fleet("drain", drained["address"])
    assert result.returncode == 0, result.stderr
    assert "draining" in result.stdout
    later = [_job(outside, 1, image=busybox_image) for _ in range(3)]
    wait_for(lambda: _view(outside, first)["state"] == "completed", 60, "the drained machine's job to complete")
    for job in later:
        wait_for(lambda j=job: _view(outside, j)["state"] == "completed", 90, f"job {job} to complete elsewhere")
        assert all(lease["provider_address"] != drained["address"] for lease in _view(outside, job)["leases"])
    machine = next(m for m in studio.machines if m.address == drained["address"])
    assert "drained by" in machine.status()["reason"]
    assert studio.fleet("drain", drained["address"], "--undo").returncode == 0


def test_cancel_from_the_fleet_returns_the_held_credit(studio: Studio, busybox_image: str) -> None:
    outside = studio.requester("outside")
    job = _job(outside, 60, image=busybox_image)
    _machine_running(studio, job)
    result = studio.fleet("cancel", job)
    assert result.returncode == 0, result.stderr
    assert "cancelled" in result.stdout
    wait_for(lambda: outside.get("/v1/requester").json()["held_base_units"] == 0, 30, "the hold to return")
    assert _view(outside, job)["state"] == "cancelled"


def test_a_machine_paused_until_a_time_gives_its_job_back_and_shows_it(studio: Studio, busybox_image: str) -> None:
    outside = studio.requester("outside")
    job = _job(outside, 8, image=busybox_image)
    paused = _machine_running(studio, job)
    result = studio.fleet("pause", paused["address"], "1h")
    assert result.returncode == 0, result.stderr
    assert "paused by the studio until" in result.stdout
    machine = next(m for m in studio.machines if m.address == paused["address"])
    wait_for(lambda: machine.status()["fleet"]["paused_until"] is not None, 30, "the machine to hear of its pause")
    status = machine.status()
    assert status["state"] == "paused"
    assert re.search(r"paused by .* until \d\d:\d\d", status["reason"]), status["reason"]
    wait_for(lambda: _view(outside, job)["state"] == "completed", 90, "the job to complete on another machine")
    leases = _view(outside, job)["leases"]
    assert (leases[0]["provider_address"], leases[0]["state"]) == (paused["address"], "preempted")
    assert all(lease["provider_address"] != paused["address"] for lease in leases[1:])
    assert studio.fleet("resume", paused["address"]).returncode == 0
    wait_for(lambda: machine.status()["fleet"]["paused_until"] is None, 30, "the pause to end")


def test_a_killed_agent_shows_offline_after_the_heartbeat_timeout(studio: Studio) -> None:
    victim = studio.machines[1]
    victim.agent.process.kill()
    victim.agent.process.wait(10)

    def offline() -> dict[str, Any] | None:
        machine = next(m for m in studio.machines_json() if m["address"] == victim.address)
        return machine if not machine["online"] else None

    machine = wait_for(offline, 30, "the killed machine to show offline")
    assert machine["last_seen_at"]
    listing = studio.fleet()
    assert "OFFLINE, last seen" in listing.stdout
    others = [m for m in studio.machines_json() if m["address"] != victim.address]
    assert all(m["online"] for m in others)
