"""The ledger's writes: jobs, earnings, energy, tariffs and token rates, each committed before the agent acts.

:meth:`LedgerStore.open` checks the file (a corrupt database is renamed aside, never replaced silently:
the reason is kept for the status and the log), migrates it forward, and hands back a store. Every
method is one transaction; the agent calls them from worker threads.

Energy intervals are costed here, under the tariff in force over each stretch of them, and written together
with their roll-ups and the GPU's counter state, so a killed agent resumes from exactly what was committed.
An interval is cut where the tariff changes, at local midnight and at every UTC hour (the one after a
restart covers all the time the agent was down), its energy shared by time in whole millijoules that add
up to what was measured: each row then lies in one day and one hour of the roll-ups.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DatabaseError

from sparecycles.agent.ledger import db
from sparecycles.agent.ledger.energy import CounterState
from sparecycles.agent.ledger.floor import TokenRate
from sparecycles.agent.ledger.recorder import EnergyInterval, StoredCounter
from sparecycles.agent.ledger.tariff_file import parse_tariff_text
from sparecycles.agent.ledger.tariffs import Tariff, TariffError, TariffHistory, _energy_by_stretch
from sparecycles.migrations import Migrations

log = logging.getLogger(__name__)

MIGRATIONS = Migrations(Path(__file__).with_name("migrations"), "the ledger")
NANO = Decimal(1_000_000_000)
_MJ_PER_WH = Decimal(3_600_000)


class LedgerError(RuntimeError):
    """The ledger cannot do what was asked; the message says why and what to do."""


def to_ms(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise ValueError("ledger times must carry their time zone")
    return round(instant.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class JobStart:
    job_id: str  # the lease id
    marketplace: str
    market_job_id: str
    gpu_uuids: tuple[str, ...]
    units: int
    price_per_unit_hour: int
    started: datetime


@dataclass(frozen=True)
class JobEnd:
    job_id: str
    ended: datetime
    run_time_s: float
    paused_s: float
    outcome: str
    reason: str | None = None


@dataclass(frozen=True)
class LeaseSpan:
    """When a lease ran and on how many GPUs: what GPU-hours over a stretch of time are counted from."""

    started: datetime
    ended: datetime | None  # None: still running
    run_time_s: float | None  # set when it ended: its time less the time it was paused
    gpus: int


@dataclass(frozen=True)
class PendingClaim:
    """A claim transaction signed and kept before it was sent (see ``db.pending_claims``)."""

    tx_hash: str
    sender: str
    nonce: int
    raw_tx: str
    payout_address: str
    cumulative_amount: int
    chain_id: int
    vault: str
    sent: datetime


@dataclass(frozen=True)
class Payout:
    """A mined claim: ``amount`` (the vault's Claimed event) paid to ``payout_address`` by ``vault``."""

    claimed: datetime
    payout_address: str
    amount: int
    chain_id: int
    tx_hash: str
    # None: recorded before the ledger kept the vault (migration l0004), until the claims service finds it.
    vault: str | None


class LedgerStore:
    def __init__(self, engine: Engine, zone: ZoneInfo, *, set_aside: Path | None = None) -> None:
        self._engine = engine
        self.zone = zone
        self.set_aside = set_aside  # where a corrupt database was moved at this start, if one was
        self._write_lock = threading.Lock()  # SQLite has one writer; queue here rather than on its busy timeout

    @classmethod
    def open(cls, path: Path, zone: ZoneInfo) -> LedgerStore:
        """Open (creating, or migrating forward) the ledger at ``path``; a corrupt file is set aside first."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        set_aside = None
        problem = None
        if path.exists():
            marker = damage_marker(path)
            problem = marker.read_text(encoding="utf-8").strip() if marker.exists() else None
            problem = problem or integrity_problem(path, QUICK_TABLES)
        if problem is not None:
            set_aside = _set_aside(path)
            damage_marker(path).unlink(missing_ok=True)
            log.error(
                "The ledger %s is damaged (%s). It was moved to %s and a new, empty ledger started; your earnings "
                "are also held by the marketplace's vouchers. Keep the damaged file for recovery "
                "(sqlite3 %s '.recover')",
                path,
                problem,
                set_aside,
                set_aside,
            )
        engine = db.open_engine(path)
        MIGRATIONS.upgrade(engine)
        return cls(engine, zone, set_aside=set_aside)

    def close(self) -> None:
        self._engine.dispose()

    def deep_check(self) -> str | None:
        """Check every page (seconds on a big ledger: run it off the agent's start). Damage found is written
        beside the file, which the next start then sets aside; the message is returned, for the status."""
        path = Path(str(self._engine.url.database))
        problem = integrity_problem(path)
        if problem is not None:
            message = f"the ledger {path} is damaged ({problem}); it will be set aside when the agent next starts"
            damage_marker(path).write_text(problem + "\n", encoding="utf-8")
            log.error("%s. Restart the agent; keep the damaged file for recovery (sqlite3 FILE '.recover')", message)
            return message
        return None

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._write_lock, self._engine.begin() as connection:
            yield connection

    def local_day(self, instant: datetime) -> str:
        return instant.astimezone(self.zone).date().isoformat()

    # -- jobs and earnings --------------------------------------------------------------------------

    def job_started(self, start: JobStart) -> None:
        """Record a lease the agent is about to run (again after a restart: then nothing changes)."""
        row = {
            "id": start.job_id,
            "marketplace": start.marketplace,
            "market_job_id": start.market_job_id,
            "gpu_uuids": json.dumps(list(start.gpu_uuids)),
            "units": start.units,
            "price_per_unit_hour": str(start.price_per_unit_hour),
            "started_ms": to_ms(start.started),
            "local_day": self.local_day(start.started),
        }
        with self._write() as connection:
            connection.execute(sqlite_insert(db.jobs).values(row).on_conflict_do_nothing())

    def job_ended(self, end: JobEnd) -> None:
        with self._write() as connection:
            connection.execute(
                update(db.jobs)
                .where(db.jobs.c.id == end.job_id)
                .values(
                    ended_ms=to_ms(end.ended),
                    run_time_ms=round(end.run_time_s * 1000),
                    paused_ms=round(end.paused_s * 1000),
                    outcome=end.outcome,
                    reason=(end.reason or "")[:500] or None,
                )
            )

    def credited(self, job_id: str, amount: int, paid_cumulative: int, payout_address: str, at: datetime) -> bool:
        """The marketplace paid the lease ``amount``; pending until a voucher covers ``paid_cumulative``.
        Says whether it was new (a second report of the same credit changes nothing)."""
        day = self.local_day(at)
        with self._write() as connection:
            if connection.execute(select(db.jobs.c.id).where(db.jobs.c.id == job_id)).first() is None:
                raise LedgerError(f"lease {job_id} is not in the ledger")
            inserted = connection.execute(
                sqlite_insert(db.earnings)
                .values(
                    job_id=job_id,
                    amount=str(amount),
                    payout_address=payout_address.lower(),
                    paid_cumulative=str(paid_cumulative),
                    credited_ms=to_ms(at),
                    local_day=day,
                )
                .on_conflict_do_nothing()
            ).rowcount
            if inserted:
                _add_earnings(connection, day, credited=amount)
        return bool(inserted)

    def voucher_covers(self, payout_address: str, cumulative: int, voucher_ref: str, at: datetime) -> int:
        """A verified voucher for ``cumulative`` arrived: confirm every pending earning it covers (how many)."""
        confirmed = 0
        with self._write() as connection:
            pending = connection.execute(
                select(
                    db.earnings.c.job_id, db.earnings.c.amount, db.earnings.c.paid_cumulative, db.earnings.c.local_day
                ).where(db.earnings.c.confirmed_ms.is_(None), db.earnings.c.payout_address == payout_address.lower())
            ).all()
            for job_id, amount, paid_cumulative, day in pending:
                if int(paid_cumulative) > cumulative:
                    continue
                connection.execute(
                    update(db.earnings)
                    .where(db.earnings.c.job_id == job_id)
                    .values(confirmed_ms=to_ms(at), voucher_ref=voucher_ref)
                )
                _add_earnings(connection, day, confirmed=int(amount))
                confirmed += 1
        return confirmed

    def uncredited_jobs(self, limit: int = 50) -> list[str]:
        """Leases that ended and have no earning recorded yet: the marketplace may still pay them."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(db.jobs.c.id)
                .outerjoin(db.earnings, db.earnings.c.job_id == db.jobs.c.id)
                .where(db.jobs.c.outcome.is_not(None), db.earnings.c.job_id.is_(None))
                .order_by(db.jobs.c.ended_ms)
                .limit(limit)
            ).scalars()
            return list(rows)

    def leases_during(self, start: datetime, end: datetime) -> list[LeaseSpan]:
        """Leases that ran for some of ``start``–``end``: started before its end, and still running or ended
        after its start (one that started the day before counts too)."""
        start_ms, end_ms = to_ms(start), to_ms(end)
        jobs = db.jobs.c
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(jobs.started_ms, jobs.ended_ms, jobs.run_time_ms, jobs.gpu_uuids).where(
                    jobs.started_ms < end_ms, (jobs.ended_ms.is_(None)) | (jobs.ended_ms > start_ms)
                )
            ).all()
        return [
            LeaseSpan(
                started=from_ms(row.started_ms),
                ended=from_ms(row.ended_ms) if row.ended_ms is not None else None,
                run_time_s=row.run_time_ms / 1000 if row.run_time_ms is not None else None,
                gpus=len(json.loads(row.gpu_uuids)),
            )
            for row in rows
        ]

    # -- tariffs and the token's rate ------------------------------------------------------------

    def set_tariff(self, document: str, at: datetime) -> Tariff:
        """Adopt the tariff file's text from ``at`` on (earlier energy keeps the tariff it was costed with)."""
        tariff = parse_tariff_text(document)
        with self._write() as connection:
            last = connection.execute(select(func.max(db.tariffs.c.effective_ms))).scalar()
            if last is not None and to_ms(at) <= last:
                raise TariffError("a new tariff must take effect after the last one did; history is not rewritten")
            connection.execute(insert(db.tariffs).values(effective_ms=to_ms(at), document=document))
        return tariff

    def tariff_history(self) -> TariffHistory:
        """Every stored tariff. One that no longer parses (stored before this version refused what it holds, such
        as a time with a UTC offset or a price past any real one) is kept as unreadable, not raised: the agent
        starts, its costs are left out until the next tariff, and the ledger's problem says so. History is not
        rewritten."""
        history = TariffHistory()
        with self._engine.connect() as connection:
            for effective_ms, document in connection.execute(
                select(db.tariffs.c.effective_ms, db.tariffs.c.document).order_by(db.tariffs.c.effective_ms)
            ):
                try:
                    tariff = parse_tariff_text(document)
                except TariffError as exc:
                    log.warning("The tariff stored from %s cannot be read: %s", from_ms(effective_ms), exc)
                    history.set_unreadable(from_ms(effective_ms), str(exc))
                else:
                    history.set(from_ms(effective_ms), tariff)
        return history

    def current_tariff_document(self) -> tuple[datetime, str] | None:
        """The latest tariff's start and text, as the user gave it."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(db.tariffs.c.effective_ms, db.tariffs.c.document)
                .order_by(db.tariffs.c.effective_ms.desc())
                .limit(1)
            ).first()
        return (from_ms(row.effective_ms), row.document) if row is not None else None

    def set_token_rate(self, rate: TokenRate, at: datetime) -> None:
        if rate.per_token <= 0:
            raise TariffError("a token's rate must be more than 0")
        with self._write() as connection:
            connection.execute(
                insert(db.token_rates).values(
                    effective_ms=to_ms(at),
                    currency=rate.currency,
                    per_token=str(rate.per_token),
                    decimals=rate.decimals,
                )
            )

    def token_rate(self) -> TokenRate | None:
        """The rate the user entered last (amounts in their currency are shown at it)."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(db.token_rates.c.currency, db.token_rates.c.per_token, db.token_rates.c.decimals)
                .order_by(db.token_rates.c.effective_ms.desc(), db.token_rates.c.id.desc())
                .limit(1)
            ).first()
        return TokenRate(row.currency, Decimal(row.per_token), row.decimals) if row is not None else None

    # -- claims on chain ---------------------------------------------------------------------------

    def add_pending_claim(self, claim: PendingClaim) -> None:
        """Keep a signed claim before it is sent: committed first, so no restart loses it."""
        with self._write() as connection:
            connection.execute(
                insert(db.pending_claims).values(
                    tx_hash=claim.tx_hash.lower(),
                    sender=claim.sender,
                    nonce=claim.nonce,
                    raw_tx=claim.raw_tx,
                    payout_address=claim.payout_address,
                    cumulative_amount=str(claim.cumulative_amount),
                    chain_id=claim.chain_id,
                    vault=claim.vault,
                    sent_ms=to_ms(claim.sent),
                )
            )

    def pending_claims(self) -> list[PendingClaim]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(db.pending_claims).order_by(db.pending_claims.c.sent_ms)).all()
        return [
            PendingClaim(
                row.tx_hash,
                row.sender,
                row.nonce,
                row.raw_tx,
                row.payout_address,
                int(row.cumulative_amount),
                row.chain_id,
                row.vault,
                from_ms(row.sent_ms),
            )
            for row in rows
        ]

    def claim_mined(self, tx_hash: str, payout: Payout | None) -> bool:
        """The claim ``tx_hash`` left the pool: its payout (None: it paid nothing, or was dropped) is recorded
        and the pending claim forgotten, in one transaction. Says whether a payout was new (a second report
        of the same transaction records nothing)."""
        with self._write() as connection:
            connection.execute(delete(db.pending_claims).where(db.pending_claims.c.tx_hash == tx_hash.lower()))
            if payout is None:
                return False
            inserted = connection.execute(
                sqlite_insert(db.payouts)
                .values(
                    claimed_ms=to_ms(payout.claimed),
                    payout_address=payout.payout_address,
                    amount=str(payout.amount),
                    chain_id=payout.chain_id,
                    tx_hash=payout.tx_hash.lower(),
                    vault=payout.vault,
                )
                .on_conflict_do_nothing()
            ).rowcount
        return bool(inserted)

    def payouts(self) -> list[Payout]:
        with self._engine.connect() as connection:
            rows = connection.execute(select(db.payouts).order_by(db.payouts.c.claimed_ms, db.payouts.c.id)).all()
        return [
            Payout(from_ms(r.claimed_ms), r.payout_address, int(r.amount), r.chain_id, r.tx_hash, r.vault) for r in rows
        ]

    def set_payout_vault(self, tx_hash: str, vault: str) -> None:
        """Name the vault of a payout recorded without one (before migration l0004); a known vault is kept."""
        with self._write() as connection:
            connection.execute(
                update(db.payouts)
                .where(db.payouts.c.tx_hash == tx_hash.lower(), db.payouts.c.vault.is_(None))
                .values(vault=vault)
            )

    # -- energy ------------------------------------------------------------------------------------

    def counters(self) -> dict[str, StoredCounter]:
        with self._engine.connect() as connection:
            return {
                row.gpu_uuid: StoredCounter(CounterState(row.boot_id, row.last_mj), from_ms(row.last_ms), row.job_id)
                for row in connection.execute(select(db.energy_counters))
            }

    def record_energy(
        self, intervals: Sequence[EnergyInterval], tariffs: TariffHistory, baseline_w: float | None = None
    ) -> None:
        """Write the intervals, costed, with their roll-ups and counter states, in one transaction."""
        rows = [row for interval in intervals for row in self._costed(interval, tariffs, baseline_w)]
        with self._write() as connection:
            if rows:
                connection.execute(insert(db.energy), rows)
                _roll_up(connection, rows, self.zone)
            for interval in intervals:
                if interval.stored is not None:
                    _store_counter(connection, interval.gpu_uuid, interval.stored)

    def _costed(
        self, interval: EnergyInterval, tariffs: TariffHistory, baseline_w: float | None
    ) -> Iterable[dict[str, Any]]:
        """One row per stretch of the interval under one tariff within one local day and one UTC hour, energy
        shared by time: each row is costed at its own stretch's prices and counts whole in one roll-up."""
        # In UTC: Python subtracts two times of one zone on the wall clock, which a DST change makes wrong.
        start, end = interval.start.astimezone(UTC), interval.end.astimezone(UTC)
        if end <= start:
            return
        edges = _edges(tariffs, start, end, self.zone)
        energies = _shares_mj(edges, interval.energy_mj)
        baselines = [0] * len(energies)
        if baseline_w is not None and interval.job_id is not None:
            seconds = Decimal(str((end - start).total_seconds()))
            baselines = _shares_mj(edges, int(Decimal(str(baseline_w)) * seconds * 1000))
        for index, (energy_mj, baseline_share) in enumerate(zip(energies, baselines, strict=True)):
            left, right = edges[index], edges[index + 1]
            tariff = tariffs.in_force(left)
            baseline_mj = min(energy_mj, baseline_share)
            cost = baseline_cost = Decimal(0)
            if tariff is not None and energy_mj > 0:
                cost = tariff.cost(left, right, Decimal(energy_mj) / _MJ_PER_WH)
                baseline_cost = cost * baseline_mj / energy_mj
            yield {
                "gpu_uuid": interval.gpu_uuid,
                "start_ms": to_ms(left),
                "end_ms": to_ms(right),
                "energy_mj": energy_mj,
                "baseline_mj": baseline_mj,
                "job_id": interval.job_id,
                "cost_nano": _nano(cost),
                "baseline_cost_nano": _nano(baseline_cost),
                "currency": tariff.currency if tariff is not None else "",
                "source": interval.source,
            }


