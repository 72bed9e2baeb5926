"""The reference marketplace's tables (SQLAlchemy 2), and the engine that opens them.

SQLite (WAL) is the default, PostgreSQL by URL. Token amounts are integers that can exceed 64 bits
(base units of an 18-decimal token): they are stored exactly, as NUMERIC(78, 0) on PostgreSQL and as
decimal text on SQLite (whose NUMERIC would round them through a float). The schema is created and
upgraded by Alembic (migrations/), never by ``create_all``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    exc,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from sparecycles.sqlite import wal_engine


class BaseUnitsType(TypeDecorator[int]):
    """An exact non-negative integer of any size up to 2**256 (token base units)."""

    impl = String(80)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(80))
        return dialect.type_descriptor(Numeric(78, 0))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(int(value)) if dialect.name == "sqlite" else int(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("times stored in the marketplace must carry their time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Requester(Base):
    __tablename__ = "requesters"
    __table_args__ = (Index("uq_requesters_deposit_address", "deposit_address", unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    credit: Mapped[int] = mapped_column(BaseUnitsType(), default=0)
    held: Mapped[int] = mapped_column(BaseUnitsType(), default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    key_revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    storage_quota_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # None: the server default
    # The chain address whose deposits to the payout vault credit this requester (None: it deposits none).
    deposit_address: Mapped[str | None] = mapped_column(String(42), nullable=True)
    # A studio's own requester: its jobs run only on the group's machines, before outside work (None: outside).
    group_name: Mapped[str | None] = mapped_column(String(63), nullable=True)


class Provider(Base):
    __tablename__ = "providers"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    region: Mapped[str] = mapped_column(String(32), default="")
    cpu_cores: Mapped[int] = mapped_column(Integer)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    floor_per_gpu_hour: Mapped[int] = mapped_column(BaseUnitsType())
    floor_per_core_hour: Mapped[int] = mapped_column(BaseUnitsType())
    payout_address: Mapped[str] = mapped_column(String(42))
    offered_cores: Mapped[int] = mapped_column(Integer, default=0)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    banned_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ban_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The studio group the machine joined, and what its operator asked of it (fleet.py).
    group_name: Mapped[str | None] = mapped_column(String(63), nullable=True, index=True)
    drain: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    paused_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    agent_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    fleet_report_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ProviderGpu(Base):
    __tablename__ = "provider_gpus"

    provider_address: Mapped[str] = mapped_column(ForeignKey("providers.address"), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    vram_bytes: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    offered: Mapped[bool] = mapped_column(Boolean, default=False)


class SignInNonce(Base):
    __tablename__ = "sign_in_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used: Mapped[bool] = mapped_column(Boolean, default=False)


class Session(Base):
    __tablename__ = "sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_window", "state", "window_ends_at"),
        Index("ix_jobs_requester_state", "requester_id", "state"),  # a submission counts the queued ones
    )

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    requester_id: Mapped[str] = mapped_column(ForeignKey("requesters.id"))
    spec_json: Mapped[str] = mapped_column(Text)
    gpus: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer)
    max_price: Mapped[int] = mapped_column(BaseUnitsType())
    bidding_window_s: Mapped[float] = mapped_column(Float)
    min_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    replicas: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    round: Mapped[int] = mapped_column(Integer, default=0)
    window_ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(BaseUnitsType(), default=0)
    charged: Mapped[int] = mapped_column(BaseUnitsType(), default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # A studio job runs only on its group's machines, and before outside work: higher ``priority`` first.
    group_name: Mapped[str | None] = mapped_column(String(63), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    project: Mapped[str | None] = mapped_column(String(63), nullable=True)


class Bid(Base):
    __tablename__ = "bids"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_address: Mapped[str] = mapped_column(ForeignKey("providers.address"), primary_key=True)
    price: Mapped[int] = mapped_column(BaseUnitsType())
    score: Mapped[float] = mapped_column(Float, default=0.0)
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime())


LIVE_LEASE_STATES = ("active", "reported", "accepted")


class Lease(Base):
    """One provider's assignment to run a job. ``seat`` numbers the job's replicas: a live lease holds its seat
    exclusively (a partial unique index), so no two server processes can ever assign the same seat twice."""

    __tablename__ = "leases"
    __table_args__ = (
        Index(
            "uq_leases_live_seat",
            "job_id",
            "seat",
            unique=True,
            sqlite_where=text(f"state IN {LIVE_LEASE_STATES}"),
            postgresql_where=text(f"state IN {LIVE_LEASE_STATES}"),
        ),
    )

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    provider_address: Mapped[str] = mapped_column(ForeignKey("providers.address"), index=True)
    payout_address: Mapped[str] = mapped_column(String(42))
    gpu_uuids_json: Mapped[str] = mapped_column(Text, default="[]")
    units: Mapped[int] = mapped_column(Integer)
    price: Mapped[int] = mapped_column(BaseUnitsType())
    seat: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), index=True)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    run_time_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    amount: Mapped[int | None] = mapped_column(BaseUnitsType(), nullable=True)
    # The payout address's cumulative earnings right after this lease was paid: the vouchers that cover it.
    paid_cumulative: Mapped[int | None] = mapped_column(BaseUnitsType(), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    report_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    report_signature: Mapped[str | None] = mapped_column(String(132), nullable=True)


class UploadedOutput(Base):
    __tablename__ = "uploaded_outputs"

    lease_id: Mapped[str] = mapped_column(ForeignKey("leases.id"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)  # removed by retention


class Payout(Base):
    """What each payout address has earned in all, and the operator's voucher for it."""

    __tablename__ = "payouts"

    payout_address: Mapped[str] = mapped_column(String(42), primary_key=True)
    cumulative: Mapped[int] = mapped_column(BaseUnitsType())
    voucher_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ChainDeposit(Base):
    """A Deposited event of the payout vault, credited once: its key is where it is on the chain."""

    __tablename__ = "chain_deposits"

    tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    vault: Mapped[str] = mapped_column(String(42))
    block_number: Mapped[int] = mapped_column(BigInteger)
    from_address: Mapped[str] = mapped_column(String(42), index=True)
    amount: Mapped[int] = mapped_column(BaseUnitsType())
    requester_id: Mapped[str | None] = mapped_column(ForeignKey("requesters.id"), nullable=True)  # None: unknown
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ChainCursor(Base):
    """The next block whose vault events are still to be read, per chain and vault (``chain_id:vault``)."""

    __tablename__ = "chain_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_block: Mapped[int] = mapped_column(BigInteger)


