"""jobs by requester and state: a submission counts the requester's queued jobs, which read every job the
requester ever submitted through the index on requester_id alone

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_requester_state", "jobs", ["requester_id", "state"])
    op.drop_index("ix_jobs_requester_id", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_requester_id", "jobs", ["requester_id"])
    op.drop_index("ix_jobs_requester_state", table_name="jobs")
