"""`jinji migrate`: control schemas, then every tenant schema (in parallel worker processes,
each as the tenant's own role), skipping those at head and resuming after a failure.

These tests provision many tenant schemas and break some on purpose, so they run against a
scratch database of their own, dropped at the end (with the tenant roles they created).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import column, func, select, table, text
from sqlalchemy.exc import DBAPIError

from jinji import migrate, tenancy
from jinji.config import REPO_ROOT
from jinji.db import Database
from jinji.migrate import (
    CONTROL_COMPONENTS,
    IN_PROCESS_MAX,
    MigrationReport,
    head_revision,
    migrate_all,
    schema_revisions,
)

MIGRATIONS = REPO_ROOT / "migrations"
TENANT_HEAD = head_revision(MIGRATIONS, "tenant")
TENANT_TABLES = {
    "alembic_version",
    "uploads",
    "dataset_versions",
    "analytics_results",
    "analytics_events",
    "dashboard_access",
}
FLEET_SIZE = 20
WORKERS = 2


@dataclass
class Scratch:
    url: str
    db: Database
    tenants: list[uuid.UUID] = field(default_factory=list)

    async def provision(self, count: int) -> list[uuid.UUID]:
        """Create tenant roles and schemas (not migrated), as tenant provisioning does."""
        ids = [uuid.uuid4() for _ in range(count)]
        self.tenants.extend(ids)  # recorded first, so teardown drops even a partial one
        async with self.db.engine.connect() as conn:
            for tenant_id in ids:
                await tenancy.provision(conn, tenant_id)
            await conn.commit()
        return ids

    async def versions(self, tenant_ids: Iterable[uuid.UUID]) -> dict[str, str | None]:
        async with self.db.engine.connect() as conn:
            return await schema_revisions(conn, [tenancy.schema_name(t) for t in tenant_ids])

    async def all_schemas(self) -> list[str]:
        async with self.db.engine.connect() as conn:
            return await tenancy.list_tenant_schemas(conn)

    async def table_owners(self, tenant_ids: Iterable[uuid.UUID]) -> dict[str, dict[str, str]]:
        schemas = [tenancy.schema_name(t) for t in tenant_ids]
        owners: dict[str, dict[str, str]] = {s: {} for s in schemas}
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT schemaname, tablename, tableowner FROM pg_tables "
                    "WHERE schemaname = ANY(:s)"
                ),
                {"s": schemas},
            )
            for schema, table, owner in rows:
                owners[schema][table] = owner
        return owners

    async def plant_conflicting_table(self, tenant_id: uuid.UUID) -> None:
        """A table named like one the tenant migration creates, made by the tenant's role
        (as a half-applied or hand-made change would be): that tenant's migration fails."""
        async with self.db.engine.connect() as conn, conn.begin():
            await conn.execute(
                text("SELECT set_config('role', :r, true)"), {"r": tenancy.role_name(tenant_id)}
            )
            schema = tenancy.quote_ident(tenancy.schema_name(tenant_id))
            await conn.execute(text(f"CREATE TABLE {schema}.uploads (id int)"))

    async def remove_conflicting_table(self, tenant_id: uuid.UUID) -> None:
        async with self.db.engine.connect() as conn, conn.begin():
            schema = tenancy.quote_ident(tenancy.schema_name(tenant_id))
            await conn.execute(text(f"DROP TABLE {schema}.uploads"))


@pytest.fixture(scope="module")
async def scratch(scratch_database, tenant_roles: list[str]) -> AsyncIterator[Scratch]:
    # Unmigrated: the first test migrates it as a first `jinji migrate` does.
    async with scratch_database(migrated=False) as url:
        state = Scratch(url, Database(url, application_name="jinji-tests-migrate", pool_size=2))
        try:
            yield state
        finally:
            await state.db.dispose()
            # Roles are cluster-wide: dropped with the run's other tenant roles.
            tenant_roles.extend(tenancy.role_name(t) for t in state.tenants)


@dataclass
class Fleet:
    control_report: MigrationReport
    report: MigrationReport
    tenants: list[uuid.UUID]
    batches_run_in_parent: int


