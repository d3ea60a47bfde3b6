"""Retention: whole expired segments of a stream are removed, never single events.

A stream is cut at a signed checkpoint whose events are all older than the retention
period. The compact range of the tree at the cut is kept (``audit.cuts``) with that
checkpoint, so what remains still verifies from the cut onwards. The deletion runs as the
role ``jinji_audit_retention``, the only one the append-only trigger lets delete.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit_log import merkle
from services.audit_log.tables import checkpoints, cuts, events, streams

RETENTION_ROLE = "jinji_audit_retention"


async def current_cut(s: AsyncSession, stream: str) -> tuple[int, list[bytes]]:
    row = (
        await s.execute(select(cuts.c.size, cuts.c.frontier).where(cuts.c.stream == stream))
    ).first()
    return (int(row.size), [bytes(h) for h in row.frontier]) if row else (0, [])


async def apply(s: AsyncSession, now: datetime, retention: timedelta) -> dict[str, int]:
    """Cut every stream at its newest checkpoint that lies wholly before ``now - retention``.
    Returns {stream: new cut size} for the streams that were cut."""
    cutoff = now - retention
    done: dict[str, int] = {}
    for stream in (await s.scalars(select(streams.c.stream).order_by(streams.c.stream))).all():
        start, frontier = await current_cut(s, stream)
        target = await s.scalar(
            select(checkpoints.c.size)
            .join(
                events,
                (events.c.stream == checkpoints.c.stream)
                & (events.c.seq == checkpoints.c.size - 1),
            )
            .where(
                checkpoints.c.stream == stream,
                checkpoints.c.size > start,
                events.c.recorded_at < cutoff,
            )
            .order_by(checkpoints.c.size.desc())
            .limit(1)
        )
        if target is None:
            continue
        leaves = await s.scalars(
            select(events.c.leaf_hash)
            .where(events.c.stream == stream, events.c.seq >= start, events.c.seq < target)
            .order_by(events.c.seq)
        )
        size = start
        for leaf in leaves:
            frontier = merkle.frontier_append(frontier, size, bytes(leaf))
            size += 1
        signed_root = await s.scalar(
            select(checkpoints.c.root_hash).where(
                checkpoints.c.stream == stream, checkpoints.c.size == target
            )
        )
        if size != target or merkle.frontier_root(frontier) != bytes(signed_root or b""):
            # Never cut a stream that does not verify up to the cut: keep the evidence.
            continue
        await s.execute(
            pg_insert(cuts)
            .values(stream=stream, size=target, frontier=frontier, cut_at=now)
            .on_conflict_do_update(
                index_elements=[cuts.c.stream],
                set_={"size": target, "frontier": frontier, "cut_at": now},
            )
        )
        await s.execute(text(f"SET LOCAL ROLE {RETENTION_ROLE}"))
        await s.execute(delete(events).where(events.c.stream == stream, events.c.seq < target))
        await s.execute(
            delete(checkpoints).where(checkpoints.c.stream == stream, checkpoints.c.size < target)
        )
        await s.execute(text("RESET ROLE"))
        done[stream] = int(target)
    return done
