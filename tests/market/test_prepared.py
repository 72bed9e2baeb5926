"""The hot statements run on SQLite's cursor (prepared.py) answer exactly as SQLAlchemy's execution does: the
same rows, the same values of the same types, read by the same names; and an update writes the same rows."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import create_engine, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import InvalidRequestError, MultipleResultsFound, NoResultFound

from sparecycles.agent.market_server import db as tables
from sparecycles.agent.market_server import market as market_module
from sparecycles.agent.market_server.market import Marketplace
from sparecycles.agent.market_server.prepared import PreparedStatement, Rows
from sparecycles.protocol.jobs import JobSpec
from sparecycles.protocol.market import (
    JobSubmission,
    Offer,
    OutputFile,
    ResultReport,
    SignedResultReport,
)
from sparecycles.protocol.signing import sign_text
from tests.market.conftest import BUSYBOX, Clock, open_in_process, register_rig


@pytest.fixture
def busy(tmp_path: Path) -> tuple[Marketplace, dict[str, Any]]:
    """A marketplace with something in every table the statements read: providers (one with two GPUs, one in
    no offer), queued, running and completed jobs, active, reported and lost leases, an upload and payouts."""
    clock = Clock()
    market = open_in_process(tmp_path, clock)
    market.ticks_on_poll = False
    requester_id = market.requester_for_key(market.add_requester("studio"))
    market.credit("studio", 10**24)
    identities = [Account.create() for _ in range(3)]
    for index, identity in enumerate(identities):
        gpus = [f"GPU-{index}{gpu}000000-0000-0000-0000-000000000000" for gpu in range(2 if index == 0 else 1)]
        offer = Offer(cpu_cores=4, gpu_uuids=gpus if index < 2 else [])
        register_rig(market, identity.address, gpus, name=f"rig {index}", gpu_floor=10**6 + index, offer=offer)
    spec = JobSpec(image=BUSYBOX, command=["true"], gpus=1, max_runtime_s=60, max_output_bytes=1024)
    for _ in range(5):
        market.submit(requester_id, JobSubmission(spec=spec, max_price_per_gpu_hour=10**7, bidding_window_s=1))
    for identity in identities:
        market.poll(identity.address)
    clock.advance(2)
    market.tick()
    leases = [(identity, lease) for identity in identities for lease in market.poll(identity.address).leases]
    assert len(leases) >= 2, leases
    (first, reported), (second, beating) = leases[0], leases[1]
    market.heartbeat(first.address, reported.lease_id, 100)
    output = market.store_output(first.address, reported.lease_id, "out.txt", io.BytesIO(b"hello"))
    report = ResultReport(
        lease_id=reported.lease_id,
        job_id=reported.job_id,
        outcome="finished",
        exit_code=0,
        run_time_ms=100,
        outputs=[OutputFile(path=output.path, size_bytes=output.size_bytes, sha256=output.sha256)],
    )
    market.report(
        first.address,
        reported.lease_id,
        SignedResultReport(report=report, signature=sign_text(first, report.signing_text())),
    )
    market.heartbeat(second.address, beating.lease_id, 50)
    with market.transaction() as session:
        payout = session.scalars(select(tables.Payout.payout_address)).first()
    return (
        market,
        {
            "requester": requester_id,
            "providers": [identity.address for identity in identities],
            "reported": reported.lease_id,
            "beating": beating.lease_id,
            "job": beating.job_id,
            "payout": payout,
            "now": clock(),
        },
    )


def _parameters(name: str, found: dict[str, Any]) -> list[dict[str, Any]]:
    """Parameters for each prepared statement: ones that find rows, and ones that find none."""
    now: datetime = found["now"]
    who = found["providers"]
    nobody = Account.create().address
    # "enough": the rounds with enough bidders, left out (SQLite gets the list as JSON): none, or one not queued
    bidding = {"at": now - timedelta(seconds=30), "cores": 4, "gpus": 1, "enough": [f"{found['job']}:0"]}
    return {
        "provider_gpus": [{"who": address} for address in [*who, nobody]],
        "provider_leases": [{"who": address, "since": now - timedelta(hours=1)} for address in [*who, nobody]],
        "biddable": [{"who": address, **bidding} for address in [*who, nobody]]
        + [{"who": who[0], **bidding, "enough": []}],
        "biddable_in_group": [{"who": who[0], **bidding, "group": "none"}],
        "seen": [{"who": who[0], "at": now + timedelta(seconds=7)}],
        "beating_lease": [{"id": found["beating"]}, {"id": found["reported"]}, {"id": "lease-none"}],
        "beat": [{"lease": found["beating"], "expiry": now + timedelta(seconds=30), "run_ms": 1234}],
        "reported_lease": [{"lease": found["beating"]}, {"lease": found["reported"]}, {"lease": "lease-none"}],
        "uploads": [{"lease": found["reported"]}, {"lease": found["beating"]}],
        "payout_cumulative": [{"payout": found["payout"]}, {"payout": nobody}],
        "payout_update": [{"payout": found["payout"], "total": 2**200 + 7, "voucher": "{}", "at": now}],
        "accept_lease": [
            {
                "lease": found["beating"],
                "report": "{}",
                "signature": "0x00",
                "run_ms": 99,
                "earned": 10**21,
                "cumulative": 10**22,
                "at": now,
            }
        ],
        "complete_job": [{"job": found["job"], "settled": 12345678901234567890, "at": now}],
        "requester_credit": [{"requester": found["requester"]}],
        "queued_count": [{"requester": found["requester"]}, {"requester": "nobody"}],
        "hold_credit": [{"requester": found["requester"], "new_credit": 10**30, "new_held": 5}],
    }[name]


def _typed(rows: list[Any]) -> list[tuple[tuple[str, Any, type], ...]]:
    """Each row as (name, value, type) of each column: equal values of another type would not do."""
    return [tuple((name, value, type(value)) for name, value in row._asdict().items()) for row in rows]


class _Undo(Exception):
    """Raised to roll a comparison's transaction back."""


