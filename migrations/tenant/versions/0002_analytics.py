"""Analytics' tables of one tenant: derived results, handled events, dashboard access rules.

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


def _at(name: str = "created_at") -> sa.Column[object]:
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")
    )


def upgrade() -> None:
    # Every figure computed from one state of the datasets (the fingerprint names that state),
    # as ciphertext like the datasets themselves.
    op.create_table(
        "analytics_results",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False, unique=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("content_enc", sa.LargeBinary, nullable=False),
        _at(),
    )
    # "Dataset changed" messages already acted on: a message delivered twice acts once.
    op.create_table(
        "analytics_events",
        sa.Column("message_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        _at(),
    )
    op.create_table(
        "dashboard_access",
        sa.Column("dashboard", sa.Text, primary_key=True),
        sa.Column("roles", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("users", postgresql.ARRAY(postgresql.UUID(as_uuid=True)), nullable=False),
        sa.Column("updated_by", postgresql.UUID(as_uuid=True), nullable=False),
        _at("updated_at"),
    )


def downgrade() -> None:
    op.drop_table("dashboard_access")
    op.drop_table("analytics_events")
    op.drop_table("analytics_results")
