"""Signing keys: a ``next`` key is published before it signs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("status_known", "signing_keys", schema="identity")
    op.create_check_constraint(
        "status_known",
        "signing_keys",
        "status IN ('next', 'current', 'previous', 'retired')",
        schema="identity",
    )


def downgrade() -> None:
    op.execute("DELETE FROM identity.signing_keys WHERE status = 'next'")
    op.drop_constraint("status_known", "signing_keys", schema="identity")
    op.create_check_constraint(
        "status_known",
        "signing_keys",
        "status IN ('current', 'previous', 'retired')",
        schema="identity",
    )
