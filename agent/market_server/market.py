"""The reference marketplace's operations: sign-in, providers, the auction, leases, results and money.

Every operation is one database transaction, so the state is never half-changed; the HTTP layer
(api.py) and the operator's CLI both call these. Time comes from an injected clock, and
:meth:`Marketplace.tick` closes auctions whose bidding window ended and expires leases whose
heartbeats stopped (the server calls it on a timer and before every provider poll).

Money: a requester's credit is held at submission for the job's maximum cost (max price × units ×
maximum run time × replicas) and settled when the job ends; a provider is paid its bid × units ×
running time (as reported, never more than the lease's wall-clock age or the job's run-time limit)
when its result is accepted, and receives an EIP-712 voucher for its payout address's cumulative
earnings.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import hashlib
import heapq
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Executable,
    String,
    Table,
    all_,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY as postgresql_array
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from sparecycles.agent.market_server import auction
from sparecycles.agent.market_server import db as tables
from sparecycles.agent.market_server.credentials import KnownCredentials, Withdrawn
from sparecycles.agent.market_server.prepared import PreparedStatement, Rows
from sparecycles.protocol.jobs import JobSpec
from sparecycles.protocol.market import (
    Address,
    HeartbeatAck,
    JobState,
    JobSubmission,
    JobView,
    LeaseOffer,
    LeaseState,
    LeaseView,
    MarketPrices,
    NonceResponse,
    Offer,
    OutputFile,
    PayoutChange,
    ProviderLeaseView,
    ProviderRegistration,
    ProviderView,
    ReportAck,
    RequesterView,
    ServerInfo,
    SessionToken,
    SignedResultReport,
    Voucher,
    WorkResponse,
    lease_amount,
    payout_change_message,
)
from sparecycles.protocol.signing import (
    PLACEHOLDER_VAULT,
    SignatureError,
    sign_voucher,
    text_signer,
    verify_sign_in,
    voucher_signer,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger(__name__)

SIGN_IN_STATEMENT = "Sign in to the SpareCycles marketplace as a provider."
_CHUNK = 1024 * 1024
_ENDED_JOB_STATES = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class ChainDepositEvent:
    """One Deposited event of the payout vault: who deposited how much, and where it is on the chain."""

    tx_hash: str
    log_index: int
    vault: str
    block_number: int
    from_address: str
    amount: int


class MarketError(Exception):
    """A request the marketplace refuses; ``status`` is the HTTP status, ``code`` a stable word."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(MarketError):
    status, code = 401, "unauthorized"


class Forbidden(MarketError):
    status, code = 403, "forbidden"


class NotFound(MarketError):
    status, code = 404, "not_found"


class Conflict(MarketError):
    status, code = 409, "conflict"


class InsufficientCredit(MarketError):
    status, code = 402, "insufficient_credit"


class TooLarge(MarketError):
    status, code = 413, "too_large"


class TooMany(MarketError):
    """A limit that lifts with time: the client should retry after ``retry_after_s`` seconds."""

    status, code = 429, "too_many_requests"

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class MarketConfig:
    """How this marketplace runs; ``domain`` and ``uri`` are what sign-in messages must name."""

    domain: str
    uri: str
    data_dir: Path
    name: str = "SpareCycles private marketplace"
    chain_id: int = 31337
    voucher_contract: str = PLACEHOLDER_VAULT
    heartbeat_interval_s: float = 5.0
    lease_timeout_s: float = 30.0
    session_ttl_s: float = 3600.0
    nonce_ttl_s: float = 300.0
    provider_online_s: float = 60.0
    max_failed_attempts: int = 3
    max_output_bytes: int = 10 * 1024**3
    clock_skew_s: float = 120.0
    max_queued_jobs_per_requester: int = 10_000
    storage_quota_bytes: int = 100 * 1024**3  # per requester, unless the operator sets another
    output_retention_days: float | None = None  # None: outputs are kept until the operator removes them
    bids_per_poll: int = 8  # a provider bids on at most this many open jobs per poll
    bidders_per_job: int = 4  # and skips jobs that have this many bids in their round already
    auction_batch: int = 25  # jobs closed per transaction, so that other requests interleave
    tick_every_s: float = 1.0  # a poll ticks the market itself when no tick ran for this long
    prices_cache_s: float = 5.0  # the queue's best prices are read from the database at most this often
    # Each server process checks this often for bans and key revocations made through another process (or the
    # CLI): the session tokens and API keys it found in the database are trusted meanwhile (0: read every time).
    auth_cache_s: float = 5.0
    fleet_report_s: float = 15.0  # how often a studio's machines report their state
    # The identity addresses that may sign in as providers (None: any). The agent's private marketplace admits
    # only its own machine: any other process on the computer could otherwise win the owner's jobs, and with
    # them the jobs' specs (their secrets) and the say on their outputs.
    only_providers: frozenset[str] | None = None


def new_secret(prefix: str) -> str:
    """A bearer secret: a session token (scs_), an API key (scr_) or an admin token (sco_)."""
    return prefix + secrets.token_urlsafe(32)


def sha256_hex(text: str) -> str:
    """What the database keeps of a secret."""
    return hashlib.sha256(text.encode()).hexdigest()


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


