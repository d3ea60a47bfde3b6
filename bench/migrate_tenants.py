"""Benchmark: `jinji migrate` over many tenant schemas.

Provisions N tenant schemas in a scratch database, then measures, in the same run:
sequential migration (1 worker, the baseline), parallel migration (W worker processes) and a
second pass that finds every schema at head. Prints one JSON object.

    .venv/bin/python bench/migrate_tenants.py --tenants 1000 --workers 2

Uses the server in JINJI_TEST_DATABASE_URL when set, else an embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import _support
from sqlalchemy.ext.asyncio import create_async_engine

from jinji import tenancy
from jinji.config import REPO_ROOT
from jinji.db import async_url
from jinji.migrate import migrate_all

MIGRATIONS = REPO_ROOT / "migrations"


async def _fleet(server_url: str, tenants: int) -> tuple[str, str, list[uuid.UUID]]:
    name, url = await _support.create_database(server_url)
    await migrate_all(url, MIGRATIONS, workers=1)
    ids = [uuid.uuid4() for _ in range(tenants)]
    engine = create_async_engine(async_url(url))
    async with engine.connect() as conn:
        for tenant_id in ids:
            await tenancy.provision(conn, tenant_id)
        await conn.commit()
    await engine.dispose()
    return name, url, ids


async def _measure(server_url: str, tenants: int, workers: int) -> dict[str, float]:
    name, url, ids = await _fleet(server_url, tenants)
    try:
        started = time.perf_counter()
        first = await migrate_all(url, MIGRATIONS, workers=workers, control=False)
        migrate_s = time.perf_counter() - started
        started = time.perf_counter()
        second = await migrate_all(url, MIGRATIONS, workers=workers, control=False)
        rerun_s = time.perf_counter() - started
        if not first.ok or first.tenants_migrated != tenants:
            raise RuntimeError(f"migration incomplete: {first}")
        if second.tenants_skipped != tenants:
            raise RuntimeError(f"second pass did not skip every tenant: {second}")
        return {"migrate_s": round(migrate_s, 3), "rerun_s": round(rerun_s, 3)}
    finally:
        await _support.drop_database(server_url, name, ids)


async def main(tenants: int, workers: int, server_url: str) -> dict[str, object]:
    sequential = await _measure(server_url, tenants, 1)
    parallel = await _measure(server_url, tenants, workers)
    return {
        "benchmark": "migrate_tenants",
        "tenants": tenants,
        "workers": workers,
        "cpus": os.cpu_count(),
        "sequential": sequential,
        "parallel": parallel,
        "speedup_parallel_vs_sequential": round(sequential["migrate_s"] / parallel["migrate_s"], 2),
        "rerun_vs_migrate": round(parallel["rerun_s"] / parallel["migrate_s"], 4),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jinji-bench-"))
    try:
        with _support.server(work) as server_url:
            result = asyncio.run(main(args.tenants, args.workers, server_url))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