_HOUR_MS = 3_600_000


def _edges(tariffs: TariffHistory, start: datetime, end: datetime, zone: ZoneInfo) -> list[datetime]:
    """``start``, every instant inside the interval where the tariff changes, a local day begins or a UTC hour
    begins, and ``end``. Edges are whole milliseconds, as the rows keep them, and only those strictly inside
    the rows' milliseconds count: no row is empty, and none reaches into the next day or hour."""
    start_ms, end_ms = to_ms(start), to_ms(end)
    inside = {from_ms(ms) for ms in range(start_ms - start_ms % _HOUR_MS + _HOUR_MS, end_ms, _HOUR_MS)}
    inside.update(from_ms(to_ms(change)) for change in tariffs.changes_between(start, end))
    day, last_day = start.astimezone(zone).date(), end.astimezone(zone).date()
    while day < last_day:
        day += timedelta(days=1)
        inside.add(from_ms(to_ms(datetime.combine(day, time(0), tzinfo=zone))))
    return [start, *sorted(edge for edge in inside if start_ms < to_ms(edge) < end_ms), end]


def _shares_mj(edges: list[datetime], energy_mj: int) -> list[int]:
    """Each stretch's share by time of ``energy_mj``, in whole millijoules. Rounded where the running total is,
    so the last stretch gets the remainder and the shares add up to ``energy_mj`` exactly (rounded one by
    one, the pieces of 1,000,001 mJ cut in half made 1,000,000)."""
    shares: list[int] = []
    given, so_far = 0, Decimal(0)
    stretches = list(_energy_by_stretch(edges, Decimal(energy_mj)))
    for number, (_, _, share) in enumerate(stretches, start=1):
        if number == len(stretches):
            shares.append(energy_mj - given)
        else:
            so_far += share
            whole = int(so_far.to_integral_value(ROUND_HALF_EVEN)) - given
            shares.append(whole)
            given += whole
    return shares


