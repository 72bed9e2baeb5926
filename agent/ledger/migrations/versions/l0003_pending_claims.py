"""claim transactions are kept before they are sent, so a restart neither loses nor repeats one

Revision ID: l0003
Revises: l0002
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "l0003"
down_revision = "l0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_claims",
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("raw_tx", sa.Text(), nullable=False),
        sa.Column("payout_address", sa.String(length=42), nullable=False),
        sa.Column("cumulative_amount", sa.String(length=80), nullable=False),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("vault", sa.String(length=42), nullable=False),
        sa.Column("sent_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tx_hash"),
    )


def downgrade() -> None:
    op.drop_table("pending_claims")
