"""Electricity tariffs and what an interval's energy costs under them.

A tariff has a currency, a default price per kWh and optional time-of-use windows (days of the week and a
range of hours, in the tariff's time zone). Costs are computed on real elapsed time: an interval is cut at
every local boundary (window edges and midnight), each converted to UTC for that very day, so the hour that
a daylight-saving change removes or repeats is charged as it really passed. Energy within an interval is
taken as spread evenly over it (the ledger's intervals are seconds long, so this is exact enough).

A :class:`TariffHistory` keeps every tariff with the instant it took effect: changing the tariff today does
not rewrite the cost of last month. Nothing here reads a clock or a file.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

WEEKDAYS = frozenset(range(5))  # Monday = 0
WEEKEND = frozenset({5, 6})
ALL_DAYS = frozenset(range(7))
_WH_PER_KWH = Decimal(1000)


class TariffError(ValueError):
    """A tariff that cannot be used; the message says which part and how to fix it."""


@dataclass(frozen=True)
class PriceWindow:
    """``price`` per kWh on ``days`` from ``start`` to ``end`` local time; ``end`` 00:00 means midnight."""

    days: frozenset[int]
    start: time
    end: time
    price: Decimal

    def __post_init__(self) -> None:
        if not self.days or not self.days <= ALL_DAYS:
            raise TariffError("a time-of-use window needs one or more days, Monday (0) to Sunday (6)")
        if self.end != time(0) and self.end <= self.start:
            raise TariffError(
                f"a time-of-use window must end after it starts ({self.start:%H:%M}-{self.end:%H:%M}); "
                "split one that runs past midnight into two"
            )
        if self.price < 0:
            raise TariffError("a price per kWh cannot be negative")

    def covers(self, local: datetime) -> bool:
        if local.weekday() not in self.days:
            return False
        clock = local.time().replace(tzinfo=None)
        return self.start <= clock and (self.end == time(0) or clock < self.end)


@dataclass(frozen=True)
class Tariff:
    currency: str
    price_per_kwh: Decimal  # whenever no window applies
    zone: ZoneInfo
    windows: tuple[PriceWindow, ...] = ()

    def __post_init__(self) -> None:
        if not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise TariffError(f"{self.currency!r} is not a currency code: use three capital letters, like EUR")
        if self.price_per_kwh < 0:
            raise TariffError("a price per kWh cannot be negative")

    def price_at(self, instant: datetime) -> Decimal:
        """The price per kWh in force at ``instant`` (the first window that covers it, else the default)."""
        local = instant.astimezone(self.zone)
        return next((window.price for window in self.windows if window.covers(local)), self.price_per_kwh)

    def boundaries(self, start: datetime, end: datetime) -> list[datetime]:
        """The UTC instants strictly inside (start, end) where the price may change."""
        wall_times = sorted({time(0), *(w.start for w in self.windows), *(w.end for w in self.windows)})
        first = start.astimezone(self.zone).date() - timedelta(days=1)
        last = end.astimezone(self.zone).date() + timedelta(days=1)
        found: set[datetime] = set()
        for day in _days(first, last):
            for clock in wall_times:
                instant = datetime.combine(day, clock, tzinfo=self.zone).astimezone(UTC)
                if start < instant < end:
                    found.add(instant)
        return sorted(found)

    def cost(self, start: datetime, end: datetime, energy_wh: Decimal) -> Decimal:
        """What ``energy_wh`` used evenly from ``start`` to ``end`` costs, in this tariff's currency."""
        return sum((price * wh / _WH_PER_KWH for price, wh in self.split(start, end, energy_wh)), Decimal(0))

    def split(self, start: datetime, end: datetime, energy_wh: Decimal) -> Iterator[tuple[Decimal, Decimal]]:
        """(price per kWh, Wh) for each stretch of the interval at one price.

        Neighbouring stretches at the same price are one (midnight under a flat tariff is no edge): cut there,
        the shares' rounding would show in the cost of an hour that crosses it.
        """
        # In UTC: Python subtracts two times of one zone on the wall clock, which a DST change makes wrong.
        start, end = _check_interval(start, end)
        edges: list[datetime] = [start]  # where the price changes, and the two ends
        prices: list[Decimal] = []  # of each stretch between them
        for left, right in itertools.pairwise([start, *self.boundaries(start, end), end]):
            price = self.price_at(left + (right - left) / 2)
            if prices and prices[-1] == price:
                edges[-1] = right
            else:
                prices.append(price)
                edges.append(right)
        for price, (_, _, wh) in zip(prices, _energy_by_stretch(edges, energy_wh), strict=True):
            yield price, wh


