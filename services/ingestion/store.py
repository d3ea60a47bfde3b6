"""Committing a validated upload: each period becomes a new encrypted dataset version.

All versions of one upload, its upload record, the audit event and the message that tells
analytics are written in one tenant transaction: a customer sees the whole upload or none
of it. The same file sent again for the same kind and periods returns the versions it
already made.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from jinji import dataset_events, outbox
from jinji.datasets import parquet_bytes, version_aad
from jinji.db import Database
from jinji.keys import Envelope
from jinji.tenant_tables import dataset_versions, uploads
from services.ingestion import audit
from services.ingestion.validate import Validated


@dataclass(frozen=True)
class Version:
    kind: str
    period: str
    version: int
    rows: int
    sha256: str


@dataclass(frozen=True)
class Committed:
    upload_id: uuid.UUID
    versions: list[Version]
    existing: bool  # True: the same file was already committed; nothing new was stored


async def _latest(s: AsyncSession, kind: str, period: str) -> Any:
    return (
        await s.execute(
            select(
                dataset_versions.c.version,
                dataset_versions.c.rows,
                dataset_versions.c.sha256,
                uploads.c.sha256.label("file_sha256"),
                dataset_versions.c.upload_id,
            )
            .join(uploads, uploads.c.id == dataset_versions.c.upload_id)
            .where(dataset_versions.c.kind == kind, dataset_versions.c.period == period)
            .order_by(dataset_versions.c.version.desc())
            .limit(1)
        )
    ).first()


async def commit(
    db: Database,
    envelope: Envelope,
    *,
    tenant_id: uuid.UUID,
    kind: str,
    validated: Validated,
    file_sha256: str,
    size_bytes: int,
    uploaded_by: uuid.UUID,
) -> Committed:
    # Serialise and hash outside the transaction: it holds locks while it is open.
    prepared = {period: parquet_bytes(frame) for period, frame in sorted(validated.periods.items())}
    async with db.tenant_transaction(tenant_id) as tx:
        s = tx.session
        # One upload at a time per kind in a tenant: versions are numbered without gaps.
        await s.execute(
            select(func.pg_advisory_xact_lock(func.hashtext(f"ingestion:{tenant_id}:{kind}")))
        )
        latest = {period: await _latest(s, kind, period) for period in prepared}
        if all(row is not None and row.file_sha256 == file_sha256 for row in latest.values()):
            return Committed(
                next(iter(latest.values())).upload_id,
                [Version(kind, p, r.version, r.rows, r.sha256) for p, r in latest.items()],
                existing=True,
            )
        upload_id = uuid.uuid4()
        await s.execute(
            insert(uploads).values(
                id=upload_id,
                kind=kind,
                status="accepted",
                uploaded_by=uploaded_by,
                size_bytes=size_bytes,
                sha256=file_sha256,
                error_count=0,
            )
        )
        versions = []
        for period, content in prepared.items():
            number = (latest[period].version if latest[period] is not None else 0) + 1
            rows = validated.periods[period].height
            digest = hashlib.sha256(content).hexdigest()
            sealed = await envelope.encrypt(
                str(tenant_id), content, version_aad(tenant_id, kind, period, number)
            )
            await s.execute(
                insert(dataset_versions).values(
                    id=uuid.uuid4(),
                    upload_id=upload_id,
                    kind=kind,
                    period=period,
                    version=number,
                    rows=rows,
                    sha256=digest,
                    content_enc=sealed,
                )
            )
            versions.append(Version(kind, period, number, rows, digest))

        async def announce(session: AsyncSession) -> None:
            payload = {
                "tenant_id": str(tenant_id),
                "upload_id": str(upload_id),
                "datasets": [
                    {"kind": v.kind, "period": v.period, "version": v.version} for v in versions
                ],
            }
            # Analytics recomputes from this message; its id makes the effect happen once.
            await announce_change(session, "dataset.committed", payload)
            await audit.record(
                session,
                "upload.accepted",
                actor=("user", str(uploaded_by)),
                tenant_id=tenant_id,
                target=("upload", str(upload_id)),
                details={"kind": kind, "rows": validated.rows, "periods": len(versions)},
            )

        tx.platform_writes.append(announce)
    return Committed(upload_id, versions, existing=False)


async def announce_change(session: AsyncSession, topic: str, payload: dict[str, Any]) -> None:
    """Tell analytics, in the transaction of the change, that the tenant's datasets changed."""
    await outbox.enqueue(
        session,
        source=audit.SOURCE,
        destination=dataset_events.DESTINATION,
        topic=topic,
        payload=payload,
    )


async def record_rejection(
    db: Database,
    *,
    tenant_id: uuid.UUID,
    kind: str,
    file_sha256: str,
    size_bytes: int,
    uploaded_by: uuid.UUID,
    error_count: int,
    reason: str,
) -> uuid.UUID:
    """A rejected upload leaves only this record: who, when, kind, how many errors."""
    upload_id = uuid.uuid4()
    async with db.tenant_transaction(tenant_id) as tx:
        await tx.session.execute(
            insert(uploads).values(
                id=upload_id,
                kind=kind,
                status="rejected",
                uploaded_by=uploaded_by,
                size_bytes=size_bytes,
                sha256=file_sha256,
                error_count=error_count,
            )
        )

        async def record(session: AsyncSession) -> None:
            await audit.record(
                session,
                "upload.rejected",
                outcome="failure",
                actor=("user", str(uploaded_by)),
                tenant_id=tenant_id,
                target=("upload", str(upload_id)),
                details={"kind": kind, "errors": error_count, "reason": reason},
            )

        tx.platform_writes.append(record)
    return upload_id
