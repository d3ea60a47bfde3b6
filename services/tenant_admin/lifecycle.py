"""Contract end, termination and purge (CLD8.1.5).

From ``contract_end`` the tenant is ``terminated`` (identity refuses its logins and ends its
sessions). No later than ``contract_end + retention_days`` (≤ 30) the purge deletes its
schema and role, its users, its companies and reports, and destroys its KEK, which makes
every wrapped DEK useless, in the database and in every backup (crypto-shredding). A signed
deletion certificate records what was deleted. Each purge step is idempotent and recorded,
so the loop or `jinji purge` can resume a purge that stopped part-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy import delete, func, select, update

from jinji import tenancy
from jinji.errors import ApiError
from jinji.keys import KeyUnavailable
from jinji.keys.sql_store import data_keys
from services.tenant_admin import assets, audit, certificates, identity_api
from services.tenant_admin.context import TenantAdmin
from services.tenant_admin.tables import (
    companies,
    deletion_certificates,
    security_reports,
    tenants,
    webhooks,
)

log = logging.getLogger(__name__)

TENANTS = Gauge("jinji_tenants", "Tenants by status.", ["status"], multiprocess_mode="max")
PURGES_OVERDUE = Gauge(
    "jinji_tenant_purges_overdue",
    "Terminated tenants whose purge deadline has passed by more than an hour (must be 0).",
    multiprocess_mode="max",
)
OVERDUE_GRACE = timedelta(hours=1)
JOB = "tenant-admin-lifecycle"


async def terminate(
    ctx: TenantAdmin,
    tenant_id: uuid.UUID,
    contract_end: datetime | None,
    actor: tuple[str, str | None],
) -> dict[str, Any]:
    now = ctx.now()
    end = contract_end or now
    async with ctx.db.transaction() as s:
        row = (
            await s.execute(
                select(tenants.c.status, tenants.c.retention_days, tenants.c.slug)
                .where(tenants.c.id == tenant_id)
                .with_for_update()
            )
        ).first()
        if row is None or row.slug == tenancy.PLATFORM_TENANT_SLUG:
            raise ApiError(404, "tenant_not_found", "No such tenant.")
        if row.status not in ("active", "provisioning"):
            raise ApiError(409, "already_terminated", "The tenant is already terminated.")
        await s.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id)
            .values(
                contract_end=end,
                purge_due_at=end + timedelta(days=row.retention_days),
                updated_at=now,
            )
        )
        await audit.record(
            s,
            "tenant.termination_scheduled",
            actor=actor,
            tenant_id=tenant_id,
            target=("tenant", str(tenant_id)),
            details={"contract_end": end.isoformat()},
        )
    if end <= now:
        await _apply_termination(ctx, tenant_id)
    return {"id": str(tenant_id), "contract_end": end.isoformat()}


async def _apply_termination(ctx: TenantAdmin, tenant_id: uuid.UUID) -> None:
    # Identity first: if it fails, the tenant is not yet marked terminated and the next
    # loop round tries again (the contract end stays recorded).
    await identity_api.suspend(ctx, tenant_id)
    async with ctx.db.transaction() as s:
        await s.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id, tenants.c.status == "active")
            .values(status="terminated", terminated_at=ctx.now(), updated_at=ctx.now())
        )
        await audit.record(
            s, "tenant.terminated", tenant_id=tenant_id, target=("tenant", str(tenant_id))
        )


async def purge(ctx: TenantAdmin, tenant_id: uuid.UUID, job: str = JOB) -> None:
    """Delete everything of a terminated tenant; resumable and idempotent."""
    row = await _tenant(ctx, tenant_id)
    if row.status == "purged":
        return
    if row.status != "terminated":
        raise RuntimeError("only a terminated tenant is purged")
    if row.step not in ("inventory", "schema", "identity", "keys"):
        # The inventory is taken while everything still exists: it is what the certificate
        # lists as deleted.
        inventory = await assets.inventory(ctx, tenant_id, kek_ref=row.kek_ref)
        await _record_step(ctx, tenant_id, "inventory", draft=inventory)
    async with ctx.db.engine.connect() as conn:
        await tenancy.drop(conn, tenant_id)
        await conn.commit()
    await _record_step(ctx, tenant_id, "schema")
    await identity_api.purge(ctx, tenant_id)
    await _record_step(ctx, tenant_id, "identity")
    if row.kek_ref:
        with contextlib.suppress(KeyUnavailable):
            await asyncio.to_thread(ctx.provider.destroy, row.kek_ref)
    # Unwrapped DEKs cached in this process must not outlive the KEK.
    ctx.dek_cache.clear(str(tenant_id))
    async with ctx.db.transaction() as s:
        await s.execute(delete(data_keys).where(data_keys.c.tenant_id == tenant_id))
        await s.execute(delete(companies).where(companies.c.tenant_id == tenant_id))
        await s.execute(delete(webhooks).where(webhooks.c.tenant_id == tenant_id))
        await s.execute(delete(security_reports).where(security_reports.c.tenant_id == tenant_id))
    await _record_step(ctx, tenant_id, "keys")
    await _certify(ctx, tenant_id, job)


async def _tenant(ctx: TenantAdmin, tenant_id: uuid.UUID) -> Any:
    async with ctx.db.transaction() as s:
        return (await s.execute(select(tenants).where(tenants.c.id == tenant_id))).one()


async def _record_step(
    ctx: TenantAdmin, tenant_id: uuid.UUID, step: str, draft: dict[str, Any] | None = None
) -> None:
    async with ctx.db.transaction() as s:
        await s.execute(update(tenants).where(tenants.c.id == tenant_id).values(step=step))
        if draft is not None:
            # The inventory waits here, unsigned, until the purge has finished.
            await s.execute(
                delete(deletion_certificates).where(deletion_certificates.c.tenant_id == tenant_id)
            )
            await s.execute(
                deletion_certificates.insert().values(
                    tenant_id=tenant_id,
                    certificate={"inventory": draft},
                    signature=b"",
                    kid="",
                )
            )


async def _certify(ctx: TenantAdmin, tenant_id: uuid.UUID, job: str) -> None:
    row = await _tenant(ctx, tenant_id)
    platform = await ctx.platform_tenant()
    async with ctx.db.transaction() as s:
        draft = (
            await s.execute(
                select(deletion_certificates.c.certificate).where(
                    deletion_certificates.c.tenant_id == tenant_id
                )
            )
        ).scalar_one()
        document = {
            "type": "jinji.deletion-certificate/v1",
            "tenant_id": str(tenant_id),
            "tenant_slug": row.slug,
            "contract_end": row.contract_end.isoformat() if row.contract_end else None,
            "terminated_at": row.terminated_at.isoformat() if row.terminated_at else None,
            "purged_at": ctx.now().isoformat(),
            "job": job,
            "deleted": draft["inventory"],
            "actions": [
                "tenant schema and database role dropped",
                "users, sessions and SCIM tokens deleted in identity",
                "key-encryption key destroyed; wrapped data keys deleted",
                "group companies, webhooks and security reports deleted",
            ],
            "retained": (
                "audit events (ids only, no personal data); the backups listed in the "
                "inventory until their retention ends, holding only ciphertext whose "
                "key-encryption key is destroyed"
            ),
        }
        kid, signature = await certificates.sign(s, ctx.envelope, platform, document)
        await s.execute(
            update(deletion_certificates)
            .where(deletion_certificates.c.tenant_id == tenant_id)
            .values(certificate=document, signature=signature, kid=kid)
        )
        await s.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id)
            .values(status="purged", step="purged", purged_at=ctx.now(), updated_at=ctx.now())
        )
        await audit.record(
            s,
            "tenant.purged",
            actor=("system", job),
            tenant_id=tenant_id,
            target=("tenant", str(tenant_id)),
        )


async def run_due(ctx: TenantAdmin, job: str = JOB) -> dict[str, int]:
    """One round: terminate ended contracts, purge what is due, refresh the gauges."""
    now = ctx.now()
    async with ctx.db.transaction() as s:
        ending = (
            await s.scalars(
                select(tenants.c.id).where(
                    tenants.c.status == "active", tenants.c.contract_end <= now
                )
            )
        ).all()
        due = (
            await s.scalars(
                select(tenants.c.id).where(
                    tenants.c.status == "terminated", tenants.c.purge_due_at <= now
                )
            )
        ).all()
    done = {"terminated": 0, "purged": 0, "failed": 0}
    for tenant_id in ending:
        try:
            await _apply_termination(ctx, tenant_id)
            done["terminated"] += 1
        except Exception:
            done["failed"] += 1
            log.warning("termination failed; retried next round", exc_info=True)
    for tenant_id in due:
        try:
            await purge(ctx, tenant_id, job)
            done["purged"] += 1
        except Exception:
            done["failed"] += 1
            log.warning("purge failed; resumed next round", exc_info=True)
    await refresh_gauges(ctx)
    return done


async def refresh_gauges(ctx: TenantAdmin) -> None:
    async with ctx.db.transaction() as s:
        rows = await s.execute(select(tenants.c.status, func.count()).group_by(tenants.c.status))
        counts: dict[str, int] = {str(status): int(n) for status, n in rows}
        overdue = await s.scalar(
            select(func.count())
            .select_from(tenants)
            .where(
                tenants.c.status == "terminated",
                tenants.c.purge_due_at < func.now() - OVERDUE_GRACE,
            )
        )
    for status in ("provisioning", "active", "terminated", "purged"):
        TENANTS.labels(status).set(int(counts.get(status, 0)))
    PURGES_OVERDUE.set(int(overdue or 0))


def lifespan(app: FastAPI) -> contextlib.AbstractAsyncContextManager[None]:
    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        ctx: TenantAdmin = app.state.tenant_admin

        async def loop() -> None:
            while not stop.is_set():
                try:
                    await run_due(ctx)
                except Exception:  # database down: next round
                    log.warning("lifecycle round failed", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), ctx.settings.lifecycle_interval_s)

        task = asyncio.create_task(loop(), name="tenant-lifecycle")
        try:
            yield
        finally:
            stop.set()
            await task

    return run(app)
