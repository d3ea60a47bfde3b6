"""Benchmark: recovery time of a tenant with 1M dataset rows, and of the whole database.

Sets up a database as production has it (control schemas, platform keys, a tenant whose
employees dataset has 1M rows ingested through the real pipeline, and a few small tenants),
then measures in the same run:
- baseline: plain ``pg_restore --single-transaction`` of an unencrypted ``pg_dump`` of that
  tenant's schema into an empty database (no fetch, no checks, no swap);
- ``jinji backup run``: the consistent, encrypted backup of every schema;
- RTO of one tenant: ``jinji backup restore --tenant SLUG`` as an operator runs it (a new
  process: start-up, fetch, checksum, decrypt, swap-in-one-transaction, row checks);
- ``jinji backup restore --all`` into an empty database, and ``jinji backup verify``.

    .venv/bin/python bench/backup_restore.py --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _support
from ingest_employees import generate
from pydantic import SecretStr
from sqlalchemy import text

from jinji import tenancy
from jinji.config import REPO_ROOT
from jinji.db import Database
from jinji.migrate import migrate_all, upgrade_tenant
from jinji.runtime import key_provider, make_envelope
from services import bootstrap
from services.backup.pgtools import find_tools, libpq
from services.backup.settings import BackupSettings

MIGRATIONS = REPO_ROOT / "migrations"


async def add_tenant(db: Database, settings: BackupSettings, slug: str) -> uuid.UUID:
    """A tenant as provisioning leaves it: role, schema at head, KEK, DEK, tenancy row."""
    tenant_id = uuid.uuid4()
    async with db.engine.connect() as conn:
        await tenancy.provision(conn, tenant_id)
        await conn.commit()
        await upgrade_tenant(conn, MIGRATIONS, tenant_id)
    kek = await asyncio.to_thread(key_provider(settings).create, str(tenant_id))
    async with db.transaction() as s:
        await s.execute(
            text(
                "INSERT INTO tenancy.tenants (id, slug, name, status, kek_ref) "
                "VALUES (:id, :slug, 'bench', 'active', :kek)"
            ),
            {"id": tenant_id, "slug": slug, "kek": kek},
        )
    await make_envelope(settings, db).create_dek(str(tenant_id), kek)
    return tenant_id


async def ingest(db: Database, settings: BackupSettings, tenant_id: uuid.UUID, csv: Path) -> None:
    from services.ingestion import pipeline, reading, store, validate

    checks = validate.Context((2024, 4), frozenset({"HQ"}), None, False)
    size = await asyncio.to_thread(lambda: csv.stat().st_size)
    validated = await asyncio.to_thread(
        pipeline.read_and_validate, csv, "e.csv", "employees", None, checks, reading.Limits()
    )
    await store.commit(
        db,
        make_envelope(settings, db),
        tenant_id=tenant_id,
        kind="employees",
        validated=validated,
        file_sha256=uuid.uuid4().hex * 2,
        size_bytes=size,
        uploaded_by=uuid.uuid4(),
    )


async def prepare(url: str, settings: BackupSettings, rows: int, others: int, work: Path) -> str:
    report = await migrate_all(url, MIGRATIONS, workers=1)
    assert report.ok, report.failures
    await bootstrap.run(settings)
    db = Database(url, pool_size=2)
    try:
        big = await add_tenant(db, settings, "big")
        csv = work / "employees.csv"
        generate(csv, rows)
        await ingest(db, settings, big, csv)
        small = work / "small.csv"
        generate(small, 200)
        for i in range(others):
            await ingest(db, settings, await add_tenant(db, settings, f"small{i}"), small)
        csv.unlink()
    finally:
        await db.dispose()
    return tenancy.schema_name(big)


def plain_restore_s(server_url: str, url: str, schema: str, work: Path) -> tuple[float, int]:
    """pg_dump | pg_restore of the schema, unencrypted, into an empty database: the floor."""
    tools = find_tools()
    source = libpq(url, "bench")
    archive = work / "plain.pgdump"
    subprocess.run(  # noqa: S603 - our own binaries, argv lists
        [tools.pg_dump, "--format=custom", f'--schema="{schema}"', f"--file={archive}", source.dsn],
        env=source.env,
        check=True,
    )
    name, target_url = asyncio.run(_support.create_database(server_url))
    try:
        target = libpq(target_url, "bench")
        started = time.perf_counter()
        subprocess.run(  # noqa: S603
            [
                tools.pg_restore,
                "--single-transaction",
                "--exit-on-error",
                "-d",
                target.dsn,
                archive,
            ],
            env=target.env,
            check=True,
        )
        return time.perf_counter() - started, archive.stat().st_size
    finally:
        asyncio.run(_support.admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def cli(settings: BackupSettings, *args: str) -> tuple[float, dict[str, Any]]:
    assert settings.database_url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINJI_")}
    env.update(
        JINJI_DATABASE_URL=settings.database_url.get_secret_value(),
        JINJI_DATA_DIR=str(settings.data_dir),
        JINJI_BACKUP_STORE=str(settings.backup_store),
    )
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own CLI, argv list
        [sys.executable, "-m", "services.cli", "backup", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"], result
    return seconds, result


def main(server_url: str, rows: int, others: int, work: Path) -> dict[str, Any]:
    name, url = asyncio.run(_support.create_database(server_url))
    tenants: list[str] = []
    empty_name = ""
    try:
        settings = BackupSettings(
            database_url=SecretStr(url),
            data_dir=work / "data",
            backup_store=str(work / "store"),
        )
        started = time.perf_counter()
        schema = asyncio.run(prepare(url, settings, rows, others, work))
        setup_s = time.perf_counter() - started
        tenants = [s.removeprefix("t_") for s in _schemas(url)]
        baseline_s, plain_bytes = plain_restore_s(server_url, url, schema, work)

        backup_s, backup = cli(settings, "run", "--no-prune")
        tenant_s, restored = cli(settings, "restore", "--tenant", "big")
        empty_name, empty_url = asyncio.run(_support.create_database(server_url))
        all_s, everything = cli(
            settings.model_copy(update={"database_url": SecretStr(empty_url)}), "restore", "--all"
        )
        verify_s, verified = cli(settings, "verify")
    finally:
        if empty_name:
            asyncio.run(_support.admin(server_url, f'DROP DATABASE IF EXISTS "{empty_name}"'))
        asyncio.run(_support.drop_database(server_url, name, [uuid.UUID(hex=t) for t in tenants]))
    return {
        "benchmark": "backup_restore",
        "dataset_rows": rows,
        "tenants": others + 1,
        "setup_s": round(setup_s, 1),
        "tenant_schema_mb": round(plain_bytes / 1e6, 1),
        "backup_mb": round(backup["bytes"] / 1e6, 1),
        "backup_s": round(backup_s, 2),
        "plain_pg_restore_s": round(baseline_s, 2),
        "rto_tenant_s": round(tenant_s, 2),
        "rto_tenant_in_process_s": restored["seconds"],
        "restore_tenant_vs_plain_pg_restore": round(restored["seconds"] / baseline_s, 2),
        "restore_all_s": round(all_s, 2),
        "restore_all_in_process_s": everything["seconds"],
        "verify_s": round(verify_s, 2),
        "verify_in_process_s": verified["seconds"],
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def _schemas(url: str) -> list[str]:
    async def read() -> list[str]:
        db = Database(url, pool_size=1)
        try:
            async with db.engine.connect() as conn:
                return await tenancy.list_tenant_schemas(conn)
        finally:
            await db.dispose()

    return asyncio.run(read())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--other-tenants", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jinji-bench-backup-"))
    try:
        with _support.server(work) as server_url:
            result = main(server_url, args.rows, args.other_tenants, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