@dataclass
class TariffHistory:
    """Every tariff the user has had, each from the instant it took effect."""

    _changes: list[tuple[datetime, Tariff | None]] = field(default_factory=list)
    _unreadable: dict[datetime, str] = field(default_factory=dict)  # start -> why it cannot be read

    def set(self, effective_from: datetime, tariff: Tariff) -> None:
        """Adopt ``tariff`` from ``effective_from`` on; earlier costs keep the tariff they had."""
        self._append(effective_from, tariff)

    def set_unreadable(self, effective_from: datetime, reason: str) -> None:
        """A stored tariff that can no longer be read (saved before this version refused what it holds): from
        ``effective_from`` until the next tariff, costs are unknown and left out, as before a first tariff."""
        self._unreadable[self._append(effective_from, None)] = reason

    def unreadable_in_force(self, instant: datetime) -> tuple[datetime, str] | None:
        """When the tariff in force at ``instant`` is an unreadable one: since when, and why."""
        entry = self._entry_at(instant)
        if entry is None or entry[1] is not None:
            return None
        return entry[0], self._unreadable[entry[0]]

    def _append(self, effective_from: datetime, tariff: Tariff | None) -> datetime:
        if effective_from.tzinfo is None:
            raise TariffError("a tariff's start must carry its time zone")
        instant = effective_from.astimezone(UTC)
        if self._changes and instant <= self._changes[-1][0]:
            raise TariffError("a new tariff must take effect after the last one did; history is not rewritten")
        self._changes.append((instant, tariff))
        return instant

    def changes_between(self, start: datetime, end: datetime) -> list[datetime]:
        """The instants strictly inside (start, end) at which another tariff took effect."""
        return [when for when, _ in self._changes if start < when < end]

    def in_force(self, instant: datetime) -> Tariff | None:
        entry = self._entry_at(instant)
        return entry[1] if entry is not None else None

    def _entry_at(self, instant: datetime) -> tuple[datetime, Tariff | None] | None:
        """The change in force at ``instant`` (its start and tariff), or None before the first."""
        index = bisect.bisect_right([when for when, _ in self._changes], instant.astimezone(UTC)) - 1
        return self._changes[index] if index >= 0 else None

    def cost(self, start: datetime, end: datetime, energy_wh: Decimal) -> dict[str, Decimal]:
        """The interval's cost by currency (a tariff change may switch currency), under the tariffs then in
        force; energy used before the first tariff costs nothing that can be known, and is left out."""
        start, end = _check_interval(start, end)
        costs: dict[str, Decimal] = {}
        for left, right, wh in _energy_by_stretch([start, *self.changes_between(start, end), end], energy_wh):
            tariff = self.in_force(left)
            if tariff is None:
                continue
            costs[tariff.currency] = costs.get(tariff.currency, Decimal(0)) + tariff.cost(left, right, wh)
        return costs


def _energy_by_stretch(edges: list[datetime], energy_wh: Decimal) -> Iterator[tuple[datetime, datetime, Decimal]]:
    """Each stretch between neighbouring ``edges`` with its share by time of ``energy_wh``, used evenly from the
    first edge to the last. The last stretch gets what the others left, so the shares add up to ``energy_wh``
    exactly: a share such as 3,599 s of 3,600 has no exact decimal."""
    total_s = Decimal(str((edges[-1] - edges[0]).total_seconds()))
    stretches = list(itertools.pairwise(edges))
    given = Decimal(0)
    for number, (left, right) in enumerate(stretches, start=1):
        if number == len(stretches):
            yield left, right, energy_wh - given
        else:
            wh = energy_wh * Decimal(str((right - left).total_seconds())) / total_s
            given += wh
            yield left, right, wh


def _check_interval(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The interval in UTC, once it is known to be one."""
    if start.tzinfo is None or end.tzinfo is None:
        raise TariffError("an energy interval's times must carry their time zone")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise TariffError("an energy interval must end after it starts")
    return start, end


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)
