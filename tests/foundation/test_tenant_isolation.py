"""CLD9.5.1: tenants are separated by the database itself, not only by query discipline."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Column, MetaData, Table, Text, Uuid, select, text
from sqlalchemy.exc import DBAPIError

from jinji import tenancy
from jinji.db import Database


async def _insert_upload(db: Database, tenant_id: uuid.UUID) -> uuid.UUID:
    upload_id = uuid.uuid4()
    async with db.tenant_transaction(tenant_id) as tx:
        await tx.session.execute(
            text(
                "INSERT INTO uploads (id, kind, status, uploaded_by, size_bytes, sha256) "
                "VALUES (:id, 'employees', 'accepted', :by, 10, 'x')"
            ),
            {"id": upload_id, "by": uuid.uuid4()},
        )
    return upload_id


async def test_tenant_sees_only_its_own_rows(db: Database, provision_tenant) -> None:
    a, b = await provision_tenant(), await provision_tenant()
    upload_a = await _insert_upload(db, a)
    upload_b = await _insert_upload(db, b)
    async with db.tenant_transaction(a) as tx:
        ids = (await tx.session.execute(text("SELECT id FROM uploads"))).scalars().all()
    assert ids == [upload_a]
    async with db.tenant_transaction(b) as tx:
        ids = (await tx.session.execute(text("SELECT id FROM uploads"))).scalars().all()
    assert ids == [upload_b]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM {other}.uploads",
        "SELECT count(*) FROM {other}.dataset_versions",
        "INSERT INTO {other}.uploads (id, kind, status, uploaded_by, size_bytes, sha256) "
        "VALUES (gen_random_uuid(), 'employees', 'x', gen_random_uuid(), 1, 'x')",
        "DELETE FROM {other}.uploads",
        "CREATE TABLE {other}.planted (id int)",
        "SELECT count(*) FROM identity.users",
        "SELECT count(*) FROM tenancy.data_keys",
        "SELECT count(*) FROM outbox.messages",
    ],
)
async def test_schema_qualified_sql_against_another_tenant_is_refused(
    db: Database, provision_tenant, sql: str
) -> None:
    a, b = await provision_tenant(), await provision_tenant()
    await _insert_upload(db, b)
    other = tenancy.quote_ident(tenancy.schema_name(b))
    with pytest.raises(DBAPIError, match="permission denied"):
        async with db.tenant_transaction(a) as tx:
            await tx.session.execute(text(sql.format(other=other)))
    # B's data is untouched.
    async with db.tenant_transaction(b) as tx:
        assert await tx.session.scalar(text("SELECT count(*) FROM uploads")) == 1


async def test_tables_declared_in_the_tenant_placeholder_schema_resolve_per_tenant(
    db: Database, provision_tenant
) -> None:
    uploads = Table(
        "uploads", MetaData(schema=tenancy.TENANT_SCHEMA), Column("id", Uuid), Column("kind", Text)
    )
    a, b = await provision_tenant(), await provision_tenant()
    upload_a = await _insert_upload(db, a)
    await _insert_upload(db, b)
    async with db.tenant_transaction(a) as tx:
        ids = (await tx.session.execute(select(uploads.c.id))).scalars().all()
    assert ids == [upload_a]


async def test_pooled_connection_reused_after_tenant_transaction_has_defaults(
    database_url: str, provision_tenant
) -> None:
    tenant = await provision_tenant()
    # One pooled connection and no overflow: the next checkout is the same backend.
    single = Database(database_url, pool_size=1, max_overflow=0)
    try:
        async with single.transaction() as s:
            default_user = await s.scalar(text("SELECT current_user"))
            default_path = await s.scalar(text("SELECT current_setting('search_path')"))
        async with single.tenant_transaction(tenant) as tx:
            tenant_pid = await tx.session.scalar(text("SELECT pg_backend_pid()"))
            assert await tx.session.scalar(text("SELECT current_user")) == tenancy.role_name(tenant)
            assert tenancy.schema_name(tenant) in await tx.session.scalar(
                text("SELECT current_setting('search_path')")
            )
        async with single.transaction() as s:
            assert await s.scalar(text("SELECT pg_backend_pid()")) == tenant_pid
            assert await s.scalar(text("SELECT current_user")) == default_user
            assert await s.scalar(text("SELECT current_setting('search_path')")) == default_path
    finally:
        await single.dispose()


async def test_failed_tenant_transaction_leaves_nothing_and_resets_connection(
    db: Database, provision_tenant
) -> None:
    tenant = await provision_tenant()

    async def insert_then_fail() -> None:
        async with db.tenant_transaction(tenant) as tx:
            await tx.session.execute(
                text(
                    "INSERT INTO uploads (id, kind, status, uploaded_by, size_bytes, sha256) "
                    "VALUES (gen_random_uuid(), 'employees', 'x', gen_random_uuid(), 1, 'x')"
                )
            )
            raise RuntimeError("failure half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        await insert_then_fail()
    async with db.tenant_transaction(tenant) as tx:
        assert await tx.session.scalar(text("SELECT count(*) FROM uploads")) == 0


async def test_tenant_role_cannot_create_objects_outside_its_schema(
    db: Database, provision_tenant
) -> None:
    tenant = await provision_tenant()
    with pytest.raises(DBAPIError, match="permission denied"):
        async with db.tenant_transaction(tenant) as tx:
            await tx.session.execute(text("CREATE TABLE public.leak (id int)"))


def test_schema_and_role_names_come_only_from_the_uuid() -> None:
    tid = uuid.UUID("0123456789abcdef0123456789abcdef")
    assert tenancy.schema_name(tid) == "t_0123456789abcdef0123456789abcdef"
    assert tenancy.schema_name(str(tid)) == tenancy.schema_name(tid)
    with pytest.raises(ValueError, match="badly formed"):
        tenancy.schema_name('x"; DROP SCHEMA identity CASCADE; --')
