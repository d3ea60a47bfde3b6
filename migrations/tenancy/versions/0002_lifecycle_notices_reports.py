"""Tenancy: contract and policy fields, group companies, termination and purge,
deletion certificates, notices, webhooks, security reports.

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
S = "tenancy"


def _ts(name: str, nullable: bool = True, now: bool = False) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=nullable, server_default=NOW if now else None
    )


def _tenant_fk(primary_key: bool = False) -> sa.Column:
    return sa.Column(
        "tenant_id",
        UUID,
        sa.ForeignKey("tenancy.tenants.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.drop_constraint("status_known", "tenants", schema=S)
    op.create_check_constraint(
        "status_known",
        "tenants",
        "status IN ('provisioning', 'active', 'terminated', 'purged')",
        schema=S,
    )
    for column in (
        sa.Column("seats", sa.Integer),
        sa.Column("fiscal_year_start_month", sa.Integer, nullable=False, server_default="4"),
        sa.Column("min_group_size", sa.Integer, nullable=False, server_default="5"),
        sa.Column("mfa_required", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("data_region", sa.Text, nullable=False, server_default="jp"),
        sa.Column("retention_days", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_admin_username", sa.Text),
        # The last provisioning or purge step completed (resumable jobs).
        sa.Column("step", sa.Text),
        _ts("contract_end"),
        _ts("terminated_at"),
        _ts("purge_due_at"),
        _ts("purged_at"),
        _ts("updated_at", nullable=False, now=True),
    ):
        op.add_column("tenants", column, schema=S)
    op.create_check_constraint("region_jp", "tenants", "data_region = 'jp'", schema=S)
    op.create_check_constraint(
        "fiscal_month", "tenants", "fiscal_year_start_month BETWEEN 1 AND 12", schema=S
    )
    op.create_check_constraint("min_group", "tenants", "min_group_size >= 3", schema=S)
    op.create_check_constraint("retention", "tenants", "retention_days BETWEEN 0 AND 30", schema=S)
    op.create_table(
        "companies",
        _tenant_fk(primary_key=True),
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        _ts("created_at", nullable=False, now=True),
        schema=S,
    )
    # Ed25519 keys that sign deletion certificates; private halves sealed under the platform DEK.
    op.create_table(
        "certificate_keys",
        sa.Column("kid", sa.Text, primary_key=True),
        sa.Column("private_key_enc", sa.LargeBinary, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        _ts("created_at", nullable=False, now=True),
        schema=S,
    )
    # Kept after the purge: proof of what was deleted, holding counts and hashes, no content.
    op.create_table(
        "deletion_certificates",
        sa.Column("tenant_id", UUID, primary_key=True),
        sa.Column("certificate", postgresql.JSONB, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("kid", sa.Text, nullable=False),
        _ts("created_at", nullable=False, now=True),
        schema=S,
    )
    op.create_table(
        "notices",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("title_ja", sa.Text, nullable=False),
        sa.Column("title_en", sa.Text, nullable=False),
        sa.Column("body_ja", sa.Text, nullable=False),
        sa.Column("body_en", sa.Text, nullable=False),
        _ts("starts_at", nullable=False),
        _ts("ends_at"),
        # NULL: every tenant; else the listed tenants only.
        sa.Column("tenant_ids", postgresql.ARRAY(UUID)),
        sa.Column("created_by", sa.Text, nullable=False),
        _ts("created_at", nullable=False, now=True),
        sa.CheckConstraint("kind IN ('change', 'maintenance', 'incident')", name="kind_known"),
        schema=S,
    )
    op.create_table(
        "webhooks",
        _tenant_fk(primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret_enc", sa.LargeBinary, nullable=False),
        _ts("created_at", nullable=False, now=True),
        schema=S,
    )
    op.create_table(
        "security_reports",
        sa.Column("id", UUID, primary_key=True),
        _tenant_fk(),
        sa.Column("reporter_id", UUID, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        _ts("occurred_at"),
        sa.Column("status", sa.Text, nullable=False, server_default="received"),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
        sa.CheckConstraint(
            "status IN ('received', 'investigating', 'resolved')", name="status_known"
        ),
        schema=S,
    )
    op.create_table(
        "security_report_notes",
        sa.Column("id", UUID, primary_key=True),
        sa.Column(
            "report_id",
            UUID,
            sa.ForeignKey("tenancy.security_reports.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("author_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        _ts("created_at", nullable=False, now=True),
        schema=S,
    )


def downgrade() -> None:
    for table in (
        "security_report_notes",
        "security_reports",
        "webhooks",
        "notices",
        "deletion_certificates",
        "certificate_keys",
        "companies",
    ):
        op.drop_table(table, schema=S)
    for name in ("retention", "min_group", "fiscal_month", "region_jp"):
        op.drop_constraint(name, "tenants", schema=S)
    for column in (
        "updated_at",
        "purged_at",
        "purge_due_at",
        "terminated_at",
        "contract_end",
        "step",
        "first_admin_username",
        "retention_days",
        "data_region",
        "mfa_required",
        "min_group_size",
        "fiscal_year_start_month",
        "seats",
    ):
        op.drop_column("tenants", column, schema=S)
    op.drop_constraint("status_known", "tenants", schema=S)
    op.create_check_constraint(
        "status_known",
        "tenants",
        "status IN ('provisioning', 'active', 'terminating', 'purged')",
        schema=S,
    )
