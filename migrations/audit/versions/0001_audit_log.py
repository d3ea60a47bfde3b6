"""Audit log: append-only streams of events with Merkle tree heads and signed checkpoints.

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

S = "audit"
NOW = sa.text("now()")


def upgrade() -> None:
    # One row per stream: its size and the compact range (frontier) of its Merkle tree, so
    # an append costs O(log n) hashes and never re-reads the log.
    op.create_table(
        "streams",
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", postgresql.ARRAY(sa.LargeBinary), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        schema=S,
    )
    op.create_table(
        "events",
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text),
        # The canonical JSON of the recorded event: the exact bytes the leaf hash covers.
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        schema=S,
    )
    op.create_index("events_recorded", "events", ["stream", "recorded_at"], schema=S)
    op.create_table(
        "checkpoints",
        sa.Column("stream", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, primary_key=True),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kid", sa.Text, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        schema=S,
    )
    op.create_table(
        "keys",
        sa.Column("kid", sa.Text, primary_key=True),
        sa.Column("private_key_enc", sa.LargeBinary, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        schema=S,
    )
    # Append-only, enforced by the database for every role but the retention role.
    op.execute(
        """
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jinji_audit_retention') THEN
                CREATE ROLE jinji_audit_retention NOLOGIN;
            END IF;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND current_user = 'jinji_audit_retention' THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'audit log is append-only: % on %.% refused',
                TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    for table in ("events", "checkpoints"):
        op.execute(
            f"CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit.{table} "
            "FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER no_truncate BEFORE TRUNCATE ON audit.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()"
        )
    op.execute("GRANT USAGE ON SCHEMA audit TO jinji_audit_retention")
    op.execute("GRANT SELECT, DELETE ON audit.events, audit.checkpoints TO jinji_audit_retention")


def downgrade() -> None:
    for table in ("events", "checkpoints"):
        op.execute(f"DROP TRIGGER IF EXISTS append_only ON audit.{table}")
        op.execute(f"DROP TRIGGER IF EXISTS no_truncate ON audit.{table}")
    op.execute("DROP FUNCTION IF EXISTS audit.refuse_change()")
    for table in ("keys", "checkpoints", "events", "streams"):
        op.drop_table(table, schema=S)
