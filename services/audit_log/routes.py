"""Audit-log API: ingest (service tokens), query and export, checkpoints, proofs, verify."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import and_, func, or_, select

from jinji import ed25519_keys
from jinji.db import BIGINT_MAX
from jinji.errors import ApiError, Forbidden
from jinji.tokens import Principal, require_roles, require_scopes
from jinji.web import file_responses, service_router
from services.audit_log import log, merkle, retention
from services.audit_log.context import AuditLog, ContextDep
from services.audit_log.events import Batch
from services.audit_log.tables import checkpoints, events, keys
from services.registry import SPECS

router = service_router(SPECS["audit_log"])
Writer = Annotated[Principal, Depends(require_scopes("audit:write"))]
# Operators read every stream, a tenant admin only the tenant's own (readable_stream).
Reader = Annotated[Principal, Depends(require_roles("tenant_admin", "operator"))]
Stream = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def readable_stream(principal: Principal, stream: str | None) -> str | None:
    """Operators read every stream; a tenant admin only the tenant's own (customers can
    review their own trail). None means every stream (operators only)."""
    if not principal.is_service and "operator" in principal.roles and "mfa" in principal.amr:
        return stream
    if principal.is_service or "tenant_admin" not in principal.roles:
        raise Forbidden("Reading the audit trail needs an operator or a tenant admin.")
    if stream is not None and stream != principal.tenant_id:
        raise ApiError(404, "not_found", "No such stream.")
    return principal.tenant_id


@router.post("/v1/events", tags=["ingest"])
async def ingest(body: Batch, principal: Writer, ctx: ContextDep) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        result = await log.append(
            s, body.events, checkpoint_every=ctx.settings.checkpoint_every, signer=ctx.signer
        )
    # Every id is acknowledged, duplicates included: the sender may stop retrying them all.
    return {
        "accepted": [str(e.id) for e in body.events],
        "recorded": result.recorded,
        "duplicates": result.duplicates,
    }


@router.get("/v1/keys", tags=["verify"])
async def public_keys(ctx: ContextDep) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        return {"keys": await ed25519_keys.public_keys(s, keys)}


def _checkpoint(row: Any) -> dict[str, Any]:
    note = log.checkpoint_note(row.stream, row.size, bytes(row.root_hash))
    return {
        "stream": row.stream,
        "size": row.size,
        "root_hash": _b64(bytes(row.root_hash)),
        "signed_at": row.signed_at.isoformat(),
        "kid": row.kid,
        "signature": _b64(bytes(row.signature)),
        "note": note.decode(),
    }


@router.get("/v1/checkpoints/latest", tags=["verify"])
async def latest_checkpoint(stream: Stream, principal: Reader, ctx: ContextDep) -> dict[str, Any]:
    stream = readable_stream(principal, stream) or stream
    async with ctx.db.transaction() as s:
        row = (
            await s.execute(
                select(checkpoints)
                .where(checkpoints.c.stream == stream)
                .order_by(checkpoints.c.size.desc())
                .limit(1)
            )
        ).first()
    if row is None:
        raise ApiError(404, "not_found", "No checkpoint for this stream yet.")
    return _checkpoint(row)


async def _leaves(ctx: AuditLog, stream: str, size: int) -> list[bytes]:
    async with ctx.db.transaction() as s:
        rows = await s.scalars(
            select(events.c.leaf_hash)
            .where(events.c.stream == stream, events.c.seq < size)
            .order_by(events.c.seq)
        )
        leaves = [bytes(h) for h in rows]
    if len(leaves) != size:
        raise ApiError(404, "not_found", "The stream has no tree of that size.")
    return leaves


@router.get("/v1/proofs/inclusion", tags=["verify"])
async def inclusion(
    stream: Stream,
    seq: Annotated[int, Query(ge=0, le=BIGINT_MAX)],
    size: Annotated[int, Query(ge=1, le=BIGINT_MAX)],
    principal: Reader,
    ctx: ContextDep,
) -> dict[str, Any]:
    stream = readable_stream(principal, stream) or stream
    if seq >= size:
        raise ApiError(422, "invalid_range", "seq must be below size.")
    leaves = await _leaves(ctx, stream, size)
    return {
        "stream": stream,
        "seq": seq,
        "size": size,
        "leaf_hash": _b64(leaves[seq]),
        "root_hash": _b64(merkle.root(leaves)),
        "proof": [_b64(h) for h in merkle.inclusion_proof(leaves, seq, size)],
    }


@router.get("/v1/proofs/consistency", tags=["verify"])
async def consistency(
    stream: Stream,
    first: Annotated[int, Query(ge=1, le=BIGINT_MAX)],
    second: Annotated[int, Query(ge=1, le=BIGINT_MAX)],
    principal: Reader,
    ctx: ContextDep,
) -> dict[str, Any]:
    stream = readable_stream(principal, stream) or stream
    if first > second:
        raise ApiError(422, "invalid_range", "first must not exceed second.")
    leaves = await _leaves(ctx, stream, second)
    return {
        "stream": stream,
        "first": first,
        "second": second,
        "first_root": _b64(merkle.root(leaves[:first])),
        "second_root": _b64(merkle.root(leaves)),
        "proof": [_b64(h) for h in merkle.consistency_proof(leaves, first, second)],
    }


@dataclass
class StreamMaterial:
    rows: list[tuple[int, bytes, bytes]]
    signed: list[tuple[int, bytes, str, bytes]]
    public: dict[str, bytes]
    cut: tuple[int, list[bytes]] | None


async def stream_material(ctx: AuditLog, stream: str) -> StreamMaterial:
    async with ctx.db.transaction() as s:
        start, frontier = await retention.current_cut(s, stream)
        rows = [
            (int(seq), bytes(body), bytes(leaf))
            for seq, body, leaf in await s.execute(
                select(events.c.seq, events.c.body, events.c.leaf_hash)
                .where(events.c.stream == stream)
                .order_by(events.c.seq)
            )
        ]
        signed = [
            (int(r.size), bytes(r.root_hash), str(r.kid), bytes(r.signature))
            for r in await s.execute(
                select(checkpoints)
                .where(checkpoints.c.stream == stream)
                .order_by(checkpoints.c.size)
            )
        ]
        key_rows = await s.execute(select(keys.c.kid, keys.c.public_key))
        public = {str(kid): bytes(pk) for kid, pk in key_rows}
    return StreamMaterial(rows, signed, public, (start, frontier) if start else None)


@router.get("/v1/verify", tags=["verify"])
async def verify(stream: Stream, principal: Reader, ctx: ContextDep) -> dict[str, Any]:
    stream = readable_stream(principal, stream) or stream
    material = await stream_material(ctx, stream)
    result = log.verify_stream(
        stream, material.rows, material.signed, material.public, material.cut
    )
    return {
        "stream": stream,
        "ok": result.ok,
        "checked": result.checked,
        "first_bad_seq": result.first_bad_seq,
        "reason": result.reason,
    }


@router.get("/v1/events", tags=["query"])
async def query(
    principal: Reader,
    ctx: ContextDep,
    stream: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9-]+$")] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action_prefix: Annotated[str | None, Query(max_length=128, pattern=r"^[a-z0-9_.]+$")] = None,
    outcome: Literal["success", "failure"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    stream = readable_stream(principal, stream)
    conditions: list[Any] = []
    if stream is not None:
        conditions.append(events.c.stream == stream)
    if actor is not None:
        conditions.append(events.c.actor_id == actor)
    if action_prefix is not None:
        conditions.append(events.c.action.startswith(action_prefix, autoescape=True))
    if outcome is not None:
        conditions.append(events.c.outcome == outcome)
    if since is not None:
        conditions.append(events.c.recorded_at >= since)
    if until is not None:
        conditions.append(events.c.recorded_at < until)
    if cursor is not None:
        at, stream_key, seq = _decode_cursor(cursor)
        conditions.append(
            or_(
                events.c.recorded_at > at,
                and_(
                    events.c.recorded_at == at,
                    func.row(events.c.stream, events.c.seq) > func.row(stream_key, seq),
                ),
            )
        )
    async with ctx.db.transaction() as s:
        rows = (
            await s.execute(
                select(events.c.recorded_at, events.c.stream, events.c.seq, events.c.body)
                .where(*conditions)
                .order_by(events.c.recorded_at, events.c.stream, events.c.seq)
                .limit(limit + 1)
            )
        ).all()
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
    return {"events": [json.loads(r.body) for r in page], "next_cursor": next_cursor}


def _encode_cursor(row: Any) -> str:
    raw = json.dumps([row.recorded_at.isoformat(), row.stream, row.seq]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str, int]:
    try:
        at, stream, seq = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(stream), int(seq)
    except (ValueError, TypeError) as exc:
        raise ApiError(422, "invalid_cursor", "The cursor is not valid.") from exc


@router.get(
    "/v1/events/export",
    tags=["query"],
    response_class=StreamingResponse,
    responses=file_responses("application/x-ndjson"),
)
async def export(stream: Stream, principal: Reader, ctx: ContextDep) -> StreamingResponse:
    """NDJSON: the audit keys, every event (its exact recorded bytes) and every checkpoint:
    enough to verify the stream offline with `jinji audit verify FILE`."""
    stream = readable_stream(principal, stream) or stream
    material = await stream_material(ctx, stream)

    async def lines() -> AsyncIterator[bytes]:
        for kid, key in material.public.items():
            yield _line({"type": "key", "kid": kid, "alg": "Ed25519", "public_key": _b64(key)})
        if material.cut is not None:
            size, frontier = material.cut
            yield _line(
                {
                    "type": "cut",
                    "stream": stream,
                    "size": size,
                    "frontier": [_b64(h) for h in frontier],
                }
            )
        for seq, body, leaf in material.rows:
            yield _line(
                {
                    "type": "event",
                    "stream": stream,
                    "seq": seq,
                    "body": _b64(body),
                    "leaf_hash": _b64(leaf),
                }
            )
        for size, root_hash, kid, signature in material.signed:
            yield _line(
                {
                    "type": "checkpoint",
                    "stream": stream,
                    "size": size,
                    "root_hash": _b64(root_hash),
                    "kid": kid,
                    "signature": _b64(signature),
                }
            )

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def _line(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"
