"""Audit-log tables (schema ``audit``), as migrated in migrations/audit."""

from sqlalchemy import ARRAY, BigInteger, Column, DateTime, LargeBinary, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData(schema="audit")

streams = Table(
    "streams",
    metadata,
    Column("stream", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("frontier", ARRAY(LargeBinary), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

events = Table(
    "events",
    metadata,
    Column("stream", Text, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("action", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("actor_id", Text),
    Column("body", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("stream", Text, primary_key=True),
    Column("size", BigInteger, primary_key=True),
    Column("root_hash", LargeBinary, nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Column("kid", Text, nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

keys = Table(
    "keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("private_key_enc", LargeBinary, nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

cuts = Table(
    "cuts",
    metadata,
    Column("stream", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("frontier", ARRAY(LargeBinary), nullable=False),
    Column("cut_at", DateTime(timezone=True), nullable=False),
)
