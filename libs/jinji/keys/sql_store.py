"""Wrapped DEKs in PostgreSQL (``tenancy.data_keys``). Only wrapped keys are stored here:
their KEKs live in the key provider, outside the database and its backups."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, Text, insert, select, update
from sqlalchemy.dialects.postgresql import UUID

from jinji.db import Database
from jinji.keys.envelope import WrappedDek

metadata = MetaData(schema="tenancy")
data_keys = Table(
    "data_keys",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("kek_ref", Text, nullable=False),
    Column("wrapped_dek", LargeBinary, nullable=False),
)


def _row_to_dek(row: Any) -> WrappedDek:
    tenant_id, version, kek_ref, wrapped = row
    return WrappedDek(str(tenant_id), int(version), str(kek_ref), bytes(wrapped))


_COLUMNS = (
    data_keys.c.tenant_id,
    data_keys.c.version,
    data_keys.c.kek_ref,
    data_keys.c.wrapped_dek,
)


class SqlDekStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def current(self, tenant: str) -> WrappedDek | None:
        async with self.db.transaction() as s:
            row = (
                await s.execute(
                    select(*_COLUMNS)
                    .where(data_keys.c.tenant_id == uuid.UUID(tenant))
                    .order_by(data_keys.c.version.desc())
                    .limit(1)
                )
            ).first()
        return _row_to_dek(row) if row else None

    async def get(self, tenant: str, version: int) -> WrappedDek | None:
        async with self.db.transaction() as s:
            row = (
                await s.execute(
                    select(*_COLUMNS).where(
                        data_keys.c.tenant_id == uuid.UUID(tenant), data_keys.c.version == version
                    )
                )
            ).first()
        return _row_to_dek(row) if row else None

    async def add(self, dek: WrappedDek) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                insert(data_keys).values(
                    tenant_id=uuid.UUID(dek.tenant),
                    version=dek.version,
                    kek_ref=dek.kek_ref,
                    wrapped_dek=dek.wrapped,
                )
            )

    async def all(self, tenant: str) -> list[WrappedDek]:
        async with self.db.transaction() as s:
            rows = await s.execute(
                select(*_COLUMNS)
                .where(data_keys.c.tenant_id == uuid.UUID(tenant))
                .order_by(data_keys.c.version)
            )
            return [_row_to_dek(r) for r in rows]

    async def replace(self, dek: WrappedDek) -> None:
        async with self.db.transaction() as s:
            result = await s.execute(
                update(data_keys)
                .where(
                    data_keys.c.tenant_id == uuid.UUID(dek.tenant),
                    data_keys.c.version == dek.version,
                )
                .values(kek_ref=dek.kek_ref, wrapped_dek=dek.wrapped)
            )
            if getattr(result, "rowcount", 0) != 1:
                raise LookupError(f"no DEK version {dek.version} for this tenant")