def _nano(amount: Decimal) -> int:
    return int((amount * NANO).to_integral_value(ROUND_HALF_EVEN))


def _roll_up(connection: Connection, rows: Sequence[dict[str, Any]], zone: ZoneInfo) -> None:
    """Add the rows to the daily (local) and hourly (UTC) roll-ups; a row lies within one of each (see
    :func:`_edges`), so it counts whole where it starts."""
    sums_by_key: dict[tuple[Any, tuple[Any, ...]], list[int]] = {}
    for row in rows:
        start_ms = row["start_ms"]
        values = [
            row["end_ms"] - row["start_ms"],
            row["energy_mj"],
            row["baseline_mj"],
            row["cost_nano"],
            row["baseline_cost_nano"],
        ]
        rest = (row["gpu_uuid"], row["job_id"] or "", row["currency"])
        day = from_ms(start_ms).astimezone(zone).date().isoformat()
        hour = start_ms - start_ms % _HOUR_MS
        for table, bucket in ((db.energy_daily, day), (db.energy_hourly, hour)):
            sums = sums_by_key.setdefault((table, (bucket, *rest)), [0, 0, 0, 0, 0])
            for position, value in enumerate(values):
                sums[position] += value
    for (table, key), sums in sums_by_key.items():
        _upsert_energy(connection, table, key, sums)


