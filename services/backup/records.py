"""What the backup jobs record in the database: ``backup.runs`` (each run's outcome, for the
metrics tenant-admin exports: the jobs are CronJobs, nothing of theirs stays up to be
scraped) and ``backup.backups``/``backup_tenants`` (which backups exist and which tenants
each holds, for the asset inventory and the deletion certificate)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Identity,
    MetaData,
    Table,
    Text,
    insert,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from jinji.sqlschema import timestamp
from services.backup import database
from services.backup.manifest import Manifest

log = logging.getLogger(__name__)

Operation = Literal["backup", "verify", "restore", "prune"]

metadata = MetaData(schema="backup")
runs = Table(
    "runs",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("operation", Text, nullable=False),
    Column("backup_id", Text),
    timestamp("started_at", nullable=False),
    timestamp("finished_at", nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("size_bytes", BigInteger),
    Column("error", Text),
    Column("details", JSONB, nullable=False),
)
backups = Table(
    "backups",
    metadata,
    Column("id", Text, primary_key=True),
    Column("store", Text, nullable=False),
    timestamp("snapshot_at", nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    timestamp("deleted_at"),
)
backup_tenants = Table(
    "backup_tenants",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("backup_id", Text, primary_key=True),
)


async def record(
    url: str,
    operation: Operation,
    *,
    started_at: datetime,
    finished_at: datetime,
    ok: bool,
    backup_id: str | None = None,
    size_bytes: int | None = None,
    error: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Best effort: a job whose database is down still reports its own result and exit code."""
    engine = database.engine(url, "jinji-backup")
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(runs).values(
                    operation=operation,
                    backup_id=backup_id,
                    started_at=started_at,
                    finished_at=finished_at,
                    ok=ok,
                    size_bytes=size_bytes,
                    error=error[:2000] if error else None,
                    details=details or {},
                )
            )
    except Exception:
        log.warning("could not record the backup run", exc_info=True)
    finally:
        await engine.dispose()


async def record_contents(url: str, manifest: Manifest, store: str) -> None:
    """The backup and the tenants it holds (best effort, like :func:`record`)."""
    engine = database.engine(url, "jinji-backup")
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(backups).values(
                    id=manifest.id,
                    store=store,
                    snapshot_at=datetime.fromisoformat(manifest.snapshot_at),
                    size_bytes=manifest.stored_bytes,
                )
            )
            held = [
                {"tenant_id": s.tenant_id, "backup_id": manifest.id}
                for s in manifest.schemas
                if s.tenant_id is not None
            ]
            if held:
                await conn.execute(insert(backup_tenants), held)
    except Exception:
        log.warning("could not record the backup's contents", exc_info=True)
    finally:
        await engine.dispose()


async def record_deleted(url: str, backup_ids: list[str], at: datetime) -> None:
    if not backup_ids:
        return
    engine = database.engine(url, "jinji-backup")
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(backups).where(backups.c.id.in_(backup_ids)).values(deleted_at=at)
            )
    except Exception:
        log.warning("could not record deleted backups", exc_info=True)
    finally:
        await engine.dispose()
