"""Identity's control-schema tables (schema ``identity``), as migrated in migrations/identity."""

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
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

metadata = MetaData(schema="identity")


tenants = Table(
    "tenants",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("slug", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False),
    Column("seats", Integer),
    Column("mfa_required", Boolean, nullable=False),
    Column("session_idle_s", Integer, nullable=False),
    Column("session_absolute_s", Integer, nullable=False),
    timestamp("updated_at", nullable=False, now=True),
)

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("username", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("roles", ARRAY(Text), nullable=False),
    Column("companies", ARRAY(Text), nullable=False),
    Column("must_change_password", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    timestamp("created_at", nullable=False, now=True),
    timestamp("password_changed_at"),
    timestamp("one_time_password_expires_at"),
    Column("totp_secret_enc", LargeBinary),
    timestamp("totp_enabled_at"),
    Column("totp_last_step", BigInteger),
    timestamp("updated_at", nullable=False, now=True),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey(users.c.id), nullable=False),
    Column("code_hash", Text, nullable=False),
    timestamp("used_at"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey(users.c.id), nullable=False),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("amr", ARRAY(Text), nullable=False),
    timestamp("created_at", nullable=False, now=True),
    timestamp("last_used_at", nullable=False, now=True),
    timestamp("idle_expires_at", nullable=False),
    timestamp("absolute_expires_at", nullable=False),
    timestamp("revoked_at"),
    Column("revoke_reason", Text),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("session_id", UUID(as_uuid=True), ForeignKey(sessions.c.id), nullable=False),
    timestamp("created_at", nullable=False, now=True),
    timestamp("rotated_at"),
)

challenges = Table(
    "challenges",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey(users.c.id), nullable=False),
    Column("kind", Text, nullable=False),
    Column("amr", ARRAY(Text), nullable=False),
    Column("pending_totp_enc", LargeBinary),
    timestamp("created_at", nullable=False, now=True),
    timestamp("expires_at", nullable=False),
    timestamp("consumed_at"),
)

throttle = Table(
    "throttle",
    metadata,
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    timestamp("window_started_at", nullable=False),
    timestamp("blocked_until"),
)

service_clients = Table(
    "service_clients",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("secret_hash", Text, nullable=False),
    Column("audiences", ARRAY(Text), nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    timestamp("created_at", nullable=False, now=True),
    timestamp("disabled_at"),
)

scim_tokens = Table(
    "scim_tokens",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("created_by", UUID(as_uuid=True), nullable=False),
    timestamp("created_at", nullable=False, now=True),
    timestamp("revoked_at"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("alg", Text, nullable=False),
    Column("private_key_enc", LargeBinary, nullable=False),
    Column("public_jwk", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    timestamp("created_at", nullable=False, now=True),
    timestamp("retire_after"),
)
