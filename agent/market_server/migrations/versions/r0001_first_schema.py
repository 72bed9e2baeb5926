"""the marketplace's first schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 19:39:36.302984
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sparecycles.agent.market_server.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("payout_address", sa.String(length=42), nullable=False),
        sa.Column("cumulative", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=False),
        sa.Column("voucher_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("payout_address"),
    )
    op.create_table(
        "providers",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("cpu_cores", sa.Integer(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("floor_per_gpu_hour", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=False),
        sa.Column("floor_per_core_hour", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=False),
        sa.Column("payout_address", sa.String(length=42), nullable=False),
        sa.Column("offered_cores", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("registered_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    op.create_table(
        "requesters",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("api_key_sha256", sa.String(length=64), nullable=False),
        sa.Column("credit", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=False),
        sa.Column("held", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=False),
        sa.Column("created_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_sha256"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("expires_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_sha256"),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_address"), ["address"], unique=False)

    op.create_table(
        "sign_in_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("expires_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("requester_id", sa.String(length=40), nullable=False),
        sa.Column("spec_json", sa.Text(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("max_price", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=False),
        sa.Column("bidding_window_s", sa.Float(), nullable=False),
        sa.Column("replicas", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("held", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=False),
        sa.Column("charged", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=False),
        sa.Column("created_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["requesters.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_requester_id"), ["requester_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_state"), ["state"], unique=False)

    op.create_table(
        "provider_gpus",
        sa.Column("provider_address", sa.String(length=42), nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("vram_bytes", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("offered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_address"],
            ["providers.address"],
        ),
        sa.PrimaryKeyConstraint("provider_address", "uuid"),
    )
    op.create_table(
        "bids",
        sa.Column("job_id", sa.String(length=63), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("provider_address", sa.String(length=42), nullable=False),
        sa.Column("price", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("placed_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider_address"],
            ["providers.address"],
        ),
        sa.PrimaryKeyConstraint("job_id", "round", "provider_address"),
    )
    op.create_table(
        "leases",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("job_id", sa.String(length=63), nullable=False),
        sa.Column("provider_address", sa.String(length=42), nullable=False),
        sa.Column("payout_address", sa.String(length=42), nullable=False),
        sa.Column("gpu_uuids_json", sa.Text(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("price", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("started_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sparecycles.agent.market_server.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("run_time_ms", sa.BigInteger(), nullable=True),
        sa.Column("amount", sparecycles.agent.market_server.db.BaseUnitsType(length=80), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("report_json", sa.Text(), nullable=True),
        sa.Column("report_signature", sa.String(length=132), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["provider_address"],
            ["providers.address"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leases_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_leases_provider_address"), ["provider_address"], unique=False)
        batch_op.create_index(batch_op.f("ix_leases_state"), ["state"], unique=False)

    op.create_table(
        "uploaded_outputs",
        sa.Column("lease_id", sa.String(length=63), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["lease_id"],
            ["leases.id"],
        ),
        sa.PrimaryKeyConstraint("lease_id", "path"),
    )


def downgrade() -> None:
    op.drop_table("uploaded_outputs")
    with op.batch_alter_table("leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leases_state"))
        batch_op.drop_index(batch_op.f("ix_leases_provider_address"))
        batch_op.drop_index(batch_op.f("ix_leases_job_id"))

    op.drop_table("leases")
    op.drop_table("bids")
    op.drop_table("provider_gpus")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_state"))
        batch_op.drop_index(batch_op.f("ix_jobs_requester_id"))

    op.drop_table("jobs")
    op.drop_table("sign_in_nonces")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_address"))

    op.drop_table("sessions")
    op.drop_table("requesters")
    op.drop_table("providers")
    op.drop_table("payouts")