class AuditEvent(Base):
    """One operator action or credit movement. Append-only: triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(String(120))
    amount: Mapped[int | None] = mapped_column(BaseUnitsType(), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class OperatorToken(Base):
    """A bearer token for the admin API (``sco_…``); only its hash is kept."""

    __tablename__ = "operator_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class Group(Base):
    """A studio's group of machines and the policy they work by (``policy_json``: protocol.fleet.GroupPolicy)."""

    __tablename__ = "groups"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    policy_json: Mapped[str] = mapped_column(Text)
    policy_version: Mapped[int] = mapped_column(Integer, default=1)
    outside_jobs: Mapped[bool] = mapped_column(Boolean, default=True)  # the policy's, for the polls' SQL
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class EnrolCode(Base):
    """A code machines join a group with, until it expires; only its hash is kept."""

    __tablename__ = "enrol_codes"

    code_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_name: Mapped[str] = mapped_column(ForeignKey("groups.name"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(120))


class ProjectQuota(Base):
    """The most a requester may commit to one project's jobs (held and charged, base units)."""

    __tablename__ = "project_quotas"

    requester_id: Mapped[str] = mapped_column(ForeignKey("requesters.id"), primary_key=True)
    project: Mapped[str] = mapped_column(String(63), primary_key=True)
    max_base_units: Mapped[int] = mapped_column(BaseUnitsType())


# Requests run in this many threads at once (api.py sets the limit). More would only queue on SQLite's
# write lock, or on the GIL, while holding it longer; two server processes stay within PostgreSQL's
# default of 100 connections.
WORKER_THREADS = 16
# On PostgreSQL every request runs in a thread (on SQLite the busiest run on the event loop), and each thread
# waits on round trips between stretches of Python: a few threads keep a core busy, and more only contend for
# the GIL. The load benchmark on one process (bench/market_load.py, 2026-11-27): with 4, 6, 8 and 16 threads it
# leased 65, 62, 58 and 52 jobs a second, at 13.1, 13.9, 15.0 and 16.9 ms of the server's CPU a job.
POSTGRESQL_WORKER_THREADS = 6


def open_engine(url: str, *, for_reading: bool = False) -> Engine:
    """An engine for ``url``. On SQLite (WAL, foreign keys, a busy timeout) a transaction takes the write lock
    when it begins, so two requests reading the same lease (a report sent twice at once) are serialised
    instead of both acting on what they read; ``for_reading`` gives an engine whose transactions begin
    deferred, for reads that must not queue behind writers (WAL lets readers run beside a writer)."""
    if url.startswith("sqlite"):
        # Connections are kept, not opened per request: opening one runs wal_engine's pragmas, and a pool
        # smaller than the server's worker threads would open and close connections all day.
        return wal_engine(url, for_reading=for_reading, pool_size=WORKER_THREADS, max_overflow=8)
    engine = create_engine(url, pool_size=WORKER_THREADS, max_overflow=8)
    event.listen(engine, "connect", _plan_each_execution)
    watch_idle_connections(engine, IDLE_BEFORE_PING_S)
    return engine


# A pooled PostgreSQL connection unused this long is checked before it is used again (watch_idle_connections).
IDLE_BEFORE_PING_S = 2.0
_IDLE_SINCE = "sparecycles_idle_since"


def watch_idle_connections(engine: Engine, idle_s: float) -> None:
    """Check a pooled connection that lay unused for ``idle_s`` or longer before it is handed out again; one in
    use moments ago is handed out unchecked.

    Why: PostgreSQL may restart, or a firewall drop an idle connection, while the server's pool holds it; the
    next request on it would fail. SQLAlchemy's ``pool_pre_ping`` checks every connection at every checkout, a
    round trip to PostgreSQL before each request's transaction: a seventh of all the round trips a job costs
    (bench/market_cpu.py), to guard against what happens to idle connections. Under load none lies idle, and a
    connection dropped while in use fails its request either way, after which SQLAlchemy replaces the whole pool
    (a disconnect invalidates every connection opened before it)."""

    def note_idle(_dbapi_connection: object, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def check_if_idle(dbapi_connection: Any, record: Any, _proxy: object) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping began a transaction; the request begins its own
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and hands out a new one (up to three tries).
            raise exc.DisconnectionError(f"a pooled connection idle for {idle_s} s or more is gone: {error}") from error

    event.listen(engine.pool, "checkin", note_idle)
    event.listen(engine.pool, "checkout", check_if_idle)


def _plan_each_execution(dbapi_connection: Any, _record: object) -> None:
    """Have PostgreSQL plan each statement for its parameters and the tables as they are now.

    psycopg prepares a statement on the server after a few executions, and PostgreSQL then settles on a
    generic plan that it keeps for the connection's life, which here is the server's. A marketplace starts
    with empty tables, so plans made in its first seconds assume that ``bids`` holds a few rows: the poll's
    search for jobs to bid on then read every bid in the table once for each job it looked at (13 ms a
    poll at 3,000 jobs, against 0.5 ms planned for each execution), until autovacuum's next ANALYZE, which a
    busy first minute may not get. Planning every execution costs PostgreSQL less than one such plan (the
    load benchmark on PostgreSQL: 38 -> 55 assignments/s, its backends 81 % -> 59 % of a core). A SET, not a
    connection option, so that a pooler in front of PostgreSQL (PgBouncer refuses unknown start-up options)
    still connects."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    finally:
        cursor.close()
    dbapi_connection.commit()
