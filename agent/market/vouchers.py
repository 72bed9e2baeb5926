"""The provider's vouchers: only valid ones count, and only the highest cumulative one is kept.

A voucher is the operator's EIP-712 promise of a payout address's cumulative earnings. One signed by
another key, for another chain or contract, or for someone else's address is worth nothing; one that
is not higher than the voucher already held changes nothing (a replay, or an old one). The kept
voucher is one JSON file in the state folder, replaced atomically.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from pydantic import ValidationError

from sparecycles.fileio import atomic_write_text
from sparecycles.protocol.market import Voucher
from sparecycles.protocol.signing import VoucherTerms, voucher_problem

log = logging.getLogger(__name__)


class VoucherBook:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def best(self) -> Voucher | None:
        try:
            return Voucher.model_validate_json(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as exc:
            log.warning("The kept voucher in %s cannot be read (%s); a valid new one replaces it", self._path, exc)
            return None

    def offer(self, voucher: Voucher, terms: VoucherTerms) -> bool:
        """Keep ``voucher`` if it is valid under ``terms`` and higher than the one held; says whether it was kept."""
        problem = voucher_problem(voucher, terms)
        if problem is not None:
            log.warning("Refused a voucher for %d base units: %s", voucher.cumulative_amount, problem)
            return False
        with self._lock:
            held = self.best()
            held_valid = held is not None and voucher_problem(held, terms) is None
            if held is not None and held_valid and voucher.cumulative_amount <= held.cumulative_amount:
                if voucher.cumulative_amount < held.cumulative_amount:
                    log.warning(
                        "Ignored a voucher for %d base units: one for %d is held already",
                        voucher.cumulative_amount,
                        held.cumulative_amount,
                    )
                return False
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write_text(self._path, voucher.model_dump_json(indent=1) + "\n")
        log.info("Voucher kept: %d base units earned in all", voucher.cumulative_amount)
        return True
