"""The marketplace's schema under Alembic, on SQLite and on PostgreSQL: the migrations build exactly the
tables the code declares, an older database is brought forward without losing its leases, and a database
newer than the server is refused."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from sparecycles.agent.market_server import schema
from sparecycles.agent.market_server.db import Base, open_engine


def test_the_migrations_build_the_declared_schema(database_url: str) -> None:
    engine = open_engine(database_url)
    schema.upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # SQLite keeps no server defaults or types the way PostgreSQL does; what matters is tables, columns and
    # indexes, which both must match.
    structural = [diff for diff in differences if diff[0] not in ("modify_default", "modify_type")]
    assert structural == []
    engine.dispose()


def test_leases_of_replicated_jobs_get_their_own_seats_when_a_0002_database_is_upgraded(database_url: str) -> None:
    engine = open_engine(database_url)
    schema.MARKET_MIGRATIONS.move_to(engine, "0002")
    now = "2026-11-25 12:00:00+00:00"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO requesters (id, name, api_key_sha256, credit, held, created_at) "
                "VALUES ('req-1', 'studio', 'h', '0', '0', :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO providers (address, name, region, cpu_cores, memory_bytes, floor_per_gpu_hour, "
                "floor_per_core_hour, payout_address, offered_cores, last_seen_at, registered_at) "
                "VALUES (:address, 'rig', '', 4, 1, '1', '1', :address, 4, :now, :now)"
            ),
            [{"address": f"0x{index:040x}", "now": now} for index in (1, 2)],
        )
        connection.execute(
            text(
                "INSERT INTO jobs (id, requester_id, spec_json, gpus, units, max_price, bidding_window_s, replicas, "
                "state, reason, round, window_ends_at, attempts, held, charged, created_at) "
                "VALUES ('job-1', 'req-1', '{}', 0, 1, '1', 1, 2, 'running', 'running', 0, :now, 0, '0', '0', :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO leases (id, job_id, provider_address, payout_address, gpu_uuids_json, units, price, "
                "state, delivered, cancel_requested, started_at, expires_at) "
                "VALUES (:id, 'job-1', :address, :address, '[]', 1, '1', :state, false, false, :now, :now)"
            ),
            [
                {"id": "lease-a", "address": f"0x{1:040x}", "state": "active", "now": now},
                {"id": "lease-b", "address": f"0x{2:040x}", "state": "reported", "now": now},
                {"id": "lease-c", "address": f"0x{2:040x}", "state": "lost", "now": now},
            ],
        )
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    with engine.connect() as connection:
        seats = dict(connection.execute(text("SELECT id, seat FROM leases")).all())
    assert seats["lease-a"] != seats["lease-b"]
    assert {seats["lease-a"], seats["lease-b"]} == {0, 1}
    engine.dispose()


def test_the_vault_revision_goes_down_and_up_again(database_url: str) -> None:
    engine = open_engine(database_url)
    schema.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO requesters (id, name, api_key_sha256, credit, held, created_at, deposit_address) "
                "VALUES ('req-1', 'studio', 'h', '5', '0', '2026-11-25 12:00:00+00:00', :address)"
            ),
            {"address": "0x" + "ab" * 20},
        )
    schema.MARKET_MIGRATIONS.move_to(engine, "0004", down=True)
    schema.upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name, deposit_address FROM requesters")).all() == [("studio", None)]
    engine.dispose()


def test_postgresql_connections_plan_each_statement_for_the_tables_as_they_are(database_url: str) -> None:
    """A generic plan cached while the tables were empty would outlive their growth (db.py says why)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    engine = open_engine(database_url)
    connections = [engine.connect() for _ in range(3)]  # three pooled connections, each set up on connect
    try:
        modes = {connection.execute(text("SHOW plan_cache_mode")).scalar_one() for connection in connections}
    finally:
        for connection in connections:
            connection.close()
    engine.dispose()
    assert modes == {"force_custom_plan"}