_SUMS = ("seconds_ms", "energy_mj", "baseline_mj", "cost_nano", "baseline_cost_nano")


def _upsert_energy(connection: Connection, table: Any, key: tuple[Any, ...], sums: list[int]) -> None:
    bucket = "local_day" if table is db.energy_daily else "hour_ms"
    values = dict(zip((bucket, "gpu_uuid", "job_key", "currency"), key, strict=True)) | dict(
        zip(_SUMS, sums, strict=True)
    )
    statement = sqlite_insert(table).values(values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[bucket, "gpu_uuid", "job_key", "currency"],
            set_={name: table.c[name] + statement.excluded[name] for name in _SUMS},
        )
    )


def _store_counter(connection: Connection, uuid: str, stored: StoredCounter) -> None:
    values = {
        "gpu_uuid": uuid,
        "boot_id": stored.counter.boot_id,
        "last_mj": stored.counter.last_mj,
        "last_ms": to_ms(stored.at),
        "job_id": stored.job_id,
    }
    statement = sqlite_insert(db.energy_counters).values(values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["gpu_uuid"], set_={k: v for k, v in values.items() if k != "gpu_uuid"}
        )
    )


def _add_earnings(connection: Connection, day: str, *, credited: int = 0, confirmed: int = 0) -> None:
    row = connection.execute(select(db.earnings_daily).where(db.earnings_daily.c.local_day == day)).first()
    if row is None:
        connection.execute(
            insert(db.earnings_daily).values(local_day=day, credited=str(credited), confirmed=str(confirmed))
        )
    else:
        connection.execute(
            update(db.earnings_daily)
            .where(db.earnings_daily.c.local_day == day)
            .values(credited=str(int(row.credited) + credited), confirmed=str(int(row.confirmed) + confirmed))
        )


