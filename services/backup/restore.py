"""Restoring: one tenant's schema in place, or every schema into an empty database.

Nothing is changed before every file needed has been read back, checked against the
manifest's SHA-256 and size, and decrypted and authenticated into a private work directory.

Each schema is then restored in one transaction: ``pg_restore`` turns the archive into SQL
and ``psql`` runs it between our own ``BEGIN`` and ``COMMIT``. For a tenant restored in
place, that transaction first renames the tenant's current schema aside, and ends by checking
every table's row count against the manifest and dropping the aside schema: either all of it
commits, or PostgreSQL rolls all of it back and the tenant's current data is as it was. No
other schema is touched. ``COMMIT`` is written only after ``pg_restore`` has exited cleanly;
on any failure ``psql`` is killed, so a half-read archive can never be committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from jinji import tenancy
from jinji.keys import KeyProvider
from jinji.migrate import (
    TENANT_COMPONENT,
    head_revision,
    migrate_all,
    schema_revisions,
    upgrade_tenant,
)
from services.backup import database, sealing
from services.backup.errors import (
    BackupCorrupt,
    BackupError,
    BackupNotFound,
    RestoreFailed,
    RestoreRefused,
    StoreFull,
)
from services.backup.manifest import Manifest, SchemaFile, check, parse
from services.backup.pgtools import Connection, Tools, libpq
from services.backup.store import MANIFEST, Store

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
LOCK_TIMEOUT = "60s"


@dataclass(frozen=True)
class Opened:
    """A backup whose manifest has been authenticated with its unwrapped key."""

    manifest: Manifest
    key: bytes


def complete_ids(store: Store) -> list[str]:
    """Backups that have a manifest, newest first."""
    return [i for i in reversed(store.backup_ids()) if store.exists(i, MANIFEST)]


def open_backup(store: Store, provider: KeyProvider, backup_id: str) -> Opened:
    try:
        raw = store.get(backup_id, MANIFEST)
    except BackupNotFound:
        raise BackupNotFound(
            f"backup {backup_id} does not exist in {store.description} or is incomplete"
        ) from None
    manifest, seal = parse(raw, backup_id)
    try:
        key = sealing.unwrap_key(
            provider, manifest.key.kek_ref, manifest.key.owner, manifest.key.wrapped_bytes()
        )
        check(manifest, seal, key)
    except BackupError as exc:
        raise type(exc)(f"backup {backup_id}: {exc}") from None
    return Opened(manifest, key)


def select_backup(
    store: Store,
    provider: KeyProvider,
    backup_id: str | None,
    want: Callable[[Manifest], bool] = lambda m: True,
    what: str = "",
) -> Opened:
    """The given backup, or the newest complete one for which ``want`` holds."""
    if backup_id is not None:
        opened = open_backup(store, provider, backup_id)
        if not want(opened.manifest):
            raise BackupNotFound(f"backup {backup_id} holds no {what}")
        return opened
    for candidate in complete_ids(store):
        manifest, _ = parse(store.get(candidate, MANIFEST), candidate)
        if want(manifest):
            return open_backup(store, provider, candidate)
    raise BackupNotFound(f"no complete backup in {store.description} holds {what or 'anything'}")


@contextlib.contextmanager
def workspace(base: Path | None) -> Iterator[Path]:
    """A private directory (mode 700) for decrypted archives, removed afterwards."""
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="jinji-restore-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fetch(store: Store, opened: Opened, entry: SchemaFile, dest: Path) -> None:
    """Read one file back, check it against the manifest, decrypt it to ``dest``."""
    manifest = opened.manifest
    opener = sealing.Opener(opened.key, manifest.id, entry.file)
    stored_hash, dump_hash = hashlib.sha256(), hashlib.sha256()
    stored = 0
    failed: BackupCorrupt | None = None
    try:
        with dest.open("xb") as out:
            dest.chmod(0o600)
            for chunk in store.read(manifest.id, entry.file):
                stored += len(chunk)
                stored_hash.update(chunk)
                if failed is None:
                    try:
                        plain = opener.feed(chunk)
                    except BackupCorrupt as exc:
                        # Read on: a changed file is better reported by its checksum.
                        failed = exc
                        continue
                    dump_hash.update(plain)
                    out.write(plain)
            if stored != entry.stored_bytes:
                raise BackupCorrupt(
                    f"{entry.file} has {stored} bytes, the manifest recorded "
                    f"{entry.stored_bytes} (truncated or extended)"
                )
            if stored_hash.hexdigest() != entry.sha256:
                raise BackupCorrupt(
                    f"{entry.file} does not match its SHA-256 in the manifest (the stored file "
                    "was changed)"
                )
            if failed is not None:
                raise failed
            plain = opener.finish()
            dump_hash.update(plain)
            out.write(plain)
        if dump_hash.hexdigest() != entry.dump_sha256:
            raise BackupCorrupt(f"{entry.file} decrypts to another dump than the one recorded")
    except BackupCorrupt as exc:
        raise BackupCorrupt(f"backup {manifest.id}: {exc}") from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreFull(
                f"work directory {dest.parent} is full ({exc.strerror}) while decrypting "
                f"{entry.file}; set JINJI_BACKUP_WORK_DIR to a larger volume"
            ) from None
        raise


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _row_checks(entry: SchemaFile) -> str:
    """A DO block that aborts the transaction if any table's rows differ from the manifest."""
    lines = ["DO $jinji_rows$", "DECLARE n bigint;", "BEGIN"]
    for name, expected in sorted(entry.rows.items()):
        qualified = f"{tenancy.quote_ident(entry.schema)}.{tenancy.quote_ident(name)}"
        # Quoted names from an authenticated manifest; DO blocks take no parameters.
        lines.append(f"  SELECT count(*) INTO n FROM {qualified};")  # noqa: S608
        lines.append(
            f"  IF n <> {int(expected)} THEN RAISE EXCEPTION 'restored table % has % rows, the "
            f"backup recorded %', {_literal(entry.schema + '.' + name)}, n, {int(expected)}; "
            "END IF;"
        )
    lines += ["END", "$jinji_rows$;", ""]
    return "\n".join(lines)


