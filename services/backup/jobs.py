"""The ``jinji backup`` commands: each builds what it needs from the settings, does its job,
records the outcome in ``backup.runs`` and returns one JSON-able summary (``ok`` and, when it
failed, ``error``: a sentence for the operator)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from jinji.audit import AuditTrail
from jinji.db import Database
from jinji.runtime import key_provider, require_database_url
from services.backup import dump, records, restore, retention
from services.backup.errors import BackupError
from services.backup.manifest import parse
from services.backup.pgtools import find_tools
from services.backup.settings import BackupSettings
from services.backup.store import MANIFEST, Store, open_store
from services.backup.verify import verify

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Restores are recorded in the audit trail; tenant-admin's relay delivers these events.
audit = AuditTrail("tenant_admin", "backups")
ACTOR = ("system", "jinji-backup")


def utcnow() -> datetime:
    return datetime.now(UTC)


def store_of(settings: BackupSettings) -> Store:
    return open_store(
        settings.backup_store,
        endpoint_url=settings.backup_s3_endpoint_url,
        region=settings.backup_s3_region,
    )


def policy_of(settings: BackupSettings) -> retention.Policy:
    return retention.Policy(settings.backup_keep_daily_days, settings.backup_keep_weekly_weeks)


async def _guarded(work: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        return {"ok": True, **(await work())}
    except BackupError as exc:
        log.error("backup job failed", extra={"error": str(exc)})
        return {"ok": False, "error": str(exc)}
    except Exception as exc:
        # Unforeseen (the database unreachable, say): still a failed run, recorded and
        # alerted on like any other, with the traceback in the log.
        log.exception("backup job failed unexpectedly")
        return {"ok": False, "error": f"unexpected {type(exc).__name__}: {exc}"[:2000]}


async def run_backup(
    settings: BackupSettings, *, prune_after: bool = True, clock: Clock = utcnow
) -> dict[str, Any]:
    url = require_database_url(settings)
    started = clock()
    manifest_holder: dict[str, Any] = {}

    async def work() -> dict[str, Any]:
        store = store_of(settings)
        manifest = await dump.take(
            url,
            store,
            key_provider(settings),
            find_tools(settings.pg_bin_dir),
            migrations_dir=settings.migrations_dir,
            jobs=settings.backup_jobs,
            clock=clock,
        )
        manifest_holder["m"] = manifest
        return {
            "backup": manifest.id,
            "store": store.description,
            "schemas": len(manifest.schemas),
            "tenants": sum(1 for s in manifest.schemas if s.kind == "tenant"),
            "bytes": manifest.stored_bytes,
            "seconds": round((clock() - started).total_seconds(), 3),
        }

    result = await _guarded(work)
    manifest = manifest_holder.get("m")
    await records.record(
        url,
        "backup",
        started_at=started,
        finished_at=clock(),
        ok=result["ok"],
        backup_id=manifest.id if manifest else None,
        size_bytes=manifest.stored_bytes if manifest else None,
        error=result.get("error"),
        details={k: v for k, v in result.items() if k in ("schemas", "tenants", "store")},
    )
    if manifest is not None:
        await records.record_contents(url, manifest, result.get("store", ""))
    if result["ok"] and prune_after:
        # As pgBackRest expires after each successful backup; a failed backup prunes nothing.
        result["prune"] = await run_prune(settings, clock=clock)
        result["ok"] = result["prune"]["ok"]
    return result


async def run_prune(
    settings: BackupSettings, *, dry_run: bool = False, clock: Clock = utcnow
) -> dict[str, Any]:
    url = require_database_url(settings)
    started = clock()

    async def work() -> dict[str, Any]:
        decisions = await asyncio.to_thread(
            retention.prune, store_of(settings), policy_of(settings), started, dry_run
        )
        return {
            "dry_run": dry_run,
            "kept": sum(1 for d in decisions if d.keep and d.reason != "incomplete, recent"),
            "deleted": [d.id for d in decisions if not d.keep],
            "decisions": {d.id: d.reason for d in decisions},
        }

    result = await _guarded(work)
    if not dry_run:
        await records.record_deleted(url, result.get("deleted", []), clock())
        await records.record(
            url,
            "prune",
            started_at=started,
            finished_at=clock(),
            ok=result["ok"],
            error=result.get("error"),
            details={"kept": result.get("kept", 0), "deleted": len(result.get("deleted", []))},
        )
    return result


async def run_verify(
    settings: BackupSettings, *, backup_id: str | None = None, clock: Clock = utcnow
) -> dict[str, Any]:
    url = require_database_url(settings)
    started = clock()
    server = (
        settings.backup_verify_server_url.get_secret_value()
        if settings.backup_verify_server_url
        else url
    )

    async def work() -> dict[str, Any]:
        store = store_of(settings)
        provider = key_provider(settings)
        opened = await asyncio.to_thread(restore.select_backup, store, provider, backup_id)
        report = await verify(
            server,
            opened,
            store,
            provider,
            find_tools(settings.pg_bin_dir),
            migrations_dir=settings.migrations_dir,
            jobs=settings.backup_jobs,
            work_dir=settings.backup_work_dir,
        )
        if not report.pop("ok"):
            raise BackupError(
                f"backup {report['backup']} failed verification: " + "; ".join(report["problems"])
            )
        return report

    result = await _guarded(work)
    await records.record(
        url,
        "verify",
        started_at=started,
        finished_at=clock(),
        ok=result["ok"],
        backup_id=result.get("backup"),
        error=result.get("error"),
        details={k: v for k, v in result.items() if k in ("schemas", "tenants", "rows")},
    )
    return result


async def run_restore(
    settings: BackupSettings,
    *,
    tenant: str | None,
    everything: bool,
    backup_id: str | None = None,
    clock: Clock = utcnow,
) -> dict[str, Any]:
    url = require_database_url(settings)
    started = clock()

    async def work() -> dict[str, Any]:
        store = store_of(settings)
        provider = key_provider(settings)
        tools = find_tools(settings.pg_bin_dir)
        if everything:
            return await restore.restore_all(
                url,
                store,
                provider,
                tools,
                backup_id=backup_id,
                migrations_dir=settings.migrations_dir,
                jobs=settings.backup_jobs,
                work_dir=settings.backup_work_dir,
            )
        assert tenant is not None
        return await restore.restore_tenant(
            url,
            store,
            provider,
            tools,
            tenant=tenant,
            backup_id=backup_id,
            migrations_dir=settings.migrations_dir,
            work_dir=settings.backup_work_dir,
        )

    result = await _guarded(work)
    await records.record(
        url,
        "restore",
        started_at=started,
        finished_at=clock(),
        ok=result["ok"],
        backup_id=result.get("backup"),
        error=result.get("error"),
        details={"tenant": result.get("tenant"), "all": everything},
    )
    if result["ok"]:
        await _audit_restore(url, result, everything)
    return result


async def _audit_restore(url: str, result: dict[str, Any], everything: bool) -> None:
    db = Database(url, application_name="jinji-backup", pool_size=1)
    try:
        async with db.transaction() as s:
            tenant_id = result.get("tenant_id")
            await audit.record(
                s,
                "database_restored" if everything else "tenant_restored",
                actor=ACTOR,
                tenant_id=uuid.UUID(tenant_id) if tenant_id else None,
                target=("tenant", tenant_id) if tenant_id else None,
                details={"backup": result.get("backup")},
            )
    except Exception:
        log.warning("could not record the restore in the audit trail", exc_info=True)
    finally:
        await db.dispose()


async def list_backups(settings: BackupSettings) -> dict[str, Any]:
    async def work() -> dict[str, Any]:
        store = store_of(settings)

        def listing() -> list[dict[str, Any]]:
            out = []
            for backup_id in store.backup_ids():
                if not store.exists(backup_id, MANIFEST):
                    out.append({"id": backup_id, "complete": False})
                    continue
                manifest, _ = parse(store.get(backup_id, MANIFEST), backup_id)
                out.append(
                    {
                        "id": backup_id,
                        "complete": True,
                        "created_at": manifest.created_at,
                        "schemas": len(manifest.schemas),
                        "tenants": sum(1 for s in manifest.schemas if s.kind == "tenant"),
                        "bytes": manifest.stored_bytes,
                    }
                )
            return out

        return {"store": store.description, "backups": await asyncio.to_thread(listing)}

    return await _guarded(work)
