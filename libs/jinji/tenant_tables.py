"""Tables of every tenant schema (migrations/tenant), declared in the placeholder schema
``tenant`` and translated to ``t_<id>`` inside :meth:`jinji.db.Database.tenant_transaction`."""

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, LargeBinary, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from jinji.sqlschema import timestamp
from jinji.tenancy import TENANT_SCHEMA

metadata = MetaData(schema=TENANT_SCHEMA)

uploads = Table(
    "uploads",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("uploaded_by", UUID(as_uuid=True), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("error_count", Integer, nullable=False),
    timestamp("created_at", nullable=False, now=True),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("upload_id", UUID(as_uuid=True), ForeignKey(uploads.c.id)),
    Column("kind", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("content_enc", LargeBinary, nullable=False),
    timestamp("created_at", nullable=False, now=True),
)

analytics_results = Table(
    "analytics_results",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("fingerprint", Text, nullable=False, unique=True),
    Column("rows", Integer, nullable=False),
    Column("content_enc", LargeBinary, nullable=False),
    timestamp("created_at", nullable=False, now=True),
)

analytics_events = Table(
    "analytics_events",
    metadata,
    Column("message_id", UUID(as_uuid=True), primary_key=True),
    Column("topic", Text, nullable=False),
    timestamp("created_at", nullable=False, now=True),
)

dashboard_access = Table(
    "dashboard_access",
    metadata,
    Column("dashboard", Text, primary_key=True),
    Column("roles", ARRAY(Text), nullable=False),
    Column("users", ARRAY(UUID(as_uuid=True)), nullable=False),
    Column("updated_by", UUID(as_uuid=True), nullable=False),
    timestamp("updated_at", nullable=False, now=True),
)
