"""On PostgreSQL the marketplace spends no round trip it does not need: a pooled connection is checked only when
it lay idle (and is then replaced if its backend is gone), and a poll runs without BEGIN and COMMIT around its
statements. Each round trip costs both the server and PostgreSQL's backend CPU (bench/market_cpu.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eth_account import Account
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

from sparecycles.agent.market_server import db
from sparecycles.protocol.jobs import JobSpec
from sparecycles.protocol.market import JobSubmission
from tests.market.conftest import BUSYBOX, Clock, open_in_process, register_rig


@pytest.fixture
def admin(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(admin: Engine, pid: int) -> None:
    with admin.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()


@contextlib.contextmanager
def _pooled_connection_gone(
    url: str, admin: Engine, monkeypatch: pytest.MonkeyPatch, idle_before_ping_s: float
) -> Iterator[tuple[Engine, int]]:
    """``db.open_engine(url)`` checking connections idle for ``idle_before_ping_s``, with one connection back in
    its pool whose backend was just terminated (as by a restart of PostgreSQL); yields it and that backend."""
    monkeypatch.setattr(db, "IDLE_BEFORE_PING_S", idle_before_ping_s)
    engine = db.open_engine(url)
    try:
        first = _backend_pid(engine)  # the connection goes back to the pool
        _terminate(admin, first)
        yield engine, first
    finally:
        engine.dispose()


def test_an_idle_pooled_connection_whose_backend_is_gone_is_replaced_before_use(
    postgres_url: str, admin: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As after PostgreSQL restarted while the server was quiet: the next request gets a working connection."""
    with _pooled_connection_gone(postgres_url, admin, monkeypatch, 0.05) as (engine, first):
        time.sleep(0.1)  # idle past the limit
        second = _backend_pid(engine)  # checked on the way out of the pool, found gone, replaced
        assert second != first


def test_a_connection_used_moments_ago_is_handed_out_unchecked(
    postgres_url: str, admin: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping under load: a connection lost while in use fails its request, which replaces the pool."""
    with _pooled_connection_gone(postgres_url, admin, monkeypatch, 3600.0) as (engine, first):
        with pytest.raises(DBAPIError) as failed:
            _backend_pid(engine)  # not checked: the request finds the backend gone
        assert failed.value.connection_invalidated
        assert _backend_pid(engine) != first  # and the next one gets a new connection


def test_a_poll_on_postgresql_runs_its_statements_outside_a_transaction(tmp_path: Path, postgres_url: str) -> None:
    """Reads, marking the provider seen and placing bids: each statement commits on its own, with no BEGIN and
    COMMIT sent around them (a submission, which moves credit, stays one transaction)."""
    clock = Clock()
    market = open_in_process(tmp_path, clock, postgres_url)
    market.ticks_on_poll = False
    requester_id = market.requester_for_key(market.add_requester("studio"))
    market.credit("studio", 10**24)
    provider = Account.create().address
    gpu = "GPU-00000000-0000-0000-0000-000000000000"
    register_rig(market, provider, [gpu])
    statuses: list[tuple[str, psycopg.pq.TransactionStatus]] = []

    def note_status(connection: Any, _cursor: object, statement: str, *_args: object) -> None:
        status = connection.connection.driver_connection.info.transaction_status
        statuses.append((statement.split(maxsplit=1)[0], status))

    event.listen(market._engine, "before_cursor_execute", note_status)
    spec = JobSpec(image=BUSYBOX, command=["true"], gpus=1, max_runtime_s=60)
    market.submit(requester_id, JobSubmission(spec=spec, max_price_per_gpu_hour=10**7, bidding_window_s=1))
    submitted, statuses[:] = list(statuses), []
    market.poll(provider)
    polled = list(statuses)

    assert [kind for kind, _ in polled].count("INSERT") == 1  # it bid on the job
    assert {status for _, status in polled} == {psycopg.pq.TransactionStatus.IDLE}
    # the submission's second statement already ran inside its transaction
    assert submitted[1][1] == psycopg.pq.TransactionStatus.INTRANS
    with market.reading() as connection:
        bids = connection.execute(text("SELECT provider_address FROM bids")).scalars().all()
    assert bids == [provider]  # committed, seen from another connection
