"""Identity: tenants' policy, sessions and refresh tokens, login challenges, TOTP and
recovery codes, throttling, service clients, SCIM tokens.

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

UUID = postgresql.UUID(as_uuid=True)
NOW = sa.text("now()")


def _ts(name: str, nullable: bool = True, now: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=nullable, server_default=NOW if now else None
    )


def _user_fk() -> sa.Column:
    return sa.Column(
        "user_id", UUID, sa.ForeignKey("identity.users.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    # Identity's own copy of what it enforces per tenant, set by tenant-admin (internal API).
    op.create_table(
        "tenants",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("slug", sa.Text, nullable=False, unique=True),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("seats", sa.Integer),
        sa.Column("mfa_required", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("session_idle_s", sa.Integer, nullable=False, server_default="1800"),
        sa.Column("session_absolute_s", sa.Integer, nullable=False, server_default="43200"),
        _ts("updated_at", nullable=False, now=True),
        sa.CheckConstraint("status IN ('active', 'suspended')", name="status_known"),
        schema="identity",
    )
    op.add_column("users", _ts("one_time_password_expires_at"), schema="identity")
    op.add_column("users", sa.Column("totp_secret_enc", sa.LargeBinary), schema="identity")
    op.add_column("users", _ts("totp_enabled_at"), schema="identity")
    # Replay guard: the last accepted TOTP time step.
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger), schema="identity")
    op.add_column("users", _ts("updated_at", nullable=False, now=True), schema="identity")
    op.create_check_constraint(
        "status_known", "users", "status IN ('active', 'disabled')", schema="identity"
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", UUID, primary_key=True),
        _user_fk(),
        sa.Column("code_hash", sa.Text, nullable=False),
        _ts("used_at"),
        schema="identity",
    )
    op.create_table(
        "sessions",
        sa.Column("id", UUID, primary_key=True),
        _user_fk(),
        sa.Column("tenant_id", UUID, nullable=False),
        sa.Column("amr", postgresql.ARRAY(sa.Text), nullable=False),
        _ts("created_at", nullable=False, now=True),
        _ts("last_used_at", nullable=False, now=True),
        _ts("idle_expires_at", nullable=False),
        _ts("absolute_expires_at", nullable=False),
        _ts("revoked_at"),
        sa.Column("revoke_reason", sa.Text),
        schema="identity",
    )
    op.create_index("sessions_user", "sessions", ["user_id"], schema="identity")
    # Opaque refresh tokens, stored as SHA-256 only; a rotated one presented again is reuse.
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary, primary_key=True),
        sa.Column(
            "session_id",
            UUID,
            sa.ForeignKey("identity.sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _ts("created_at", nullable=False, now=True),
        _ts("rotated_at"),
        schema="identity",
    )
    op.create_table(
        "challenges",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
        _user_fk(),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("amr", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("pending_totp_enc", sa.LargeBinary),
        _ts("created_at", nullable=False, now=True),
        _ts("expires_at", nullable=False),
        _ts("consumed_at"),
        sa.CheckConstraint(
            "kind IN ('password_change', 'mfa', 'mfa_enrollment')", name="kind_known"
        ),
        schema="identity",
    )
    # Failed attempts per account and per source address; in the database so every replica
    # sees the same count.
    op.create_table(
        "throttle",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        _ts("window_started_at", nullable=False),
        _ts("blocked_until"),
        schema="identity",
    )
    op.create_table(
        "service_clients",
        sa.Column("client_id", sa.Text, primary_key=True),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("audiences", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text), nullable=False),
        _ts("created_at", nullable=False, now=True),
        _ts("disabled_at"),
        schema="identity",
    )
    op.create_table(
        "scim_tokens",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("tenant_id", UUID, nullable=False),
        sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("created_by", UUID, nullable=False),
        _ts("created_at", nullable=False, now=True),
        _ts("revoked_at"),
        schema="identity",
    )
    op.add_column("signing_keys", _ts("retire_after"), schema="identity")


def downgrade() -> None:
    op.drop_column("signing_keys", "retire_after", schema="identity")
    for table in (
        "scim_tokens",
        "service_clients",
        "throttle",
        "challenges",
        "refresh_tokens",
        "sessions",
        "recovery_codes",
    ):
        op.drop_table(table, schema="identity")
    op.drop_constraint("status_known", "users", schema="identity")
    for column in (
        "updated_at",
        "totp_last_step",
        "totp_enabled_at",
        "totp_secret_enc",
        "one_time_password_expires_at",
    ):
        op.drop_column("users", column, schema="identity")
    op.drop_table("tenants", schema="identity")
