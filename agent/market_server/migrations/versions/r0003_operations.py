"""operating a marketplace: lease seats, bans, key revocation, quotas, output retention, the audit log
and operator tokens

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sparecycles.agent.market_server.db as tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_LIVE = "state IN ('active', 'reported', 'accepted')"
_APPEND_ONLY = "the audit log is append-only"


def _number_live_seats() -> None:
    """Existing jobs with replicas hold several live leases: give each its own seat before the unique index."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(f"SELECT id, job_id FROM leases WHERE {_LIVE} ORDER BY job_id, started_at, id")  # noqa: S608
    ).all()
    seats: dict[str, int] = {}
    for lease_id, job_id in rows:
        seat = seats.get(job_id, 0)
        seats[job_id] = seat + 1
        if seat:
            connection.execute(sa.text("UPDATE leases SET seat = :seat WHERE id = :id"), {"seat": seat, "id": lease_id})


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
            )
        return
    op.execute(
        "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )


def upgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("seat", sa.Integer(), nullable=False, server_default="0"))
    _number_live_seats()
    op.create_index(
        "uq_leases_live_seat",
        "leases",
        ["job_id", "seat"],
        unique=True,
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
    )
    op.create_index("ix_jobs_state_window", "jobs", ["state", "window_ends_at"])
    with op.batch_alter_table("providers") as batch:
        batch.add_column(sa.Column("banned_at", tables.UtcDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ban_reason", sa.String(length=500), nullable=True))
    with op.batch_alter_table("requesters") as batch:
        batch.add_column(sa.Column("key_revoked_at", tables.UtcDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("storage_quota_bytes", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("uploaded_outputs") as batch:
        batch.add_column(sa.Column("uploaded_at", tables.UtcDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleted_at", tables.UtcDateTime(timezone=True), nullable=True))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("amount", tables.BaseUnitsType(length=80), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_action", "audit_events", ["action"])
    _append_only_triggers()
    op.create_table(
        "operator_tokens",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", tables.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_sha256"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("operator_tokens")
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table("audit_events")
    with op.batch_alter_table("uploaded_outputs") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("uploaded_at")
    with op.batch_alter_table("requesters") as batch:
        batch.drop_column("storage_quota_bytes")
        batch.drop_column("key_revoked_at")
    with op.batch_alter_table("providers") as batch:
        batch.drop_column("ban_reason")
        batch.drop_column("banned_at")
    op.drop_index("ix_jobs_state_window", table_name="jobs")
    op.drop_index("uq_leases_live_seat", table_name="leases")
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("seat")
