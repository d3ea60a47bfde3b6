"""Backup: which backups exist and which tenants each holds, for the asset inventory (8.1.1)
and the deletion certificate (which backups still hold a purged tenant's ciphertext).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

S = "backup"


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("store", sa.Text, nullable=False),
        sa.Column("snapshot_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        # Set by prune when the backup is deleted from its store.
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_table(
        "backup_tenants",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "backup_id",
            sa.Text,
            sa.ForeignKey(f"{S}.backups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("backup_tenants", schema=S)
    op.drop_table("backups", schema=S)