# -- the file itself ----------------------------------------------------------------------------------


# The raw energy intervals are nearly all of a year's file (600 MB for two GPUs): checking them page by page
# takes seconds to a minute after a reboot, so at start every other table is checked, and they are checked
# in the background (:func:`integrity_problem` with no tables), which marks the file for the next start.
QUICK_TABLES = (
    "alembic_version",
    "jobs",
    "earnings",
    "energy_counters",
    "energy_daily",
    "energy_hourly",
    "earnings_daily",
    "tariffs",
    "token_rates",
    "payouts",
)


def damage_marker(path: Path) -> Path:
    """A file beside the ledger that says it was found damaged (by the background check) and why."""
    return path.with_name(path.name + ".damaged")


def integrity_problem(path: Path, tables: Sequence[str] = ()) -> str | None:
    """Why the SQLite file at ``path`` cannot be trusted, or None: not a database, or damaged pages (of
    ``tables`` only, where given: tables it does not have yet are skipped)."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        if not tables:
            rows = connection.execute("PRAGMA quick_check").fetchall()
        else:
            present = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            rows = []
            for table in (name for name in tables if name in present):
                rows += connection.execute(f'PRAGMA quick_check("{table}")').fetchall()
            rows = [row for row in rows if row[0] != "ok"] or [("ok",)]
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        connection.close()
    results = [str(row[0]) for row in rows]
    return None if results == ["ok"] else "; ".join(results[:3])


def _set_aside(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.replace(target.with_name(target.name + suffix))
    return target


def is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, (DatabaseError, sqlite3.DatabaseError))


def day_range(since: datetime, until: datetime, zone: ZoneInfo) -> tuple[str, str]:
    """The local days [first, last] that ``since``…``until`` touches."""
    last = (until - timedelta(milliseconds=1)).astimezone(zone).date()
    return since.astimezone(zone).date().isoformat(), last.isoformat()
