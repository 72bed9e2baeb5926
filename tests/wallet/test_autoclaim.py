"""Auto-claim's decision and round, with a stand-in for the wallet's claim commands (the claim itself, on a
real chain, is tested in test_claims.py and test_claim_kill.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from sparecycles.agent.wallet.autoclaim import AutoClaimer, worth_claiming
from sparecycles.control.wallet import ClaimableView, ClaimResult

ADDRESS = "0x" + "ab" * 20


def view(claimable: int, *, pending: str | None = None, problem: str | None = None) -> ClaimableView:
    return ClaimableView(
        payout_address=ADDRESS,
        voucher_amount=claimable,
        claimed=0,
        claimable=claimable,
        decimals=6,
        pending_tx=pending,
        problem=problem,
    )


class Claims:
    def __init__(self, shown: ClaimableView, refusal: Exception | None = None) -> None:
        self.shown = shown
        self.refusal = refusal
        self.claims = 0

    async def claimable(self) -> ClaimableView:
        return self.shown

    async def claim(self) -> ClaimResult:
        self.claims += 1
        if self.refusal is not None:
            raise self.refusal
        return ClaimResult(tx_hash="0x" + "12" * 32, state="mined", payout_address=ADDRESS, amount=self.shown.claimable)


def test_it_claims_at_the_threshold_and_not_below() -> None:
    threshold = Decimal("2.5")  # whole tokens; the token has 6 decimals
    assert worth_claiming(view(2_500_000), threshold)
    assert not worth_claiming(view(2_499_999), threshold)
    assert not worth_claiming(view(2_500_000), None)  # auto-claim off


def test_it_waits_for_a_pending_claim_and_skips_an_unclaimable_voucher() -> None:
    assert not worth_claiming(view(9_000_000, pending="0x" + "34" * 32), Decimal(1))
    assert not worth_claiming(view(9_000_000, problem="signed by a key the vault no longer trusts"), Decimal(1))
    assert not worth_claiming(view(0), Decimal("0.000001"))


def test_a_round_claims_once_when_worth_it() -> None:
    claims = Claims(view(5_000_000))
    result = asyncio.run(AutoClaimer(claims, lambda: Decimal(5)).round())
    assert result is not None
    assert (result.state, result.amount, claims.claims) == ("mined", 5_000_000, 1)
    assert asyncio.run(AutoClaimer(claims, lambda: Decimal(6)).round()) is None
    assert claims.claims == 1


def test_a_refused_claim_is_logged_and_tried_again_next_round(caplog: pytest.LogCaptureFixture) -> None:
    claims = Claims(view(5_000_000), refusal=RuntimeError("the claim's gas would cost more than 10 % of the amount"))
    claimer = AutoClaimer(claims, lambda: Decimal(1))
    caplog.set_level("INFO", logger="sparecycles.agent.wallet.autoclaim")
    assert asyncio.run(claimer.round()) is None
    assert asyncio.run(claimer.round()) is None
    assert claims.claims == 2
    assert "gas would cost more than 10 %" in caplog.text
