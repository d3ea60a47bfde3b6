"""Backup gauges, exported by tenant-admin from ``backup.runs`` (the jobs themselves are
CronJobs that exit; recording in the database keeps the figures scrapeable without a
pushgateway). Refreshed by a loop in tenant-admin's lifespan; 0 until the first run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy import select

from jinji.db import Database
from services.backup.records import runs

log = logging.getLogger(__name__)


def _gauge(name: str, doc: str) -> Gauge:
    # Every replica reads the same rows: "max" across worker processes is that value.
    return Gauge(name, doc, multiprocess_mode="max")


LAST_SUCCESS = _gauge(
    "jinji_backup_last_success_timestamp_seconds",
    "When the last successful backup finished (Unix time; 0: never).",
)
LAST_DURATION = _gauge(
    "jinji_backup_last_duration_seconds", "How long the last successful backup took."
)
LAST_SIZE = _gauge(
    "jinji_backup_last_size_bytes", "Stored size of the last successful backup (encrypted)."
)
LAST_RUN_OK = _gauge(
    "jinji_backup_last_run_ok", "1 if the latest backup run succeeded, 0 if it failed or none ran."
)
LAST_VERIFIED = _gauge(
    "jinji_backup_last_verify_success_timestamp_seconds",
    "When a backup was last verified by a full restore into a scratch database (Unix time).",
)
LAST_VERIFY_OK = _gauge(
    "jinji_backup_last_verify_ok",
    "1 if the latest verification passed, 0 if it failed or none ran.",
)
LAST_VERIFY_DURATION = _gauge(
    "jinji_backup_last_verify_duration_seconds",
    "How long the latest passing verification took: the measured time to restore everything.",
)
RETAINED = _gauge("jinji_backup_retained", "Complete backups kept after the last prune.")


async def _latest(db: Database, operation: str, ok_only: bool) -> Any:
    query = select(runs).where(runs.c.operation == operation)
    if ok_only:
        query = query.where(runs.c.ok)
    async with db.transaction() as s:
        return (await s.execute(query.order_by(runs.c.finished_at.desc()).limit(1))).first()


async def refresh(db: Database) -> None:
    success = await _latest(db, "backup", ok_only=True)
    attempt = await _latest(db, "backup", ok_only=False)
    verified = await _latest(db, "verify", ok_only=True)
    verify = await _latest(db, "verify", ok_only=False)
    pruned = await _latest(db, "prune", ok_only=True)
    LAST_SUCCESS.set(success.finished_at.timestamp() if success else 0)
    LAST_DURATION.set((success.finished_at - success.started_at).total_seconds() if success else 0)
    LAST_SIZE.set((success.size_bytes or 0) if success else 0)
    LAST_RUN_OK.set(1 if attempt is not None and attempt.ok else 0)
    LAST_VERIFIED.set(verified.finished_at.timestamp() if verified else 0)
    LAST_VERIFY_OK.set(1 if verify is not None and verify.ok else 0)
    LAST_VERIFY_DURATION.set(
        (verified.finished_at - verified.started_at).total_seconds() if verified else 0
    )
    RETAINED.set(int(pruned.details.get("kept", 0)) if pruned else 0)


REFRESH_INTERVAL_S = 30.0
REFRESH_TIMEOUT_S = 5.0


def lifespan(app: FastAPI) -> contextlib.AbstractAsyncContextManager[None]:
    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        db: Database = app.state.db

        async def once() -> None:
            try:
                await asyncio.wait_for(refresh(db), REFRESH_TIMEOUT_S)
            except Exception:  # database down, or not migrated yet: next round
                log.warning("backup metrics refresh failed", exc_info=True)

        async def loop() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), REFRESH_INTERVAL_S)
                if not stop.is_set():
                    await once()

        # Before serving: the first scrape already has the recorded figures.
        await once()
        task = asyncio.create_task(loop(), name="backup-metrics")
        try:
            yield
        finally:
            stop.set()
            await task

    return run(app)
