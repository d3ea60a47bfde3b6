"""The append-only log: appending events, signing checkpoints, verifying a stream.

Each stream (one per tenant, plus ``platform``) is an RFC 6962 Merkle tree over the
canonical JSON of its recorded events. The stream row keeps the tree's compact range, so an
append costs O(log n) hashes. Checkpoints sign ``origin, size, root`` (the signed-note form
of Certificate Transparency / Go's checksum database) with the audit key.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from jinji import ed25519_keys
from services.audit_log import merkle
from services.audit_log.events import EventIn
from services.audit_log.tables import checkpoints, events, streams

PLATFORM_STREAM = "platform"

RECORDED = Counter(
    "jinji_audit_events_recorded_total", "Audit events recorded.", ["action", "outcome"]
)
LAG = Histogram(
    "jinji_audit_event_lag_seconds",
    "recorded_at minus occurred_at: delivery delay plus clock skew of the producer.",
    buckets=(0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400),
)


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def stream_of(event: EventIn) -> str:
    return str(event.tenant_id) if event.tenant_id else PLATFORM_STREAM


def origin(stream: str) -> str:
    return f"jinji-audit/{stream}"


def checkpoint_note(stream: str, size: int, root_hash: bytes) -> bytes:
    """The signed bytes: origin, size and base64 root, one per line."""
    return f"{origin(stream)}\n{size}\n{base64.b64encode(root_hash).decode()}\n".encode()


def recorded_document(
    event: EventIn, stream: str, seq: int, recorded_at: datetime
) -> dict[str, Any]:
    document = event.model_dump(mode="json")
    document.update({"stream": stream, "seq": seq, "recorded_at": recorded_at.isoformat()})
    return document


@dataclass
class AppendResult:
    recorded: int
    duplicates: int


async def append(
    s: AsyncSession,
    batch: Sequence[EventIn],
    *,
    checkpoint_every: int,
    signer: ed25519_keys.SealedEd25519,
) -> AppendResult:
    """Record a batch in one transaction; events already recorded (same id) are skipped."""
    known = set(
        (await s.scalars(select(events.c.id).where(events.c.id.in_([e.id for e in batch])))).all()
    )
    fresh: dict[str, list[EventIn]] = {}
    seen: set[uuid.UUID] = set()
    for event in batch:
        if event.id in known or event.id in seen:
            continue
        seen.add(event.id)
        fresh.setdefault(stream_of(event), []).append(event)
    now = datetime.now(UTC)
    for stream in sorted(fresh):  # a fixed lock order: concurrent batches never deadlock
        await s.execute(
            pg_insert(streams)
            .values(stream=stream, size=0, frontier=[])
            .on_conflict_do_nothing(index_elements=[streams.c.stream])
        )
        size, frontier = (
            await s.execute(
                select(streams.c.size, streams.c.frontier)
                .where(streams.c.stream == stream)
                .with_for_update()
            )
        ).one()
        frontier = [bytes(h) for h in frontier]
        rows = []
        for event in fresh[stream]:
            body = canonical(recorded_document(event, stream, size, now))
            leaf = merkle.leaf_hash(body)
            frontier = merkle.frontier_append(frontier, size, leaf)
            rows.append(
                {
                    "stream": stream,
                    "seq": size,
                    "id": event.id,
                    "recorded_at": now,
                    "action": event.action,
                    "outcome": event.outcome,
                    "actor_id": event.actor.id,
                    "body": body,
                    "leaf_hash": leaf,
                }
            )
            size += 1
            RECORDED.labels(event.action, event.outcome).inc()
            LAG.observe(max((now - event.occurred_at).total_seconds(), 0.0))
        await s.execute(insert(events), rows)
        await s.execute(
            update(streams)
            .where(streams.c.stream == stream)
            .values(size=size, frontier=frontier, updated_at=now)
        )
        last = await _last_checkpoint_size(s, stream)
        if size - last >= checkpoint_every:
            await sign_checkpoint(s, stream, size, merkle.frontier_root(frontier), signer)
    return AppendResult(sum(len(v) for v in fresh.values()), len(batch) - len(seen))


async def _last_checkpoint_size(s: AsyncSession, stream: str) -> int:
    return int(
        await s.scalar(
            select(func.coalesce(func.max(checkpoints.c.size), 0)).where(
                checkpoints.c.stream == stream
            )
        )
        or 0
    )


async def sign_checkpoint(
    s: AsyncSession, stream: str, size: int, root_hash: bytes, signer: ed25519_keys.SealedEd25519
) -> None:
    kid, signature = await signer.sign(s, checkpoint_note(stream, size, root_hash))
    await s.execute(
        pg_insert(checkpoints)
        .values(
            stream=stream,
            size=size,
            root_hash=root_hash,
            signed_at=datetime.now(UTC),
            kid=kid,
            signature=signature,
        )
        .on_conflict_do_nothing()
    )


async def checkpoint_due(s: AsyncSession, signer: ed25519_keys.SealedEd25519) -> int:
    """Sign a checkpoint for every stream that grew since its last one (the timer path)."""
    rows = (await s.execute(select(streams.c.stream, streams.c.size, streams.c.frontier))).all()
    signed = 0
    for stream, size, frontier in rows:
        if size > await _last_checkpoint_size(s, stream):
            root = merkle.frontier_root([bytes(h) for h in frontier])
            await sign_checkpoint(s, stream, size, root, signer)
            signed += 1
    return signed


@dataclass
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None = None


def verify_stream(
    stream: str,
    rows: Sequence[tuple[int, bytes, bytes]],
    signed: Sequence[tuple[int, bytes, str, bytes]],
    public_keys: dict[str, bytes],
    cut: tuple[int, list[bytes]] | None = None,
) -> Verification:
    """Recompute a stream from its events and check every checkpoint.

    ``rows``: (seq, body, stored leaf hash) in seq order; ``signed``: (size, root, kid,
    signature); ``cut``: (size, frontier) where retention removed the events before
    ``size``. Works on a database read or an exported file alike (no database needed).
    """
    start, frontier = cut if cut is not None else (0, [])
    by_size = {size: (root, kid, sig) for size, root, kid, sig in signed}
    # The tree state kept at a cut must match the checkpoint signed at that size.
    if cut is not None and not _checkpoint_holds(stream, start, frontier, by_size, public_keys):
        return Verification(False, 0, start, "cut does not match its checkpoint")
    for expected, (seq, body, stored_leaf) in enumerate(rows, start=start):
        if seq != expected:
            return Verification(False, expected, expected, "missing event")
        try:
            document = json.loads(body)
        except ValueError:
            return Verification(False, expected, seq, "unreadable event")
        leaf = merkle.leaf_hash(body)
        if document.get("seq") != seq or document.get("stream") != stream:
            return Verification(False, expected, seq, "event moved")
        if leaf != stored_leaf:
            return Verification(False, expected, seq, "event changed")
        frontier = merkle.frontier_append(frontier, seq, leaf)
        if seq + 1 in by_size and not _checkpoint_holds(
            stream, seq + 1, frontier, by_size, public_keys
        ):
            return Verification(False, seq + 1 - start, seq, "checkpoint does not match")
    end = start + len(rows)
    if any(size > end for size in by_size):
        return Verification(False, len(rows), end, "events missing after last one")
    return Verification(True, len(rows), None)


def _checkpoint_holds(
    stream: str,
    size: int,
    frontier: list[bytes],
    by_size: dict[int, tuple[bytes, str, bytes]],
    public_keys: dict[str, bytes],
) -> bool:
    if size not in by_size:
        return False
    root, kid, signature = by_size[size]
    key = public_keys.get(kid)
    return (
        root == merkle.frontier_root(frontier)
        and key is not None
        and ed25519_keys.verify(key, checkpoint_note(stream, size, root), signature)
    )
