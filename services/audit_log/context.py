"""What the audit-log handlers need, built once per process by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from prometheus_client import Gauge

from jinji import ed25519_keys
from jinji.db import Database
from jinji.runtime import make_envelope
from jinji.tenancy import platform_tenant_id
from jinji.web import Lifespan
from services.audit_log import log, retention
from services.audit_log.settings import AuditLogSettings
from services.audit_log.tables import keys

logger = logging.getLogger(__name__)

# Alert when this stops advancing: streams then grow without fresh signed checkpoints.
LAST_ROUND = Gauge(
    "jinji_audit_last_checkpoint_round_timestamp_seconds",
    "When the checkpoint and retention round last completed.",
    multiprocess_mode="max",
)


@dataclass
class AuditLog:
    settings: AuditLogSettings
    db: Database
    signer: ed25519_keys.SealedEd25519


class LazyAuditLog:
    """The platform tenant (whose DEK seals the audit key) is looked up on first use, so the
    service starts, and reports not-ready, while the database is down."""

    def __init__(self, settings: AuditLogSettings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.value: AuditLog | None = None

    async def get(self) -> AuditLog:
        if self.value is None:
            async with self.db.transaction() as s:
                platform = await platform_tenant_id(s)
            envelope = make_envelope(self.settings, self.db)
            signer = ed25519_keys.SealedEd25519(keys, envelope, platform)
            self.value = AuditLog(self.settings, self.db, signer)
        return self.value


def lifespan(settings: AuditLogSettings) -> Lifespan:
    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        lazy = LazyAuditLog(settings, app.state.db)
        app.state.audit_log = lazy
        stop = asyncio.Event()

        async def checkpoints() -> None:
            # The timer path: a stream that grows slowly still gets a fresh signed head.
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), settings.checkpoint_interval_s)
                try:
                    ctx = await lazy.get()
                    async with ctx.db.transaction() as s:
                        await log.checkpoint_due(s, ctx.signer)
                    async with ctx.db.transaction() as s:
                        await retention.apply(
                            s, datetime.now(UTC), timedelta(days=settings.retention_days)
                        )
                    LAST_ROUND.set_to_current_time()
                except Exception:
                    logger.warning("checkpoint round failed", exc_info=True)

        task = asyncio.create_task(checkpoints(), name="audit-checkpoints")
        try:
            yield
        finally:
            stop.set()
            await task

    return run


async def get_context(request: Request) -> AuditLog:
    lazy: LazyAuditLog = request.app.state.audit_log
    return await lazy.get()


ContextDep = Annotated[AuditLog, Depends(get_context)]
