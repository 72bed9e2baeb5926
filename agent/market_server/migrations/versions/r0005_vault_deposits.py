"""the payout vault: requesters' deposit addresses, the vault's deposits credited (once each) and how far the
chain has been read

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

import sparecycles.agent.market_server.db as tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requesters") as batch:
        batch.add_column(sa.Column("deposit_address", sa.String(length=42), nullable=True))
    op.create_index("uq_requesters_deposit_address", "requesters", ["deposit_address"], unique=True)
    op.create_table(
        "chain_deposits",
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("vault", sa.String(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("from_address", sa.String(length=42), nullable=False),
        sa.Column("amount", tables.BaseUnitsType(length=80), nullable=False),
        sa.Column("requester_id", sa.String(length=40), nullable=True),
        sa.Column("seen_at", tables.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["requester_id"], ["requesters.id"]),
        sa.PrimaryKeyConstraint("tx_hash", "log_index"),
    )
    op.create_index("ix_chain_deposits_from_address", "chain_deposits", ["from_address"])
    op.create_table(
        "chain_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("chain_cursors")
    op.drop_index("ix_chain_deposits_from_address", table_name="chain_deposits")
    op.drop_table("chain_deposits")
    op.drop_index("uq_requesters_deposit_address", table_name="requesters")
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 35):
        # In place: a batch copy would drop the table, which the jobs' foreign keys refuse.
        op.execute("ALTER TABLE requesters DROP COLUMN deposit_address")
        return
    with op.batch_alter_table("requesters") as batch:
        batch.drop_column("deposit_address")
