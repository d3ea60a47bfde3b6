"""Upload HR files, list uploads and datasets, delete a dataset, download templates."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy import delete, func, select

from jinji.db import BIGINT_MAX
from jinji.errors import ApiError
from jinji.tenant_tables import dataset_versions, uploads
from jinji.tokens import Principal, bearer_token, require_roles
from jinji.web import file_responses, service_router
from services.ingestion import audit, metrics, pipeline, reading, store, validate, values
from services.ingestion.context import ContextDep, Ingestion
from services.ingestion.kinds import SPECS, Kind
from services.registry import SPECS as SERVICES

router = service_router(SERVICES["ingestion"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Uploader = Annotated[Principal, Depends(require_roles("data_updater", "tenant_admin"))]
Admin = Annotated[Principal, Depends(require_roles("tenant_admin"))]
CHUNK = 1024 * 1024
_MONTH = re.compile(r"^\d{4}-\d{2}$")


def _tenant(principal: Principal) -> uuid.UUID:
    assert principal.tenant_id is not None
    return uuid.UUID(principal.tenant_id)


async def _spool(file: UploadFile, limit: int) -> tuple[Path, str, int]:
    """Copy the upload to a private temp file, hashing it; refuse it past the size limit."""
    digest = hashlib.sha256()
    size = 0
    # The reader (openpyxl) goes by the extension: keep a known one, never the client's name.
    suffix = Path(file.filename or "").suffix.lower()
    fd, name = tempfile.mkstemp(
        prefix="jinji-upload-", suffix=suffix if suffix in (".csv", ".txt", ".xlsx") else ""
    )
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        413,
                        "file_too_large",
                        "The file is larger than the upload limit.",
                        {"limit_bytes": limit},
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name), digest.hexdigest(), size


async def _companies(ctx: Ingestion, request: Request, tenant_id: uuid.UUID) -> frozenset[str]:
    # Asked with the caller's own token: tenant-admin checks it like any other request.
    token = bearer_token(request)
    response = await ctx.http.get(
        f"{ctx.settings.resolved_tenants_url}/tenants/v1/tenants/{tenant_id}/companies",
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code != 200:
        raise ApiError(
            503,
            "tenants_unavailable",
            "The tenant's companies could not be read; nothing was stored. Retry shortly.",
            {"status": response.status_code},
            {"Retry-After": "5"},
        )
    return frozenset(c["code"] for c in response.json()["companies"])


def _scope(principal: Principal) -> frozenset[str] | None:
    if "tenant_admin" in principal.roles or "group_viewer" in principal.roles:
        return None
    return frozenset(principal.companies)


@router.post("/v1/uploads", tags=["uploads"])
async def upload(
    request: Request,
    principal: Uploader,
    ctx: ContextDep,
    file: Annotated[UploadFile, File()],
    kind: Annotated[Kind, Form()],
    as_of: Annotated[str | None, Form()] = None,
    ignore_unknown: Annotated[bool, Form()] = False,
    sheet: Annotated[str | None, Form(max_length=100)] = None,
) -> JSONResponse:
    started = time.perf_counter()
    tenant_id = _tenant(principal)
    month = None
    if kind == "employees":
        if as_of is None or not _MONTH.match(as_of):
            raise ApiError(422, "as_of_required", "Employees uploads need as_of=YYYY-MM.")
        try:
            month = values.parse_month(as_of)
        except values.ValueProblem as problem:
            raise ApiError(422, "as_of_invalid", str(problem)) from None
    scope = _scope(principal)
    if scope is not None and kind == "attendance":
        # Attendance rows carry no company: only users who may see every company send them.
        raise ApiError(403, "forbidden", "Attendance uploads need access to all companies.")
    known = await _companies(ctx, request, tenant_id)
    path, sha256, size = await _spool(file, ctx.settings.max_upload_bytes)
    try:
        if size == 0:
            raise reading.FileProblem("empty_file", "The file is empty.", {})
        limits = reading.Limits(
            max_columns=ctx.settings.max_columns,
            max_xlsx_uncompressed=ctx.settings.max_xlsx_uncompressed_bytes,
            max_xlsx_ratio=ctx.settings.max_xlsx_ratio,
        )
        checks = validate.Context(month, known, scope, ignore_unknown)
        validated = await asyncio.to_thread(
            pipeline.read_and_validate, path, file.filename or "", kind, sheet, checks, limits
        )
    except reading.FileProblem as problem:
        metrics.REJECTED.labels(problem.code).inc()
        await store.record_rejection(
            ctx.db,
            tenant_id=tenant_id,
            kind=kind,
            file_sha256=sha256,
            size_bytes=size,
            uploaded_by=uuid.UUID(principal.subject),
            error_count=1,
            reason=problem.code,
        )
        raise ApiError(422, problem.code, problem.message, problem.details) from None
    except validate.Invalid as invalid:
        metrics.REJECTED.labels("invalid_dataset").inc()
        await store.record_rejection(
            ctx.db,
            tenant_id=tenant_id,
            kind=kind,
            file_sha256=sha256,
            size_bytes=size,
            uploaded_by=uuid.UUID(principal.subject),
            error_count=invalid.errors.total,
            reason="invalid_dataset",
        )
        raise ApiError(
            422,
            "invalid_dataset",
            f"The file has {invalid.errors.total} errors; nothing was stored.",
            {
                "errors": [e.as_dict() for e in invalid.errors.listed],
                "total": invalid.errors.total,
            },
        ) from None
    finally:
        path.unlink(missing_ok=True)
    committed = await store.commit(
        ctx.db,
        ctx.envelope,
        tenant_id=tenant_id,
        kind=kind,
        validated=validated,
        file_sha256=sha256,
        size_bytes=size,
        uploaded_by=uuid.UUID(principal.subject),
    )
    datasets = [dataclasses.asdict(v) for v in committed.versions]
    if not committed.existing:
        metrics.ROWS.labels(kind).inc(validated.rows)
        metrics.BYTES.labels(kind).inc(size)
    metrics.DURATION.labels(kind).observe(time.perf_counter() - started)
    body: dict[str, Any] = {
        "upload_id": str(committed.upload_id),
        "dataset": datasets[0],
        "datasets": datasets,
        "warnings": validated.warnings,
    }
    return JSONResponse(body, status_code=200 if committed.existing else 201)


@router.get("/v1/uploads", tags=["uploads"])
async def list_uploads(
    principal: Uploader,
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> dict[str, Any]:
    async with ctx.db.tenant_transaction(_tenant(principal)) as tx:
        rows = await tx.session.execute(
            select(uploads).order_by(uploads.c.created_at.desc()).limit(limit).offset(offset)
        )
        return {
            "uploads": [
                {
                    "id": str(r.id),
                    "kind": r.kind,
                    "status": r.status,
                    "uploaded_by": str(r.uploaded_by),
                    "size_bytes": r.size_bytes,
                    "error_count": r.error_count,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        }


@router.get("/v1/datasets", tags=["datasets"])
async def list_datasets(principal: Uploader, ctx: ContextDep) -> dict[str, Any]:
    """The current (latest) version of every kind and period."""
    latest = (
        select(
            dataset_versions.c.kind,
            dataset_versions.c.period,
            func.max(dataset_versions.c.version).label("version"),
        )
        .group_by(dataset_versions.c.kind, dataset_versions.c.period)
        .subquery()
    )
    async with ctx.db.tenant_transaction(_tenant(principal)) as tx:
        rows = await tx.session.execute(
            select(
                dataset_versions.c.kind,
                dataset_versions.c.period,
                dataset_versions.c.version,
                dataset_versions.c.rows,
                dataset_versions.c.sha256,
                dataset_versions.c.created_at,
            )
            .join(
                latest,
                (latest.c.kind == dataset_versions.c.kind)
                & (latest.c.period == dataset_versions.c.period)
                & (latest.c.version == dataset_versions.c.version),
            )
            .order_by(dataset_versions.c.kind, dataset_versions.c.period)
        )
        return {
            "datasets": [
                {
                    "kind": r.kind,
                    "period": r.period,
                    "version": r.version,
                    "rows": r.rows,
                    "sha256": r.sha256,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]
        }


@router.delete("/v1/datasets/{kind}/{period}", status_code=204, tags=["datasets"])
async def delete_dataset(
    kind: Kind,
    period: str,
    principal: Admin,
    ctx: ContextDep,
) -> Response:
    tenant_id = _tenant(principal)
    async with ctx.db.tenant_transaction(tenant_id) as tx:
        result = await tx.session.execute(
            delete(dataset_versions).where(
                dataset_versions.c.kind == kind, dataset_versions.c.period == period
            )
        )
        removed = int(getattr(result, "rowcount", 0))
        if not removed:
            raise ApiError(404, "not_found", "No such dataset.")

        async def record(session: Any) -> None:
            await store.announce_change(
                session,
                "dataset.deleted",
                {"tenant_id": str(tenant_id), "kind": kind, "period": period},
            )
            await audit.record(
                session,
                "dataset.deleted",
                actor=("user", principal.subject),
                tenant_id=tenant_id,
                target=("dataset", f"{kind}/{period}"),
                details={"versions": removed},
            )

        tx.platform_writes.append(record)
    return Response(status_code=204)


@router.get(
    "/v1/templates/{kind}",
    tags=["templates"],
    response_class=Response,
    responses=file_responses("text/csv", XLSX),
)
async def template(
    kind: Kind,
    principal: Uploader,
    lang: Literal["ja", "en"] = "ja",
    format: Literal["csv", "xlsx"] = "csv",
) -> Response:
    spec = SPECS[kind]
    headers = [c.ja if lang == "ja" else c.name for c in spec.columns]
    name = f"jinji-{kind}-template-{lang}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "xlsx":
        return Response(
            reading.write_template_xlsx(headers),
            media_type=XLSX,
            headers=disposition,
        )
    # Japanese headers in CP932, so Excel on Japanese Windows opens the file as it is.
    encoding = "cp932" if lang == "ja" else "utf-8-sig"
    return Response(
        reading.write_template_csv(headers, encoding=encoding),
        media_type=f"text/csv; charset={'shift_jis' if lang == 'ja' else 'utf-8'}",
        headers=disposition,
    )
