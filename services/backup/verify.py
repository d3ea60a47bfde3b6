"""Verification: a backup restored in full into a scratch database, then thrown away.

Checks, in order: every file's size and SHA-256 against the manifest, its decryption and
authentication, every table's row count (inside each schema's restore transaction), each
schema's migration revision against the one recorded, and that the result migrates to the
current code's head. Only a restore proves a backup (pg_verifybackup's documentation says the
same of its own checks). The scratch database and any tenant roles created for it (those of
tenants purged since) are dropped afterwards, whatever the outcome.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from jinji import tenancy
from jinji.keys import KeyProvider
from jinji.migrate import schema_revisions
from services.backup import database
from services.backup.pgtools import Tools
from services.backup.restore import Opened, code_heads, head_of, restore_all


async def _admin(server_url: str, *statements: str) -> None:
    engine = database.engine(server_url, "jinji-backup-verify")
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for sql in statements:
                await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def verify(
    server_url: str,
    opened: Opened,
    store: Any,
    provider: KeyProvider,
    tools: Tools,
    *,
    migrations_dir: Path,
    jobs: int = 2,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    name = f"jinji_verify_{secrets.token_hex(6)}"
    # The name is ours (hex); CREATE DATABASE takes no parameters.
    await _admin(server_url, f"CREATE DATABASE {tenancy.quote_ident(name)}")
    scratch = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    created_roles: list[str] = []
    try:
        report = await restore_all(
            scratch,
            store,
            provider,
            tools,
            backup_id=opened.manifest.id,
            migrations_dir=migrations_dir,
            jobs=jobs,
            work_dir=work_dir,
            opened=opened,
        )
        created_roles = report["created_roles"]
        engine = database.engine(scratch, "jinji-backup-verify")
        try:
            async with engine.connect() as conn:
                schemas = await database.jinji_schemas(conn)
                now = await schema_revisions(conn, schemas)
        finally:
            await engine.dispose()
        heads = code_heads(migrations_dir)
        not_at_head = sorted(s for s in schemas if now[s] != head_of(heads, s))
    finally:
        quoted = tenancy.quote_ident(name)
        await _admin(server_url, f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        if created_roles:
            drops = [f"DROP ROLE IF EXISTS {tenancy.quote_ident(r)}" for r in created_roles]
            await _admin(server_url, *drops)
    problems = [f"{s}: revision differs from the backup's" for s in report["revision_mismatches"]]
    problems += [f"{s}: not at head after migrating" for s in not_at_head]
    return {
        "ok": not problems,
        "backup": opened.manifest.id,
        "snapshot_at": opened.manifest.snapshot_at,
        "schemas": report["schemas"],
        "tenants": report["tenants"],
        "rows": report["rows"],
        "migrated_to_head": report["migrated_to_head"],
        "problems": problems,
        "restore_seconds": report["seconds"],
        "seconds": round(time.perf_counter() - started, 3),
    }