def restore_schema(
    tools: Tools,
    db: Connection,
    archive: Path,
    entry: SchemaFile,
    *,
    aside: str | None,
    server_version_num: int,
) -> None:
    """Restore one schema in one transaction (see the module docstring)."""
    prologue = ["BEGIN;", f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';"]
    if aside is not None:
        prologue.append(
            f"ALTER SCHEMA {tenancy.quote_ident(entry.schema)} "
            f"RENAME TO {tenancy.quote_ident(aside)};"
        )
    epilogue = [f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}';", _row_checks(entry)]
    if aside is not None:
        epilogue.append(f"DROP SCHEMA {tenancy.quote_ident(aside)} CASCADE;")
    epilogue.append("COMMIT;")
    restore_argv = [tools.pg_restore, "--file=-"]
    if entry.kind == "control":
        # Control schemas belong to whoever restores them (the service role); tenant schemas
        # keep their tenant role as owner, the isolation wall.
        restore_argv.append("--no-owner")
    restore_argv.append(str(archive))
    psql_argv = [tools.psql, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", db.dsn]
    with tempfile.TemporaryFile() as psql_err, tempfile.TemporaryFile() as restore_err:
        psql = subprocess.Popen(  # noqa: S603 - psql, argv list, no shell
            psql_argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_err, env=db.env
        )
        source = subprocess.Popen(  # noqa: S603 - pg_restore, argv list, no shell
            restore_argv, stdout=subprocess.PIPE, stderr=restore_err, env=db.env
        )
        assert psql.stdin is not None
        assert source.stdout is not None
        committed = False
        try:
            psql.stdin.write(("\n".join(prologue) + "\n").encode())
            first = True
            while chunk := source.stdout.read(_CHUNK):
                if first and server_version_num < 170000:
                    # pg_restore 17+ writes this setting into every script; older servers
                    # do not know it. It is in the header, so the first chunk holds it.
                    chunk = chunk.replace(b"\nSET transaction_timeout = 0;\n", b"\n", 1)
                first = False
                psql.stdin.write(chunk)
            if source.wait() != 0:
                restore_err.seek(0)
                message = restore_err.read().decode(errors="replace").strip()[-1500:]
                raise RestoreFailed(f"pg_restore of {entry.file} failed: {message}")
            psql.stdin.write(("\n".join(epilogue) + "\n").encode())
            psql.stdin.close()
            committed = True
        except BrokenPipeError:
            pass  # psql stopped at an error: its own message is reported below
        finally:
            if not committed:
                # Killed before COMMIT: the server rolls the transaction back.
                psql.kill()
            if source.poll() is None:
                source.kill()
            source.wait()
            code = psql.wait()
        if not committed or code != 0:
            psql_err.seek(0)
            message = psql_err.read().decode(errors="replace").strip()[-1500:]
            raise RestoreFailed(
                f"restoring schema {entry.schema} failed and was rolled back: "
                f"{message or 'psql stopped'}"
            )


async def _schema_exists(conn: Any, schema: str) -> bool:
    found = await conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": schema})
    return found is not None


async def restore_tenant(
    url: str,
    store: Store,
    provider: KeyProvider,
    tools: Tools,
    *,
    tenant: str,
    backup_id: str | None,
    migrations_dir: Path,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Replace one tenant's schema with its copy in a backup; no other schema is touched."""
    started = time.perf_counter()
    db = libpq(url, "jinji-restore", tools)
    engine = database.engine(url, "jinji-restore")
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT id, slug, status, purged_at FROM tenancy.tenants "
                        "WHERE slug = :t OR id::text = :t"
                    ),
                    {"t": tenant},
                )
            ).first()
            version_num = await database.server_version_num(conn)
        if row is None:
            raise RestoreRefused(f"no tenant {tenant!r} in this database")
        tenant_id, slug = uuid.UUID(str(row.id)), str(row.slug)
        if row.status == "purged":
            when = f" on {row.purged_at:%Y-%m-%d}" if row.purged_at else ""
            raise RestoreRefused(
                f"tenant {slug} was purged{when}: its key-encryption key is destroyed, so a "
                "backup of it holds only ciphertext nobody can decrypt; it is not restored"
            )
        schema = tenancy.schema_name(tenant_id)
        opened = await asyncio.to_thread(
            select_backup,
            store,
            provider,
            backup_id,
            lambda m: m.tenant(tenant_id) is not None,
            f"schema of tenant {slug}",
        )
        entry = opened.manifest.tenant(tenant_id)
        assert entry is not None
        with workspace(work_dir) as work:
            archive = work / entry.file
            await asyncio.to_thread(fetch, store, opened, entry, archive)
            async with engine.connect() as conn:
                await database.ensure_roles(conn, [tenant_id])
                exists = await _schema_exists(conn, schema)
                await conn.commit()
            aside = f"r_{tenant_id.hex}_{secrets.token_hex(3)}" if exists else None
            await asyncio.to_thread(
                restore_schema,
                tools,
                db,
                archive,
                entry,
                aside=aside,
                server_version_num=version_num,
            )
        migrated = False
        if entry.revision != head_revision(migrations_dir, TENANT_COMPONENT):
            async with engine.connect() as conn:
                await upgrade_tenant(conn, migrations_dir, tenant_id)
            migrated = True
    finally:
        await engine.dispose()
    return {
        "tenant": slug,
        "tenant_id": str(tenant_id),
        "backup": opened.manifest.id,
        "snapshot_at": opened.manifest.snapshot_at,
        "rows": entry.rows,
        "migrated_to_head": migrated,
        "seconds": round(time.perf_counter() - started, 3),
    }


