"""One async engine per service, one session pattern, and the tenant transaction.

Tenant work runs in :meth:`Database.tenant_transaction`: inside one transaction it switches to
the tenant's role (the privilege wall: that role can touch only its own schema) and points
``search_path`` at the tenant schema, both with transaction scope (``set_config(..., true)`` is
``SET LOCAL``) so a pooled connection never carries one tenant's settings into the next
request. Tenant tables are declared with schema ``tenant`` and translated per transaction, so
SQL stays schema-qualified and asyncpg's per-connection statement cache stays valid.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from jinji import tenancy

AfterCommitWork = Callable[[AsyncSession], Coroutine[Any, Any, None]]
# The largest PostgreSQL bigint: the bound of every integer a client may send into a query
# (offsets, sequence numbers), so a larger one is a 422, not a driver error (a 500).
BIGINT_MAX = 2**63 - 1


def async_url(url: str) -> str:
    """Accept a plain ``postgresql://`` URL and select the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")


@dataclass
class TenantTx:
    """A tenant transaction. ``platform_writes`` run after the tenant's own SQL, in the same
    transaction but with the service's role (e.g. the outbox row announcing the change)."""

    session: AsyncSession
    tenant_id: uuid.UUID
    platform_writes: list[AfterCommitWork] = field(default_factory=list)


class Database:
    def __init__(
        self,
        url: str,
        *,
        application_name: str = "jinji",
        pool_size: int = 10,
        max_overflow: int | None = None,
        pool_timeout_s: float = 5.0,
        statement_timeout_ms: int = 30_000,
    ) -> None:
        self.engine: AsyncEngine = create_async_engine(
            async_url(url),
            pool_size=pool_size,
            max_overflow=pool_size if max_overflow is None else max_overflow,
            pool_timeout=pool_timeout_s,
            # A restarted PostgreSQL leaves dead sockets in the pool; pre-ping replaces them
            # so the first request after an outage does not fail.
            pool_pre_ping=True,
            connect_args={
                "timeout": pool_timeout_s,
                "server_settings": {
                    "application_name": application_name,
                    "statement_timeout": str(statement_timeout_ms),
                    "timezone": "UTC",
                },
            },
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def tenant_transaction(self, tenant_id: uuid.UUID | str) -> AsyncIterator[TenantTx]:
        tid = tenancy.tenant_uuid(tenant_id)
        schema = tenancy.schema_name(tid)
        async with self.sessions() as session, session.begin():
            await session.connection(execution_options={"schema_translate_map": {"tenant": schema}})
            await session.execute(
                text(
                    "SELECT set_config('role', :role, true), set_config('search_path', :path, true)"
                ),
                {"role": tenancy.role_name(tid), "path": tenancy.quote_ident(schema)},
            )
            tx = TenantTx(session=session, tenant_id=tid)
            yield tx
            if tx.platform_writes:
                # Still transaction-scoped: back to the service role until commit.
                await session.execute(text("SELECT set_config('role', 'none', true)"))
                for work in tx.platform_writes:
                    await work(session)

    async def tenant_is_active(self, tenant_id: str) -> bool:
        """Whether a user of this tenant may be served: its status is ``active`` (not
        provisioning, terminated or purged)."""
        try:
            tid = tenancy.tenant_uuid(tenant_id)
        except ValueError:
            return False
        async with self.engine.connect() as conn:
            status = await conn.scalar(
                text("SELECT status FROM tenancy.tenants WHERE id = :id"), {"id": tid}
            )
        return bool(status == "active")

    async def ping(self, timeout_s: float = 2.0) -> None:
        async with asyncio.timeout(timeout_s), self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def pool_status(self) -> dict[str, int]:
        pool: Any = self.engine.pool
        return {
            "size": int(pool.size()),
            "checked_out": int(pool.checkedout()),
            "idle": int(pool.checkedin()),
            "overflow": max(int(pool.overflow()), 0),
        }

    async def dispose(self) -> None:
        await self.engine.dispose()


# How long a process trusts that a tenant is active before reading its status again: the
# most a termination waits to take effect in a service. Reading it on every request would
# cost about 1 ms of a service's CPU per request (pool checkout, ping, query, reset).
TENANT_STATUS_TTL_S = 1.0


class ActiveTenants:
    """The tenant gate of a service (``app.state.tenant_gate``): whether a user's tenant may
    be served, an ``active`` answer remembered for TENANT_STATUS_TTL_S, any other never."""

    MAX_REMEMBERED = 10_000

    def __init__(
        self,
        db: Database,
        ttl_s: float = TENANT_STATUS_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.clock = clock
        self._active_until: dict[str, float] = {}

    async def __call__(self, tenant_id: str) -> bool:
        now = self.clock()
        until = self._active_until.get(tenant_id)
        if until is not None and now < until:
            return True
        active = await self.db.tenant_is_active(tenant_id)
        if not active:
            self._active_until.pop(tenant_id, None)
            return False
        if len(self._active_until) >= self.MAX_REMEMBERED:
            self._active_until.clear()  # bounded memory; the next reads fill it again
        self._active_until[tenant_id] = now + self.ttl_s
        return True
