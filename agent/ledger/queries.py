"""The ledger's summaries and export, read from the roll-ups so that a year of samples answers in milliseconds.

Buckets are local days (weeks and months are made of them; an hour bucket is a UTC hour shown in local
time) in the ledger's time zone; a lease's earning counts on the day the marketplace credited it, its
energy where it was used. Net is gross at the token rate the user entered last, less the electricity
of the work (above the idle baseline where one was set).

Totals are computed from the exact sums (millijoules, nano-units of the currency), and the rows shown add
up to them exactly: energy is shown to 0.001 Wh and a cost in token base units is a whole number, so each
row's figure is its exact one rounded down or up, the largest remainders up, as far as the rounded total
asks (rounded one by one, three leases of 0.278 Wh showed 0.834 Wh against a total of 0.835). Money in
the currency (power cost, net) is exact and needs none of this. A period's total is therefore the same by
hour, day, week, month or GPU.

The export is the ``job`` summary's rows, one per lease that started in the period, each with all its
energy and its earning whenever it came: its rows add up exactly to that summary's total. They add up to
the day, week, month, hour and GPU summaries' totals as well when every lease that touches the period ran
and was credited within it, since those count energy when it was used and pay when it came (a lease
from 23:59 on the period's last day, paid after midnight, is in the export but its pay is not in the
period's daily total).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, case, func, literal, select

from sparecycles.agent.ledger import db
from sparecycles.agent.ledger.floor import TokenRate
from sparecycles.agent.ledger.store import NANO, from_ms, to_ms
from sparecycles.control.ledger import (
    EarningsSummary,
    ExportRow,
    LedgerExport,
    Money,
    SummaryBucket,
    SummaryRow,
    TodayFigure,
)

_MJ_PER_STEP = 3_600  # energy is shown in steps of 0.001 Wh, 3.6 J each
_MONEY_PRECISION = 100  # digits: gross at the rate, less the cost, is exact for any amount a ledger holds


@dataclass
class _Sums:
    gross: int = 0
    pending: int = 0
    work_mj: int = 0
    idle_mj: int = 0
    work_cost_nano: int = 0  # whole draw, or above the baseline where one was set
    currency: str = ""

    def add(self, other: _Sums) -> None:
        self.gross += other.gross
        self.pending += other.pending
        self.work_mj += other.work_mj
        self.idle_mj += other.idle_mj
        self.work_cost_nano += other.work_cost_nano
        self.currency = self.currency or other.currency


class LedgerQueries:
    def __init__(self, engine: Engine, zone: ZoneInfo, rate: TokenRate | None, currency: str | None) -> None:
        """``currency``: the tariff in force's (costs in another currency are left out of net, and named)."""
        self._engine = engine
        self._zone = zone
        self._rate = rate
        self._currency = currency

    # -- summaries -------------------------------------------------------------------------------------

    def summary(self, since: date, until: date, by: SummaryBucket) -> EarningsSummary:
        if until < since:
            raise ValueError("--until must not be before --since")
        if by == "job":
            rows = [self._job_row(row) for row in self._job_sums(since, until)]
        elif by == "gpu":
            rows = self._gpu_rows(since, until)
        elif by == "hour":
            rows = self._hour_rows(since, until)
        else:
            rows = self._day_rows(since, until, by)
        shown, total = self._shown([sums for _, sums in rows])
        return EarningsSummary(
            by=by,
            since=since,
            until=until,
            time_zone=str(self._zone),
            token_rate=self._rate.per_token if self._rate is not None else None,
            missing=self._missing(),
            rows=[
                SummaryRow(bucket=label, start=start, **money.model_dump())
                for ((label, start), _), money in zip(rows, shown, strict=True)
            ],
            total=total,
        )

    def today(self, now: datetime) -> TodayFigure:
        day = now.astimezone(self._zone).date()
        _, total = self._shown([row for _, row in self._day_rows(day, day, "day")])
        return TodayFigure(day=day, **total.model_dump())

    def _missing(self) -> list[str]:
        missing = []
        if self._currency is None:
            missing.append("no tariff set: `sparecycles tariff set FILE` (see examples/tariff.toml)")
        if self._rate is None:
            missing.append("no token rate set: `sparecycles rate set AMOUNT CURRENCY`")
        elif self._currency is not None and self._rate.currency != self._currency:
            missing.append(f"the token rate is in {self._rate.currency}, the tariff in {self._currency}")
        return missing

    def _shown(self, parts: Sequence[_Sums]) -> tuple[list[Money], Money]:
        """Each part as shown, and their total: rounded once, from the exact sums, with the parts' rounding
        chosen so that they add up to it exactly (see the module's docstring)."""
        total = _Sums()
        for part in parts:
            total.add(part)
        work = _apportion([Fraction(part.work_mj, _MJ_PER_STEP) for part in parts])
        idle = _apportion([Fraction(part.idle_mj, _MJ_PER_STEP) for part in parts])
        cost_units: Sequence[int | None] = [None] * len(parts)
        total_cost_units = None
        per_unit = self._cost_per_base_unit()
        if per_unit is not None:  # the work's cost in token base units, rounded up
            exact = [Fraction(part.work_cost_nano) / per_unit for part in parts]
            total_cost_units = math.ceil(sum(exact, Fraction(0)))
            cost_units = _apportion_to(exact, total_cost_units)
        shown = [
            self._money(part, work_step, idle_step, units)
            for part, work_step, idle_step, units in zip(parts, work[0], idle[0], cost_units, strict=True)
        ]
        return shown, self._money(total, work[1], idle[1], total_cost_units)

    def _cost_per_base_unit(self) -> Fraction | None:
        """Nano-units of the currency that one token base unit is worth; None where net cannot be shown."""
        rate = self._rate
        if self._currency is None or rate is None or rate.currency != self._currency or rate.per_token <= 0:
            return None
        return Fraction(rate.per_token) * int(NANO) / Fraction(10) ** rate.decimals

    def _money(self, sums: _Sums, work_steps: int, idle_steps: int, cost_units: int | None) -> Money:
        """``sums`` shown: energy in steps of 0.001 Wh and the cost in token base units as :meth:`_shown`
        rounded them, money in the currency exact."""
        currency = self._currency
        net = net_units = None
        with localcontext() as context:
            context.prec = _MONEY_PRECISION
            cost = Decimal(sums.work_cost_nano) / NANO
            rate = self._rate
            if cost_units is not None and rate is not None:
                net = Decimal(sums.gross) * rate.per_token / (Decimal(10) ** rate.decimals) - cost
                net_units = sums.gross - cost_units
        return Money(
            gross_base_units=sums.gross,
            pending_base_units=sums.pending,
            energy_wh=_wh(work_steps),
            idle_energy_wh=_wh(idle_steps),
            power_cost=cost,
            currency=currency,
            net=net,
            net_base_units=net_units,
        )

    def _energy_columns(self, table: Any = db.energy_daily) -> list[Any]:
        idle = table.c.job_key == ""
        in_currency = table.c.currency == (self._currency or "")
        work_cost = table.c.cost_nano - table.c.baseline_cost_nano
        return [
            func.sum(case((idle, 0), else_=table.c.energy_mj)),
            func.sum(case((idle, table.c.energy_mj), else_=0)),
            func.sum(case((and_(~idle, in_currency), work_cost), else_=0)),
        ]

    def _day_rows(self, since: date, until: date, by: SummaryBucket) -> list[tuple[tuple[str, datetime | None], _Sums]]:
        first, last = since.isoformat(), until.isoformat()
        per_day: dict[str, _Sums] = {}
        with self._engine.connect() as connection:
            for day, work_mj, idle_mj, cost in connection.execute(
                select(db.energy_daily.c.local_day, *self._energy_columns())
                .where(db.energy_daily.c.local_day.between(first, last))
                .group_by(db.energy_daily.c.local_day)
            ):
                per_day[day] = _Sums(work_mj=int(work_mj), idle_mj=int(idle_mj), work_cost_nano=int(cost))
            for day, credited, confirmed in connection.execute(
                select(db.earnings_daily).where(db.earnings_daily.c.local_day.between(first, last))
            ):
                sums = per_day.setdefault(day, _Sums())
                sums.gross, sums.pending = int(credited), int(credited) - int(confirmed)
        buckets: dict[str, tuple[datetime | None, _Sums]] = {}
        for day in sorted(per_day):
            label, start = self._bucket(date.fromisoformat(day), by)
            buckets.setdefault(label, (start, _Sums()))[1].add(per_day[day])
        return [((label, start), sums) for label, (start, sums) in buckets.items()]

    def _gpu_rows(self, since: date, until: date) -> list[tuple[tuple[str, datetime | None], _Sums]]:
        """Per GPU (by UUID; "cpu" for CPU-only leases): its energy, and its share of each lease's earning (a
        lease on several GPUs shares it equally)."""
        first, last = since.isoformat(), until.isoformat()
        table = db.energy_daily
        per_gpu: dict[str, _Sums] = {}
        with self._engine.connect() as connection:
            for uuid, work_mj, idle_mj, cost in connection.execute(
                select(table.c.gpu_uuid, *self._energy_columns())
                .where(table.c.local_day.between(first, last))
                .group_by(table.c.gpu_uuid)
            ):
                per_gpu[uuid] = _Sums(work_mj=int(work_mj), idle_mj=int(idle_mj), work_cost_nano=int(cost))
            for amount, confirmed_ms, gpu_uuids in connection.execute(
                select(db.earnings.c.amount, db.earnings.c.confirmed_ms, db.jobs.c.gpu_uuids)
                .join(db.jobs, db.jobs.c.id == db.earnings.c.job_id)
                .where(db.earnings.c.local_day.between(first, last))
            ):
                uuids = json.loads(gpu_uuids) or ["cpu"]
                share, rest = divmod(int(amount), len(uuids))
                for position, uuid in enumerate(uuids):
                    part = share + (rest if position == 0 else 0)
                    sums = per_gpu.setdefault(uuid, _Sums())
                    sums.gross += part
                    sums.pending += part if confirmed_ms is None else 0
        return [((uuid, None), per_gpu[uuid]) for uuid in sorted(per_gpu)]

    def _bucket(self, day: date, by: SummaryBucket) -> tuple[str, datetime]:
        if by == "week":
            year, week, weekday = day.isocalendar()
            day = day - timedelta(days=weekday - 1)
            label = f"{year}-W{week:02d}"
        elif by == "month":
            day = day.replace(day=1)
            label = day.isoformat()[:7]
        else:
            label = day.isoformat()
        return label, datetime.combine(day, time(0), tzinfo=self._zone)

    def _hour_rows(self, since: date, until: date) -> list[tuple[tuple[str, datetime | None], _Sums]]:
        start_ms = to_ms(datetime.combine(since, time(0), tzinfo=self._zone))
        end_ms = to_ms(datetime.combine(until + timedelta(days=1), time(0), tzinfo=self._zone))
        table = db.energy_hourly
        per_hour: dict[int, _Sums] = {}
        with self._engine.connect() as connection:
            for hour_ms, work_mj, idle_mj, cost in connection.execute(
                select(table.c.hour_ms, *self._energy_columns(table))
                .where(table.c.hour_ms >= start_ms, table.c.hour_ms < end_ms)
                .group_by(table.c.hour_ms)
            ):
                per_hour[hour_ms] = _Sums(work_mj=int(work_mj), idle_mj=int(idle_mj), work_cost_nano=int(cost))
            # Earnings count in the hour they were credited (few rows: one per lease).
            for credited_ms, amount, confirmed_ms in connection.execute(
                select(db.earnings.c.credited_ms, db.earnings.c.amount, db.earnings.c.confirmed_ms).where(
                    db.earnings.c.credited_ms >= start_ms, db.earnings.c.credited_ms < end_ms
                )
            ):
                sums = per_hour.setdefault(credited_ms - credited_ms % 3_600_000, _Sums())
                sums.gross += int(amount)
                sums.pending += 0 if confirmed_ms is not None else int(amount)
        rows: list[tuple[tuple[str, datetime | None], _Sums]] = []
        for hour_ms in sorted(per_hour):
            start = from_ms(hour_ms).astimezone(self._zone)
            rows.append(((start.isoformat(timespec="minutes"), start), per_hour[hour_ms]))
        return rows

    # -- per lease -----------------------------------------------------------------------------------

    def _job_sums(self, since: date, until: date) -> Iterable[Any]:
        start_ms = to_ms(datetime.combine(since, time(0), tzinfo=self._zone))
        end_ms = to_ms(datetime.combine(until + timedelta(days=1), time(0), tzinfo=self._zone))
        table = db.energy_daily
        in_currency = table.c.currency == (self._currency or "")
        energy = (
            select(
                table.c.job_key.label("job_id"),
                func.sum(table.c.energy_mj).label("energy_mj"),
                func.sum(case((in_currency, table.c.cost_nano - table.c.baseline_cost_nano), else_=0)).label("cost"),
            )
            .where(table.c.job_key != "")
            .group_by(table.c.job_key)
            .subquery()
        )
        with self._engine.connect() as connection:
            return connection.execute(
                select(
                    db.jobs,
                    func.coalesce(energy.c.energy_mj, literal(0)).label("energy_mj"),
                    func.coalesce(energy.c.cost, literal(0)).label("cost"),
                    db.earnings.c.amount,
                    db.earnings.c.confirmed_ms,
                    db.earnings.c.voucher_ref,
                )
                .outerjoin(energy, energy.c.job_id == db.jobs.c.id)
                .outerjoin(db.earnings, db.earnings.c.job_id == db.jobs.c.id)
                .where(db.jobs.c.started_ms >= start_ms, db.jobs.c.started_ms < end_ms)
                .order_by(db.jobs.c.started_ms, db.jobs.c.id)
            ).all()

    def _job_row(self, row: Any) -> tuple[tuple[str, datetime | None], _Sums]:
        gross = int(row.amount) if row.amount is not None else 0
        sums = _Sums(
            gross=gross,
            pending=gross if row.confirmed_ms is None else 0,
            work_mj=int(row.energy_mj),
            work_cost_nano=int(row.cost),
        )
        return (row.id, from_ms(row.started_ms).astimezone(self._zone)), sums

    def export(self, since: date, until: date) -> LedgerExport:
        """One row per lease that started in the period: the ``job`` summary's rows, with the lease's details."""
        leases = list(self._job_sums(since, until))
        shown, _ = self._shown([self._job_row(row)[1] for row in leases])
        rows = []
        for row, money in zip(leases, shown, strict=True):
            ended = from_ms(row.ended_ms) if row.ended_ms is not None else None
            started = from_ms(row.started_ms)
            status = "unpaid" if row.amount is None else ("confirmed" if row.confirmed_ms is not None else "pending")
            rows.append(
                ExportRow(
                    lease_id=row.id,
                    job_id=row.market_job_id,
                    marketplace=row.marketplace,
                    gpus=" ".join(json.loads(row.gpu_uuids)),
                    started_utc=started,
                    started_local=started.astimezone(self._zone),
                    ended_utc=ended,
                    ended_local=ended.astimezone(self._zone) if ended is not None else None,
                    run_time_s=row.run_time_ms / 1000 if row.run_time_ms is not None else None,
                    paused_s=row.paused_ms / 1000 if row.paused_ms is not None else None,
                    outcome=row.outcome,
                    energy_wh=money.energy_wh,
                    power_cost=money.power_cost,
                    currency=money.currency,
                    gross_base_units=money.gross_base_units,
                    net=money.net,
                    net_base_units=money.net_base_units,
                    voucher_status=status,
                    voucher_ref=row.voucher_ref,
                )
            )
        return LedgerExport(since=since, until=until, time_zone=str(self._zone), rows=rows)


def _wh(steps: int) -> Decimal:
    """Steps of 0.001 Wh as watt-hours, always with three decimals."""
    return Decimal(steps).scaleb(-3)


def _apportion(parts: Sequence[Fraction]) -> tuple[list[int], int]:
    """The parts and their total in whole steps: the total rounded (half to even) from the exact sum, the
    parts rounded down or up so that they add up to it."""
    total = round(sum(parts, Fraction(0)))
    return _apportion_to(parts, total), total


def _apportion_to(parts: Sequence[Fraction], total: int) -> list[int]:
    """Whole numbers, each ``parts``' own rounded down or up, adding up to ``total`` (the parts' exact sum
    rounded down or up): the parts with the largest fractions are rounded up, the earlier of equal ones first."""
    whole = [math.floor(part) for part in parts]
    missing = total - sum(whole)
    by_fraction = sorted(range(len(parts)), key=lambda index: parts[index] - whole[index], reverse=True)
    for index in by_fraction[:missing]:
        whole[index] += 1
    return whole
