"""each payout names the vault that paid it, so payouts from an earlier vault do not count towards the current one's

Rows recorded before this migration get NULL: the ledger does not know the settings (it is opened before
them, and a vault setting may have changed since), and a mined claim's vault was kept only in its pending
row, which was deleted when the payout was written. The claims service fills them in at its next look at
the vault on their chain: the address that emitted the transaction's Claimed event (the vault they were
claimed from), or, where the node no longer has the receipt, the configured vault (what the versions
that recorded them counted them against).

Revision ID: l0004
Revises: l0003
Create Date: 2026-12-09 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "l0004"
down_revision = "l0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vault", sa.String(length=42), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_column("vault")
