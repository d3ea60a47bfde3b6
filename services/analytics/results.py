"""Derived results: every metric of a tenant, computed from one state of its datasets.

A *state* is the set of current dataset versions (the latest version of each kind and
period) plus the fiscal year start they are computed for; its fingerprint names the stored
result. A read first looks up the tenant's state in the database, so a result computed for an
older state is never served once a dataset change has been committed: the matching result is
taken from memory, from the database (ciphertext under the tenant's DEK), or computed there
and then. Ingestion's "datasets changed" messages make that computation happen ahead of the
first read.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import polars as pl
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.datasets import from_parquet, parquet_bytes, version_aad
from jinji.db import Database
from jinji.keys import AssociatedData, Envelope
from jinji.tenant_tables import analytics_results, dataset_versions
from services.analytics.metrics import Datasets, compute_all
from services.analytics.queries import Shown
from services.analytics.suppression import suppress_small_cells
from services.analytics.tenant_settings import TenantSettings


def _suppressed(raw: pl.DataFrame, min_group_size: int) -> Shown:
    return Shown.of(
        suppress_small_cells(
            raw,
            min_group_size,
            hide=("numerator", "denominator"),
            # Totals per company and for the group are shown whatever their size (only
            # breakdown cells are suppressed): a line hidden whole adds nothing to its total.
            hide_margins=False,
        )
    )


@dataclass(frozen=True, order=True)
class VersionRef:
    kind: str
    period: str
    version: int
    id: uuid.UUID


def fingerprint(refs: list[VersionRef], fiscal_year_start: int) -> str:
    digest = hashlib.sha256(f"fy:{fiscal_year_start}".encode())
    for ref in sorted(refs):
        digest.update(f"|{ref.kind}/{ref.period}/{ref.version}/{ref.id}".encode())
    return digest.hexdigest()


def result_aad(tenant_id: uuid.UUID, fingerprint_: str) -> AssociatedData:
    return AssociatedData(str(tenant_id), "analytics_results", "content_enc", fingerprint_)


async def current_versions(session: AsyncSession) -> list[VersionRef]:
    """The latest version of every (kind, period) of the tenant (inside its transaction)."""
    latest = (
        select(
            dataset_versions.c.kind,
            dataset_versions.c.period,
            func.max(dataset_versions.c.version).label("version"),
        )
        .group_by(dataset_versions.c.kind, dataset_versions.c.period)
        .subquery()
    )
    rows = await session.execute(
        select(
            dataset_versions.c.kind,
            dataset_versions.c.period,
            dataset_versions.c.version,
            dataset_versions.c.id,
        ).join(
            latest,
            (latest.c.kind == dataset_versions.c.kind)
            & (latest.c.period == dataset_versions.c.period)
            & (latest.c.version == dataset_versions.c.version),
        )
    )
    return sorted(VersionRef(r.kind, r.period, r.version, r.id) for r in rows)


class Results:
    """The current results of each tenant; one computation at a time per tenant per process."""

    def __init__(self, db: Database, envelope: Envelope, capacity: int) -> None:
        self._db = db
        self._envelope = envelope
        self._capacity = capacity
        self._memory: OrderedDict[uuid.UUID, tuple[str, pl.DataFrame]] = OrderedDict()
        # The suppressed results per tenant: (fingerprint, min_group_size, frame).
        self._shown: dict[uuid.UUID, tuple[str, int, Shown]] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}

    async def shown(self, tenant_id: uuid.UUID, settings: TenantSettings) -> Shown:
        """The current results with small breakdown cells suppressed (see suppression)."""
        async with self._db.tenant_transaction(tenant_id) as tx:
            refs = await current_versions(tx.session)
        return await self.shown_for(tenant_id, refs, settings)

    async def shown_for(
        self, tenant_id: uuid.UUID, refs: list[VersionRef], settings: TenantSettings
    ) -> Shown:
        """As :meth:`shown`, for the current versions the caller has just read."""
        wanted, raw = await self._current_for(tenant_id, refs, settings.fiscal_year_start)
        entry = self._shown.get(tenant_id)
        if entry is not None and entry[0] == wanted and entry[1] == settings.min_group_size:
            return entry[2]
        shown = await asyncio.to_thread(_suppressed, raw, settings.min_group_size)
        self._shown[tenant_id] = (wanted, settings.min_group_size, shown)
        return shown

    async def current(self, tenant_id: uuid.UUID, fiscal_year_start: int) -> pl.DataFrame:
        """The results of the tenant's datasets as they are now (computed if need be)."""
        return (await self._current(tenant_id, fiscal_year_start))[1]

    async def _current(
        self, tenant_id: uuid.UUID, fiscal_year_start: int
    ) -> tuple[str, pl.DataFrame]:
        async with self._db.tenant_transaction(tenant_id) as tx:
            refs = await current_versions(tx.session)
        return await self._current_for(tenant_id, refs, fiscal_year_start)

    async def _current_for(
        self, tenant_id: uuid.UUID, refs: list[VersionRef], fiscal_year_start: int
    ) -> tuple[str, pl.DataFrame]:
        wanted = fingerprint(refs, fiscal_year_start)
        found = self._remembered(tenant_id, wanted)
        if found is not None:
            return wanted, found
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            found = self._remembered(tenant_id, wanted)
            if found is None:
                found = await self._stored(tenant_id, wanted)
            if found is None:
                found = await self._compute(tenant_id, refs, wanted, fiscal_year_start)
            self._remember(tenant_id, wanted, found)
        return wanted, found

    def _remembered(self, tenant_id: uuid.UUID, wanted: str) -> pl.DataFrame | None:
        entry = self._memory.get(tenant_id)
        if entry is None or entry[0] != wanted:
            return None
        self._memory.move_to_end(tenant_id)
        return entry[1]

    def _remember(self, tenant_id: uuid.UUID, wanted: str, frame: pl.DataFrame) -> None:
        self._memory[tenant_id] = (wanted, frame)
        self._memory.move_to_end(tenant_id)
        while len(self._memory) > self._capacity:
            gone, _ = self._memory.popitem(last=False)
            self._shown.pop(gone, None)

    async def _stored(self, tenant_id: uuid.UUID, wanted: str) -> pl.DataFrame | None:
        async with self._db.tenant_transaction(tenant_id) as tx:
            sealed = await tx.session.scalar(
                select(analytics_results.c.content_enc).where(
                    analytics_results.c.fingerprint == wanted
                )
            )
        if sealed is None:
            return None
        content = await self._envelope.decrypt(
            str(tenant_id), sealed, result_aad(tenant_id, wanted)
        )
        return await asyncio.to_thread(from_parquet, content)

    async def _compute(
        self, tenant_id: uuid.UUID, refs: list[VersionRef], wanted: str, fiscal_year_start: int
    ) -> pl.DataFrame:
        data = await self._load(tenant_id, refs)
        result = await asyncio.to_thread(compute_all, data, fiscal_year_start)
        content = await asyncio.to_thread(parquet_bytes, result)
        sealed = await self._envelope.encrypt(
            str(tenant_id), content, result_aad(tenant_id, wanted)
        )
        async with self._db.tenant_transaction(tenant_id) as tx:
            await tx.session.execute(
                pg_insert(analytics_results)
                .values(id=uuid.uuid4(), fingerprint=wanted, rows=result.height, content_enc=sealed)
                .on_conflict_do_nothing(index_elements=["fingerprint"])
            )
            # Results of older states are never read again.
            await tx.session.execute(
                delete(analytics_results).where(analytics_results.c.fingerprint != wanted)
            )
        return result

    async def _load(self, tenant_id: uuid.UUID, refs: list[VersionRef]) -> Datasets:
        by_id = {ref.id: ref for ref in refs}
        async with self._db.tenant_transaction(tenant_id) as tx:
            rows = (
                await tx.session.execute(
                    select(dataset_versions.c.id, dataset_versions.c.content_enc).where(
                        dataset_versions.c.id.in_(list(by_id))
                    )
                )
            ).all()
        data = Datasets()
        for version_id, sealed in rows:
            ref = by_id[version_id]
            content = await self._envelope.decrypt(
                str(tenant_id), sealed, version_aad(tenant_id, ref.kind, ref.period, ref.version)
            )
            frame = await asyncio.to_thread(from_parquet, content)
            if ref.kind == "employees":
                data.employees[ref.period] = frame
            elif ref.kind == "payroll":
                data.payroll[ref.period] = frame
            elif ref.kind == "attendance":
                data.attendance[ref.period] = frame
            elif ref.kind == "childcare":
                data = Datasets(data.employees, data.payroll, data.attendance, frame)
        return data
