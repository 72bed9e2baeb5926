"""The wallet's tests run on a real anvil: its fixtures and helpers live in tests/chain_support.py, shared
with the marketplace's vault tests."""

from __future__ import annotations

from tests.chain_support import anvil, fresh_address

__all__ = ["anvil", "fresh_address"]