def _undone(market: Marketplace, execute: Callable[[Any], Rows | None], *, reads: bool) -> Any:
    """In a writer's transaction that is then rolled back: the rows ``execute(connection)`` reads, or for an
    update the tables it may change as they are after it (as the transaction sees them)."""
    try:
        with market.writing() as connection:
            rows = execute(connection)
            raise _Undo(_typed(list(rows)) if reads and rows is not None else _tables_seen(connection))
    except _Undo as undone:
        return undone.args[0]


def _tables_seen(connection: Any) -> list[tuple[Any, ...]]:
    return [
        (table, *row)
        for table in ("providers", "leases", "jobs", "requesters", "payouts", "bids", "audit_events")
        for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))  # noqa: S608 - names above
    ]


@pytest.mark.parametrize("name", market_module._PREPARED)
def test_a_prepared_statement_answers_as_sqlalchemy_does(busy: tuple[Marketplace, dict[str, Any]], name: str) -> None:
    market, found = busy
    statement = getattr(market._sql, name)
    prepared = market._prepared[id(statement)]
    assert prepared.sql == str(statement.compile(dialect=market._engine.dialect))
    reads = statement.is_select
    rows_found = 0
    for parameters in _parameters(name, found):
        by_sqlalchemy = _undone(market, functools.partial(_by_sqlalchemy, statement, parameters), reads=reads)
        by_cursor = _undone(market, functools.partial(prepared.execute, parameters=parameters), reads=reads)
        assert by_cursor == by_sqlalchemy, (name, parameters)
        if reads:
            rows_found += len(by_sqlalchemy)
        else:
            unchanged = _undone(market, lambda _connection: None, reads=False)
            assert by_sqlalchemy != unchanged, f"{name} changed nothing: the comparison would prove nothing"
    if reads and name != "biddable_in_group":  # no studio group here: nothing to find, and nothing found
        assert rows_found, f"{name} found no rows with any of its parameters: the comparison would prove nothing"


