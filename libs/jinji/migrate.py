"""Schema migrations: control schemas first, then every tenant schema.

Alembic runs once per control schema (``migrations/<component>``, version table inside that
schema) and once per tenant schema (``migrations/tenant``) as the tenant's own role, so the
tables it creates belong to that role. Tenant schemas already at head are skipped with one
catalog query per batch; the rest are migrated in parallel worker processes (Alembic's
``op``/``context`` proxies are process-global, so parallelism must be by process), each
schema in its own transaction. A failure is reported and the run goes on; running again
resumes with whatever is not at head.

A schema's migration is CPU work on both sides, Alembic and SQLAlchemy in the worker and the
DDL in its PostgreSQL backend (roughly half each), and one connection alternates between
them, so one worker keeps about one core busy. Each worker takes a few large chunks of
schemas, reads the migration scripts once and uses one connection per chunk; how many
workers are worth starting is ``worker_count``'s answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import multiprocessing
import os
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, column, literal, select, table, text, union_all
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from jinji import tenancy
from jinji.db import async_url

log = logging.getLogger(__name__)

# (directory under migrations/, schema it owns), in dependency order.
CONTROL_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("outbox", "outbox"),
    ("tenancy", "tenancy"),
    ("identity", "identity"),
    ("audit", "audit"),
    ("backup", "backup"),
)
TENANT_COMPONENT = "tenant"
IN_PROCESS_MAX = 8  # below this many pending tenants, worker start-up costs more than it saves
CHUNKS_PER_WORKER = 4  # chunks handed to the pool: a few per worker, so none sits idle long


def run_env() -> None:
    """Body of every ``migrations/*/env.py``: online mode on the connection we pass in."""
    connection: Connection = context.config.attributes["connection"]
    schema: str = context.config.attributes["schema"]
    context.configure(
        connection=connection,
        version_table_schema=schema,
        transactional_ddl=True,
        target_metadata=None,
    )
    with context.begin_transaction():
        context.run_migrations()


def _config(migrations_dir: Path, component: str, schema: str, connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir / component))
    cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = schema
    return cfg


def head_revision(migrations_dir: Path, component: str) -> str | None:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir / component))
    return ScriptDirectory.from_config(cfg).get_current_head()


async def upgrade_control(conn: AsyncConnection, migrations_dir: Path) -> None:
    for component, schema in CONTROL_COMPONENTS:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {tenancy.quote_ident(schema)}"))

        def upgrade(sync_conn: Connection, comp: str = component, s: str = schema) -> None:
            command.upgrade(_config(migrations_dir, comp, s, sync_conn), "head")

        await conn.run_sync(upgrade)
        await conn.commit()


class TenantScripts:
    """The tenant migrations, read once and applied to any number of schemas.

    ``command.upgrade`` builds a new ScriptDirectory on every call, which re-reads and
    re-executes every revision file; a worker migrating hundreds of schemas reads them once.
    """

    def __init__(self, migrations_dir: Path) -> None:
        self.config = Config()
        self.config.set_main_option("script_location", str(migrations_dir / TENANT_COMPONENT))
        self.script = ScriptDirectory.from_config(self.config)

    def upgrade(self, connection: Connection, schema: str) -> None:
        """``alembic upgrade head`` on one schema, as ``command.upgrade(cfg, "head")`` does."""
        self.config.attributes["connection"] = connection
        self.config.attributes["schema"] = schema

        def steps(current: str, _context: MigrationContext) -> list[RevisionStep]:
            return self.script._upgrade_revs("head", current)

        with EnvironmentContext(self.config, self.script, fn=steps, destination_rev="head"):
            self.script.run_env()  # migrations/tenant/env.py: run_env() below


async def upgrade_tenant(
    conn: AsyncConnection,
    migrations_dir: Path,
    tenant_id: uuid.UUID | str,
    scripts: TenantScripts | None = None,
) -> None:
    """Migrate one tenant schema to head in one transaction, as the tenant's role."""
    schema = tenancy.schema_name(tenant_id)
    tenant = scripts or TenantScripts(migrations_dir)
    async with conn.begin():
        await conn.execute(
            text("SELECT set_config('role', :r, true), set_config('search_path', :p, true)"),
            {"r": tenancy.role_name(tenant_id), "p": tenancy.quote_ident(schema)},
        )
        await conn.run_sync(tenant.upgrade, schema)


async def schema_revisions(conn: AsyncConnection, schemas: Sequence[str]) -> dict[str, str | None]:
    """Current Alembic revision of each schema, control or tenant (None: never migrated)."""
    result: dict[str, str | None] = dict.fromkeys(schemas)
    with_table = [
        r[0]
        for r in await conn.execute(
            text(
                "SELECT table_schema FROM information_schema.tables "
                "WHERE table_name = 'alembic_version' AND table_schema = ANY(:s)"
            ),
            {"s": list(schemas)},
        )
    ]
    for start in range(0, len(with_table), 500):
        chunk = with_table[start : start + 500]
        # One round trip per chunk; SQLAlchemy quotes each schema name.
        union = union_all(
            *(
                select(
                    literal(s).label("s"),
                    table("alembic_version", column("version_num"), schema=s).c.version_num,
                )
                for s in chunk
            )
        )
        for schema, version in await conn.execute(union):
            result[schema] = version
    return result


@dataclass
class MigrationReport:
    control_seconds: float = 0.0
    tenants_total: int = 0
    tenants_skipped: int = 0
    tenants_migrated: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    tenant_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def _engine(url: str) -> AsyncEngine:
    return create_async_engine(async_url(url), poolclass=NullPool)


async def _migrate_batch_async(
    url: str, migrations_dir: Path, schemas: list[str]
) -> tuple[int, dict[str, str]]:
    """One connection and one read of the scripts for the whole batch, a transaction a schema."""
    engine = _engine(url)
    scripts = TenantScripts(migrations_dir)
    done, failures = 0, {}
    try:
        async with engine.connect() as conn:
            for schema in schemas:
                try:
                    await upgrade_tenant(conn, migrations_dir, uuid.UUID(hex=schema[2:]), scripts)
                    done += 1
                except Exception as exc:  # recorded and reported; the run goes on
                    failures[schema] = f"{type(exc).__name__}: {exc}"[:500]
                    await conn.rollback()
    finally:
        await engine.dispose()
    return done, failures


def chunks(pending: list[str], workers: int) -> list[list[str]]:
    """A few chunks per worker, in order: each chunk costs a connection and a read of the
    scripts in its worker, and a few per worker keep them all busy to the end."""
    size = -(-len(pending) // (workers * CHUNKS_PER_WORKER))  # ceiling division
    return [pending[i : i + size] for i in range(0, len(pending), size)]


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity (taskset, cpusets) and, in a container, its
    CPU quota (cgroup v2 ``cpu.max``, e.g. a Kubernetes CPU limit)."""
    affinity = getattr(os, "sched_getaffinity", None)  # not on macOS
    cpus = len(affinity(0)) if affinity else os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    return max(cpus, 1)


def worker_count(requested: int, url: str) -> int:
    """Worker processes worth starting for ``requested``.

    A schema's migration is CPU work on both sides, about half Alembic and SQLAlchemy in the
    worker and half DDL in its PostgreSQL backend, with no lock one schema's DDL waits on
    another's. So against a server on this machine, workers only help up to the CPUs we may
    use: past that the backends and the workers share the same cores, and each worker only
    adds its start-up (one core: 2 workers took 1.2x as long as 1). A remote server does its
    half elsewhere, so there a second worker also fills the time the first waits for it.
    """
    host = make_url(url).host
    local = not host or host == "localhost" or _is_loopback(host)
    return max(1, min(requested, usable_cpus()) if local else requested)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _migrate_batch(url: str, migrations_dir: str, schemas: list[str]) -> tuple[int, dict[str, str]]:
    return asyncio.run(_migrate_batch_async(url, Path(migrations_dir), schemas))


async def migrate_all(
    url: str, migrations_dir: Path, *, workers: int = 2, control: bool = True
) -> MigrationReport:
    report = MigrationReport()
    engine = _engine(url)
    try:
        if control:
            started = time.perf_counter()
            async with engine.connect() as conn:
                await upgrade_control(conn, migrations_dir)
            report.control_seconds = time.perf_counter() - started
        started = time.perf_counter()
        head = head_revision(migrations_dir, TENANT_COMPONENT)
        async with engine.connect() as conn:
            schemas = await tenancy.list_tenant_schemas(conn)
            versions = await schema_revisions(conn, schemas) if schemas else {}
    finally:
        await engine.dispose()
    pending = [s for s in schemas if versions.get(s) != head]
    report.tenants_total = len(schemas)
    report.tenants_skipped = len(schemas) - len(pending)
    workers = worker_count(workers, url)
    if not pending:
        results = []
    elif len(pending) <= IN_PROCESS_MAX or workers <= 1:
        results = [await _migrate_batch_async(url, migrations_dir, pending)]
    else:
        batches = chunks(pending, workers)
        loop = asyncio.get_running_loop()
        ctx: Any = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            results = await asyncio.gather(
                *(
                    loop.run_in_executor(pool, _migrate_batch, url, str(migrations_dir), b)
                    for b in batches
                )
            )
    for done, failures in results:
        report.tenants_migrated += done
        report.failures.update(failures)
    report.tenant_seconds = time.perf_counter() - started
    for schema, error in report.failures.items():
        log.error("tenant migration failed", extra={"schema": schema, "error": error})
    return report
