"""``backup.runs``: what each backup job did, for the metrics tenant-admin exports (the jobs
are CronJobs: nothing of theirs is left running to be scraped)."""

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
)
from sqlalchemy.dialects.postgresql import JSONB

from jinji.sqlschema import timestamp
from services.backup import database

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
