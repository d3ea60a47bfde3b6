"""Taking a backup: one consistent snapshot, each schema dumped to its own encrypted file.

A coordinator transaction (REPEATABLE READ, read only) exports its snapshot; every
``pg_dump --snapshot`` then sees exactly the same database state, however long the run takes
and whatever commits meanwhile, and the row counts in the manifest are read in that same
snapshot. One file per schema is what lets a single tenant be restored without the others.
The schemas are dumped ``jobs`` at a time; each file is streamed from ``pg_dump`` through
AES-GCM into the store, so neither memory nor local disk grows with the database.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jinji import tenancy
from jinji.keys import KeyProvider
from jinji.migrate import CONTROL_COMPONENTS, TENANT_COMPONENT, head_revision, schema_revisions
from services.backup import database, sealing
from services.backup.errors import BackupError
from services.backup.manifest import KeyInfo, Manifest, SchemaFile, SchemaKind, dumps
from services.backup.pgtools import Connection, Tools, libpq
from services.backup.store import MANIFEST, Store

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# Tenant schemas hold mostly ciphertext, which does not compress: a light level saves CPU.
_COMPRESS: dict[SchemaKind, str] = {"control": "gzip:6", "tenant": "gzip:1"}


def new_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def file_name(schema: str) -> str:
    return f"{schema}.pgdump.jbk"


def _dump_schema(
    tools: Tools,
    db: Connection,
    snapshot: str,
    schema: str,
    kind: SchemaKind,
    store: Store,
    backup_id: str,
    key: bytes,
) -> tuple[int, int, str, str]:
    """pg_dump one schema into the store; return dump size, stored size and both SHA-256."""
    name = file_name(schema)
    argv = [
        tools.pg_dump,
        "--format=custom",
        f"--compress={_COMPRESS[kind]}",
        f"--snapshot={snapshot}",
        # Double quotes: the exact name, not a pattern.
        f'--schema="{schema}"',
        "--lock-wait-timeout=60s",
        f"--dbname={db.dsn}",
    ]
    sealer = sealing.Sealer(key, backup_id, name)
    dump_hash, stored_hash = hashlib.sha256(), hashlib.sha256()
    dump_bytes = stored_bytes = 0
    writer = store.writer(backup_id, name)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(  # noqa: S603 - pg_dump, argv list, no shell
            argv, stdout=subprocess.PIPE, stderr=errors, env=db.env
        )
        assert proc.stdout is not None
        try:
            while True:
                chunk = proc.stdout.read(_CHUNK)
                sealed = sealer.feed(chunk) if chunk else sealer.finish()
                dump_hash.update(chunk)
                dump_bytes += len(chunk)
                stored_hash.update(sealed)
                stored_bytes += len(sealed)
                writer.write(sealed)
                if not chunk:
                    break
            if proc.wait() != 0:
                errors.seek(0)
                message = errors.read().decode(errors="replace").strip()[-1500:]
                raise BackupError(f"pg_dump of schema {schema} failed: {message}")
            writer.commit()
        except BaseException:
            proc.kill()
            proc.wait()
            writer.abort()
            raise
    return dump_bytes, stored_bytes, stored_hash.hexdigest(), dump_hash.hexdigest()


async def _platform_key(conn: AsyncConnection) -> tuple[str, str]:
    row = (
        await conn.execute(
            text("SELECT id, kek_ref FROM tenancy.tenants WHERE slug = :s"),
            {"s": tenancy.PLATFORM_TENANT_SLUG},
        )
    ).first()
    if row is None or row.kek_ref is None:
        # Never a plaintext backup instead: no key, no backup.
        raise BackupError("the platform tenant has no KEK yet: run the bootstrap (jinji up) first")
    return str(row.kek_ref), str(row.id)


_SNAPSHOT_RE = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


@asynccontextmanager
async def _in_snapshot(engine: AsyncEngine, snapshot: str) -> AsyncIterator[AsyncConnection]:
    """A read-only transaction that sees exactly the exported snapshot (as pg_dump's do).

    One per schema, so the locks that counting takes are held by one schema at a time:
    holding them on every table of thousands of tenants at once would exhaust the server's
    lock table (max_locks_per_transaction), as a whole-database pg_dump can.
    """
    if not _SNAPSHOT_RE.fullmatch(snapshot):
        raise BackupError(f"unexpected snapshot id {snapshot!r}")
    async with engine.connect() as plain:
        conn = await plain.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        async with conn.begin():
            # Must be the transaction's first statement; it takes no parameters, and the
            # id was checked above.
            await conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            yield conn


async def _exists(engine: AsyncEngine, schema: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": schema}
        )
    return found is not None


async def take(
    url: str,
    store: Store,
    provider: KeyProvider,
    tools: Tools,
    *,
    migrations_dir: Path,
    jobs: int = 2,
    clock: Callable[[], datetime],
) -> Manifest:
    started = clock()
    backup_id = new_id(started)
    await asyncio.to_thread(store.check_writable)
    db = libpq(url, "jinji-backup", tools)
    engine = database.engine(url, "jinji-backup")
    t0 = time.perf_counter()
    try:
        async with engine.connect() as plain:
            conn = await plain.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            async with conn.begin():
                snapshot = str(await conn.scalar(text("SELECT pg_export_snapshot()")))
                # now() is the transaction's start: the moment the backup shows.
                snapshot_at = await conn.scalar(text("SELECT now()"))
                server = str(await conn.scalar(text("SHOW server_version")))
                name = str(await conn.scalar(text("SELECT current_database()")))
                kek_ref, owner = await _platform_key(conn)
                schemas = await database.jinji_schemas(conn)
                key = sealing.new_key()
                wrapped = await asyncio.to_thread(sealing.wrap_key, provider, kek_ref, owner, key)
                limit = asyncio.Semaphore(jobs)
                skipped: list[dict[str, str]] = []

                async def one(schema: str) -> SchemaFile | None:
                    kind: SchemaKind = "tenant" if schema.startswith("t_") else "control"
                    async with limit, _in_snapshot(engine, snapshot) as facts:
                        try:
                            # Counted in the dump's snapshot; the locks this takes keep the
                            # schema from being dropped until its dump is done.
                            counts = await database.row_counts(facts, [schema])
                            revision = (await schema_revisions(facts, [schema]))[schema]
                        except DBAPIError:
                            if await _exists(engine, schema):
                                raise
                            # A purge dropped it after the snapshot: it is not backed up.
                            skipped.append({"schema": schema, "reason": "dropped during backup"})
                            return None
                        dump_bytes, stored, sha, dump_sha = await asyncio.to_thread(
                            _dump_schema, tools, db, snapshot, schema, kind, store, backup_id, key
                        )
                    return SchemaFile(
                        schema=schema,
                        kind=kind,
                        file=file_name(schema),
                        revision=revision,
                        rows=counts[schema],
                        dump_bytes=dump_bytes,
                        stored_bytes=stored,
                        sha256=sha,
                        dump_sha256=dump_sha,
                    )

                # Every dump is let finish (or fail) before an error is raised: a dump still
                # writing in its thread would put files back into a backup being removed.
                done = await asyncio.gather(*(one(s) for s in schemas), return_exceptions=True)
                for outcome in done:
                    if isinstance(outcome, BaseException):
                        raise outcome
                files = [f for f in done if isinstance(f, SchemaFile)]
        heads = {c: head_revision(migrations_dir, c) for c, _ in CONTROL_COMPONENTS}
        heads[TENANT_COMPONENT] = head_revision(migrations_dir, TENANT_COMPONENT)
        manifest = Manifest(
            id=backup_id,
            created_at=started.isoformat(),
            snapshot_at=snapshot_at.isoformat() if snapshot_at else started.isoformat(),
            finished_at=clock().isoformat(),
            database=name,
            postgresql={"server": server, "pg_dump": tools.version()},
            migration_heads=heads,
            key=KeyInfo(kek_ref=kek_ref, owner=owner, wrapped=base64.b64encode(wrapped).decode()),
            schemas=files,
            skipped=skipped,
        )
        # Last: a backup without its manifest is incomplete and is never restored from.
        await asyncio.to_thread(store.put, backup_id, MANIFEST, dumps(manifest, key))
    except BaseException:
        # Whatever was written of this backup goes; an older complete one is never touched.
        try:
            await asyncio.to_thread(store.delete, backup_id)
        except Exception:
            log.warning("could not remove the incomplete backup", extra={"backup": backup_id})
        raise
    finally:
        await engine.dispose()
    log.info(
        "backup taken",
        extra={
            "backup": backup_id,
            "schemas": len(files),
            "bytes": manifest.stored_bytes,
            "seconds": round(time.perf_counter() - t0, 3),
        },
    )
    return manifest
