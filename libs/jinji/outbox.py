"""Transactional outbox: a message that must not be lost is written in the same transaction
as the change it announces, and a relay delivers it until the receiver acknowledges.

Delivery is at-least-once; the message id travels with it so receivers deduplicate (the
audit log is idempotent on event id). Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so
several replicas of a service relay side by side without sending a message twice at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.client import ServiceClient
from jinji.db import Database

log = logging.getLogger(__name__)
_jitter = random.SystemRandom()

messages = Table(
    "messages",
    MetaData(schema="outbox"),
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("destination", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("available_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
)

PENDING = Gauge(
    "jinji_outbox_pending_messages",
    "Outbox messages not yet delivered.",
    ["source"],
    multiprocess_mode="max",
)
OLDEST_AGE = Gauge(
    "jinji_outbox_oldest_pending_age_seconds",
    "Age of the oldest undelivered outbox message (delivery lag).",
    ["source"],
    multiprocess_mode="max",
)
DELIVERED = Counter("jinji_outbox_delivered_total", "Outbox messages delivered.", ["source"])
FAILED = Counter("jinji_outbox_delivery_failures_total", "Failed delivery attempts.", ["source"])


@dataclass(frozen=True)
class Message:
    id: uuid.UUID
    destination: str
    topic: str
    payload: dict[str, Any]
    attempts: int


# Delivers a batch for one destination; returns the ids the receiver acknowledged.
Deliverer = Callable[[Sequence[Message]], Awaitable[set[uuid.UUID]]]


def http_deliverer(
    client: ServiceClient, path: str, render: Callable[[Message], dict[str, Any]]
) -> Deliverer:
    """Delivers a batch as ``POST path {"events": [render(m) …]}`` to an intake that answers
    ``{"accepted": [ids]}`` and is idempotent on the id (a batch sent twice acts once).

    An intake refuses a whole batch (422) for one bad message: the batch is then split in
    halves until the message it refuses is alone, so one bad message waits (and shows in
    ``last_error`` and the delivery lag) without holding back the others.
    """

    async def deliver(batch: Sequence[Message]) -> set[uuid.UUID]:
        response = await client.request(
            "POST", path, json={"events": [render(m) for m in batch]}, idempotent=True
        )
        if response.status_code == 422 and len(batch) > 1:
            middle = len(batch) // 2
            acked: set[uuid.UUID] = set()
            for half in (batch[:middle], batch[middle:]):
                with suppress(Refused):
                    acked |= await deliver(half)
            return acked
        if response.status_code != 200:
            code = response.json().get("error", {}).get("code") if response.content else None
            failure = Refused if response.status_code == 422 else RuntimeError
            raise failure(f"{client.service} answered {response.status_code} {code}")
        return {uuid.UUID(i) for i in response.json()["accepted"]}

    return deliver


class Refused(Exception):
    """The receiver refused a message as invalid: retrying it unchanged will not help."""


async def enqueue(
    session: AsyncSession,
    *,
    source: str,
    destination: str,
    topic: str,
    payload: Mapping[str, Any],
    message_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Add a message inside the caller's transaction: it exists if and only if the change does."""
    mid = message_id or uuid.uuid4()
    await session.execute(
        insert(messages).values(
            id=mid, source=source, destination=destination, topic=topic, payload=dict(payload)
        )
    )
    return mid


def backoff_s(attempts: int, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    """Exponential backoff with jitter, so a recovering receiver is not hit by every
    relay at the same instant."""
    ceiling = min(cap_s, base_s * (2 ** min(attempts, 20)))
    return float(ceiling * (0.5 + _jitter.random() / 2))


class Relay:
    def __init__(
        self,
        db: Database,
        source: str,
        deliverers: Mapping[str, Deliverer],
        *,
        batch_size: int = 100,
        poll_interval_s: float = 1.0,
        keep_delivered: timedelta = timedelta(days=1),
    ) -> None:
        self.db = db
        self.source = source
        self.deliverers = dict(deliverers)
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.keep_delivered = keep_delivered

    async def run_once(self) -> int:
        """Deliver what is due; returns how many messages were acknowledged."""
        delivered = 0
        async with self.db.transaction() as s:
            rows = (
                await s.execute(
                    select(
                        messages.c.id,
                        messages.c.destination,
                        messages.c.topic,
                        messages.c.payload,
                        messages.c.attempts,
                    )
                    .where(
                        messages.c.source == self.source,
                        # Only what this relay can deliver: other destinations wait for
                        # the relay that knows them (e.g. before the audit log exists).
                        messages.c.destination.in_(list(self.deliverers)),
                        messages.c.delivered_at.is_(None),
                        messages.c.available_at <= func.now(),
                    )
                    .order_by(messages.c.created_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            by_destination: dict[str, list[Message]] = {}
            for mid, destination, topic, payload, attempts in rows:
                by_destination.setdefault(destination, []).append(
                    Message(mid, destination, topic, payload, attempts)
                )
            for destination, batch in by_destination.items():
                acked, error = await self._deliver(destination, batch)
                delivered += len(acked)
                await self._record(s, batch, acked, error)
        await self._housekeeping()
        return delivered

    async def _deliver(
        self, destination: str, batch: Sequence[Message]
    ) -> tuple[set[uuid.UUID], str | None]:
        deliverer = self.deliverers[destination]
        try:
            acked = await deliverer(batch)
        except Exception as exc:  # the receiver is down or refused: retry later
            return set(), f"{type(exc).__name__}: {exc}"[:500]
        missing = len(batch) - len(acked)
        return acked, (f"{missing} of {len(batch)} not acknowledged" if missing else None)

    async def _record(
        self, s: AsyncSession, batch: Sequence[Message], acked: set[uuid.UUID], error: str | None
    ) -> None:
        if acked:
            await s.execute(
                update(messages)
                .where(messages.c.id.in_(acked))
                .values(delivered_at=func.now(), last_error=None)
            )
            DELIVERED.labels(self.source).inc(len(acked))
        for message in batch:
            if message.id in acked:
                continue
            FAILED.labels(self.source).inc()
            delay = timedelta(seconds=backoff_s(message.attempts))
            await s.execute(
                update(messages)
                .where(messages.c.id == message.id)
                .values(
                    attempts=messages.c.attempts + 1,
                    available_at=func.now() + delay,
                    last_error=error,
                )
            )
        if error:
            log.warning("outbox delivery failed", extra={"source": self.source, "error": error})

    async def _housekeeping(self) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                delete(messages).where(
                    messages.c.source == self.source,
                    messages.c.delivered_at < func.now() - self.keep_delivered,
                )
            )
            pending, oldest = (
                await s.execute(
                    select(
                        func.count(),
                        func.extract("epoch", func.now() - func.min(messages.c.created_at)),
                    ).where(messages.c.source == self.source, messages.c.delivered_at.is_(None))
                )
            ).one()
        PENDING.labels(self.source).set(pending)
        OLDEST_AGE.labels(self.source).set(float(oldest or 0.0))

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                delivered = await self.run_once()
            except Exception:  # database outage: keep the relay alive and try again
                log.warning("outbox relay pass failed", exc_info=True)
                delivered = 0
            if delivered < self.batch_size:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_interval_s)


def relay_lifespan(make_relay: Callable[[FastAPI], Relay]) -> Callable[[FastAPI], Any]:
    """Runs a service's relay in the background for as long as the app runs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        relay = make_relay(app)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run_forever(stop), name=f"outbox-relay-{relay.source}")
        try:
            yield
        finally:
            stop.set()
            await task

    return lifespan
