"""Benchmark: audit-log intake and verification.

Records N events in batches (the path the HTTP intake takes, minus HTTP) and verifies the
stream; baselines measured in the same run: inserting the same rows into a plain table
with no hashing, locking or checkpoints, and SHA-256 over the same bytes alone.

    .venv/bin/python bench/audit_log.py --events 20000 --batch 500
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _support
from pydantic import SecretStr
from sqlalchemy import text

from jinji.config import REPO_ROOT
from jinji.db import Database
from jinji.migrate import migrate_all
from services import bootstrap
from services.audit_log import log
from services.audit_log.context import LazyAuditLog
from services.audit_log.events import EventIn
from services.audit_log.routes import stream_material
from services.audit_log.settings import AuditLogSettings
from services.identity.settings import IdentitySettings


def make_events(count: int, tenant: uuid.UUID) -> list[EventIn]:
    now = datetime.now(UTC)
    return [
        EventIn.model_validate(
            {
                "id": str(uuid.uuid4()),
                "occurred_at": now.isoformat(),
                "service": "identity",
                "action": "identity.login.succeeded",
                "outcome": "success",
                "actor": {"type": "user", "id": str(uuid.uuid4())},
                "tenant_id": str(tenant),
                "target": {"type": "session", "id": str(uuid.uuid4())},
                "source_ip": "192.0.2.10",
                "details": {"amr": "pwd otp mfa"},
            }
        )
        for _ in range(count)
    ]


async def bench(url: str, data_dir: Path, count: int, batch: int) -> dict[str, Any]:
    await migrate_all(url, REPO_ROOT / "migrations", workers=1)
    await bootstrap.run(IdentitySettings(database_url=SecretStr(url), data_dir=data_dir))
    settings = AuditLogSettings(database_url=SecretStr(url), data_dir=data_dir)
    db = Database(url, pool_size=2)
    try:
        ctx = await LazyAuditLog(settings, db).get()
        tenant = uuid.uuid4()
        items = make_events(count, tenant)
        started = time.perf_counter()
        for i in range(0, count, batch):
            async with db.transaction() as s:
                await log.append(
                    s,
                    items[i : i + batch],
                    checkpoint_every=settings.checkpoint_every,
                    signer=ctx.signer,
                )
        ingest_s = time.perf_counter() - started

        bodies = [log.canonical(e.model_dump(mode="json")) for e in items]
        async with db.transaction() as s:
            await s.execute(text("CREATE TABLE public.bench_plain (id uuid, body bytea)"))
        started = time.perf_counter()
        for i in range(0, count, batch):
            async with db.transaction() as s:
                await s.execute(
                    text("INSERT INTO public.bench_plain VALUES (:id, :body)"),
                    [
                        {"id": e.id, "body": b}
                        for e, b in zip(items[i : i + batch], bodies[i : i + batch], strict=True)
                    ],
                )
        plain_s = time.perf_counter() - started

        started = time.perf_counter()
        material = await stream_material(ctx, str(tenant))
        result = log.verify_stream(str(tenant), material.rows, material.signed, material.public)
        rows = material.rows
        verify_s = time.perf_counter() - started
        if not result.ok:
            raise RuntimeError(f"verification failed: {result}")
        started = time.perf_counter()
        for _, body, _ in rows:
            hashlib.sha256(b"\x00" + body).digest()
        hash_s = time.perf_counter() - started
    finally:
        await db.dispose()
    return {
        "benchmark": "audit_log",
        "events": count,
        "batch": batch,
        "ingest_events_per_s": round(count / ingest_s),
        "plain_insert_events_per_s": round(count / plain_s),
        "ingest_vs_plain_insert": round(plain_s / ingest_s, 2),
        "verify_events_per_s": round(count / verify_s),
        "sha256_only_events_per_s": round(count / hash_s),
        "verify_vs_sha256_only": round(hash_s / verify_s, 3),
    }


async def with_database(server_url: str, data_dir: Path, count: int, batch: int) -> dict[str, Any]:
    name, url = await _support.create_database(server_url)
    try:
        return await bench(url, data_dir, count, batch)
    finally:
        await _support.drop_database(server_url, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="jinji-bench-audit-"))
    try:
        with _support.server(data_dir) as server_url:
            result = asyncio.run(with_database(server_url, data_dir, args.events, args.batch))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(result))
