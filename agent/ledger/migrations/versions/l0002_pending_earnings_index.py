"""pending earnings are looked up by payout address whenever a voucher arrives

Revision ID: l0002
Revises: l0001
Create Date: 2026-11-26 01:40:00
"""

from __future__ import annotations

from alembic import op

revision = "l0002"
down_revision = "l0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_earnings_pending", "earnings", ["payout_address", "confirmed_ms"])


def downgrade() -> None:
    op.drop_index("ix_earnings_pending", table_name="earnings")