async def restore_all(
    url: str,
    store: Store,
    provider: KeyProvider,
    tools: Tools,
    *,
    backup_id: str | None,
    migrations_dir: Path,
    jobs: int = 2,
    work_dir: Path | None = None,
    opened: Opened | None = None,
) -> dict[str, Any]:
    """Every schema of a backup into an empty database (disaster recovery, verification).

    All or nothing: if a schema fails, those already restored are dropped again (and the
    tenant roles this call created), leaving the database empty as it was.
    """
    started = time.perf_counter()
    if opened is None:
        opened = await asyncio.to_thread(select_backup, store, provider, backup_id)
    manifest = opened.manifest
    engine = database.engine(url, "jinji-restore")
    created_roles: list[str] = []
    restored: list[str] = []
    try:
        async with engine.connect() as conn:
            present = await database.jinji_schemas(conn)
            version_num = await database.server_version_num(conn)
        if present:
            shown = ", ".join(present[:5]) + (" ..." if len(present) > 5 else "")
            raise RestoreRefused(
                f"the target database is not empty (it has {shown}): --all restores only into "
                "an empty database; to restore one tenant use --tenant"
            )
        db = libpq(url, "jinji-restore", tools)
        limit = asyncio.Semaphore(jobs)
        with workspace(work_dir) as work:

            async def fetched(entry: SchemaFile) -> None:
                async with limit:
                    await asyncio.to_thread(fetch, store, opened, entry, work / entry.file)

            # Every file read back and authenticated before the database is touched.
            await asyncio.gather(*(fetched(e) for e in manifest.schemas))
            tenant_ids = [e.tenant_id for e in manifest.schemas if e.tenant_id is not None]
            async with engine.connect() as conn:
                created_roles = await database.ensure_cluster_roles(conn)
                created_roles += await database.ensure_roles(conn, tenant_ids)
                await conn.commit()

            async def one(entry: SchemaFile) -> None:
                async with limit:
                    await asyncio.to_thread(
                        restore_schema,
                        tools,
                        db,
                        work / entry.file,
                        entry,
                        aside=None,
                        server_version_num=version_num,
                    )
                restored.append(entry.schema)

            # Control schemas in dependency order, then the tenants side by side.
            for entry in manifest.schemas:
                if entry.kind == "control":
                    await one(entry)
            results = await asyncio.gather(
                *(one(e) for e in manifest.schemas if e.kind == "tenant"), return_exceptions=True
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]
    except BaseException:
        async with engine.connect() as conn:
            for schema in reversed(restored):
                quoted = tenancy.quote_ident(schema)
                await conn.execute(text(f"DROP SCHEMA IF EXISTS {quoted} CASCADE"))
            await database.drop_roles(conn, created_roles)
            await conn.commit()
        await engine.dispose()
        raise
    async with engine.connect() as conn:
        as_restored = await schema_revisions(conn, restored)
    await engine.dispose()
    # What was restored is what was dumped, down to each schema's migration revision.
    mismatched = sorted(s for s in restored if as_restored[s] != _recorded(manifest, s))
    heads = code_heads(migrations_dir)
    behind = sorted(s for s in restored if as_restored[s] != head_of(heads, s))
    # The database as the current code expects it (as `jinji migrate` would; resumable).
    report = await migrate_all(url, migrations_dir, workers=jobs)
    if not report.ok:
        raise RestoreFailed(
            f"backup {manifest.id} was restored, but migrating it to head failed for "
            f"{', '.join(sorted(report.failures))}: run `jinji migrate` and look at its errors"
        )
    return {
        "backup": manifest.id,
        "snapshot_at": manifest.snapshot_at,
        "schemas": len(restored),
        "tenants": sum(1 for e in manifest.schemas if e.kind == "tenant"),
        "rows": sum(sum(e.rows.values()) for e in manifest.schemas),
        "created_roles": created_roles,
        "revision_mismatches": mismatched,
        "migrated_to_head": behind,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _recorded(manifest: Manifest, schema: str) -> str | None:
    entry = manifest.schema(schema)
    return entry.revision if entry is not None else None


def head_of(heads: dict[str, str | None], schema: str) -> str | None:
    return heads["t_" if schema.startswith("t_") else schema]


def code_heads(migrations_dir: Path) -> dict[str, str | None]:
    """Head revision by control schema, and for tenant schemas under the key ``t_``."""
    heads = {s: head_revision(migrations_dir, s) for s in database.CONTROL_SCHEMAS}
    heads["t_"] = head_revision(migrations_dir, TENANT_COMPONENT)
    return heads
