"""Backup: one row per backup, verify, restore or prune run, read by tenant-admin's metrics.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

S = "backup"


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("operation", sa.Text, nullable=False),
        sa.Column("backup_id", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.Column(
            "details", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.CheckConstraint(
            "operation IN ('backup', 'verify', 'restore', 'prune')", name="operation_known"
        ),
        schema=S,
    )
    # The metrics read the latest run of each operation.
    op.create_index("runs_latest", "runs", ["operation", "finished_at"], schema=S)


def downgrade() -> None:
    op.drop_table("runs", schema=S)