@pytest.fixture(scope="module")
async def fleet(scratch: Scratch) -> Fleet:
    """A fresh database migrated as `jinji migrate` does on first start, then 20 tenants
    provisioned and migrated with the process pool."""
    control_report = await migrate_all(scratch.url, MIGRATIONS, workers=WORKERS)
    tenants = await scratch.provision(FLEET_SIZE)

    # Spawned workers import jinji.migrate afresh, so only batches migrated in this (parent)
    # process go through the wrapper: none may, with this many tenants pending.
    in_parent: list[Any] = []
    real_batch = migrate._migrate_batch_async

    async def counting_batch(*args: Any) -> tuple[int, dict[str, str]]:
        in_parent.append(args)
        return await real_batch(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(migrate, "_migrate_batch_async", counting_batch)
        report = await migrate_all(scratch.url, MIGRATIONS, workers=WORKERS)
    return Fleet(control_report, report, tenants, len(in_parent))


@dataclass
class CliResult:
    returncode: int
    summary: dict[str, Any]
    stderr: str


async def run_cli(url: str) -> CliResult:
    """`jinji migrate` as an operator (or the chart's migration Job) runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINJI_")}
    env["JINJI_DATABASE_URL"] = url
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "migrate",
        "--workers",
        str(WORKERS),
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    stdout, stderr = out.decode(), err.decode()
    lines = [line for line in stdout.splitlines() if line.strip()]
    # One JSON summary line on stdout (logs go to stderr), so scripts can parse it.
    assert len(lines) == 1, f"stdout: {stdout!r}\nstderr: {stderr}"
    assert proc.returncode is not None
    return CliResult(proc.returncode, json.loads(lines[0]), stderr)


async def test_control_schemas_then_twenty_tenants_migrate_in_worker_processes(
    scratch: Scratch, fleet: Fleet
) -> None:
    assert fleet.control_report.ok
    assert fleet.control_report.tenants_total == 0
    async with scratch.db.engine.connect() as conn:
        for component, schema in CONTROL_COMPONENTS:
            version = await conn.scalar(
                select(table("alembic_version", column("version_num"), schema=schema))
            )
            assert version == head_revision(MIGRATIONS, component), component
        tables = {
            (r[0], r[1])
            for r in await conn.execute(
                text(
                    "SELECT schemaname, tablename FROM pg_tables "
                    "WHERE schemaname IN ('outbox', 'tenancy', 'identity')"
                )
            )
        }
    assert {
        ("outbox", "messages"),
        ("tenancy", "tenants"),
        ("tenancy", "data_keys"),
        ("identity", "users"),
        ("identity", "signing_keys"),
    } <= tables

    # More tenants pending than IN_PROCESS_MAX and two workers: the process pool ran them.
    assert FLEET_SIZE > IN_PROCESS_MAX
    assert fleet.batches_run_in_parent == 0
    report = fleet.report
    assert report.ok, report.failures
    assert report.failures == {}
    assert report.tenants_total == FLEET_SIZE
    assert report.tenants_skipped == 0
    assert report.tenants_migrated == FLEET_SIZE

    versions = await scratch.versions(fleet.tenants)
    assert len(versions) == FLEET_SIZE
    assert TENANT_HEAD is not None
    assert set(versions.values()) == {TENANT_HEAD}

    # Migrations ran as each tenant's role: it owns every table in its schema.
    owners = await scratch.table_owners(fleet.tenants)
    for tenant_id in fleet.tenants:
        schema = tenancy.schema_name(tenant_id)
        assert set(owners[schema]) == TENANT_TABLES, schema
        assert set(owners[schema].values()) == {tenancy.role_name(tenant_id)}, schema


async def test_second_run_skips_every_tenant_at_head(scratch: Scratch, fleet: Fleet) -> None:
    total = len(await scratch.all_schemas())
    assert total >= FLEET_SIZE

    report = await migrate_all(scratch.url, MIGRATIONS, workers=WORKERS)
    assert report.ok, report.failures
    assert report.tenants_total == total
    assert report.tenants_skipped == total
    assert report.tenants_migrated == 0

    cli = await run_cli(scratch.url)
    assert cli.returncode == 0, cli.stderr
    assert cli.summary["ok"] is True
    assert cli.summary["tenants"] == total
    assert cli.summary["skipped_at_head"] == total
    assert cli.summary["migrated"] == 0
    assert cli.summary["failed"] == []
    assert isinstance(cli.summary["seconds"], (int, float))
    assert set((await scratch.versions(fleet.tenants)).values()) == {TENANT_HEAD}


async def test_failed_tenant_is_reported_and_the_next_run_resumes_it(
    scratch: Scratch, fleet: Fleet
) -> None:
    new = await scratch.provision(3)
    # The first pending schema (they run in name order): the two after it are migrated on
    # the same connection after its failure, so the run goes on past a failed tenant.
    broken = min(new, key=tenancy.schema_name)
    healthy = [t for t in new if t != broken]
    broken_schema = tenancy.schema_name(broken)
    await scratch.plant_conflicting_table(broken)
    total = len(await scratch.all_schemas())

    assert len(new) <= IN_PROCESS_MAX  # in-process path, one connection for the batch
    report = await migrate_all(scratch.url, MIGRATIONS, workers=WORKERS)
    assert report.ok is False
    assert set(report.failures) == {broken_schema}
    assert "uploads" in report.failures[broken_schema]
    assert report.tenants_total == total
    assert report.tenants_skipped == total - 3
    assert report.tenants_migrated == 2
    versions = await scratch.versions(new)
    assert versions[broken_schema] is None  # its transaction rolled back: nothing half-done
    assert {versions[tenancy.schema_name(t)] for t in healthy} == {TENANT_HEAD}
    # Tenants at head before the failed run are untouched.
    assert set((await scratch.versions(fleet.tenants)).values()) == {TENANT_HEAD}

    # Still broken: the command says so and exits non-zero (a deploy Job must fail).
    cli = await run_cli(scratch.url)
    assert cli.returncode == 1
    assert cli.summary["ok"] is False
    assert cli.summary["failed"] == [broken_schema]
    assert cli.summary["tenants"] == total
    assert cli.summary["skipped_at_head"] == total - 1
    assert cli.summary["migrated"] == 0
    assert broken_schema in cli.stderr  # logged for the operator

    # Fixed: the next run migrates exactly the one left behind.
    await scratch.remove_conflicting_table(broken)
    cli = await run_cli(scratch.url)
    assert cli.returncode == 0, cli.stderr
    assert cli.summary["ok"] is True
    assert cli.summary["failed"] == []
    assert cli.summary["migrated"] == 1
    assert cli.summary["skipped_at_head"] == total - 1
    assert (await scratch.versions([broken]))[broken_schema] == TENANT_HEAD
    owners = (await scratch.table_owners([broken]))[broken_schema]
    assert set(owners) == TENANT_TABLES
    assert set(owners.values()) == {tenancy.role_name(broken)}

    report = await migrate_all(scratch.url, MIGRATIONS, workers=WORKERS)
    assert report.ok is True
    assert report.failures == {}
    assert report.tenants_skipped == report.tenants_total == total
    assert report.tenants_migrated == 0


async def test_failure_in_a_worker_process_is_reported_and_resumed(
    scratch: Scratch, fleet: Fleet
) -> None:
    new = await scratch.provision(IN_PROCESS_MAX + 2)  # enough to use the process pool
    broken = sorted(new, key=tenancy.schema_name)[len(new) // 2]
    broken_schema = tenancy.schema_name(broken)
    await scratch.plant_conflicting_table(broken)

    report = await migrate_all(scratch.url, MIGRATIONS, workers=WORKERS)
    assert report.ok is False
    assert set(report.failures) == {broken_schema}
    assert "uploads" in report.failures[broken_schema]
    assert report.tenants_migrated == len(new) - 1
    versions = await scratch.versions(new)
    assert versions.pop(broken_schema) is None
    assert set(versions.values()) == {TENANT_HEAD}

    await scratch.remove_conflicting_table(broken)
    report = await migrate_all(scratch.url, MIGRATIONS, workers=WORKERS)
    assert report.ok is True
    assert report.tenants_migrated == 1
    assert (await scratch.versions([broken]))[broken_schema] == TENANT_HEAD


async def test_migrated_tenant_role_still_cannot_reach_another_tenant(
    scratch: Scratch, fleet: Fleet
) -> None:
    a, b = fleet.tenants[0], fleet.tenants[1]
    other = tenancy.schema_name(b)
    async with scratch.db.tenant_transaction(b) as tx:
        await tx.session.execute(
            text(
                "INSERT INTO uploads (id, kind, status, uploaded_by, size_bytes, sha256) "
                "VALUES (gen_random_uuid(), 'employees', 'accepted', gen_random_uuid(), 1, 'x')"
            )
        )
    # Its own tables are usable: the role that ran the migration owns them.
    async with scratch.db.tenant_transaction(a) as tx:
        assert await tx.session.scalar(text("SELECT count(*) FROM uploads")) == 0
    for name in ("uploads", "dataset_versions", "alembic_version"):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with scratch.db.tenant_transaction(a) as tx:
                await tx.session.execute(
                    select(func.count()).select_from(table(name, schema=other))
                )
    # The migrations granted nothing on tenant tables to anyone but their owner.
    schemas = [tenancy.schema_name(t) for t in fleet.tenants]
    async with scratch.db.engine.connect() as conn:
        foreign_grants = await conn.scalar(
            text(
                "SELECT count(*) FROM information_schema.role_table_grants "
                "WHERE table_schema = ANY(:s) AND grantee <> table_schema"
            ),
            {"s": schemas},
        )
    assert foreign_grants == 0
    async with scratch.db.tenant_transaction(b) as tx:
        assert await tx.session.scalar(text("SELECT count(*) FROM uploads")) == 1
