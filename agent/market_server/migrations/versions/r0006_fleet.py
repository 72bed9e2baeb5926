"""studio fleets: groups and their policies, enrolment codes, machines' group and the operator's requests
(drain, pause until), studio jobs (a group and a priority), and per-project quotas (jobs carry a project)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sparecycles.agent.market_server.db as tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_PROVIDER_COLUMNS = ("group_name", "drain", "paused_until", "agent_version", "fleet_report_json", "reported_at")


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("policy_json", sa.Text(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("outside_jobs", sa.Boolean(), nullable=False),
        sa.Column("created_at", tables.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "enrol_codes",
        sa.Column("code_sha256", sa.String(length=64), nullable=False),
        sa.Column("group_name", sa.String(length=63), nullable=False),
        sa.Column("expires_at", tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_at", tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["group_name"], ["groups.name"]),
        sa.PrimaryKeyConstraint("code_sha256"),
    )
    op.create_index("ix_enrol_codes_group_name", "enrol_codes", ["group_name"])
    # Plain ADD COLUMNs (no batch copy: the leases' and bids' foreign keys refuse dropping these tables).
    op.add_column("providers", sa.Column("group_name", sa.String(length=63), nullable=True))
    op.add_column("providers", sa.Column("drain", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("providers", sa.Column("paused_until", tables.UtcDateTime(timezone=True), nullable=True))
    op.add_column("providers", sa.Column("agent_version", sa.String(length=40), nullable=True))
    op.add_column("providers", sa.Column("fleet_report_json", sa.Text(), nullable=True))
    op.add_column("providers", sa.Column("reported_at", tables.UtcDateTime(timezone=True), nullable=True))
    op.create_index("ix_providers_group_name", "providers", ["group_name"])
    op.add_column("requesters", sa.Column("group_name", sa.String(length=63), nullable=True))
    op.add_column("jobs", sa.Column("group_name", sa.String(length=63), nullable=True))
    op.add_column("jobs", sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("jobs", sa.Column("project", sa.String(length=63), nullable=True))
    op.create_table(
        "project_quotas",
        sa.Column("requester_id", sa.String(length=40), nullable=False),
        sa.Column("project", sa.String(length=63), nullable=False),
        sa.Column("max_base_units", tables.BaseUnitsType(length=80), nullable=False),
        sa.ForeignKeyConstraint(["requester_id"], ["requesters.id"]),
        sa.PrimaryKeyConstraint("requester_id", "project"),
    )


def downgrade() -> None:
    op.drop_table("project_quotas")
    op.drop_column("jobs", "project")
    op.drop_column("jobs", "priority")
    op.drop_column("jobs", "group_name")
    op.drop_column("requesters", "group_name")
    op.drop_index("ix_providers_group_name", table_name="providers")
    for column in _PROVIDER_COLUMNS:
        op.drop_column("providers", column)
    op.drop_index("ix_enrol_codes_group_name", table_name="enrol_codes")
    op.drop_table("enrol_codes")
    op.drop_table("groups")
