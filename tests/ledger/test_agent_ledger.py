"""The ledger inside a real agent: a damaged ledger is set aside and the owner is told; one from a newer version is
left untouched and the agent works on, answering the ledger's routes with why they are unavailable; a real
agent with simulated GPUs records their energy as idle, and commits it when it stops."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from sparecycles.agent.ledger.store import LedgerStore
from tests.conftest import run_cli, start_agent


def ledger_file(home: Path) -> Path:
    return home / "state" / "ledger.sqlite3"


def test_a_damaged_ledger_is_set_aside_and_the_owner_is_told(home: Path) -> None:
    path = ledger_file(home)
    path.parent.mkdir(parents=True)
    LedgerStore.open(path, ZoneInfo("UTC")).close()
    damaged = bytearray(path.read_bytes())
    damaged[100:4096] = b"\xff" * (4096 - 100)
    path.write_bytes(bytes(damaged))
    agent = start_agent(home)
    try:
        shown = httpx.get(f"{agent.url}/v1/ledger", headers=agent.auth, timeout=10)
        assert shown.status_code == 200, shown.text
        problem = shown.json()["problem"]
        assert "damaged" in problem
        [aside] = path.parent.glob("ledger.sqlite3.corrupt-*[0-9Z]")
        assert aside.read_bytes() == bytes(damaged)  # kept as it was
        assert str(aside) in problem
        assert "damaged" in (home / "logs" / "agent.log").read_text()
        assert "damaged" in run_cli(home, "status").stdout  # the owner sees it where they look
    finally:
        agent.stop()


def test_a_ledger_from_a_newer_version_is_left_alone_and_its_routes_say_why(home: Path) -> None:
    path = ledger_file(home)
    path.parent.mkdir(parents=True)
    LedgerStore.open(path, ZoneInfo("UTC")).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'l9999'")
    connection.close()
    before = path.read_bytes()
    agent = start_agent(home)
    try:
        answer = httpx.get(f"{agent.url}/v1/earnings", headers=agent.auth, timeout=10)
        assert answer.status_code == 503
        assert "newer than this version" in answer.json()["message"]
        status = run_cli(home, "status")
        assert status.returncode == 0  # the agent itself works on
        assert "Ledger: not recording: the ledger is at schema l9999, newer than this version" in status.stdout
        refused = run_cli(home, "earnings")
        assert refused.returncode != 0
        assert "newer than this version" in refused.stderr
    finally:
        agent.stop()
    assert path.read_bytes() == before


def test_a_real_agent_records_its_gpus_energy_and_commits_it_when_it_stops(home: Path) -> None:
    agent = start_agent(home, "--simulated-gpus", "2")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not httpx.get(f"{agent.url}/v1/status", headers=agent.auth).json()["gpus"]:
        time.sleep(0.2)
    time.sleep(3)  # a few GPU ticks: fewer than the 10 s an interval lasts, so only the stop commits them
    agent.stop()
    with sqlite3.connect(f"file:{ledger_file(home)}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT gpu_uuid, job_id, energy_mj, end_ms - start_ms FROM energy").fetchall()
    connection.close()
    assert {row[0] for row in rows} == {f"SIM-00000000-0000-0000-0000-00000000000{i}" for i in range(2)}
    assert all(job is None for _, job, _, _ in rows)  # nothing ran: idle
    for _, _, energy_mj, span_ms in rows:
        assert abs(energy_mj - 17 * span_ms) <= 17 * 50  # 17 W, give or take the moment of the reading


def test_days_the_ledger_cannot_step_past_are_refused_not_a_server_error(home: Path) -> None:
    agent = start_agent(home)
    try:
        for query in ("until=0001-01-01", "since=0001-01-01&until=0001-01-02", "since=9999-12-30&until=9999-12-31"):
            for route in ("earnings", "export"):
                answer = httpx.get(f"{agent.url}/v1/{route}?{query}", headers=agent.auth, timeout=10)
                assert answer.status_code == 422, (route, query, answer.text)
                assert "Ask for days from 1970-01-01 to 9998-12-31" in answer.json()["message"]
    finally:
        agent.stop()
