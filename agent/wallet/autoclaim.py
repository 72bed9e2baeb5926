"""Auto-claim: claim from the payout vault by itself once what is claimable reaches a threshold the user set
(``[chain] auto_claim_above``, in whole payout tokens), so earnings arrive without anyone clicking Claim.

It goes through the same path as the Claim button (:class:`~sparecycles.agent.wallet.control.WalletControl`):
the gas guard applies, a watch-only payout wallet asks the marketplace to relay the claim, and a claim
already on its way is waited for. A round that cannot claim says why in the log and tries again next round.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Protocol

from sparecycles.control.wallet import ClaimableView, ClaimResult

log = logging.getLogger(__name__)

AUTO_CLAIM_EVERY_S = 600.0  # a look costs a few RPC reads; earnings grow by the job, not by the second


class Claims(Protocol):
    def claimable(self) -> Awaitable[ClaimableView]: ...
    def claim(self) -> Awaitable[ClaimResult]: ...


def worth_claiming(view: ClaimableView, threshold_tokens: Decimal | None) -> bool:
    """Whether ``view`` calls for an automatic claim under ``threshold_tokens`` (None: auto-claim is off)."""
    if threshold_tokens is None or view.pending_tx is not None or view.problem is not None or view.claimable <= 0:
        return False
    return Decimal(view.claimable) / Decimal(10) ** view.decimals >= threshold_tokens


class AutoClaimer:
    def __init__(self, claims: Claims, threshold_tokens: Callable[[], Decimal | None]) -> None:
        self._claims = claims
        self._threshold = threshold_tokens

    async def round(self) -> ClaimResult | None:
        """One look: the claim made (or the relay asked for), or None. Never raises for a claim refused."""
        threshold = self._threshold()
        if threshold is None:
            return None
        try:
            view = await self._claims.claimable()
            if not worth_claiming(view, threshold):
                return None
            result = await self._claims.claim()
        except Exception as exc:  # a refused claim (gas, a locked keyring, an RPC down): next round tries again
            log.info("Auto-claim did not claim this round: %s", exc)
            return None
        log.info("Auto-claim: %s of %d base units to %s", result.state, result.amount, result.payout_address)
        return result
