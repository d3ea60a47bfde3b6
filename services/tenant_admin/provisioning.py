"""Creating a tenant: resumable, idempotent steps (control 9.2.4, CLD9.5.1).

Each step checks whether it is already done, so a provisioning that failed part-way (a
crash, identity down) is finished by sending the same request again. Until the last step
the tenant stays ``provisioning``: invisible to customers, its logins refused (identity
knows no such tenant, or it has no usable administrator yet).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from prometheus_client import Histogram
from sqlalchemy import insert, select, update

from jinji import tenancy
from jinji.errors import ApiError
from jinji.keys.sql_store import SqlDekStore
from jinji.migrate import upgrade_tenant
from services.tenant_admin import audit, identity_api
from services.tenant_admin.context import TenantAdmin
from services.tenant_admin.tables import companies, tenants

PROVISIONING_SECONDS = Histogram(
    "jinji_tenant_provisioning_seconds",
    "Time to provision a tenant (all steps of one request).",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)


@dataclass(frozen=True)
class Company:
    code: str
    name: str


@dataclass(frozen=True)
class TenantRequest:
    slug: str
    name: str
    seats: int
    companies: list[Company]
    fiscal_year_start_month: int = 4
    min_group_size: int = 5
    mfa_required: bool = True
    data_region: str = "jp"
    first_admin_username: str = "admin"


@dataclass(frozen=True)
class Provisioned:
    id: uuid.UUID
    slug: str
    status: str
    admin_username: str
    one_time_password: str


class TenantExists(ApiError):
    def __init__(self) -> None:
        super().__init__(409, "tenant_exists", "A tenant with this slug already exists.")


async def provision(
    ctx: TenantAdmin, req: TenantRequest, actor: tuple[str, str | None]
) -> Provisioned:
    started = time.perf_counter()
    tenant_id = await _record(ctx, req)
    await _kek_and_dek(ctx, tenant_id)
    await _schema(ctx, tenant_id)
    row = await _row(ctx, tenant_id)
    await identity_api.set_policy(
        ctx,
        tenant_id,
        {"slug": row.slug, "seats": row.seats, "mfa_required": row.mfa_required},
    )
    admin = await identity_api.first_admin(ctx, tenant_id, row.first_admin_username)
    async with ctx.db.transaction() as s:
        await s.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id)
            .values(status="active", step="active", updated_at=ctx.now())
        )
        await audit.record(
            s,
            "tenant.provisioned",
            actor=actor,
            tenant_id=tenant_id,
            target=("tenant", str(tenant_id)),
        )
    PROVISIONING_SECONDS.observe(time.perf_counter() - started)
    return Provisioned(
        tenant_id, row.slug, "active", str(admin["username"]), str(admin["one_time_password"])
    )


async def _row(ctx: TenantAdmin, tenant_id: uuid.UUID) -> Any:
    async with ctx.db.transaction() as s:
        return (await s.execute(select(tenants).where(tenants.c.id == tenant_id))).one()


async def _record(ctx: TenantAdmin, req: TenantRequest) -> uuid.UUID:
    """Step 1: the tenancy record (or the one a failed attempt left)."""
    async with ctx.db.transaction() as s:
        existing = (
            await s.execute(
                select(tenants.c.id, tenants.c.status)
                .where(tenants.c.slug == req.slug)
                .with_for_update()
            )
        ).first()
        if existing is not None:
            if existing.status != "provisioning":
                raise TenantExists()
            return uuid.UUID(str(existing.id))
        tenant_id = uuid.uuid4()
        await s.execute(
            insert(tenants).values(
                id=tenant_id,
                slug=req.slug,
                name=req.name,
                status="provisioning",
                step="record",
                seats=req.seats,
                fiscal_year_start_month=req.fiscal_year_start_month,
                min_group_size=req.min_group_size,
                mfa_required=req.mfa_required,
                data_region=req.data_region,
                first_admin_username=req.first_admin_username,
            )
        )
        await s.execute(
            insert(companies),
            [{"tenant_id": tenant_id, "code": c.code, "name": c.name} for c in req.companies],
        )
    return tenant_id


async def _kek_and_dek(ctx: TenantAdmin, tenant_id: uuid.UUID) -> None:
    """Steps 2–3: the tenant's own KEK in the key provider, and its first DEK."""
    row = await _row(ctx, tenant_id)
    kek_ref = row.kek_ref
    if kek_ref is None:
        kek_ref = await asyncio.to_thread(ctx.provider.create, str(tenant_id))
        async with ctx.db.transaction() as s:
            await s.execute(
                update(tenants).where(tenants.c.id == tenant_id).values(kek_ref=kek_ref, step="kek")
            )
    if await SqlDekStore(ctx.db).current(str(tenant_id)) is None:
        await ctx.envelope.create_dek(str(tenant_id), str(kek_ref))


async def _schema(ctx: TenantAdmin, tenant_id: uuid.UUID) -> None:
    """Step 4: the tenant's database role and schema, migrated to head."""
    async with ctx.db.engine.connect() as conn:
        await tenancy.provision(conn, tenant_id)
        await conn.commit()
        await upgrade_tenant(conn, ctx.settings.migrations_dir, tenant_id)
    async with ctx.db.transaction() as s:
        await s.execute(update(tenants).where(tenants.c.id == tenant_id).values(step="schema"))
