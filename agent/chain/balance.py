"""Balances as the user sees them: exact amounts in base units, or "unknown" with the reason.

A balance read from a chain is either a :class:`Balance` (an integer number of base units and the
token's decimals, shown exactly, never through a float) or a :class:`BalanceUnknown` when the RPC
could not be asked. The GUI shows either as it is: an unreachable RPC must never look like zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Balance:
    """An amount of a coin or token: ``amount`` base units, of which 10**``decimals`` make one."""

    amount: int
    decimals: int
    symbol: str = ""

    def __post_init__(self) -> None:
        if self.decimals < 0:
            raise ValueError(f"decimals must be 0 or more, not {self.decimals}")

    @property
    def value(self) -> Decimal:
        """The amount in whole units, exactly (built from digits, so no context rounding applies)."""
        digits = tuple(int(digit) for digit in str(abs(self.amount)))
        return Decimal((int(self.amount < 0), digits, -self.decimals))

    @property
    def number(self) -> str:
        """The amount in whole units as plain digits, every significant decimal kept: "12.345678"."""
        whole, fraction = divmod(abs(self.amount), 10**self.decimals)
        text = str(whole)
        if fraction:
            text += "." + str(fraction).rjust(self.decimals, "0").rstrip("0")
        return "-" + text if self.amount < 0 else text

    def __str__(self) -> str:
        return f"{self.number} {self.symbol}" if self.symbol else self.number


@dataclass(frozen=True)
class BalanceUnknown:
    """A balance that could not be read, and why ("RPC unreachable: ..."): shown, never taken as zero."""

    reason: str

    def __str__(self) -> str:
        return f"balance unknown ({self.reason})"


BalanceResult = Balance | BalanceUnknown
