"""Numbers as people read them: token amounts from base units, money, durations, bytes."""

from __future__ import annotations

from decimal import Decimal

from sparecycles.ui.money import money_text


def tokens(base_units: int, decimals: int | None) -> str:
    """``1234500000000000000`` with 18 decimals -> ``"1.2345"``; without known decimals, the base units."""
    if decimals is None:
        return f"{base_units:,} base units"
    value = Decimal(base_units).scaleb(-decimals)
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return text or "0"


def money(amount: Decimal | None, currency: str | None) -> str:
    """As the Earnings page and the CLI write it (``money_text``): a fraction of a cent is not rounded away."""
    if amount is None:
        return "—"
    return f"{money_text(amount)} {currency}" if currency else money_text(amount)


def duration(seconds: float) -> str:
    """``3725`` -> ``"1:02:05"``; under an hour ``"2:05"``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def gib(size_bytes: int | None) -> str:
    return "—" if size_bytes is None else f"{size_bytes / 2**30:.1f}"
