"""Periodic upkeep of identity's tables, run in the background by each replica (every
step is idempotent, so replicas running it side by side do no harm)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy import delete, func, or_, select

from services.identity.context import Identity, LazyIdentity
from services.identity.keyring import retire_expired
from services.identity.tables import challenges, sessions

log = logging.getLogger(__name__)

ACTIVE_SESSIONS = Gauge(
    "jinji_identity_active_sessions",
    "Sessions neither revoked nor expired.",
    multiprocess_mode="max",
)
INTERVAL_S = 30.0
# Ended sessions are kept a while for the user's and admins' session history.
KEEP_ENDED_SESSIONS = timedelta(days=30)


async def run_once(ctx: Identity) -> dict[str, int]:
    now = ctx.now()
    async with ctx.db.transaction() as s:
        active = int(
            await s.scalar(
                select(func.count())
                .select_from(sessions)
                .where(
                    sessions.c.revoked_at.is_(None),
                    sessions.c.idle_expires_at > now,
                    sessions.c.absolute_expires_at > now,
                )
            )
            or 0
        )
        stale_challenges = await s.execute(
            delete(challenges).where(
                or_(challenges.c.expires_at < now, challenges.c.consumed_at.is_not(None))
            )
        )
        old_sessions = await s.execute(
            delete(sessions).where(
                or_(
                    sessions.c.revoked_at < now - KEEP_ENDED_SESSIONS,
                    sessions.c.absolute_expires_at < now - KEEP_ENDED_SESSIONS,
                )
            )
        )
        await retire_expired(s, now)
    throttled = await ctx.throttle.purge_expired()
    ACTIVE_SESSIONS.set(active)
    return {
        "active_sessions": active,
        "challenges_removed": int(getattr(stale_challenges, "rowcount", 0)),
        "sessions_removed": int(getattr(old_sessions, "rowcount", 0)),
        "throttle_rows_removed": throttled,
    }


def lifespan(app: FastAPI) -> contextlib.AbstractAsyncContextManager[None]:
    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()

        async def loop() -> None:
            lazy: LazyIdentity = app.state.identity
            while not stop.is_set():
                try:
                    await run_once(await lazy.get())
                except Exception:  # database down: try again next round
                    log.warning("identity housekeeping failed", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), INTERVAL_S)

        task = asyncio.create_task(loop(), name="identity-housekeeping")
        try:
            yield
        finally:
            stop.set()
            await task

    return run(app)
