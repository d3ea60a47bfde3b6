"""Audit retention: where each stream was cut, with the tree state at the cut.

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


def upgrade() -> None:
    # Events before `size` were removed by retention; `frontier` is the compact range of the
    # tree at that size, so what remains still verifies against the signed checkpoints.
    op.create_table(
        "cuts",
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", postgresql.ARRAY(sa.LargeBinary), nullable=False),
        sa.Column("cut_at", sa.DateTime(timezone=True), nullable=False),
        schema="audit",
    )


def downgrade() -> None:
    op.drop_table("cuts", schema="audit")