def _inserted(name: str, found: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for each prepared insert, with every column given: None where a column may be NULL, a token amount
    past 64 bits, times in UTC."""
    now: datetime = found["now"]
    job = {
        "id": "job-new",
        "requester_id": found["requester"],
        "spec_json": "{}",
        "gpus": 1,
        "units": 1,
        "max_price": 2**70 + 1,
        "bidding_window_s": 1.5,
        "min_score": None,
        "replicas": 2,
        "state": "queued",
        "reason": "queued: collecting bids",
        "round": 3,
        "window_ends_at": now + timedelta(seconds=1),
        "attempts": 0,
        "held": 10**21,
        "charged": 0,
        "created_at": now,
        "group_name": None,
        "priority": 10,
        "project": "film",
    }
    lease = {
        "id": "lease-new",
        "job_id": found["job"],
        "provider_address": found["providers"][2],
        "payout_address": found["payout"],
        "gpu_uuids_json": "[]",
        "units": 1,
        "price": 2**65,
        "seat": 1,
        "state": "active",
        "delivered": False,
        "cancel_requested": True,
        "started_at": now,
        "expires_at": now + timedelta(seconds=30),
    }
    bids = [
        {
            "job_id": found["job"],
            "round": 9,
            "provider_address": address,
            "price": 10**6,
            "score": 90.5,
            "placed_at": now,
        }
        for address in found["providers"]
    ]
    audit = [
        market_module._audit_values("requester:studio", "hold", "job:job-new", 2**80, {}),
        market_module._audit_values("marketplace", "release", "job:job-new", None, {"state": "completed"}),
    ]
    return {"job": [job], "lease": [lease], "bid": bids, "audit": audit}[name]


@pytest.mark.parametrize("name", list(market_module._PREPARED_INSERTS))
def test_a_prepared_insert_writes_what_sqlalchemy_writes(busy: tuple[Marketplace, dict[str, Any]], name: str) -> None:
    market, found = busy
    statement = getattr(market._sql, name)
    prepared = market._prepared[id(statement)]
    rows = _inserted(name, found)
    unchanged = _undone(market, lambda _connection: None, reads=False)
    by_sqlalchemy = _undone(market, lambda connection: connection.execute(statement, rows), reads=False)
    assert by_sqlalchemy != unchanged
    assert _undone(market, lambda connection: prepared.execute_many(connection, rows), reads=False) == by_sqlalchemy
    one_by_sqlalchemy = _undone(market, lambda connection: connection.execute(statement, rows[0]), reads=False)
    assert _undone(market, lambda connection: prepared.execute(connection, rows[0]), reads=False) == one_by_sqlalchemy


def test_an_insert_given_other_columns_than_prepared_for_is_refused(busy: tuple[Marketplace, dict[str, Any]]) -> None:
    market, found = busy
    prepared = market._prepared[id(market._sql.job)]
    job = _inserted("job", found)[0]
    with market.reading() as connection:
        with pytest.raises(InvalidRequestError, match="prepared for"):
            prepared.execute(connection, {key: value for key, value in job.items() if key != "project"})
        with pytest.raises(InvalidRequestError, match="prepared for"):
            prepared.execute(connection, {**job, "reason_code": "x"})  # SQLAlchemy would not drop it either


def _by_sqlalchemy(statement: Any, parameters: dict[str, Any], connection: Any) -> Rows:
    return connection.execute(statement, parameters)  # type: ignore[no-any-return]


def test_the_rows_are_read_as_sqlalchemy_reads_them(busy: tuple[Marketplace, dict[str, Any]]) -> None:
    market, found = busy
    statement = market._sql.provider_leases
    prepared = market._prepared[id(statement)]
    parameters = {"who": found["providers"][0], "since": found["now"] - timedelta(hours=1)}
    with market.reading() as connection:
        expected = connection.execute(statement, parameters).all()
        assert expected  # the first provider holds the reported lease
        row = prepared.execute(connection, parameters).one()
        assert (row.id, row.state, row.expires_at, row[0]) == (
            expected[0].id,
            expected[0].state,
            expected[0].expires_at,
            expected[0][0],
        )
        assert row.expires_at.tzinfo == UTC
        assert prepared.execute(connection, {**parameters, "who": "0x0"}).one_or_none() is None
        with pytest.raises(NoResultFound):
            prepared.execute(connection, {**parameters, "who": "0x0"}).one()
        count = market._prepared[id(market._sql.queued_count)]
        assert (
            count.execute(connection, {"requester": found["requester"]}).scalar_one()
            == connection.execute(market._sql.queued_count, {"requester": found["requester"]}).scalar_one()
        )
        with prepared.execute(connection, parameters) as rows:
            assert [row.id for row in rows] == [lease.id for lease in expected]


def test_more_than_one_row_where_one_is_wanted_is_refused(busy: tuple[Marketplace, dict[str, Any]]) -> None:
    market, found = busy
    gpus = market._prepared[id(market._sql.provider_gpus)]  # the first provider has two GPUs: two rows
    with market.reading() as connection:
        with pytest.raises(MultipleResultsFound):
            gpus.execute(connection, {"who": found["providers"][0]}).one_or_none()
        assert len(gpus.execute(connection, {"who": found["providers"][0]}).all()) == 2


def test_what_cannot_run_exactly_on_the_cursor_is_refused_at_start() -> None:
    sqlite = create_engine("sqlite://").dialect
    statements = market_module._Statements(market_module.MarketConfig(domain="d", uri="u", data_dir=Path()))
    with pytest.raises(ValueError, match="insert"):
        PreparedStatement(statements.job, sqlite)  # an insert is prepared for the columns given
    without_round = [column for column in market_module._PREPARED_INSERTS["job"] if column != "round"]
    with pytest.raises(ValueError, match="defaults made in Python"):
        PreparedStatement(statements.job, sqlite, columns=without_round)  # SQLAlchemy would fill round in
    with pytest.raises(ValueError, match="insert only"):
        PreparedStatement(statements.beat, sqlite, columns=["lease"])  # an update's parameters are in its SQL
    with pytest.raises(ValueError, match="positional"):
        PreparedStatement(statements.specs, sqlite)  # an IN list expanded at each execution
    with pytest.raises(ValueError, match="SQLite"):
        PreparedStatement(statements.beat, postgresql.dialect())


def test_a_missing_parameter_is_refused_as_sqlalchemy_refuses_it(busy: tuple[Marketplace, dict[str, Any]]) -> None:
    market, found = busy
    beat = market._prepared[id(market._sql.beat)]
    with market.reading() as connection, pytest.raises(InvalidRequestError, match="'expiry'"):
        beat.execute(connection, {"lease": found["beating"], "run_ms": 1})  # no expiry: not written as NULL
