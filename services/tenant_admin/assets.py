"""The asset inventory (8.1.1): every item of customer data and derived data held for a
tenant, computed live from the database, identity and the key store (never a stored list
that could drift from what is really held)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import column, func, null, select, table, text
from sqlalchemy.sql.expression import ColumnClause

from jinji import tenancy
from jinji.keys.sql_store import SqlDekStore
from services.backup.records import backup_tenants, backups
from services.tenant_admin import identity_api
from services.tenant_admin.context import TenantAdmin


async def _schema_tables(ctx: TenantAdmin, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every table of the tenant's schema with its rows and bytes: whatever a later
    migration adds (derived metric sets, say) is listed without changing this code."""
    schema = tenancy.schema_name(tenant_id)
    async with ctx.db.transaction() as s:
        rows = await s.execute(
            text(
                "SELECT c.relname, pg_total_relation_size(c.oid), EXISTS ("
                "  SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
                "  AND a.attname = 'created_at' AND NOT a.attisdropped) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :schema AND c.relkind = 'r' AND c.relname <> 'alembic_version' "
                "ORDER BY c.relname"
            ),
            {"schema": schema},
        )
        found = [(str(t), int(size), bool(dated)) for t, size, dated in rows]
    tables: list[dict[str, Any]] = []
    # Exact counts and dates per table, in the tenant's own transaction (its role).
    async with ctx.db.tenant_transaction(tenant_id) as tx:
        for name, size, dated in found:
            created: ColumnClause[Any] = column("created_at")
            query = select(
                func.count(),
                func.min(created) if dated else null(),
                func.max(created) if dated else null(),
            ).select_from(table(name, schema=schema))
            count, first, last = (await tx.session.execute(query)).one()
            tables.append(
                {
                    "table": name,
                    "bytes": size,
                    "rows": int(count),
                    "first_created_at": first.isoformat() if first else None,
                    "last_created_at": last.isoformat() if last else None,
                }
            )
    return tables


async def _datasets(ctx: TenantAdmin, tenant_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.db.tenant_transaction(tenant_id) as tx:
        uploads = (
            await tx.session.execute(
                text("SELECT count(*), coalesce(sum(size_bytes), 0), max(created_at) FROM uploads")
            )
        ).one()
        versions = (
            await tx.session.execute(
                text(
                    "SELECT count(*), coalesce(sum(rows), 0), "
                    "coalesce(sum(octet_length(content_enc)), 0), max(created_at) "
                    "FROM dataset_versions"
                )
            )
        ).one()
    return {
        "uploads": {
            "count": int(uploads[0]),
            "bytes": int(uploads[1]),
            "last_at": uploads[2].isoformat() if uploads[2] else None,
        },
        "dataset_versions": {
            "count": int(versions[0]),
            "rows": int(versions[1]),
            "bytes": int(versions[2]),
            "last_at": versions[3].isoformat() if versions[3] else None,
        },
    }


async def inventory(
    ctx: TenantAdmin, tenant_id: uuid.UUID, *, kek_ref: str | None
) -> dict[str, Any]:
    deks = await SqlDekStore(ctx.db).all(str(tenant_id))
    return {
        "tenant_id": str(tenant_id),
        "taken_at": ctx.now().isoformat(),
        **await _datasets(ctx, tenant_id),
        "tables": await _schema_tables(ctx, tenant_id),
        "users": await identity_api.users_summary(ctx, tenant_id),
        "keys": {
            # Identifiers and state only, never key material.
            "kek": {"ref": kek_ref, "state": "active" if kek_ref else "none"},
            "deks": [{"version": d.version, "kek_ref": d.kek_ref} for d in deks],
        },
        "backups": await _backups(ctx, tenant_id),
    }


async def _backups(ctx: TenantAdmin, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Backups (still kept) that hold the tenant's schema, as `jinji backup run` recorded them."""
    async with ctx.db.transaction() as s:
        rows = await s.execute(
            select(backups.c.id, backups.c.snapshot_at)
            .join(backup_tenants, backup_tenants.c.backup_id == backups.c.id)
            .where(backup_tenants.c.tenant_id == tenant_id, backups.c.deleted_at.is_(None))
            .order_by(backups.c.snapshot_at)
        )
        return [{"id": r.id, "snapshot_at": r.snapshot_at.isoformat()} for r in rows]
