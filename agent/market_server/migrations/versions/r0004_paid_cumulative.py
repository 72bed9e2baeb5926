"""each paid lease records its payout address's cumulative earnings right after it was paid, so a provider
knows which voucher covers it

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

import sparecycles.agent.market_server.db as tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _cover_paid_leases() -> None:
    """Leases paid before this revision get their payout address's current total: the latest voucher covers
    them all, and it is the only one the marketplace still knows."""
    op.execute(
        "UPDATE leases SET paid_cumulative = "
        "(SELECT payouts.cumulative FROM payouts WHERE payouts.payout_address = leases.payout_address) "
        "WHERE amount IS NOT NULL"
    )


def upgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("paid_cumulative", tables.BaseUnitsType(length=80), nullable=True))
    _cover_paid_leases()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 35):
        # In place: a batch copy of the table would drop the old one, which the foreign keys of uploaded
        # outputs refuse while any lease has outputs.
        op.execute("ALTER TABLE leases DROP COLUMN paid_cumulative")
        return
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("paid_cumulative")
