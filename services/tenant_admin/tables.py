"""Tenant-admin's control-schema tables (schema ``tenancy``), as migrated in migrations/tenancy."""

from sqlalchemy import Column, DateTime, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData(schema="tenancy")

tenants = Table(
    "tenants",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("slug", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("kek_ref", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
