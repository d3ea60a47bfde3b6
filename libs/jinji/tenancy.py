"""Tenant schema and role naming, and the SQL that provisions and removes them.

Names are derived from the tenant's UUID only (``t_<32 hex>``), so no customer-chosen text
ever reaches DDL. DDL cannot take bind parameters; identifiers are still quoted by the
dialect's preparer rather than by string formatting, as a second guard.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

# Tenant tables are declared with this schema and translated per request
# (SQLAlchemy schema_translate_map), keeping every tenant query schema-qualified.
TENANT_SCHEMA = "tenant"
PLATFORM_TENANT_SLUG = "platform"

_dialect_cls: Any = postgresql.dialect
_preparer = _dialect_cls().identifier_preparer


def tenant_uuid(tenant_id: uuid.UUID | str) -> uuid.UUID:
    return tenant_id if isinstance(tenant_id, uuid.UUID) else uuid.UUID(str(tenant_id))


def schema_name(tenant_id: uuid.UUID | str) -> str:
    return f"t_{tenant_uuid(tenant_id).hex}"


def role_name(tenant_id: uuid.UUID | str) -> str:
    # One role per tenant, named like its schema: the role owns exactly that schema.
    return schema_name(tenant_id)


def quote_ident(name: str) -> str:
    return str(_preparer.quote_identifier(name))


async def provision(
    conn: AsyncConnection, tenant_id: uuid.UUID | str, grant_to: Iterable[str] = ()
) -> None:
    """Create the tenant's role and schema; safe to run again after a partial failure."""
    role = quote_ident(role_name(tenant_id))
    schema = quote_ident(schema_name(tenant_id))
    exists = await conn.scalar(
        text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role_name(tenant_id)}
    )
    if not exists:
        # NOINHERIT: the role has its own schema's rights and nothing else.
        await conn.execute(text(f"CREATE ROLE {role} NOLOGIN NOINHERIT"))
    # The connecting (service) role must be a member to SET ROLE to the tenant role.
    await conn.execute(text(f"GRANT {role} TO CURRENT_USER"))
    for grantee in grant_to:
        await conn.execute(text(f"GRANT {role} TO {quote_ident(grantee)}"))
    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}"))
    await conn.execute(text(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"))


async def drop(conn: AsyncConnection, tenant_id: uuid.UUID | str) -> None:
    """Remove the tenant's schema (all its data) and role; safe to run again."""
    role = role_name(tenant_id)
    await conn.execute(text(f"DROP SCHEMA IF EXISTS {quote_ident(schema_name(tenant_id))} CASCADE"))
    if await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}):
        await conn.execute(text(f"DROP OWNED BY {quote_ident(role)}"))
        await conn.execute(text(f"DROP ROLE {quote_ident(role)}"))


async def list_tenant_schemas(conn: AsyncConnection) -> list[str]:
    rows = await conn.execute(
        text("SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[0-9a-f]{32}$' ORDER BY 1")
    )
    return [r[0] for r in rows]


async def platform_tenant_id(conn: AsyncConnection | AsyncSession) -> uuid.UUID:
    """The reserved platform tenant (its DEK seals platform keys); created by the bootstrap."""
    found = await conn.scalar(
        text("SELECT id FROM tenancy.tenants WHERE slug = :slug"), {"slug": PLATFORM_TENANT_SLUG}
    )
    if found is None:
        raise RuntimeError("platform tenant missing: run the bootstrap (jinji up)")
    return uuid.UUID(str(found))
