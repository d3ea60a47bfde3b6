"""The database side of backups: engines for one-off jobs, the catalog facts they need, and
the tenant roles a restore needs (roles belong to the cluster, not to a backup)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import func, literal, select, table, text, union_all
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from jinji import tenancy
from jinji.db import async_url
from jinji.migrate import CONTROL_COMPONENTS
from services.audit_log.retention import RETENTION_ROLE


def engine(url: str, application_name: str) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        poolclass=NullPool,
        connect_args={
            "server_settings": {
                "application_name": application_name,
                "timezone": "UTC",
                # A backup holds its snapshot open for as long as the dumps take.
                "statement_timeout": "0",
                "idle_in_transaction_session_timeout": "0",
            }
        },
    )


CONTROL_SCHEMAS = tuple(schema for _, schema in CONTROL_COMPONENTS)


async def jinji_schemas(conn: AsyncConnection) -> list[str]:
    """Control schemas (in dependency order) that exist, then tenant schemas."""
    rows = await conn.execute(
        text("SELECT nspname FROM pg_namespace WHERE nspname = ANY(:s)"),
        {"s": list(CONTROL_SCHEMAS)},
    )
    present = {r[0] for r in rows}
    control = [s for s in CONTROL_SCHEMAS if s in present]
    return control + await tenancy.list_tenant_schemas(conn)


async def row_counts(conn: AsyncConnection, schemas: list[str]) -> dict[str, dict[str, int]]:
    """Exact row counts of every table of ``schemas``, as this transaction sees them."""
    tables = [
        (str(s), str(t))
        for s, t in await conn.execute(
            text(
                "SELECT n.nspname, c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
                "AND n.nspname = ANY(:s) ORDER BY 1, 2"
            ),
            {"s": schemas},
        )
    ]
    counts: dict[str, dict[str, int]] = {s: {} for s in schemas}
    for start in range(0, len(tables), 200):
        # One round trip per 200 tables; SQLAlchemy quotes every name.
        union = union_all(
            *(
                select(
                    literal(s).label("s"), literal(t).label("t"), func.count().label("n")
                ).select_from(table(t, schema=s))
                for s, t in tables[start : start + 200]
            )
        )
        for s, t, n in await conn.execute(union):
            counts[s][t] = int(n)
    return counts


async def ensure_roles(conn: AsyncConnection, tenant_ids: Iterable[uuid.UUID]) -> list[str]:
    """Create the tenant roles that do not exist (as provisioning does); return those created."""
    created: list[str] = []
    for tenant_id in tenant_ids:
        role = tenancy.role_name(tenant_id)
        exists = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if not exists:
            await conn.execute(text(f"CREATE ROLE {tenancy.quote_ident(role)} NOLOGIN NOINHERIT"))
            created.append(role)
        # The restoring role must be a member to give the tenant's objects to it.
        await conn.execute(text(f"GRANT {tenancy.quote_ident(role)} TO CURRENT_USER"))
    return created


# Cluster-wide roles the control migrations create and grant to: a schema's dump carries the
# grants but not the roles, and a new cluster (disaster recovery) does not have them.
CLUSTER_ROLES = (RETENTION_ROLE,)


async def ensure_cluster_roles(conn: AsyncConnection) -> list[str]:
    created: list[str] = []
    for role in CLUSTER_ROLES:
        exists = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if not exists:
            await conn.execute(text(f"CREATE ROLE {tenancy.quote_ident(role)} NOLOGIN"))
            created.append(role)
    return created


async def drop_roles(conn: AsyncConnection, roles: Iterable[str]) -> None:
    for role in roles:
        await conn.execute(text(f"DROP ROLE IF EXISTS {tenancy.quote_ident(role)}"))


async def server_version_num(conn: AsyncConnection) -> int:
    return int(await conn.scalar(text("SHOW server_version_num")) or 0)
