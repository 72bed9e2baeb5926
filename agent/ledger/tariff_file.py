"""Read a tariff file (TOML, see examples/tariff.toml) into a :class:`Tariff`, or say what is wrong in it."""

from __future__ import annotations

import tomllib
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sparecycles.agent.ledger.tariffs import PriceWindow, Tariff, TariffError

_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_DAY_GROUPS = {"weekdays": range(5), "weekend": range(5, 7), "daily": range(7)}
_TOP = {"currency", "time_zone", "price_per_kwh", "window"}
_WINDOW = {"days", "from", "to", "price_per_kwh"}
# Above any real price, even in currencies of small units (a kWh costs a few thousand VND or IDR, some tens of
# thousands of LBP), and low enough that years of a GPU's costs, kept in nano-units, fit the ledger's 64-bit
# sums. A stored tariff is parsed again for every cost, forever, so what could break it is refused up front.
MAX_PRICE_PER_KWH = Decimal(100_000)
_TOO_LONG = "the tariff holds a number with too many digits to read; write prices like 0.32"


def load_tariff(path: Path) -> Tariff:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TariffError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise TariffError(f"cannot read the tariff file {path}: {exc.strerror}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TariffError(f"{path} is not valid TOML: {exc}") from None
    except ValueError:  # tomllib lets Python's limit on an integer's digits (4300) through as it is
        raise TariffError(f"{path}: {_TOO_LONG}") from None
    try:
        return parse_tariff(document)
    except TariffError as exc:
        raise TariffError(f"{path}: {exc}") from None


def parse_tariff_text(text: str) -> Tariff:
    """A tariff from the text of a tariff file (as the ledger keeps it)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TariffError(f"the tariff is not valid TOML: {exc}") from None
    except ValueError:
        raise TariffError(_TOO_LONG) from None
    return parse_tariff(document)


def parse_tariff(document: dict[str, Any]) -> Tariff:
    _no_unknown(document, _TOP, "the tariff")
    for key in ("currency", "time_zone", "price_per_kwh"):
        if key not in document:
            raise TariffError(f"`{key}` is missing (see examples/tariff.toml)")
    windows = document.get("window", [])
    if not isinstance(windows, list):
        raise TariffError("`window` must be a list of [[window]] tables")
    return Tariff(
        currency=str(document["currency"]),
        price_per_kwh=_price(document["price_per_kwh"], "price_per_kwh"),
        zone=_zone(document["time_zone"]),
        windows=tuple(_window(index, window) for index, window in enumerate(windows, start=1)),
    )


def _window(index: int, window: Any) -> PriceWindow:
    where = f"window {index}"
    if not isinstance(window, dict):
        raise TariffError(f"{where} must be a table")
    _no_unknown(window, _WINDOW, where)
    for key in _WINDOW:
        if key not in window:
            raise TariffError(f"{where}: `{key}` is missing")
    try:
        return PriceWindow(
            days=_days(window["days"], where),
            start=_clock(window["from"], f"{where}: from"),
            end=_clock(window["to"], f"{where}: to"),
            price=_price(window["price_per_kwh"], f"{where}: price_per_kwh"),
        )
    except TariffError as exc:
        message = str(exc)
        raise TariffError(message if message.startswith(where) else f"{where}: {message}") from None


def _days(value: Any, where: str) -> frozenset[int]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise TariffError(f'{where}: `days` is a list such as ["mon", "tue"], or "weekdays", "weekend", "daily"')
    days: set[int] = set()
    for name in names:
        key = str(name).lower()
        if key in _DAY_GROUPS:
            days.update(_DAY_GROUPS[key])
        elif key in _DAYS:
            days.add(_DAYS[key])
        else:
            raise TariffError(f"{where}: {name!r} is not a day; use mon…sun, weekdays, weekend or daily")
    return frozenset(days)


def _clock(value: Any, where: str) -> time:
    """A wall-clock time in the tariff's ``time_zone``; one with its own UTC offset is refused, since it
    could not be compared with the local times costs are computed on."""
    text = str(value)
    if text == "24:00":
        return time(0)
    try:
        clock = time.fromisoformat(text)
    except ValueError:
        raise TariffError(f'{where}: {text!r} is not a time of day like "17:30" ("24:00" for midnight)') from None
    if clock.tzinfo is not None:
        raise TariffError(
            f'{where}: {text!r} carries a UTC offset; write the local wall-clock time, like "17:00" '
            "(the tariff's `time_zone` says where it is local)"
        )
    return clock


def _price(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TariffError(f'{where}: a price per kWh is a number, like 0.32 or "0.32"')
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise TariffError(f"{where}: {value!r} is not a number") from None
    if not price.is_finite():
        raise TariffError(f'{where}: {value!r} is not a finite number; write a price like 0.32 or "0.32"')
    if price < 0:
        raise TariffError(f"{where}: a price per kWh is a number of 0 or more")
    if price > MAX_PRICE_PER_KWH:
        raise TariffError(
            f"{where}: a price per kWh is at most {MAX_PRICE_PER_KWH:,} (in the tariff's currency); "
            "write the price of one kWh, like 0.32"
        )
    return price


def _zone(value: Any) -> ZoneInfo:
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise TariffError(f'{value!r} is not a time zone; use an IANA name such as "Europe/Berlin"') from None


def _no_unknown(table: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise TariffError(f"{where} has an unknown setting `{unknown[0]}`; the known ones: {', '.join(sorted(known))}")
