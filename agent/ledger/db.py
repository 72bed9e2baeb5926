"""The ledger's tables (SQLAlchemy Core) and the SQLite engine that holds them.

One SQLite file in the agent's state folder, in WAL mode: a write the agent acts on is committed first
(and survives the agent being killed), and a reader (the tray's figure, an export) never waits for the
writer.
Times are UTC epoch milliseconds. Token amounts are decimal text (they exceed 64 bits: an 18-decimal
token's base units), summed in Python; electricity costs are integer nano-units of their currency,
summed by SQLite.

Energy is written in intervals of a few seconds per GPU (``energy``), and in the same transaction added
to two roll-ups the summaries read instead: per local day and per UTC hour, each by GPU, job (``''`` for
idle) and currency. Earnings are rolled up per local day the same way. The schema is created and
upgraded by Alembic (migrations/), never by ``create_all``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from sparecycles.sqlite import wal_engine

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),  # the lease id (the runtime's job id)
    Column("marketplace", String(300), nullable=False),
    Column("market_job_id", String(64), nullable=False),
    Column("gpu_uuids", Text, nullable=False),  # JSON list
    Column("units", Integer, nullable=False),
    Column("price_per_unit_hour", String(80), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger, nullable=True),
    Column("run_time_ms", BigInteger, nullable=True),
    Column("paused_ms", BigInteger, nullable=True),
    Column("outcome", String(20), nullable=True),
    Column("reason", String(500), nullable=True),
    Column("local_day", String(10), nullable=False),  # the day it started, in the ledger's time zone
)
Index("ix_jobs_started", jobs.c.started_ms)

earnings = Table(
    "earnings",
    metadata,
    Column("job_id", String(64), ForeignKey("jobs.id"), primary_key=True),
    Column("amount", String(80), nullable=False),
    Column("payout_address", String(42), nullable=False),
    # The payout address's cumulative total once this lease was paid: a voucher at or above it covers it.
    Column("paid_cumulative", String(80), nullable=False),
    Column("credited_ms", BigInteger, nullable=False),
    Column("confirmed_ms", BigInteger, nullable=True),
    Column("voucher_ref", String(200), nullable=True),
    Column("local_day", String(10), nullable=False),
)
Index("ix_earnings_pending", earnings.c.payout_address, earnings.c.confirmed_ms)

energy = Table(
    "energy",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("gpu_uuid", String(64), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("energy_mj", BigInteger, nullable=False),
    Column("baseline_mj", BigInteger, nullable=False),  # the idle baseline's share (0 when none is set)
    Column("job_id", String(64), nullable=True),  # None: idle
    Column("cost_nano", BigInteger, nullable=False),
    Column("baseline_cost_nano", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),  # '' when no tariff was set
    Column("source", String(10), nullable=False),  # counter | samples | gap
)

# The last committed counter reading per GPU: written with each interval, so a restart resumes from it.
energy_counters = Table(
    "energy_counters",
    metadata,
    Column("gpu_uuid", String(64), primary_key=True),
    Column("boot_id", String(200), nullable=False),
    Column("last_mj", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
    Column("job_id", String(64), nullable=True),
)


def _energy_rollup(name: str, bucket: Column[Any]) -> Table:
    return Table(
        name,
        metadata,
        bucket,
        Column("gpu_uuid", String(64), primary_key=True),
        Column("job_key", String(64), primary_key=True),  # '' for idle
        Column("currency", String(3), primary_key=True),
        Column("seconds_ms", BigInteger, nullable=False),
        Column("energy_mj", BigInteger, nullable=False),
        Column("baseline_mj", BigInteger, nullable=False),
        Column("cost_nano", BigInteger, nullable=False),
        Column("baseline_cost_nano", BigInteger, nullable=False),
    )


energy_daily = _energy_rollup("energy_daily", Column("local_day", String(10), primary_key=True))
energy_hourly = _energy_rollup("energy_hourly", Column("hour_ms", BigInteger, primary_key=True))
Index("ix_energy_daily_job", energy_daily.c.job_key)

earnings_daily = Table(
    "earnings_daily",
    metadata,
    Column("local_day", String(10), primary_key=True),
    Column("credited", String(80), nullable=False),
    Column("confirmed", String(80), nullable=False),
)

tariffs = Table(
    "tariffs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("effective_ms", BigInteger, nullable=False),
    Column("document", Text, nullable=False),  # the tariff file's TOML, as the user gave it
)

token_rates = Table(
    "token_rates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("effective_ms", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("per_token", String(40), nullable=False),  # decimal text
    Column("decimals", Integer, nullable=False),
)

payouts = Table(  # claims of vouchers on chain (the payout vault's issue fills it)
    "payouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("claimed_ms", BigInteger, nullable=False),
    Column("payout_address", String(42), nullable=False),
    Column("amount", String(80), nullable=False),
    Column("chain_id", Integer, nullable=False),
    Column("tx_hash", String(66), nullable=False, unique=True),
    # The vault that paid it: a payout counts only towards its own vault's claimed(). NULL in rows written
    # before migration l0004, until the claims service reads it from the transaction's receipt.
    Column("vault", String(42), nullable=True),
)

# A claim transaction signed and kept before it is sent: a restart finds it, records its payout once it is
# mined, sends no second claim while it is pending, and forgets it once it was dropped.
pending_claims = Table(
    "pending_claims",
    metadata,
    Column("tx_hash", String(66), primary_key=True),
    Column("sender", String(42), nullable=False),
    Column("nonce", BigInteger, nullable=False),
    Column("raw_tx", Text, nullable=False),  # 0x-hex, as sent with eth_sendRawTransaction
    Column("payout_address", String(42), nullable=False),
    Column("cumulative_amount", String(80), nullable=False),  # the voucher claimed
    Column("chain_id", Integer, nullable=False),
    Column("vault", String(42), nullable=False),
    Column("sent_ms", BigInteger, nullable=False),
)


def open_engine(path: Path) -> Engine:
    """The ledger's engine (sparecycles.sqlite: WAL with NORMAL sync, so a commit survives the agent's death
    and a busy disk is spared an fsync every 10 s tick; the write lock taken at BEGIN)."""
    return wal_engine(f"sqlite:///{path}")
