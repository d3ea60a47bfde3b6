"""Tenant-admin's control-schema tables (schema ``tenancy``), as migrated in migrations/tenancy."""

from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from jinji.sqlschema import timestamp

metadata = MetaData(schema="tenancy")


def _tenant_fk(primary_key: bool = False) -> "Column[Any]":
    return Column(
        "tenant_id",
        UUID(as_uuid=True),
        ForeignKey("tenancy.tenants.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


tenants = Table(
    "tenants",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("slug", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("kek_ref", Text),
    timestamp("created_at", nullable=False, now=True),
    Column("seats", Integer),
    Column("fiscal_year_start_month", Integer, nullable=False, server_default="4"),
    Column("min_group_size", Integer, nullable=False, server_default="5"),
    Column("mfa_required", Boolean, nullable=False, server_default="true"),
    Column("data_region", Text, nullable=False, server_default="jp"),
    Column("retention_days", Integer, nullable=False, server_default="0"),
    Column("first_admin_username", Text),
    Column("step", Text),
    timestamp("contract_end"),
    timestamp("terminated_at"),
    timestamp("purge_due_at"),
    timestamp("purged_at"),
    timestamp("updated_at", nullable=False, now=True),
    CheckConstraint("status IN ('provisioning', 'active', 'terminated', 'purged')"),
)

companies = Table(
    "companies",
    metadata,
    _tenant_fk(primary_key=True),
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    timestamp("created_at", nullable=False, now=True),
)

certificate_keys = Table(
    "certificate_keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("private_key_enc", LargeBinary, nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    timestamp("created_at", nullable=False, now=True),
)

deletion_certificates = Table(
    "deletion_certificates",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("certificate", JSONB, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("kid", Text, nullable=False),
    timestamp("created_at", nullable=False, now=True),
)

notices = Table(
    "notices",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("title_ja", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("body_ja", Text, nullable=False),
    Column("body_en", Text, nullable=False),
    timestamp("starts_at", nullable=False),
    timestamp("ends_at"),
    Column("tenant_ids", ARRAY(UUID(as_uuid=True))),
    Column("created_by", Text, nullable=False),
    timestamp("created_at", nullable=False, now=True),
)

webhooks = Table(
    "webhooks",
    metadata,
    _tenant_fk(primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret_enc", LargeBinary, nullable=False),
    timestamp("created_at", nullable=False, now=True),
)

security_reports = Table(
    "security_reports",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    _tenant_fk(),
    Column("reporter_id", UUID(as_uuid=True), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    timestamp("occurred_at"),
    Column("status", Text, nullable=False, server_default="received"),
    timestamp("created_at", nullable=False, now=True),
    timestamp("updated_at", nullable=False, now=True),
)

security_report_notes = Table(
    "security_report_notes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "report_id",
        UUID(as_uuid=True),
        ForeignKey("tenancy.security_reports.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("author_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("note", Text, nullable=False),
    timestamp("created_at", nullable=False, now=True),
)