# PostgreSQL aborts one of two transactions that deadlock or conflict; running it again is the cure.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_UNIQUE_VIOLATION = "23505"
_ATTEMPTS = 5
# Any number, the same in every server process: the key of the advisory lock held while closing auctions.
_AUCTIONEER_LOCK = 0x5C_A7C1E5
_HOUSEKEEPING_EVERY = timedelta(hours=1)
_BIDDERS_REMEMBERED = 200_000
# A search for jobs to bid on leaves out at most this many rounds with enough bidders, the ones closing soonest:
# four pages of its LIMIT (bids_per_poll * 8). Bidding windows may be an hour long, and thousands of such rounds
# would make every poll's statement carry them all.
_ENOUGH_LEFT_OUT = 256
_SHAPES_REMEMBERED = 1_000
STUDIO_PRIORITY = 10  # a studio's own job (its requester is in a group); outside jobs have 0
_SEEN_EVERY = timedelta(seconds=20)  # how fresh a provider's last poll is kept (it is online for a minute)
# The statements run for every job (submit, polls, heartbeat, report), prepared on SQLite (prepared.py).
_PREPARED = (
    "provider_gpus",
    "provider_leases",
    "biddable",
    "biddable_in_group",
    "seen",
    "beating_lease",
    "beat",
    "reported_lease",
    "uploads",
    "payout_cumulative",
    "payout_update",
    "accept_lease",
    "complete_job",
    "requester_credit",
    "queued_count",
    "hold_credit",
)
# And the inserts made for every job, each for the columns every execution gives (prepared.py refuses others).
_PREPARED_INSERTS = {
    "job": (
        "id",
        "requester_id",
        "spec_json",
        "gpus",
        "units",
        "max_price",
        "bidding_window_s",
        "min_score",
        "replicas",
        "state",
        "reason",
        "round",
        "window_ends_at",
        "attempts",
        "held",
        "charged",
        "created_at",
        "group_name",
        "priority",
        "project",
    ),
    "audit": ("at", "actor", "action", "subject", "amount", "detail"),  # _audit_values
    "bid": ("job_id", "round", "provider_address", "price", "score", "placed_at"),  # Marketplace._bid
    "lease": (
        "id",
        "job_id",
        "provider_address",
        "payout_address",
        "gpu_uuids_json",
        "units",
        "price",
        "seat",
        "state",
        "delivered",
        "cancel_requested",
        "started_at",
        "expires_at",
    ),
}
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _retried_on(
    states: frozenset[str],
) -> Callable[[Callable[Concatenate[Marketplace, _P], _R]], Callable[Concatenate[Marketplace, _P], _R]]:
    """Run an operation again when PostgreSQL aborted its transaction with one of these SQLSTATEs (nothing of
    the aborted attempt was committed)."""

    def retried(method: Callable[Concatenate[Marketplace, _P], _R]) -> Callable[Concatenate[Marketplace, _P], _R]:
        @functools.wraps(method)
        def attempt(self: Marketplace, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            for tries in range(1, _ATTEMPTS + 1):
                try:
                    return method(self, *args, **kwargs)
                except DBAPIError as exc:
                    if getattr(exc.orig, "sqlstate", None) not in states or tries == _ATTEMPTS:
                        raise
                    log.debug("Retrying %s after a conflict with another server process", method.__name__)
                    time.sleep(random.uniform(0, 0.02 * 2**tries))  # noqa: S311 - jitter, not a secret
            raise AssertionError("unreachable")  # pragma: no cover

        return attempt

    return retried


_retried = _retried_on(_RETRYABLE_SQLSTATES)
"""A one-transaction operation, run again after a deadlock or a serialisation conflict with another process."""


@dataclass(frozen=True)
class TickResult:
    expired: int = 0
    assigned: int = 0


_Row = Any  # a row of a Core statement, read by column name


# A provider that holds a lease of a job now, or failed or refused it, does not bid on it again.
_NO_BID_AGAIN = (LeaseState.ACTIVE, LeaseState.REPORTED, LeaseState.FAILED)


def _one_of(column: ColumnElement[str], states: Sequence[str]) -> ColumnElement[bool]:
    """``column IN (states)`` with the states written into the statement. Given as values, SQLAlchemy binds
    them as a list that it expands into the SQL again at every execution ("post-compile"), which the polls'
    statements paid for at each poll. Only for the code's own constants (letters and '_')."""
    if not all(state.replace("_", "").isalpha() for state in states):
        raise ValueError(f"not a state name: {states!r}")
    return column.in_([literal_column(f"'{state}'") for state in states])


@dataclass
class _Cache:
    """Per-transaction lookups, so one tick does not load a provider's GPUs once per job."""

    capacities: dict[str, auction.Capacity] = field(default_factory=dict)
    leases: dict[str, list[_Row]] = field(default_factory=dict)  # by job
    bids: dict[str, list[_Row]] = field(default_factory=dict)  # by job, from providers online and not banned
    bidders: dict[str, _Row] = field(default_factory=dict)  # each bidder or standing provider (group, pause)
    locked: dict[str, _Row | None] = field(default_factory=dict)  # winners read again under a lock (PostgreSQL)
    payouts: dict[str, str] = field(default_factory=dict)  # by provider
    ranked: dict[bool, list[auction.Rank]] = field(default_factory=dict)  # ranked_bidders, for GPU and CPU jobs

    def ranked_bidders(self, gpu_job: bool) -> list[auction.Rank]:
        """The bidders best first by the best rank each could bid on any job of the kind (GPU or CPU), from
        their capacities when first asked: a lease made in the batch only lowers what a provider can bid."""
        ranked = self.ranked.get(gpu_job)
        if ranked is None:
            ranked = sorted(
                auction.best_possible_rank(self.capacities[address], gpu_job, bidder.placed_at)
                for address, bidder in self.bidders.items()
            )
            self.ranked[gpu_job] = ranked
        return ranked


class Marketplace:
    def __init__(
        self,
        engine: Engine,
        operator: LocalAccount,
        config: MarketConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        if engine.dialect.name == "sqlite":
            reader = tables.open_engine(engine.url.render_as_string(hide_password=False), for_reading=True)
        else:
            # Each statement its own transaction: PostgreSQL's default isolation (read committed) gives every
            # statement of a transaction a snapshot of its own anyway, so reads gain nothing from BEGIN and
            # COMMIT but two round trips.
            reader = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._reader = reader
        self._reader_sessions = sessionmaker(reader, expire_on_commit=False)
        self._writers: contextlib.AbstractContextManager[object] = (
            threading.RLock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        self._operator = operator
        self.config = config
        self._clock = clock
        self._last_tick: datetime | None = None
        self._last_housekeeping: datetime | None = None
        self._bidders: dict[tuple[str, int], int] = {}  # bids placed through this process, by (job, round)
        self._enough: dict[str, datetime] = {}  # "job:round" with enough bidders counted, to its window's end
        self._prices: tuple[datetime, MarketPrices] | None = None  # the last summary of the queue, and when
        self._floors: dict[auction.Need, tuple[datetime, list[int]]] = {}  # capable providers' floors, and when
        self._credentials = KnownCredentials(config.auth_cache_s, clock)
        self.ticks_on_poll = True  # polls tick the market when its own timer has not lately
        # Told after the fact, outside any transaction: who was leased a job, and how many jobs opened for bids
        # (a submission, or auctions that closed without a winner for every seat and opened a new round): the
        # HTTP layer wakes long polls with them, providers to take their leases and enough others to bid.
        self.on_leased: Callable[[set[str]], object] = lambda _addresses: None
        self.on_open: Callable[[int], object] = lambda _jobs: None
        # And that a provider's lease ended by its report, which frees what the lease used: a provider waiting
        # in a long poll then bids again at once instead of when its wait ends.
        self.on_freed: Callable[[str], object] = lambda _address: None
        # Providers whose bids all lost are not woken to bid again: the jobs still open woke as many bidders as
        # they want when they opened (on_open), and waking every loser of each batch had each place up to
        # ``bids_per_poll`` bids again, most of which lost too (on PostgreSQL, 6.5 polls and 7 bids per job
        # in the load benchmark; 50 -> 63 assignments/s with two processes, 56 -> 67 with one, without it).
        # Set by the fleet (fleet.py): each tick, outside leases make room for the studio's own queued jobs.
        self.studio_preemption: Callable[[datetime], int] | None = None
        # Set by the HTTP layer: some of the providers waiting in this process's long polls, with nothing to tell
        # them. Each would bid its floor on the open jobs it can run as soon as it were woken, so closing auctions
        # counts them as standing bidders, ranked with the jobs' own bids (_spare_bids).
        self.standing: Callable[[], Sequence[str]] = lambda: ()
        self.is_postgresql = engine.dialect.name == "postgresql"
        self._insert = postgresql_insert if self.is_postgresql else sqlite_insert
        self._sql = _Statements(config, postgresql=self.is_postgresql)
        # On SQLite the hot statements run on the driver's cursor (prepared.py); elsewhere through SQLAlchemy.
        self._prepared: dict[int, PreparedStatement] = {}
        if engine.dialect.name == "sqlite":
            for name in _PREPARED:
                statement = getattr(self._sql, name)
                self._prepared[id(statement)] = PreparedStatement(statement, engine.dialect)
            for name, columns in _PREPARED_INSERTS.items():
                statement = getattr(self._sql, name)
                self._prepared[id(statement)] = PreparedStatement(statement, engine.dialect, columns=columns)
        (config.data_dir / "outputs").mkdir(parents=True, exist_ok=True)

    def now(self) -> datetime:
        return self._clock()

    @property
    def operator_address(self) -> str:
        return self._operator.address

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One database transaction: committed when the block ends, rolled back if it raises.

        On SQLite this process's writers queue on a lock of their own first: SQLite makes a writer that finds
        the database locked sleep and retry (up to 100 ms at a time), which would leave the server idle
        while requests wait; the lock hands over at once."""
        with self._writers, self._sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction that only reads: on SQLite it does not wait for, or hold up, the writers; on PostgreSQL
        each statement is a transaction of its own (autocommit), so a read that locks rows (FOR UPDATE) belongs in
        ``transaction()`` instead."""
        with self._reader_sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """``transaction()`` for Core statements only, without an ORM session (whose setup and commit cost more
        than a poll's or a heartbeat's statements)."""
        with self._writers, self._engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def polling(self) -> Iterator[Connection]:
        """``writing()`` for a poll: on PostgreSQL without a transaction around its statements.

        A poll reads, then may mark the provider seen and place bids; none of it locks a row, so a transaction
        would only group it. Each of those writes stands alone (a bid placed twice is left as it is, a later
        ``last_seen_at`` is as good as an earlier one), and PostgreSQL reads a fresh snapshot for each
        statement either way: BEGIN and COMMIT were two of a poll's five round trips. A statement that locks rows
        (FOR UPDATE) would hold its lock only for itself here: it belongs in ``writing()``. On SQLite the poll is
        one writer's transaction, which ``market serve`` runs on its event loop (api.py)."""
        if self.is_postgresql:
            with self._reader.begin() as connection:
                yield connection
        else:
            with self.writing() as connection:
                yield connection

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """``read()`` for Core statements only."""
        with self._reader.begin() as connection:
            yield connection

    def _execute(self, connection: Connection, statement: Executable, parameters: Mapping[str, Any]) -> Rows:
        """``connection.execute``, on the driver's cursor for a statement prepared on SQLite (prepared.py)."""
        prepared = self._prepared.get(id(statement))
        if prepared is None:
            return connection.execute(statement, parameters)
        return prepared.execute(connection, parameters)

    def _execute_many(self, connection: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        """``connection.execute`` with a list of rows (an insert of several), prepared on SQLite too."""
        prepared = self._prepared.get(id(statement))
        if prepared is None:
            connection.execute(statement, list(rows))
        else:
            prepared.execute_many(connection, rows)

    @staticmethod
    def record(
        session: Session, actor: str, action: str, subject: str, amount: int | None = None, **detail: object
    ) -> None:
        """Append to the audit log, in the transaction that does the thing recorded."""
        session.add(tables.AuditEvent(**_audit_values(actor, action, subject, amount, detail)))

    def info(self) -> ServerInfo:
        return ServerInfo(
            name=self.config.name,
            chain_id=self.config.chain_id,
            voucher_contract=self.config.voucher_contract,
            operator_address=self._operator.address,
            heartbeat_interval_s=self.config.heartbeat_interval_s,
            lease_timeout_s=self.config.lease_timeout_s,
            max_output_bytes=self.config.max_output_bytes,
        )

    # -- the operator ----------------------------------------------------------------------------------

    def add_requester(self, name: str, *, actor: str = "operator") -> str:
        """Create a requester; returns its API key (shown once: only its hash is kept)."""
        key = new_secret("scr_")
        with self.transaction() as session:
            if session.scalar(select(tables.Requester).where(tables.Requester.name == name)) is not None:
                raise Conflict(f"a requester named {name!r} exists already")
            session.add(
                tables.Requester(
                    id=_new_id("req"),
                    name=name,
                    api_key_sha256=sha256_hex(key),
                    credit=0,
                    held=0,
                    created_at=self._clock(),
                )
            )
            self.record(session, actor, "add_requester", f"requester:{name}")
        log.info("Added requester %s", name)
        return key

    @_retried
    def credit(self, name: str, amount: int, *, actor: str = "operator") -> RequesterView:
        """Add ``amount`` base units to a requester's credit (the operator was paid off-chain)."""
        if amount <= 0:
            raise MarketError("the amount must be a positive number of base units")
        with self.transaction() as session:
            requester = session.scalar(
                select(tables.Requester).where(tables.Requester.name == name).with_for_update()
            )  # locked, as every writer of a requester's credit locks it: a submission meanwhile is not overwritten
            if requester is None:
                raise NotFound(f"no requester named {name!r}; `sparecycles market add-requester {name}` adds one")
            requester.credit += amount
            self.record(session, actor, "credit", f"requester:{name}", amount)
            log.info("Credited requester %s with %d base units", name, amount)
            return _requester_view(requester)

    @_retried
    def set_deposit_address(self, name: str, address: str | None, *, actor: str = "operator") -> RequesterView:
        """Name the chain address whose deposits to the payout vault credit requester ``name`` (None: none).

        Deposits that address made before, which credited nobody, are credited now."""
        try:
            checksummed = _checksum(address) if address is not None else None
        except ValueError as exc:
            raise MarketError(f"the deposit address {exc}") from None
        with self.transaction() as session:
            requester = session.scalar(select(tables.Requester).where(tables.Requester.name == name).with_for_update())
            if requester is None:
                raise NotFound(f"no requester named {name!r}; `sparecycles market add-requester {name}` adds one")
            if checksummed is not None:
                other = session.scalar(
                    select(tables.Requester.name).where(
                        tables.Requester.deposit_address == checksummed, tables.Requester.id != requester.id
                    )
                )
                if other is not None:
                    raise Conflict(f"{checksummed} is already the deposit address of requester {other!r}")
            requester.deposit_address = checksummed
            self.record(session, actor, "set_deposit_address", f"requester:{name}", address=checksummed)
            if checksummed is not None:
                unmatched = session.scalars(
                    select(tables.ChainDeposit)
                    .where(tables.ChainDeposit.from_address == checksummed, tables.ChainDeposit.requester_id.is_(None))
                    .with_for_update()
                ).all()
                for deposit in unmatched:
                    self._credit_deposit(session, requester, deposit)
            return _requester_view(requester)

    def deposit_cursor(self, name: str) -> int | None:
        """The next block of the chain whose vault deposits are still to be read (None: none read yet)."""
        with self.read() as session:
            cursor = session.get(tables.ChainCursor, name)
            return None if cursor is None else cursor.next_block

    @_retried
    def record_deposits(self, cursor: str, deposits: Sequence[ChainDepositEvent], next_block: int) -> int:
        """Credit each vault deposit to the requester whose deposit address made it, exactly once (a deposit
        already recorded, by this process before a restart or by another one, is skipped), and move the
        cursor to ``next_block``; one transaction. Returns the base units credited."""
        credited = 0
        with self.transaction() as session:
            for event in deposits:
                inserted = session.execute(
                    self._insert(tables.ChainDeposit)
                    .values(
                        tx_hash=event.tx_hash,
                        log_index=event.log_index,
                        vault=event.vault,
                        block_number=event.block_number,
                        from_address=event.from_address,
                        amount=event.amount,
                        requester_id=None,
                        seen_at=self._clock(),
                    )
                    .on_conflict_do_nothing(index_elements=["tx_hash", "log_index"])
                )
                if not inserted.rowcount:  # type: ignore[attr-defined]  # a CursorResult's
                    continue
                deposit = session.get(tables.ChainDeposit, (event.tx_hash, event.log_index), with_for_update=True)
                if deposit is None:  # pragma: no cover - inserted just above, in this transaction
                    raise MarketError(f"the deposit {event.tx_hash}:{event.log_index} vanished")
                requester = session.scalar(
                    select(tables.Requester)
                    .where(tables.Requester.deposit_address == event.from_address)
                    .with_for_update()
                )
                if requester is None:
                    self.record(
                        session,
                        "marketplace (vault deposits)",
                        "deposit_unmatched",
                        f"address:{event.from_address}",
                        event.amount,
                        tx=event.tx_hash,
                        log_index=event.log_index,
                    )
                    log.warning(
                        "A deposit of %d base units from %s matches no requester's deposit address (tx %s); "
                        "`sparecycles market deposit-address NAME %s` credits it",
                        event.amount,
                        event.from_address,
                        event.tx_hash,
                        event.from_address,
                    )
                    continue
                self._credit_deposit(session, requester, deposit)
                credited += event.amount
            row = session.get(tables.ChainCursor, cursor, with_for_update=True)
            if row is None:
                session.add(tables.ChainCursor(name=cursor, next_block=next_block))
            elif next_block > row.next_block:
                row.next_block = next_block
        return credited

    def _credit_deposit(self, session: Session, requester: tables.Requester, deposit: tables.ChainDeposit) -> None:
        requester.credit += deposit.amount
        deposit.requester_id = requester.id
        self.record(
            session,
            "marketplace (vault deposits)",
            "deposit",
            f"requester:{requester.name}",
            deposit.amount,
            tx=deposit.tx_hash,
            log_index=deposit.log_index,
            block=deposit.block_number,
            address=deposit.from_address,
        )
        log.info(
            "Credited requester %s with %d base units deposited by %s (tx %s)",
            requester.name,
            deposit.amount,
            deposit.from_address,
            deposit.tx_hash,
        )

    @_retried
    def resign_vouchers(self, *, actor: str = "operator") -> int:
        """Sign again, with the operator key this server runs with, each payout address's latest voucher that
        another key signed or that names another chain or vault than this server's, for the same cumulative
        amount: after a key rotation (or on moving to a vault) nothing owed is stranded. Without a vault
        configured, each voucher keeps its chain and vault. Returns how many."""
        resigned = 0
        with self.transaction() as session:
            for payout in session.scalars(
                select(tables.Payout).order_by(tables.Payout.payout_address).with_for_update()
            ):
                voucher = Voucher.model_validate_json(payout.voucher_json)
                try:
                    signer = voucher_signer(voucher)
                except SignatureError:
                    signer = ""
                chain_id, contract = self.config.chain_id, self.config.voucher_contract
                if contract == PLACEHOLDER_VAULT:  # no vault configured: each voucher keeps its own
                    chain_id, contract = voucher.chain_id, voucher.verifying_contract
                same_domain = voucher.chain_id == chain_id and voucher.verifying_contract.lower() == contract.lower()
                if signer.lower() == self._operator.address.lower() and same_domain:
                    continue
                fresh = sign_voucher(
                    self._operator, payout.payout_address, payout.cumulative, chain_id=chain_id, contract=contract
                )
                payout.voucher_json, payout.updated_at = fresh.model_dump_json(), self._clock()
                self.record(
                    session,
                    actor,
                    "resign_voucher",
                    f"payout:{payout.payout_address}",
                    payout.cumulative,
                    old_signer=signer,
                    new_signer=self._operator.address,
                    chain_id=chain_id,
                    contract=contract,
                )
                resigned += 1
        if resigned:
            log.warning("Re-signed %d voucher(s) with operator key %s", resigned, self._operator.address)
        return resigned

    def record_relayed_claim(self, payout_address: str, amount: int, tx_hash: str, *, actor: str = "operator") -> None:
        """Audit a claim the operator sent on a provider's behalf (the vault paid ``amount`` to it)."""
        with self.transaction() as session:
            self.record(session, actor, "relay_claim", f"payout:{payout_address}", amount, tx=tx_hash)

    def vouchers(self) -> list[Voucher]:
        """Every payout address's latest voucher."""
        with self.read() as session:
            return [
                Voucher.model_validate_json(row.voucher_json)
                for row in session.scalars(select(tables.Payout).order_by(tables.Payout.payout_address))
            ]

    @_retried
    def resolve(self, job_id: str, accept: str | None, *, actor: str = "operator") -> JobView:
        """Settle a disputed job: pay only the provider ``accept`` names, or nobody (``None``: reject)."""
        with self.transaction() as session:
            job = self._job(session, job_id, lock=True)
            if job.state != JobState.DISPUTED:
                raise Conflict(f"job {job_id} is {job.state}, not disputed")
            leases = self._leases(session, job_id)
            reported = [lease for lease in leases if lease.state == LeaseState.REPORTED]
            now = self._clock()
            if accept is None:
                for lease in reported:
                    self._end_lease(lease, LeaseState.REJECTED, "rejected by the operator", now)
                self._end_job(session, job, JobState.FAILED, "failed: the operator rejected every result", now)
            else:
                chosen = [lease for lease in reported if lease.provider_address.lower() == accept.lower()]
                if not chosen:
                    raise NotFound(f"provider {accept} did not report a result for job {job_id}")
                for lease in reported:
                    if lease is chosen[0]:
                        self._pay(session, lease, now)
                    else:
                        self._end_lease(lease, LeaseState.REJECTED, "rejected by the operator's resolution", now)
                self._end_job(session, job, JobState.COMPLETED, "completed: the operator accepted one result", now)
            self.record(session, actor, "resolve", f"job:{job_id}", accepted=accept)
            return self.job_view(session, job)

    # -- sign-in ---------------------------------------------------------------------------------------

    def issue_nonce(self, address: str) -> NonceResponse:
        now = self._clock()
        nonce = secrets.token_hex(16)
        expires = now + timedelta(seconds=self.config.nonce_ttl_s)
        with self.transaction() as session:
            session.add(tables.SignInNonce(nonce=nonce, address=address, expires_at=expires, used=False))
        return NonceResponse(
            nonce=nonce,
            domain=self.config.domain,
            uri=self.config.uri,
            chain_id=self.config.chain_id,
            statement=SIGN_IN_STATEMENT,
            issued_at=now,
            expiration_time=expires,
        )

    def _use_nonce(self, session: Session, nonce: str, address: str, now: datetime) -> None:
        row = session.get(tables.SignInNonce, nonce, with_for_update=True)
        if row is None or row.used or row.expires_at <= now or row.address.lower() != address.lower():
            raise Unauthorized("this nonce was not issued to this address, was used already or expired")
        row.used = True

    @_retried
    def sign_in(self, message: str, signature: str) -> SessionToken:
        now = self._clock()
        try:
            signed = verify_sign_in(
                message, signature, domain=self.config.domain, chain_id=self.config.chain_id, now=now
            )
        except SignatureError as exc:
            raise Unauthorized(str(exc)) from None
        admitted = self.config.only_providers
        if admitted is not None and signed.address.lower() not in {address.lower() for address in admitted}:
            raise Forbidden(f"this marketplace admits only its owner's own machine as a provider, not {signed.address}")
        token = new_secret("scs_")
        expires = now + timedelta(seconds=self.config.session_ttl_s)
        with self.transaction() as session:
            self._use_nonce(session, signed.nonce, signed.address, now)
            provider = session.get(tables.Provider, signed.address)
            if provider is not None and provider.banned_at is not None:
                raise Forbidden(f"this provider is banned by the marketplace's operator: {provider.ban_reason}")
            session.add(tables.Session(token_sha256=sha256_hex(token), address=signed.address, expires_at=expires))
        log.info("Provider %s signed in", signed.address)
        return SessionToken(token=token, expires_at=expires, address=signed.address)

    def provider_for_token(self, token: str) -> str:
        """The provider whose session this token is. A session found in the database is remembered until it
        expires (credentials.py): a ban through this process forgets it at once, one through another process
        (or the CLI) within ``auth_cache_s``."""
        digest = sha256_hex(token)
        now = self._clock()
        self._credentials.recheck_if_due(self._withdrawn)
        address = self._credentials.provider(digest, now)
        if address is not None:
            return address
        with self.read() as session:
            row = session.execute(
                select(tables.Session.address, tables.Session.expires_at).where(tables.Session.token_sha256 == digest)
            ).one_or_none()
        if row is None or row.expires_at <= now:
            self._credentials.forget_session(digest)
            raise Unauthorized("sign in again: this session token is unknown or expired")
        self._credentials.remember_session(digest, row.address, row.expires_at)
        return str(row.address)

    def requester_for_key(self, key: str) -> str:
        """The requester whose API key this is, remembered like a provider's session: revoking or rotating the
        key through this process forgets it at once, through another within ``auth_cache_s``."""
        digest = sha256_hex(key)
        self._credentials.recheck_if_due(self._withdrawn)
        requester_id = self._credentials.requester(digest)
        if requester_id is not None:
            return requester_id
        with self.read() as session:
            requester_id = session.scalar(select(tables.Requester.id).where(tables.Requester.api_key_sha256 == digest))
        if requester_id is None:
            self._credentials.forget_key(digest)
            raise Unauthorized(
                "unknown or revoked API key; the operator issues one with `sparecycles market add-requester` "
                "or `sparecycles market rotate-key`"
            )
        self._credentials.remember_key(digest, requester_id)
        return requester_id

    def _withdrawn(self, requester_ids: Collection[str]) -> Withdrawn:
        """The banned providers, and the current key hash of each of these requesters: what the remembered
        credentials are checked against (a few rows, however many requests)."""
        with self.read() as session:
            banned = session.scalars(select(tables.Provider.address).where(tables.Provider.banned_at.is_not(None)))
            hashes = session.execute(
                select(tables.Requester.id, tables.Requester.api_key_sha256).where(
                    tables.Requester.id.in_(list(requester_ids))
                )
            )
            return Withdrawn(banned_providers=list(banned), key_hashes={row.id: row.api_key_sha256 for row in hashes})

    def forget_credentials(self, *, provider: str | None = None, requester_id: str | None = None) -> None:
        """Stop trusting the remembered sessions of a provider (banned) or the key of a requester (revoked or
        rotated), in this process; other server processes forget them within ``auth_cache_s``."""
        self._credentials.forget(provider=provider, requester_id=requester_id)

    # -- providers -------------------------------------------------------------------------------------

    @_retried
    def register(self, address: str, registration: ProviderRegistration) -> ProviderView:
        now = self._clock()
        with self.transaction() as session:
            provider = session.get(tables.Provider, address)
            if provider is None:
                provider = tables.Provider(
                    address=address, payout_address=registration.payout_address, registered_at=now, offered_cores=0
                )
                session.add(provider)
            elif provider.payout_address != registration.payout_address:
                raise Forbidden(
                    "changing the payout address needs a signature from the current payout address "
                    f"({provider.payout_address}): PUT /v1/provider/payout, or ask the operator"
                )
            provider.name = registration.name
            provider.region = registration.region
            provider.cpu_cores = registration.cpu_cores
            provider.memory_bytes = registration.memory_bytes
            provider.floor_per_gpu_hour = registration.price_floor_per_gpu_hour
            provider.floor_per_core_hour = registration.price_floor_per_core_hour
            provider.offered_cores = min(provider.offered_cores or 0, registration.cpu_cores)
            provider.last_seen_at = now
            known = {gpu.uuid: gpu for gpu in self._gpus(session, address)}
            for gpu in registration.gpus:
                row = known.pop(gpu.uuid, None)
                if row is None:
                    row = tables.ProviderGpu(provider_address=address, uuid=gpu.uuid, offered=False)
                    session.add(row)
                row.name, row.vram_bytes, row.score = gpu.name, gpu.vram_bytes, gpu.score
            for gone in known.values():
                session.delete(gone)
            session.flush()
            return self._provider_view(session, provider)

    @_retried
    def change_payout(self, address: str, change: PayoutChange) -> ProviderView:
        now = self._clock()
        with self.transaction() as session:
            provider = self.provider_row(session, address)
            self._use_nonce(session, change.nonce, address, now)
            text = payout_change_message(address, change.new_payout_address, change.nonce)
            try:
                signer = text_signer(text, change.signature)
            except SignatureError as exc:
                raise Forbidden(str(exc)) from None
            if signer.lower() != provider.payout_address.lower():
                raise Forbidden(
                    f"the payout address change is signed by {signer}, not the current payout address "
                    f"{provider.payout_address}"
                )
            provider.payout_address = change.new_payout_address
            log.info("Provider %s now pays out to %s", address, change.new_payout_address)
            return self._provider_view(session, provider)

    @_retried
    def set_payout_by_operator(self, address: str, payout_address: str, *, actor: str = "operator") -> ProviderView:
        """The operator's confirmation of a payout change (the provider lost its payout key, for instance)."""
        try:
            address, payout_address = _checksum(address), _checksum(payout_address)
        except ValueError as exc:
            raise MarketError(str(exc)) from None
        with self.transaction() as session:
            provider = self.provider_row(session, address)
            log.warning("The operator moved the payouts of %s to %s", address, payout_address)
            self.record(
                session, actor, "set_payout", f"provider:{address}", old=provider.payout_address, new=payout_address
            )
            provider.payout_address = payout_address
            return self._provider_view(session, provider)

    @_retried
    def set_offer(self, address: str, offer: Offer) -> ProviderView:
        with self.transaction() as session:
            provider = self.provider_row(session, address)
            gpus = {gpu.uuid: gpu for gpu in self._gpus(session, address)}
            unknown = [uuid for uuid in offer.gpu_uuids if uuid not in gpus]
            if unknown:
                raise MarketError(f"GPU {unknown[0]} is not registered for this provider; register it first")
            if offer.cpu_cores > provider.cpu_cores:
                raise MarketError(f"{offer.cpu_cores} cores offered, but the machine registered {provider.cpu_cores}")
            for uuid, gpu in gpus.items():
                gpu.offered = uuid in offer.gpu_uuids
            provider.offered_cores = offer.cpu_cores
            provider.last_seen_at = self._clock()
            return self._provider_view(session, provider)

    @_retried
    def poll(self, address: str) -> WorkResponse:
        """A provider asks for work: it bids on open jobs it can run now, and gets its new leases.

        Polls are the marketplace's most frequent request: a few prepared Core statements (no ORM objects), in
        one transaction on SQLite and each on its own on PostgreSQL (``polling``). On SQLite ``market serve``
        runs them one at a time on its event loop (api.py), so reading and bidding in one writer's transaction
        holds nobody up (the agent's private marketplace runs them in threads, for its one provider); most polls
        write nothing but a stale ``last_seen_at``."""
        if self.ticks_on_poll:
            self._tick_if_due()
        now = self._clock()
        with self.polling() as connection:
            provider, capacity = self._provider_capacity(connection, address)
            leases = self._execute(connection, self._sql.provider_leases, {"who": address, "since": _since(now)}).all()
            capacity = less_busy(capacity, leases)
            biddable = self._biddable_jobs(connection, provider, capacity, now)
            answer = self._work_response(connection, leases)
            if biddable or now - provider.last_seen_at >= _SEEN_EVERY:
                self._execute(connection, self._sql.seen, {"who": address, "at": now})
            if biddable:  # a bid placed meanwhile by the same provider's other poll is left as it is
                self._execute_many(connection, self._sql.bid, [self._bid(job, capacity, now) for job in biddable])
        if len(self._bidders) > _BIDDERS_REMEMBERED:
            self._bidders.clear()  # rounds long closed; open ones just count from zero again
        for job in biddable:
            counted = self._bidders.get((job.id, job.round), 0) + 1
            self._bidders[job.id, job.round] = counted
            if counted >= self.config.bidders_per_job:
                self._enough[f"{job.id}:{job.round}"] = job.window_ends_at
        return answer

    def _enough_bidders(self, now: datetime) -> list[str]:
        """The rounds still open that this process counted enough bidders for, as ``job:round``: the search for
        jobs to bid on leaves them out (at most ``_ENOUGH_LEFT_OUT``, closing soonest; a poll skips any others it
        reads). Rounds closed are forgotten here, since the search never finds them.

        On PostgreSQL polls run in several threads: the dict is copied before it is read (a copy is one step
        under the GIL), and a round added to the old dict while a new one replaces it is only bid on a little
        more, as ``_biddable_jobs`` allows."""
        counted = self._enough.copy()
        open_rounds = {key: ends for key, ends in counted.items() if ends > now}
        if len(open_rounds) < len(counted):
            self._enough = open_rounds
        if len(open_rounds) > _ENOUGH_LEFT_OUT:  # the search reads the soonest closing first: the rest it skips
            return heapq.nsmallest(_ENOUGH_LEFT_OUT, open_rounds, key=open_rounds.__getitem__)
        return list(open_rounds)

    def deliveries(self, address: str) -> WorkResponse:
        """What a waiting provider should hear of without bidding: its new leases and the ones taken back."""
        with self.reading() as connection:
            leases = self._execute(
                connection, self._sql.provider_leases, {"who": address, "since": _since(self._clock())}
            ).all()
            return self._work_response(connection, leases)

    def _provider_capacity(self, connection: Connection, address: str) -> tuple[_Row, auction.Capacity]:
        """The provider (when it was last seen, its studio group and the operator's requests), and what it offers
        (its active leases not yet taken off)."""
        rows = self._execute(connection, self._sql.provider_gpus, {"who": address}).all()
        if not rows:
            raise NotFound("register this machine first: PUT /v1/provider")
        first = rows[0]
        offered = tuple(auction.GpuOffer(row.uuid, int(row.vram_bytes), row.score) for row in rows if row.offered)
        capacity = auction.Capacity(
            address, first.floor_per_gpu_hour, first.floor_per_core_hour, offered, first.offered_cores
        )
        return first, capacity

    def _work_response(self, connection: Connection, leases: Sequence[_Row]) -> WorkResponse:
        """The provider's leases it has not started yet (at most 16), and its leases that were taken back
        (``leases``: its active and recently stopped leases, as ``provider_leases`` reads them)."""
        new = [
            lease
            for lease in leases
            if lease.state == LeaseState.ACTIVE and not lease.delivered and not lease.cancel_requested
        ][:16]
        stopped = [lease.id for lease in leases if lease.state != LeaseState.ACTIVE]
        offers: list[LeaseOffer] = []
        if new:
            specs = dict(connection.execute(self._sql.specs, {"ids": [lease.job_id for lease in new]}).all())
            offers = [
                LeaseOffer(
                    lease_id=lease.id,
                    job_id=lease.job_id,
                    spec=_spec(specs[lease.job_id]),
                    gpu_uuids=json.loads(lease.gpu_uuids_json),
                    units=lease.units,
                    price_per_unit_hour=lease.price,
                    expires_at=lease.expires_at,
                    heartbeat_interval_s=self.config.heartbeat_interval_s,
                )
                for lease in new
            ]
        return WorkResponse(leases=offers, cancelled=stopped[:256])

    def _biddable_jobs(
        self, connection: Connection, provider: _Row, capacity: auction.Capacity, now: datetime
    ) -> list[_Row]:
        """The open jobs closing soonest that this provider can run now and has not bid on in their current
        round, skipping jobs that have enough bidders already, at most ``bids_per_poll``: a thousand providers
        then spread their bids over the queue instead of all bidding on its head. Bidders are counted in this
        process's memory (counting them in SQL for every queued job made each poll scan the queue); with
        several processes a job may get a few more bids than ``bidders_per_job``, which does no harm. The rounds
        counted full are left out by the search itself (``_enough_bidders``): skipped here one by one, a page of
        them at the head of the queue hid the jobs behind it, and skipping them was a poll's largest cost."""
        if not capacity.free_gpus and capacity.free_cores == 0:
            return []
        paused_until = provider.paused_until
        if provider.drain or (paused_until is not None and paused_until > now):
            return []  # its studio drained or paused it
        found: dict[str, object] = {
            "who": capacity.address,
            "at": now,
            "cores": capacity.free_cores,
            "gpus": len(capacity.free_gpus),
            "enough": self._enough_bidders(now),
        }
        queries = []
        if provider.group_name is not None:
            queries.append((self._sql.biddable_in_group, {**found, "group": provider.group_name}))
        if provider.outside_jobs is not False:  # None: in no group
            queries.append((self._sql.biddable, found))
        wanted: list[_Row] = []
        for query, parameters in queries:
            # Read row by row, and only until enough are wanted: the database finds each next row as it is
            # asked for, and most polls want the first few. Price, VRAM and score are checked here (token
            # amounts do not compare in SQLite's SQL).
            with self._execute(connection, query, parameters) as rows:
                for job in rows:
                    if self._bidders.get((job.id, job.round), 0) < self.config.bidders_per_job and auction.qualifies(
                        capacity, job_need(job)
                    ):
                        wanted.append(job)
                        if len(wanted) == self.config.bids_per_poll:
                            return wanted
        return wanted

    @staticmethod
    def _bid(job: _Row, capacity: auction.Capacity, now: datetime) -> dict[str, object]:
        need = job_need(job)
        return {
            "job_id": job.id,
            "round": job.round,
            "provider_address": capacity.address,
            "price": auction.bid_price(capacity, need),
            "score": auction.bid_score(capacity, need),
            "placed_at": now,
        }

    @_retried
    def heartbeat(self, address: str, lease_id: str, run_time_ms: int) -> HeartbeatAck:
        """Extend an active lease (and mark it started). Two Core statements: heartbeats come from every running
        job every few seconds, and the ORM's unit of work cost several times the database's own work here."""
        now = self._clock()
        with self.writing() as connection:
            lease = self._execute(connection, self._sql.beating_lease, {"id": lease_id}).one_or_none()
            if lease is None or lease.provider_address != address:
                raise NotFound(f"no lease {lease_id} for this provider")
            if lease.state != LeaseState.ACTIVE:
                return HeartbeatAck(expires_at=lease.expires_at, cancel=True)
            expires_at = now + timedelta(seconds=self.config.lease_timeout_s)
            max_run_ms = self._run_ms_allowed(_spec(lease.spec_json), lease.started_at, now)
            self._execute(
                connection,
                self._sql.beat,
                {"lease": lease_id, "expiry": expires_at, "run_ms": min(run_time_ms, max_run_ms)},
            )
            return HeartbeatAck(expires_at=expires_at, cancel=lease.cancel_requested)

    def store_output(self, address: str, lease_id: str, path: str, body: IO[bytes]) -> OutputFile:
        """Keep one output file of an active lease, within the job's and the server's output caps and the
        requester's storage quota.

        The body is streamed to a file of this upload's own, outside any transaction, against the room there
        was when it began (a body past it is cut off early). It takes the output's name only in a second
        transaction that holds the lease and the requester and checks again: the lease must still be active and
        unreported (an upload still streaming when the report was accepted must not replace the file the report
        vouched for), and the room must still be there (uploads sent side by side each found it free)."""
        with self.transaction() as session:
            lease = self._own_lease(session, address, lease_id)
            if lease.state != LeaseState.ACTIVE:
                raise Conflict(f"lease {lease_id} is {lease.state}: outputs are uploaded before the report")
            spec = _spec(self._job(session, lease.job_id).spec_json)
            requester = self._lease_requester(session, lease)
            job_room, quota_room, quota = self._output_room(session, spec, requester, lease_id, path)
        target = self.config.data_dir / "outputs" / lease_id / path
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{secrets.token_hex(8)}.part")  # this upload's own
        over_quota = False
        try:
            digest, size = hashlib.sha256(), 0
            with partial.open("wb") as out:
                while chunk := body.read(_CHUNK):
                    size += len(chunk)
                    if size > job_room:
                        raise TooLarge(f"the outputs of lease {lease_id} exceed the job's output cap")
                    if size > quota_room:
                        self._refuse_over_quota(requester.name, lease_id, path, quota)
                    digest.update(chunk)
                    out.write(chunk)
            uploaded = OutputFile(path=path, size_bytes=size, sha256=digest.hexdigest())
            with self.transaction() as session:
                lease = self._own_lease(session, address, lease_id, lock=True)
                if lease.state != LeaseState.ACTIVE or lease.report_json is not None:
                    raise Conflict(
                        f"lease {lease_id} was reported while this output was uploading: the report stands, "
                        "this upload was not kept"
                    )
                requester = self._lease_requester(session, lease, lock=True)
                job_room, quota_room, quota = self._output_room(session, spec, requester, lease_id, path)
                if size > job_room:
                    raise TooLarge(f"the outputs of lease {lease_id} exceed the job's output cap")
                over_quota = size > quota_room
                if not over_quota:
                    partial.replace(target)  # under the lease's lock: the file and its row change together
                    row = session.get(tables.UploadedOutput, (lease_id, path))
                    if row is None:
                        row = tables.UploadedOutput(lease_id=lease_id, path=path)
                        session.add(row)
                    row.size_bytes, row.sha256 = size, uploaded.sha256
                    row.uploaded_at, row.deleted_at = self._clock(), None
        finally:
            partial.unlink(missing_ok=True)
        if over_quota:  # refused after the transaction: the refusal is audited in one of its own
            self._refuse_over_quota(requester.name, lease_id, path, quota)
        return uploaded

    def _lease_requester(self, session: Session, lease: tables.Lease, *, lock: bool = False) -> tables.Requester:
        requester = session.get(tables.Requester, self._job(session, lease.job_id).requester_id, with_for_update=lock)
        assert requester is not None  # noqa: S101 - a job's requester is never removed
        return requester

    def _output_room(
        self, session: Session, spec: JobSpec, requester: tables.Requester, lease_id: str, path: str
    ) -> tuple[int, int, int]:
        """(room left under the job's output cap, room left in the requester's quota, that quota) for an
        upload of ``path``: what the lease's other outputs and the requester's other files take already."""
        others = or_(tables.UploadedOutput.lease_id != lease_id, tables.UploadedOutput.path != path)
        already = session.scalar(
            select(func.coalesce(func.sum(tables.UploadedOutput.size_bytes), 0)).where(
                tables.UploadedOutput.lease_id == lease_id, others
            )
        )
        quota = requester.storage_quota_bytes
        quota = self.config.storage_quota_bytes if quota is None else quota
        job_room = min(spec.max_output_bytes, self.config.max_output_bytes) - int(already or 0)
        return job_room, quota - self.stored_bytes(session, requester.id, others), quota

    @staticmethod
    def stored_bytes(session: Session, requester_id: str, *where: ColumnElement[bool]) -> int:
        """What a requester's job outputs take on the server's disk now (retention removes old ones)."""
        total = session.scalar(
            select(func.coalesce(func.sum(tables.UploadedOutput.size_bytes), 0))
            .join(tables.Lease, tables.Lease.id == tables.UploadedOutput.lease_id)
            .join(tables.Job, tables.Job.id == tables.Lease.job_id)
            .where(tables.Job.requester_id == requester_id, tables.UploadedOutput.deleted_at.is_(None), *where)
        )
        return int(total or 0)

    def _refuse_over_quota(self, requester: str, lease_id: str, path: str, quota: int) -> None:
        with self.transaction() as session:
            self.record(session, "marketplace", "quota_refused", f"requester:{requester}", lease=lease_id, path=path)
        raise TooLarge(
            f"the requester's storage quota ({quota} bytes) is full: its operator can raise it or remove old "
            "outputs; this upload was not kept"
        )

    # Also after a unique violation: the first payout to an address is an INSERT, and two reports paying the
    # same new address at once (a studio's machines share one) both find no row to lock; the second insert
    # fails once the first commits. Run again, it finds the row and adds to it; a report is idempotent.
    @_retried_on(_RETRYABLE_SQLSTATES | {_UNIQUE_VIOLATION})
    def report(self, address: str, lease_id: str, signed: SignedResultReport) -> ReportAck:
        """Take a provider's signed result; idempotent, so a re-sent report changes nothing."""
        report = signed.report
        if report.lease_id != lease_id:
            raise MarketError(f"the report is for lease {report.lease_id}, sent to lease {lease_id}")
        try:
            signer = text_signer(report.signing_text(), signed.signature)
        except SignatureError as exc:
            raise Forbidden(str(exc)) from None
        if signer.lower() != address.lower():
            raise Forbidden(f"the report is signed by {signer}, not by this provider's identity key {address}")
        now = self._clock()
        with self.writing() as connection:
            accepted = self._accept_at_once(connection, address, signed, now)
        if accepted is not None:
            self.on_freed(address)
            return accepted
        with self.transaction() as session:  # any other report (the first transaction only read)
            lease = self._own_lease(session, address, lease_id)
            job = self._job(session, lease.job_id, lock=True)
            if report.job_id != job.id:
                raise MarketError(f"lease {lease_id} belongs to job {job.id}, not {report.job_id}")
            if lease.report_json is not None:
                if json.loads(lease.report_json) != report.model_dump(mode="json"):
                    raise Conflict(f"lease {lease_id} was reported already, with a different result")
                return ReportAck(lease_id=lease_id, lease_state=LeaseState(lease.state), job_state=JobState(job.state))
            lease.report_json = report.model_dump_json()
            lease.report_signature = signed.signature
            freed = lease.state == LeaseState.ACTIVE
            if freed:  # a lease ended before (cancelled and paid its age, say) keeps the run time it was paid for
                lease.run_time_ms = min(report.run_time_ms, self._max_run_ms(session, lease, now))
                self._judge_report(session, job, lease, now)
            log.info("Lease %s of job %s reported %s", lease_id, job.id, report.outcome)
            ack = ReportAck(lease_id=lease_id, lease_state=LeaseState(lease.state), job_state=JobState(job.state))
        if freed:
            self.on_freed(address)
        return ack

    def _accept_at_once(
        self, connection: Connection, address: str, signed: SignedResultReport, now: datetime
    ) -> ReportAck | None:
        """The common report in Core statements: the first report of an active lease of a running one-replica job,
        finished, its outputs uploaded. The lease is paid and the job settled as ``_judge_job``, ``_pay`` and
        ``_end_job`` do for every job; any other case (None) is theirs, in a transaction of their own (this one
        only read). Every job's report comes here, and the ORM's unit of work cost several times what the
        database did."""
        report = signed.report
        row = self._execute(connection, self._sql.reported_lease, {"lease": report.lease_id}).one_or_none()
        if (
            row is None
            or row.provider_address != address
            or row.job_id != report.job_id
            or row.report_json is not None
            or row.state != LeaseState.ACTIVE
            or row.job_state != JobState.RUNNING
            or row.replicas != 1
            or report.outcome != "finished"
        ):
            return None
        if report.outputs:
            uploaded = {
                upload.path: (int(upload.size_bytes), upload.sha256)
                for upload in self._execute(connection, self._sql.uploads, {"lease": report.lease_id})
            }
            if any(uploaded.get(output.path) != (output.size_bytes, output.sha256) for output in report.outputs):
                return None  # refused there, with the file it misses
        run_time_ms = min(report.run_time_ms, self._run_ms_allowed(_spec(row.spec_json), row.started_at, now))
        amount = lease_amount(row.price, row.units, run_time_ms)
        earned = self._execute(
            connection, self._sql.payout_cumulative, {"payout": row.payout_address}
        ).scalar_one_or_none()
        cumulative = (earned or 0) + amount
        voucher = self._voucher(row.payout_address, cumulative)
        self._execute(
            connection,
            self._sql.payout_insert if earned is None else self._sql.payout_update,
            {"payout": row.payout_address, "total": cumulative, "voucher": voucher.model_dump_json(), "at": now},
        )
        self._execute(
            connection,
            self._sql.accept_lease,
            {
                "lease": report.lease_id,
                "report": report.model_dump_json(),
                "signature": signed.signature,
                "run_ms": run_time_ms,
                "earned": amount,
                "cumulative": cumulative,
                "at": now,
            },
        )
        charged = min(row.charged + amount, row.held)
        self._execute(connection, self._sql.complete_job, {"job": row.job_id, "settled": charged, "at": now})
        requester = self._execute(connection, self._sql.requester_credit, {"requester": row.requester_id}).one()
        released = row.held - charged
        self._execute(
            connection,
            self._sql.hold_credit,
            {
                "requester": row.requester_id,
                "new_credit": requester.credit + released,
                "new_held": requester.held - row.held,
            },
        )
        audit = [
            _audit_values(
                "marketplace", "charge", f"job:{row.job_id}", amount, {"lease": row.id, "payout": row.payout_address}
            )
        ]
        if released:
            audit.append(
                _audit_values("marketplace", "release", f"job:{row.job_id}", released, {"state": JobState.COMPLETED})
            )
        self._execute_many(connection, self._sql.audit, audit)
        log.info("Lease %s of job %s reported finished", row.id, row.job_id)
        log.info("Lease %s accepted: %d base units to %s", row.id, amount, row.payout_address)
        log.info("Job %s %s; the requester paid %d base units", row.job_id, JobState.COMPLETED, charged)
        return ReportAck(lease_id=row.id, lease_state=LeaseState.ACCEPTED, job_state=JobState.COMPLETED)

    def _judge_report(self, session: Session, job: tables.Job, lease: tables.Lease, now: datetime) -> None:
        report = json.loads(lease.report_json or "{}")
        outcome = report["outcome"]
        if job.state in _ENDED_JOB_STATES or job.state == JobState.DISPUTED:
            # Settled already, or the operator's to settle: a replica still running then neither requeues the
            # job (with nothing held any more) nor pays itself from a hold that was released.
            self._end_lease(lease, LeaseState.CANCELLED, f"the job was {job.state} when this lease reported", now)
            return
        if outcome == "finished":
            missing = self._missing_outputs(session, lease, report["outputs"])
            if missing:
                raise Conflict(f"upload the outputs before reporting: {missing} is missing or differs")
            lease.state = LeaseState.REPORTED
            lease.ended_at = now
            self._judge_job(session, job, now)
        elif outcome in ("failed", "refused"):
            why = report.get("reason") or f"exit code {report.get('exit_code')}"
            self._end_lease(lease, LeaseState.FAILED, f"{outcome} on the provider: {why}", now)
            job.attempts += 1
            if job.attempts >= self.config.max_failed_attempts:
                reason = f"failed {job.attempts} times; last: {why}"
                self._stop_leases(session, job, reason, now)  # its other replicas, told to stop at their heartbeat
                self._end_job(session, job, JobState.FAILED, reason, now)
            else:
                self._requeue(job, f"queued again: it {outcome} on a provider ({why})", now)
        else:  # preempted or interrupted: the provider's owner took the machine back
            self._end_lease(lease, LeaseState.PREEMPTED, report.get("reason") or outcome, now)
            self._requeue(job, f"queued again: the provider {outcome} it", now)

    def _missing_outputs(self, session: Session, lease: tables.Lease, outputs: list[dict[str, object]]) -> str | None:
        if not outputs:
            return None
        uploaded = {
            row.path: (int(row.size_bytes), row.sha256)
            for row in session.scalars(select(tables.UploadedOutput).where(tables.UploadedOutput.lease_id == lease.id))
        }
        for output in outputs:
            if uploaded.get(str(output["path"])) != (output["size_bytes"], output["sha256"]):
                return str(output["path"])
        return None

    def _judge_job(self, session: Session, job: tables.Job, now: datetime) -> None:
        """All replicas reported: accept and pay when their outputs agree, or hold the job as disputed."""
        reported = [lease for lease in self._leases(session, job.id) if lease.state == LeaseState.REPORTED]
        if len(reported) < job.replicas:
            job.reason = f"running: {len(reported)} of {job.replicas} replicas reported"
            return
        hashes = {lease.id: _output_set(lease) for lease in reported}
        if len(set(hashes.values())) > 1:
            job.state = JobState.DISPUTED
            job.reason = (
                "disputed: the replicas' outputs differ; nobody is paid until the operator runs "
                f"`sparecycles market resolve {job.id} --accept PROVIDER` or `--reject`"
            )
            log.warning("Job %s is disputed: its replicas disagree", job.id)
            return
        for lease in reported:
            self._pay(session, lease, now)
        self._end_job(session, job, JobState.COMPLETED, "completed", now)

    def _pay(self, session: Session, lease: tables.Lease, now: datetime) -> None:
        amount = lease_amount(lease.price, lease.units, int(lease.run_time_ms or 0))
        lease.state, lease.amount = LeaseState.ACCEPTED, amount
        lease.ended_at = lease.ended_at or now
        payout = session.get(tables.Payout, lease.payout_address, with_for_update=True)
        cumulative = (payout.cumulative if payout is not None else 0) + amount
        lease.paid_cumulative = cumulative
        voucher = self._voucher(lease.payout_address, cumulative)
        if payout is None:
            session.add(
                tables.Payout(
                    payout_address=lease.payout_address,
                    cumulative=cumulative,
                    voucher_json=voucher.model_dump_json(),
                    updated_at=now,
                )
            )
        else:
            payout.cumulative, payout.voucher_json, payout.updated_at = cumulative, voucher.model_dump_json(), now
        job = self._job(session, lease.job_id)
        job.charged += amount
        self.record(
            session, "marketplace", "charge", f"job:{job.id}", amount, lease=lease.id, payout=lease.payout_address
        )
        log.info("Lease %s accepted: %d base units to %s", lease.id, amount, lease.payout_address)

    def _voucher(self, payout_address: str, cumulative: int) -> Voucher:
        """The operator's voucher for what ``payout_address`` has earned in all, for this marketplace's vault."""
        return sign_voucher(
            self._operator,
            payout_address,
            cumulative,
            chain_id=self.config.chain_id,
            contract=self.config.voucher_contract,
        )

    def latest_voucher(self, address: str) -> Voucher:
        with self.read() as session:
            provider = self.provider_row(session, address)
            payout = session.get(tables.Payout, provider.payout_address)
            if payout is None:
                raise NotFound("no earnings yet for this provider's payout address")
            return Voucher.model_validate_json(payout.voucher_json)

    def provider_lease(self, address: str, lease_id: str) -> ProviderLeaseView:
        """One of the provider's own leases as its ledger needs it: what it earned and which vouchers cover it."""
        with self.read() as session:
            return _provider_lease_view(self._own_lease(session, address, lease_id, lock=False))

    def prices(self) -> MarketPrices:
        """What the queued jobs offer now: one aggregate query, answered from memory for ``prices_cache_s``
        (many providers ask, and the answer only guides their owners)."""
        now = self._clock()
        cached = self._prices
        if cached is not None and timedelta(0) <= now - cached[0] < timedelta(seconds=self.config.prices_cache_s):
            return cached[1]
        needs_gpus = (tables.Job.gpus > 0).label("needs_gpus")
        price: ColumnElement[Any] = tables.Job.max_price.expression
        if not self.is_postgresql:  # decimal text on SQLite: padded to one width, it compares as the numbers do
            price = func.printf("%80s", tables.Job.max_price)
        query = (
            select(needs_gpus, func.count(), type_coerce(func.max(price), tables.BaseUnitsType()))
            .where(tables.Job.state == JobState.QUEUED)
            .group_by(needs_gpus)
        )
        counts: dict[bool, int] = {True: 0, False: 0}
        bests: dict[bool, int | None] = {True: None, False: None}
        with self.read() as session:
            for gpu_jobs, count, highest in session.execute(query):
                counts[bool(gpu_jobs)], bests[bool(gpu_jobs)] = int(count), highest
        prices = MarketPrices(
            queued_gpu_jobs=counts[True],
            queued_cpu_jobs=counts[False],
            best_gpu_hour=bests[True],
            best_core_hour=bests[False],
        )
        self._prices = (now, prices)
        return prices

    # -- requesters ------------------------------------------------------------------------------------

    @_retried
    def submit(self, requester_id: str, submission: JobSubmission) -> JobView:
        """Queue a job, holding its most possible cost from the requester's credit. Core statements, like the
        other calls made for every job (heartbeat, poll): the ORM's unit of work cost more than the database."""
        now = self._clock()
        spec = submission.spec
        hold = lease_amount(submission.max_price, submission.units, spec.max_runtime_s * 1000) * submission.replicas
        with self.writing() as connection:
            requester = self._execute(connection, self._sql.requester_credit, {"requester": requester_id}).one()
            queued = self._execute(connection, self._sql.queued_count, {"requester": requester_id}).scalar_one()
            if queued >= self.config.max_queued_jobs_per_requester:
                raise TooMany(
                    f"{queued} of your jobs are queued already, this marketplace's limit per requester; "
                    "submit more when some have started",
                    retry_after_s=30,
                )
            if submission.project is not None:
                self._refuse_past_project_quota(connection, requester_id, requester.name, submission.project, hold)
            if requester.credit < hold:
                raise InsufficientCredit(
                    f"the job can cost up to {hold} base units and {requester.credit} are available; "
                    "lower its price, run time or replicas, or ask the operator for credit"
                )
            self._execute(
                connection,
                self._sql.hold_credit,
                {"requester": requester_id, "new_credit": requester.credit - hold, "new_held": requester.held + hold},
            )
            job = {
                "id": _new_id("job"),
                "requester_id": requester_id,
                "spec_json": spec.model_dump_json(),
                "gpus": spec.gpus,
                "units": submission.units,
                "max_price": submission.max_price,
                "bidding_window_s": submission.bidding_window_s,
                "min_score": submission.min_score,
                "replicas": submission.replicas,
                "state": JobState.QUEUED,
                "reason": "queued: collecting bids",
                "round": 0,
                "window_ends_at": now + timedelta(seconds=submission.bidding_window_s),
                "attempts": 0,
                "held": hold,
                "charged": 0,
                "created_at": now,
                "group_name": requester.group_name,
                "priority": STUDIO_PRIORITY if requester.group_name is not None else 0,
                "project": submission.project,
            }
            self._execute(connection, self._sql.job, job)
            self._execute(
                connection,
                self._sql.audit,
                _audit_values(f"requester:{requester.name}", "hold", f"job:{job['id']}", hold, {}),
            )
        log.info("Job %s submitted (%d unit(s), %d replica(s))", job["id"], submission.units, submission.replicas)
        self.on_open(1)
        return JobView(
            job_id=job["id"],
            state=JobState.QUEUED,
            reason=job["reason"],
            created_at=now,
            replicas=submission.replicas,
            units=submission.units,
            max_price_per_unit_hour=submission.max_price,
            held_base_units=hold,
            charged_base_units=0,
            project=submission.project,
        )

    @staticmethod
    def project_committed(connection: Session | Connection, requester_id: str, project: str) -> int:
        """What a requester's jobs of ``project`` hold or were charged: ended jobs their charge, others their hold."""
        committed = 0
        for held, charged, state in connection.execute(
            select(tables.Job.held, tables.Job.charged, tables.Job.state).where(
                tables.Job.requester_id == requester_id, tables.Job.project == project
            )
        ):
            committed += int(charged) if state in _ENDED_JOB_STATES else int(held)
        return committed

    def _refuse_past_project_quota(
        self, connection: Connection, requester_id: str, requester_name: str, project: str, hold: int
    ) -> None:
        quota = connection.execute(
            select(tables.ProjectQuota.max_base_units).where(
                tables.ProjectQuota.requester_id == requester_id, tables.ProjectQuota.project == project
            )
        ).scalar_one_or_none()
        if quota is None:
            return
        committed = self.project_committed(connection, requester_id, project)
        if committed + hold > quota:
            raise InsufficientCredit(
                f"project {project} may commit {quota} base units and {committed} are committed; "
                f"this job can cost up to {hold}: ask the operator to raise the project's quota "
                f"(`sparecycles market project-quota {requester_name} {project} AMOUNT`)"
            )

    def job(self, requester_id: str, job_id: str) -> JobView:
        with self.read() as session:
            return self.job_view(session, self._requesters_job(session, requester_id, job_id))

    def job_any(self, job_id: str) -> JobView:
        """A job whoever submitted it (the operator's view)."""
        with self.read() as session:
            return self.job_view(session, self._job(session, job_id))

    def jobs(self, requester_id: str, limit: int = 100) -> list[JobView]:
        with self.read() as session:
            rows = session.scalars(
                select(tables.Job)
                .where(tables.Job.requester_id == requester_id)
                .order_by(tables.Job.created_at.desc())
                .limit(limit)
            ).all()
            return [self.job_view(session, job) for job in rows]

    def requester(self, requester_id: str) -> RequesterView:
        with self.read() as session:
            requester = session.get(tables.Requester, requester_id)
            assert requester is not None  # noqa: S101 - authenticated just before
            return _requester_view(requester)

    @_retried
    def cancel(self, requester_id: str, job_id: str) -> JobView:
        """Cancel a job; running leases are stopped and paid for the time they ran until now."""
        with self.transaction() as session:
            job = self._requesters_job(session, requester_id, job_id, lock=True)
            self.cancel_job(session, job, "cancelled by the requester")
            return self.job_view(session, job)

    def cancel_job(self, session: Session, job: tables.Job, reason: str) -> None:
        """End a locked job as cancelled: its leases are paid for the time they ran (``_stop_leases``), the rest
        of the hold is released. A disputed job is not cancelled: the operator settles it (``resolve``), which
        decides who is paid; cancelling it would pay nobody behind the operator's back."""
        if job.state in _ENDED_JOB_STATES:
            raise Conflict(f"job {job.id} has ended already ({job.state})")
        if job.state == JobState.DISPUTED:
            raise Conflict(
                f"job {job.id} is disputed: its operator settles it with `sparecycles market resolve {job.id} "
                "--accept PROVIDER` or `--reject`"
            )
        now = self._clock()
        self._stop_leases(session, job, reason, now)
        self._end_job(session, job, JobState.CANCELLED, reason, now)

    def _stop_leases(self, session: Session, job: tables.Job, reason: str, now: datetime) -> None:
        """Before a job ends unfinished, end its live leases and pay each for the time it ran, from the job's
        hold: an active lease its age until now (and its provider is told to stop at its next heartbeat), a
        reported one the run time its report claimed. The work was done at the requester's asking either way."""
        for lease in self._leases(session, job.id):
            if lease.state == LeaseState.ACTIVE:
                lease.cancel_requested = True
                lease.run_time_ms = self._max_run_ms(session, lease, now, skew=False)  # its age until now
            elif lease.state != LeaseState.REPORTED:
                continue
            self._pay(session, lease, now)
            self._end_lease(lease, LeaseState.CANCELLED, reason, now)

    def output_file(self, requester_id: str, job_id: str, path: str) -> Path:
        """Where an accepted output of a completed job lies on the server's disk."""
        with self.read() as session:
            job = self._requesters_job(session, requester_id, job_id)
            accepted = [lease for lease in self._leases(session, job_id) if lease.state == LeaseState.ACCEPTED]
            if job.state != JobState.COMPLETED or not accepted:
                raise NotFound(f"job {job_id} has no accepted outputs ({job.state})")
            lease = accepted[0]
            row = session.get(tables.UploadedOutput, (lease.id, path))
            if row is None:
                raise NotFound(f"job {job_id} has no output {path!r}")
            if row.deleted_at is not None:
                raise NotFound(
                    f"output {path!r} of job {job_id} was deleted on {row.deleted_at:%Y-%m-%d} "
                    "by the marketplace's output retention"
                )
        stored = self.config.data_dir / "outputs" / lease.id / path
        if not stored.is_file():
            log.error(
                "Output %s of lease %s is missing from %s: do all servers share --data-dir?", path, lease.id, stored
            )
            raise NotFound(
                f"output {path!r} of job {job_id} is not on this server's disk (it may be stored by another server "
                "process of this marketplace); ask its operator"
            )
        return stored

    def delete_outputs_older_than(self, days: float, *, actor: str = "operator") -> tuple[int, int]:
        """Output retention: delete the stored outputs of jobs that ended more than ``days`` ago.
        Returns (files, bytes); the deletion is in the audit log."""
        now = self._clock()
        cutoff = now - timedelta(days=days)
        files = freed = 0
        with self.transaction() as session:
            rows = session.scalars(
                select(tables.UploadedOutput)
                .join(tables.Lease, tables.Lease.id == tables.UploadedOutput.lease_id)
                .join(tables.Job, tables.Job.id == tables.Lease.job_id)
                .where(
                    tables.UploadedOutput.deleted_at.is_(None),
                    tables.Job.ended_at.is_not(None),
                    tables.Job.ended_at < cutoff,
                )
                .with_for_update()
            ).all()
            for row in rows:
                (self.config.data_dir / "outputs" / row.lease_id / row.path).unlink(missing_ok=True)
                row.deleted_at = now
                files, freed = files + 1, freed + int(row.size_bytes)
            if rows:
                self.record(session, actor, "retention", "outputs", files=files, bytes=freed, older_than_days=days)
        if files:
            log.info("Output retention deleted %d file(s), %d bytes, of jobs ended before %s", files, freed, cutoff)
        return files, freed

    # -- time ------------------------------------------------------------------------------------------

    @_retried
    def resume(self) -> int:
        """At server start: give every active lease a full timeout again, so that the server's own downtime
        does not expire leases whose providers kept working (their results are on their way). Returns how many."""
        now = self._clock()
        renewed = now + timedelta(seconds=self.config.lease_timeout_s)
        with self.transaction() as session:
            leases = session.scalars(
                select(tables.Lease).where(tables.Lease.state == LeaseState.ACTIVE, tables.Lease.expires_at < renewed)
            ).all()
            for lease in leases:
                lease.expires_at = renewed
        if leases:
            log.info("Renewed %d active lease(s) after the marketplace's restart", len(leases))
        return len(leases)

    def _tick_if_due(self) -> None:
        now = self._clock()
        if self._last_tick is None or (now - self._last_tick).total_seconds() >= self.config.tick_every_s:
            self.tick()

    def state_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """How many jobs are in each state, and how many leases ever made ended in each (for metrics)."""
        with self.transaction() as session:
            jobs = session.execute(select(tables.Job.state, func.count()).group_by(tables.Job.state)).all()
            leases = session.execute(select(tables.Lease.state, func.count()).group_by(tables.Lease.state)).all()
        return {str(state): int(count) for state, count in jobs}, {str(state): int(count) for state, count in leases}

    def tick(self) -> TickResult:
        """Expire leases whose heartbeats stopped, then close the auctions whose bidding window ended.

        Safe in several server processes at once: expired leases and due jobs are taken with ``FOR UPDATE
        SKIP LOCKED`` (each row by one process), auctions are closed by one process at a time (a PostgreSQL
        advisory lock; SQLite serialises writers anyway), and the live-seat index refuses a second lease
        for a seat whatever happens. Auctions close in batches, so requests interleave with a long tick.
        """
        steps = self.tick_steps()
        while True:
            try:
                next(steps)
            except StopIteration as finished:
                return finished.value  # type: ignore[no-any-return]

    def tick_steps(self) -> Generator[None, None, TickResult]:
        """The tick, one transaction at a time: a server that runs it on its event loop (SQLite) answers
        requests between the steps."""
        now = self._clock()
        self._last_tick = now
        if self._last_housekeeping is None or now - self._last_housekeeping >= _HOUSEKEEPING_EVERY:
            self._last_housekeeping = now
            self._housekeeping(now)
            yield
        expired = self._expire_leases(now)
        assigned = 0
        while True:
            yield
            closed, leased = self._close_due_auctions(now)
            assigned += leased
            if closed < self.config.auction_batch:
                break
        if self.studio_preemption is not None:  # studio jobs whose window just closed without a free machine
            yield
            self.studio_preemption(now)
        return TickResult(expired=expired, assigned=assigned)

    def _housekeeping(self, now: datetime) -> None:
        """Hourly: forget used or expired sign-in nonces and expired sessions; apply output retention."""
        with self.transaction() as session:
            session.execute(
                delete(tables.SignInNonce).where(
                    or_(tables.SignInNonce.used.is_(True), tables.SignInNonce.expires_at <= now)
                )
            )
            session.execute(delete(tables.Session).where(tables.Session.expires_at <= now))
        if self.config.output_retention_days is not None:
            self.delete_outputs_older_than(self.config.output_retention_days, actor="marketplace (retention policy)")

    @_retried
    def _expire_leases(self, now: datetime) -> int:
        with self.transaction() as session:
            leases = session.scalars(
                select(tables.Lease)
                .where(tables.Lease.state == LeaseState.ACTIVE, tables.Lease.expires_at <= now)
                .with_for_update(skip_locked=True)
            ).all()
            for lease in leases:
                self.take_back(
                    session,
                    lease,
                    LeaseState.LOST,
                    "no heartbeat: the lease expired (not paid)",
                    why_queued=f"lease {lease.id} expired without heartbeats",
                    now=now,
                )
                log.warning("Lease %s of job %s expired: no heartbeat", lease.id, lease.job_id)
            return len(leases)

    @_retried
    def _close_due_auctions(self, now: datetime) -> tuple[int, int]:
        """Close up to ``auction_batch`` due auctions in one transaction; returns (closed, leases made)."""
        now = max(now, self._clock())  # a long tick's later batches see the time they run at
        with self.transaction() as session:
            if self.is_postgresql and not session.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _AUCTIONEER_LOCK}
            ):
                return 0, 0  # another server process is closing auctions right now
            due = session.scalars(
                select(tables.Job)
                .where(tables.Job.state == JobState.QUEUED, tables.Job.window_ends_at <= now)
                .order_by(tables.Job.priority.desc(), tables.Job.window_ends_at)  # a studio's own jobs first
                .limit(self.config.auction_batch)
                .with_for_update(skip_locked=True)
            ).all()
            cache = self._auction_cache(session.connection(), due, now)
            winners: set[str] = set()
            leased = 0
            reopened = 0
            for job in due:
                won = self._close_auction(session, job, now, cache)
                leased += len(won)
                winners.update(won)
                reopened += job.state == JobState.QUEUED
            closed = len(due)
        if winners:
            self.on_leased(winners)
        if reopened:
            self.on_open(reopened)
        return closed, leased

    def _auction_cache(self, connection: Connection, due: Sequence[tables.Job], now: datetime) -> _Cache:
        """What closing the ``due`` auctions reads, in four Core queries for the whole batch: their leases,
        their bids of this round from providers online and not banned, and those providers' capacities."""
        cache = _Cache()
        if not due:
            return cache
        ids = [job.id for job in due]
        for lease in connection.execute(self._sql.job_leases, {"ids": ids}):
            cache.leases.setdefault(lease.job_id, []).append(lease)
        online_after = now - timedelta(seconds=self.config.provider_online_s)
        bidders = cache.bidders
        for bid in connection.execute(self._sql.job_bids, {"ids": ids, "online_after": online_after}):
            cache.bids.setdefault(bid.job_id, []).append(bid)
            bidders.setdefault(bid.provider_address, bid)
        standing = [address for address in self.standing() if address not in bidders]
        if standing:
            for row in connection.execute(
                self._sql.standing_providers, {"addresses": standing, "online_after": online_after}
            ):
                bidders[row.provider_address] = row
        if not bidders:
            return cache
        addresses = list(bidders)
        offered: dict[str, list[auction.GpuOffer]] = {}
        for gpu in connection.execute(self._sql.offered_gpus, {"addresses": addresses}):
            offered.setdefault(gpu.provider_address, []).append(
                auction.GpuOffer(gpu.uuid, int(gpu.vram_bytes), gpu.score)
            )
        busy: dict[str, list[_Row]] = {}
        for lease in connection.execute(self._sql.active_leases, {"addresses": addresses}):
            busy.setdefault(lease.provider_address, []).append(lease)
        for address, row in bidders.items():
            capacity = auction.Capacity(
                address,
                row.floor_per_gpu_hour,
                row.floor_per_core_hour,
                tuple(offered.get(address, ())),
                row.offered_cores,
            )
            cache.capacities[address] = less_busy(capacity, busy.get(address, []))
            cache.payouts[address] = row.payout_address
        return cache

    def _close_auction(self, session: Session, job: tables.Job, now: datetime, cache: _Cache) -> list[str]:
        """Lease the job's free seats to the best qualifying bids of this round; returns the providers leased."""
        leases = cache.leases.get(job.id, [])
        holding = [lease for lease in leases if lease.state in (LeaseState.ACTIVE, LeaseState.REPORTED)]
        taken = {lease.seat for lease in leases if lease.state in tables.LIVE_LEASE_STATES}
        free_seats = [seat for seat in range(job.replicas) if seat not in taken]
        seats = len(free_seats)
        need = job_need(job)
        online_after = now - timedelta(seconds=self.config.provider_online_s)
        candidates: list[auction.CandidateBid] = []
        for bid in cache.bids.get(job.id, []):
            if bid.round != job.round:
                continue
            capacity = cache.capacities[bid.provider_address]
            # It may have won other jobs since it bid, and its studio may have paused it or moved it meanwhile.
            if auction.qualifies(capacity, need) and self._may_take(bid, job, now):
                candidates.append(auction.CandidateBid(bid.provider_address, bid.price, bid.score, bid.placed_at))
        # PostgreSQL may find a winner no longer free (_winners_still_free) and take the next best: it needs them all.
        wanted = None if self.is_postgresql else seats
        candidates += self._spare_bids(job, need, cache, now, own={bid.address for bid in candidates}, wanted=wanted)
        excluded = [lease.provider_address for lease in holding]
        chosen = auction.winners(candidates, seats, excluded=excluded)
        if self.is_postgresql:
            chosen = self._winners_still_free(session, job, candidates, chosen, seats, excluded, now, cache)
        for seat, winner in zip(free_seats, chosen, strict=False):
            self._lease(session, job, winner, seat=seat, cache=cache, need=need)
        if len(chosen) == seats:
            job.state = JobState.RUNNING
            job.reason = f"running on {job.replicas} provider(s)" if job.replicas > 1 else "running"
            return [winner.address for winner in chosen]
        if not chosen:
            job.reason = self._no_bid_reason(session, job, need, online_after)
        else:
            job.reason = f"queued: waiting for {seats - len(chosen)} more provider(s) for its replicas"
        job.round += 1
        job.window_ends_at = now + timedelta(seconds=job.bidding_window_s)
        return [winner.address for winner in chosen]

    @staticmethod
    def _spare_bids(
        job: tables.Job,
        need: auction.Need,
        cache: _Cache,
        now: datetime,
        own: Collection[str] = (),
        *,
        wanted: int | None = None,
    ) -> list[auction.CandidateBid]:
        """Bids for ``job`` from the batch's other bidders and the providers standing by, at the price they
        would bid; they compete with the job's own bids.

        A provider does not choose what it bids on or at what price: its poll bids its floor on jobs the
        marketplace picks for it. Each bids on several jobs and can win as many as it has room for, so with a
        busy queue about half the auctions lost every bidder to another job of the same batch and waited a whole
        new round, while providers that bid on this batch and won nothing had room, and others waited in their
        long polls with room (``standing``: they would bid as soon as woken). Such a provider takes the job as if
        it had bid on it: the same checks as a bid (room, price, a studio group's own jobs or outside ones, not
        paused, not drained, online, not a job it failed or holds). They rank with the job's own bids, by price
        first: a cheaper provider that happened to be waiting when a dearer one polled still wins. Providers in
        ``own`` bid on the job themselves and are left out.

        The providers are looked at best first (``ranked_bidders``); with ``wanted`` (the seats to fill), only until
        ``wanted`` bids are found that no provider left could beat: the ``wanted`` best bids are then those found.
        Every provider standing by was otherwise asked for every job of the batch, a tenth of the server's CPU."""
        if wanted == 0:
            return []
        refused = {lease.provider_address for lease in cache.leases.get(job.id, []) if lease.state in _NO_BID_AGAIN}
        refused.update(own)
        spare: list[auction.CandidateBid] = []
        found: list[auction.Rank] = []  # with ``wanted``: the ranks of ``spare``, best first
        for best_possible in cache.ranked_bidders(need.gpus > 0):
            if wanted is not None and len(found) >= wanted and best_possible > found[wanted - 1]:
                break  # neither it nor any provider after it can bid better than the wanted best found
            address = best_possible[-1]  # a rank ends with the provider's address
            if address in refused or (bid := auction.offer(cache.capacities[address], need)) is None:
                continue
            bidder = cache.bidders[address]
            if Marketplace._may_take(bidder, job, now):
                candidate = auction.CandidateBid(address, bid[0], bid[1], bidder.placed_at)
                spare.append(candidate)
                if wanted is not None:
                    bisect.insort(found, auction.rank(candidate))
        return spare

    def _winners_still_free(  # noqa: PLR0917 - the auction's state, passed on as it is
        self,
        session: Session,
        job: tables.Job,
        candidates: list[auction.CandidateBid],
        chosen: list[auction.CandidateBid],
        seats: int,
        excluded: list[str],
        now: datetime,
        cache: _Cache,
    ) -> list[auction.CandidateBid]:
        """The winners, each read again with a lock (PostgreSQL): its studio may have paused, drained or moved
        it, or the operator banned it, since the batch read the bidders. A winner no longer free is replaced by
        the next best bid. The lock (FOR KEY SHARE: polls' updates of the row go on) makes a pause, drain, move
        or ban that comes after it wait for this lease, and then take it back as they do any lease."""
        late: set[str] = set()
        while True:
            gone = [bid.address for bid in chosen if not self._still_free(session, bid.address, job, now, cache)]
            if not gone:
                return chosen
            late.update(gone)
            chosen = auction.winners([bid for bid in candidates if bid.address not in late], seats, excluded=excluded)

    def _still_free(self, session: Session, address: str, job: tables.Job, now: datetime, cache: _Cache) -> bool:
        if address not in cache.locked:  # read once a batch: the lock holds the row as it is until the commit
            cache.locked[address] = session.connection().execute(self._sql.winner_now, {"who": address}).one_or_none()
        row = cache.locked[address]
        free = row is not None and row.banned_at is None and not row.drain and self._may_take(row, job, now)
        if not free:
            log.info(
                "Provider %s was paused, drained, moved or banned after it bid: job %s not leased to it",
                address,
                job.id,
            )
        return free

    @staticmethod
    def _may_take(bidder: _Row, job: tables.Job, now: datetime) -> bool:
        """Whether its studio lets a provider be leased ``job`` now (``bidder``: its row as closing reads it, at
        closing time): not paused, and in the job's own studio group, or, for an outside job, in no group or in one
        open to outside jobs. A bid placed before the studio paused the machine, moved it to another group or closed
        the group to outside work does not win."""
        if bidder.paused_until is not None and bidder.paused_until > now:
            return False
        return bool(
            bidder.group_name == job.group_name or (job.group_name is None and bidder.outside_jobs is not False)
        )

    def _no_bid_reason(self, session: Session, job: tables.Job, need: auction.Need, online_after: datetime) -> str:
        unit = "GPU" if need.gpus > 0 else "core"
        shape = dataclasses.replace(need, max_price=0)
        # The floors of the providers that could run it change slowly, and a busy queue closes many auctions
        # without bids each second: they are read once per ``prices_cache_s`` for each shape.
        now = self._clock()
        cached = self._floors.get(shape)
        if cached is not None and 0 <= (now - cached[0]).total_seconds() < self.config.prices_cache_s:
            floors = cached[1]
        else:
            floors = self._capable_floors(session, need, online_after)
            if len(self._floors) > _SHAPES_REMEMBERED:
                self._floors.clear()
            self._floors[shape] = (now, floors)
        return auction.no_bid_reason(unit, job.max_price, floors, len(floors))

    @staticmethod
    def _capable_floors(session: Session, need: auction.Need, online_after: datetime) -> list[int]:
        """The floors of the online providers whose offer could run a job like this (busy or not): one query,
        however many providers, for the reason a job without bids shows."""
        online = and_(tables.Provider.last_seen_at >= online_after, tables.Provider.banned_at.is_(None))
        if need.gpus == 0:
            query = select(tables.Provider.floor_per_core_hour).where(
                online, tables.Provider.offered_cores >= need.cores
            )
            return [int(floor) for floor in session.scalars(query)]
        fitting = [
            tables.ProviderGpu.offered.is_(True),
            tables.ProviderGpu.vram_bytes >= need.min_vram_bytes,
        ]
        if need.min_score is not None:
            fitting.append(tables.ProviderGpu.score >= need.min_score)
        query = (
            select(tables.Provider.floor_per_gpu_hour)
            .join(tables.ProviderGpu, tables.ProviderGpu.provider_address == tables.Provider.address)
            .where(online, *fitting)
            .group_by(tables.Provider.address, tables.Provider.floor_per_gpu_hour)
            .having(func.count() >= need.gpus)
        )
        return [int(floor) for floor in session.scalars(query)]

    def _lease(
        self,
        session: Session,
        job: tables.Job,
        bid: auction.CandidateBid,
        *,
        seat: int,
        cache: _Cache,
        need: auction.Need,
    ) -> None:
        capacity = cache.capacities[bid.address]
        gpus = [gpu.uuid for gpu in auction.suitable_gpus(capacity, need)[: need.gpus]]
        # Stamped now, after the capacity was read: a lease that freed the capacity (in another process,
        # say) ended before this one starts, so the lease history shows capacity honoured.
        now = self._clock()
        self._execute(
            session.connection(),
            self._sql.lease,
            {
                "id": _new_id("lease"),
                "job_id": job.id,
                "provider_address": bid.address,
                "payout_address": cache.payouts[bid.address],
                "gpu_uuids_json": json.dumps(gpus),
                "units": job.units,
                "price": bid.price,
                "seat": seat,
                "state": LeaseState.ACTIVE,
                "delivered": False,
                "cancel_requested": False,
                "started_at": now,
                "expires_at": now + timedelta(seconds=self.config.lease_timeout_s),
            },
        )
        # What the provider has left for the batch's next auctions.
        cache.capacities[bid.address] = dataclasses.replace(
            capacity,
            free_gpus=tuple(gpu for gpu in capacity.free_gpus if gpu.uuid not in gpus),
            free_cores=capacity.free_cores - (job.units if not gpus else 0),
        )
        log.info("Job %s leased to %s at %d per unit-hour", job.id, bid.address, bid.price)

    # -- helpers ---------------------------------------------------------------------------------------

    def withdraw_leases(self, session: Session, address: str, reason: str) -> list[str]:
        """Take every unfinished lease from a provider (unpaid) and put its jobs back in the queue."""
        now = self._clock()
        withdrawn: list[str] = []
        for lease in session.scalars(
            select(tables.Lease)
            .where(
                tables.Lease.provider_address == address,
                tables.Lease.state.in_([LeaseState.ACTIVE, LeaseState.REPORTED]),
            )
            .with_for_update()
        ).all():
            ended = LeaseState.LOST if lease.state == LeaseState.ACTIVE else LeaseState.REJECTED
            self.take_back(session, lease, ended, reason, why_queued=reason, now=now)
            withdrawn.append(lease.id)
        return withdrawn

    def take_back(
        self, session: Session, lease: tables.Lease, state: LeaseState, reason: str, *, why_queued: str, now: datetime
    ) -> None:
        """End a locked lease unpaid and put its job back in the queue, unless the job has moved on."""
        job = self._job(session, lease.job_id, lock=True)
        self._end_lease(lease, state, reason, now)
        if job.state in (JobState.RUNNING, JobState.QUEUED):
            self._requeue(job, f"queued again: {why_queued}", now)

    def job_row(self, session: Session, job_id: str, *, lock: bool = False) -> tables.Job:
        return self._job(session, job_id, lock=lock)

    def _requeue(self, job: tables.Job, reason: str, now: datetime) -> None:
        job.state = JobState.QUEUED
        job.reason = reason
        job.round += 1
        job.window_ends_at = now + timedelta(seconds=job.bidding_window_s)

    @staticmethod
    def _end_lease(lease: tables.Lease, state: LeaseState, reason: str, now: datetime) -> None:
        lease.state, lease.reason = state, reason
        lease.ended_at = lease.ended_at or now

    def _end_job(self, session: Session, job: tables.Job, state: JobState, reason: str, now: datetime) -> None:
        """End the job and settle its hold: the requester pays what was charged, the rest is released."""
        job.state, job.reason, job.ended_at = state, reason, now
        requester = session.get(tables.Requester, job.requester_id, with_for_update=True)
        assert requester is not None  # noqa: S101 - a job's requester is never removed
        charged = min(job.charged, job.held)
        requester.held -= job.held
        requester.credit += job.held - charged
        if job.held - charged:
            self.record(session, "marketplace", "release", f"job:{job.id}", job.held - charged, state=state)
        job.held, job.charged = 0, charged
        log.info("Job %s %s; the requester paid %d base units", job.id, state, charged)

    def _max_run_ms(self, session: Session, lease: tables.Lease, now: datetime, *, skew: bool = True) -> int:
        return self._run_ms_allowed(_spec(self._job(session, lease.job_id).spec_json), lease.started_at, now, skew=skew)

    def _run_ms_allowed(self, spec: JobSpec, started_at: datetime, now: datetime, *, skew: bool = True) -> int:
        """The most running time a lease can claim: its wall-clock age (plus the clock-skew allowance when the
        provider reports it) and the job's run-time limit."""
        allowance_s = self.config.clock_skew_s if skew else 0.0
        age_ms = int(((now - started_at).total_seconds() + allowance_s) * 1000)
        return max(0, min(age_ms, spec.max_runtime_s * 1000))

    def provider_row(self, session: Session, address: str, *, lock: bool = False) -> tables.Provider:
        """The provider's row; ``lock``: FOR UPDATE (PostgreSQL), as changes that decide whether it may win an
        auction take it, so that an auction closing meanwhile waits or is waited for (_winners_still_free)."""
        provider = session.get(tables.Provider, address, with_for_update=lock)
        if provider is None:
            raise NotFound("register this machine first: PUT /v1/provider")
        return provider

    def _gpus(self, session: Session, address: str) -> list[tables.ProviderGpu]:
        return list(
            session.scalars(select(tables.ProviderGpu).where(tables.ProviderGpu.provider_address == address)).all()
        )

    def _job(self, session: Session, job_id: str, *, lock: bool = False) -> tables.Job:
        """The job; ``lock`` takes its row lock (PostgreSQL) before changing it, as every writer of a job does."""
        job = session.get(tables.Job, job_id, with_for_update=lock)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    def _requesters_job(self, session: Session, requester_id: str, job_id: str, *, lock: bool = False) -> tables.Job:
        job = self._job(session, job_id, lock=lock)
        if job.requester_id != requester_id:
            raise NotFound(f"no job {job_id}")  # another requester's job does not exist for this one
        return job

    def _leases(self, session: Session, job_id: str) -> list[tables.Lease]:
        return list(
            session.scalars(
                select(tables.Lease).where(tables.Lease.job_id == job_id).order_by(tables.Lease.started_at)
            ).all()
        )

    def _own_lease(self, session: Session, address: str, lease_id: str, *, lock: bool = True) -> tables.Lease:
        lease = session.get(tables.Lease, lease_id, with_for_update=lock)
        if lease is None or lease.provider_address != address:
            raise NotFound(f"no lease {lease_id} for this provider")
        return lease

    def _lease_offer(self, session: Session, lease: tables.Lease) -> LeaseOffer:
        job = self._job(session, lease.job_id)
        return LeaseOffer(
            lease_id=lease.id,
            job_id=job.id,
            spec=_spec(job.spec_json),
            gpu_uuids=json.loads(lease.gpu_uuids_json),
            units=lease.units,
            price_per_unit_hour=lease.price,
            expires_at=lease.expires_at,
            heartbeat_interval_s=self.config.heartbeat_interval_s,
        )

    def _provider_view(self, session: Session, provider: tables.Provider) -> ProviderView:
        offered = [gpu.uuid for gpu in self._gpus(session, provider.address) if gpu.offered]
        return ProviderView(
            address=provider.address,
            name=provider.name,
            payout_address=provider.payout_address,
            offer=Offer(gpu_uuids=offered, cpu_cores=provider.offered_cores),
            price_floor_per_gpu_hour=provider.floor_per_gpu_hour,
            price_floor_per_core_hour=provider.floor_per_core_hour,
        )

    def job_view(self, session: Session, job: tables.Job, *, leases: list[tables.Lease] | None = None) -> JobView:
        leases = self._leases(session, job.id) if leases is None else leases
        accepted = next((lease for lease in leases if lease.state == LeaseState.ACCEPTED), None)
        outputs: list[OutputFile] = []
        if job.state == JobState.COMPLETED and accepted is not None and accepted.report_json is not None:
            outputs = [OutputFile.model_validate(item) for item in json.loads(accepted.report_json)["outputs"]]
        return JobView(
            job_id=job.id,
            state=JobState(job.state),
            reason=job.reason,
            created_at=job.created_at,
            replicas=job.replicas,
            units=job.units,
            max_price_per_unit_hour=job.max_price,
            held_base_units=job.held,
            charged_base_units=job.charged,
            leases=[_lease_view(lease) for lease in leases],
            outputs=outputs,
            project=job.project,
        )


def _audit_values(
    actor: str, action: str, subject: str, amount: int | None, detail: dict[str, object]
) -> dict[str, object]:
    """An audit event's columns (``Marketplace.record`` adds it through the ORM, the Core paths insert it)."""
    return {
        "at": datetime.now(UTC),
        "actor": actor[:120],
        "action": action,
        "subject": subject[:120],
        "amount": amount,
        "detail": json.dumps(detail, sort_keys=True, default=str) if detail else "",
    }


def _checksum(address: str) -> str:
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(Address).validate_python(address)
    except ValidationError:
        raise ValueError(f"{address!r} is not an address (0x followed by 40 hexadecimal digits)") from None


@functools.lru_cache(maxsize=8192)
def _spec(spec_json: str) -> JobSpec:
    """A stored job's spec, parsed once: polls, auctions and heartbeats read the same few jobs again and
    again (the JSON was validated at submission, and a job's spec never changes)."""
    return JobSpec.model_validate_json(spec_json)


def job_need(job: tables.Job | _Row) -> auction.Need:
    spec = _spec(job.spec_json)
    return auction.Need(
        gpus=job.gpus,
        min_vram_bytes=spec.min_vram_bytes or 0,
        min_score=job.min_score,
        cores=job.units if job.gpus == 0 else 0,
        max_price=job.max_price,
    )


def _output_set(lease: tables.Lease) -> frozenset[tuple[str, str]]:
    outputs = json.loads(lease.report_json or "{}").get("outputs", [])
    return frozenset((str(item["path"]), str(item["sha256"])) for item in outputs)


def _lease_view(lease: tables.Lease) -> LeaseView:
    return LeaseView(
        lease_id=lease.id,
        provider_address=lease.provider_address,
        state=LeaseState(lease.state),
        price_per_unit_hour=lease.price,
        units=lease.units,
        started_at=lease.started_at,
        ended_at=lease.ended_at,
        run_time_ms=int(lease.run_time_ms) if lease.run_time_ms is not None else None,
        amount_base_units=lease.amount,
        reason=lease.reason,
    )


def _provider_lease_view(lease: tables.Lease) -> ProviderLeaseView:
    return ProviderLeaseView(
        lease_id=lease.id,
        job_id=lease.job_id,
        state=LeaseState(lease.state),
        run_time_ms=int(lease.run_time_ms) if lease.run_time_ms is not None else None,
        amount_base_units=lease.amount,
        paid_cumulative_base_units=lease.paid_cumulative,
        payout_address=lease.payout_address,
    )


def _requester_view(requester: tables.Requester) -> RequesterView:
    return RequesterView(name=requester.name, credit_base_units=requester.credit, held_base_units=requester.held)


def _since(now: datetime) -> datetime:
    """How far back a provider hears of its leases that were taken back."""
    return now - timedelta(hours=24)


def less_busy(capacity: auction.Capacity, leases: Sequence[_Row]) -> auction.Capacity:
    """The capacity less what the provider's active leases (among ``leases``: Core rows or Lease objects, read by
    their state, GPUs and units) use."""
    busy_gpus: set[str] = set()
    busy_cores = 0
    for lease in leases:
        if lease.state == LeaseState.ACTIVE:
            gpus = json.loads(lease.gpu_uuids_json)
            busy_gpus.update(gpus)
            if not gpus:
                busy_cores += lease.units
    if not busy_gpus and not busy_cores:
        return capacity
    return dataclasses.replace(
        capacity,
        free_gpus=tuple(gpu for gpu in capacity.free_gpus if gpu.uuid not in busy_gpus),
        free_cores=max(0, capacity.free_cores - busy_cores),
    )


class _Statements:
    """The polls' statements, built once (Core, on the tables: no ORM objects are made for a poll)."""

    def __init__(self, config: MarketConfig, *, postgresql: bool = False) -> None:
        insert = postgresql_insert if postgresql else sqlite_insert  # the dialect's, for ON CONFLICT
        providers, gpus = _table(tables.Provider), _table(tables.ProviderGpu)
        jobs, bids, leases = _table(tables.Job), _table(tables.Bid), _table(tables.Lease)
        address: BindParameter[str] = bindparam("who", type_=String())
        groups = _table(tables.Group)
        self.provider_gpus = (
            select(
                providers.c.last_seen_at,
                providers.c.floor_per_gpu_hour,
                providers.c.floor_per_core_hour,
                providers.c.offered_cores,
                providers.c.group_name,
                providers.c.drain,
                providers.c.paused_until,
                groups.c.outside_jobs,
                gpus.c.uuid,
                gpus.c.vram_bytes,
                gpus.c.score,
                gpus.c.offered,
            )
            .select_from(
                providers.outerjoin(gpus, gpus.c.provider_address == providers.c.address).outerjoin(
                    groups, groups.c.name == providers.c.group_name
                )
            )
            .where(providers.c.address == address)
        )
        # Its active leases (what it is busy with, and which it has not started) and those taken back lately.
        self.provider_leases = select(
            leases.c.id,
            leases.c.job_id,
            leases.c.state,
            leases.c.delivered,
            leases.c.cancel_requested,
            leases.c.gpu_uuids_json,
            leases.c.units,
            leases.c.price,
            leases.c.expires_at,
        ).where(
            leases.c.provider_address == address,
            or_(
                leases.c.state == LeaseState.ACTIVE,
                and_(
                    leases.c.report_json.is_(None),
                    _one_of(leases.c.state, (LeaseState.LOST, LeaseState.CANCELLED, LeaseState.PREEMPTED)),
                    leases.c.ended_at > bindparam("since", type_=tables.UtcDateTime()),
                ),
            ),
        )
        self.specs = select(jobs.c.id, jobs.c.spec_json).where(jobs.c.id.in_(bindparam("ids", expanding=True)))
        fits = or_(
            and_(jobs.c.gpus == 0, jobs.c.units <= bindparam("cores")),
            and_(jobs.c.gpus > 0, jobs.c.gpus <= bindparam("gpus")),
        )
        bid_here = exists().where(
            bids.c.job_id == jobs.c.id, bids.c.round == jobs.c.round, bids.c.provider_address == address
        )
        # Providers that hold a lease of the job now, or failed or refused it, do not bid on it again.
        excluded = exists().where(
            leases.c.job_id == jobs.c.id,
            leases.c.provider_address == address,
            _one_of(leases.c.state, _NO_BID_AGAIN),
        )
        biddable = (
            select(
                jobs.c.id,
                jobs.c.round,
                jobs.c.gpus,
                jobs.c.units,
                jobs.c.max_price,
                jobs.c.min_score,
                jobs.c.spec_json,
                jobs.c.window_ends_at,
            )
            .where(
                jobs.c.state == JobState.QUEUED,
                jobs.c.window_ends_at > bindparam("at", type_=tables.UtcDateTime()),
                fits,
                ~bid_here,
                ~excluded,
            )
            .order_by(jobs.c.window_ends_at)  # the index's order: no sort, and the LIMIT stops the scan
            .limit(config.bids_per_poll * 8)
        )
        biddable = biddable.where(_not_enough_bidders(jobs, postgresql=postgresql))
        # Outside jobs (for providers in no group, or in one open to them), and a studio group's own jobs, read
        # first for its machines: ordering one query by priority would sort the whole queue at every poll.
        self.biddable = biddable.where(jobs.c.group_name.is_(None))
        self.biddable_in_group = biddable.where(jobs.c.group_name == bindparam("group", type_=String()))
        self.seen = (
            update(providers)
            .where(providers.c.address == address)
            .values(last_seen_at=bindparam("at", type_=tables.UtcDateTime()))
        )
        self.bid = insert(bids).on_conflict_do_nothing()
        # Closing a batch of auctions.
        job_ids: BindParameter[list[str]] = bindparam("ids", expanding=True)
        addresses: BindParameter[list[str]] = bindparam("addresses", expanding=True)
        self.job_leases = select(leases.c.job_id, leases.c.provider_address, leases.c.state, leases.c.seat).where(
            leases.c.job_id.in_(job_ids)
        )
        # What closing auctions reads of each bidder (its floors, room, payout, group and pause), and which
        # providers may win at all: online, not banned, not drained.
        bidder = (
            providers.c.floor_per_gpu_hour,
            providers.c.floor_per_core_hour,
            providers.c.offered_cores,
            providers.c.payout_address,
            providers.c.group_name,
            providers.c.paused_until,
            groups.c.outside_jobs,
        )
        may_win = (
            providers.c.last_seen_at >= bindparam("online_after", type_=tables.UtcDateTime()),
            providers.c.banned_at.is_(None),
            providers.c.drain.is_(False),
        )
        # Providers waiting in long polls, as closing auctions count them (Marketplace.standing): a bidder's
        # columns, its last poll as when it "bid".
        self.standing_providers = (
            select(
                providers.c.address.label("provider_address"),
                *bidder,
                providers.c.last_seen_at.label("placed_at"),
            )
            .select_from(providers.outerjoin(groups, groups.c.name == providers.c.group_name))
            .where(providers.c.address.in_(addresses), *may_win)
        )
        self.job_bids = (
            select(
                bids.c.job_id,
                bids.c.round,
                bids.c.provider_address,
                bids.c.price,
                bids.c.score,
                bids.c.placed_at,
                *bidder,
            )
            .join(providers, providers.c.address == bids.c.provider_address)
            .outerjoin(groups, groups.c.name == providers.c.group_name)
            .join(jobs, and_(jobs.c.id == bids.c.job_id, jobs.c.round == bids.c.round))
            .where(bids.c.job_id.in_(job_ids), *may_win)
        )
        # A winner read again, locked (PostgreSQL): FOR KEY SHARE, which the polls' updates of the row do not wait
        # for, and which a pause, drain, move or ban (FOR UPDATE of the row) does.
        self.winner_now = (
            select(
                providers.c.group_name,
                providers.c.paused_until,
                providers.c.drain,
                providers.c.banned_at,
                groups.c.outside_jobs,
            )
            .select_from(providers.outerjoin(groups, groups.c.name == providers.c.group_name))
            .where(providers.c.address == bindparam("who", type_=String()))
            .with_for_update(key_share=True, of=providers)
        )
        self.offered_gpus = select(gpus.c.provider_address, gpus.c.uuid, gpus.c.vram_bytes, gpus.c.score).where(
            gpus.c.provider_address.in_(addresses), gpus.c.offered.is_(True)
        )
        self.active_leases = select(
            leases.c.provider_address, leases.c.state, leases.c.gpu_uuids_json, leases.c.units
        ).where(leases.c.provider_address.in_(addresses), leases.c.state == LeaseState.ACTIVE)
        self.lease = leases.insert()
        # A submission: the requester's credit (locked), its queued jobs, the hold taken, the job and its audit.
        requesters, audit = _table(tables.Requester), _table(tables.AuditEvent)
        requester: BindParameter[str] = bindparam("requester", type_=String())
        self.requester_credit = (
            select(requesters.c.name, requesters.c.credit, requesters.c.held, requesters.c.group_name)
            .where(requesters.c.id == requester)
            .with_for_update()
        )
        self.queued_count = (
            select(func.count())
            .select_from(jobs)
            .where(jobs.c.requester_id == requester, jobs.c.state == JobState.QUEUED)
        )
        self.hold_credit = (
            update(requesters)
            .where(requesters.c.id == requester)
            .values(credit=bindparam("new_credit"), held=bindparam("new_held"))
        )
        self.job = jobs.insert()
        self.audit = audit.insert()
        # A report accepted at once (Marketplace._accept_at_once): the lease and its job (both locked), the
        # outputs uploaded, the payout address's earnings, and the lease, the job and the payout written.
        payouts, uploads = _table(tables.Payout), _table(tables.UploadedOutput)
        self.reported_lease = (
            select(
                leases.c.id,
                leases.c.provider_address,
                leases.c.job_id,
                leases.c.state,
                leases.c.report_json,
                leases.c.started_at,
                leases.c.price,
                leases.c.units,
                leases.c.payout_address,
                jobs.c.state.label("job_state"),
                jobs.c.replicas,
                jobs.c.spec_json,
                jobs.c.held,
                jobs.c.charged,
                jobs.c.requester_id,
            )
            .join(jobs, jobs.c.id == leases.c.job_id)
            .where(leases.c.id == bindparam("lease"))
            .with_for_update()
        )
        self.uploads = select(uploads.c.path, uploads.c.size_bytes, uploads.c.sha256).where(
            uploads.c.lease_id == bindparam("lease")
        )
        payout: BindParameter[str] = bindparam("payout", type_=String())
        self.payout_cumulative = (
            select(payouts.c.cumulative).where(payouts.c.payout_address == payout).with_for_update()
        )
        self.payout_insert = payouts.insert().values(
            payout_address=payout,
            cumulative=bindparam("total"),
            voucher_json=bindparam("voucher"),
            updated_at=bindparam("at"),
        )
        self.payout_update = (
            update(payouts)
            .where(payouts.c.payout_address == payout)
            .values(cumulative=bindparam("total"), voucher_json=bindparam("voucher"), updated_at=bindparam("at"))
        )
        self.accept_lease = (
            update(leases)
            .where(leases.c.id == bindparam("lease"))
            .values(
                state=LeaseState.ACCEPTED,
                report_json=bindparam("report"),
                report_signature=bindparam("signature"),
                run_time_ms=bindparam("run_ms"),
                amount=bindparam("earned"),
                paid_cumulative=bindparam("cumulative"),
                ended_at=bindparam("at"),
            )
        )
        self.complete_job = (
            update(jobs)
            .where(jobs.c.id == bindparam("job"))
            .values(
                state=JobState.COMPLETED,
                reason="completed",
                ended_at=bindparam("at"),
                held=0,
                charged=bindparam("settled"),
            )
        )
        # A heartbeat: the lease (locked) with its job's spec, then its new expiry.
        self.beating_lease = (
            select(
                leases.c.provider_address,
                leases.c.state,
                leases.c.started_at,
                leases.c.expires_at,
                leases.c.cancel_requested,
                jobs.c.spec_json,
            )
            .join(jobs, jobs.c.id == leases.c.job_id)
            .where(leases.c.id == bindparam("id"))
            .with_for_update(of=leases)
        )
        self.beat = (
            update(leases)
            .where(leases.c.id == bindparam("lease"))
            .values(delivered=True, expires_at=bindparam("expiry"), run_time_ms=bindparam("run_ms"))
        )


def _not_enough_bidders(jobs: Table, *, postgresql: bool) -> ColumnElement[bool]:
    """The job's round is not among the ``enough`` parameter's, the rounds this process counted enough bidders for
    (``Marketplace._enough_bidders``): a page of them at the head of the queue would hide the jobs behind it."""
    round_key = jobs.c.id.concat(":").concat(cast(jobs.c.round, String()))
    if postgresql:
        enough: BindParameter[Sequence[str]] = bindparam("enough", type_=postgresql_array(String()))
        return round_key != all_(enough)
    # No arrays on SQLite: a JSON list (the parameter's type encodes it), read into a temporary index once for
    # each execution.
    listed = func.json_each(bindparam("enough", type_=JSON())).table_valued("value")
    return round_key.not_in(select(listed.c.value))


def _table(model: type[tables.Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # noqa: S101 - every model maps one table
    return table
