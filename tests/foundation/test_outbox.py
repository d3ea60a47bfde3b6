"""Transactional outbox: a message exists iff its change committed, and is delivered once
the receiver is back, without loss or duplicates at the (idempotent) receiver."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from jinji import outbox
from jinji.client import ServiceClient
from jinji.db import Database


class Receiver:
    """An idempotent receiver over real HTTP, like the audit log's event intake."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.down = False
        self.delay_s = 0.0
        self.app = FastAPI()
        self.app.post("/events")(self.events)

    async def events(self, request: Request) -> JSONResponse:
        if self.down:
            return JSONResponse({"error": "unavailable"}, status_code=503)
        await asyncio.sleep(self.delay_s)
        return await self.events_from((await request.json())["events"])

    async def events_from(self, events: list[dict[str, object]]) -> JSONResponse:
        ids = [str(e["id"]) for e in events]
        for event_id in ids:
            self.seen[event_id] = self.seen.get(event_id, 0) + 1
        return JSONResponse({"accepted": ids})


def http_deliverer(http: httpx.AsyncClient, url: str) -> outbox.Deliverer:
    async def deliver(batch: Sequence[outbox.Message]) -> set[uuid.UUID]:
        body = {"events": [{"id": str(m.id), **m.payload} for m in batch]}
        response = await http.post(f"{url}/events", json=body)
        response.raise_for_status()
        return {uuid.UUID(i) for i in response.json()["accepted"]}

    return deliver


@pytest.fixture
def source() -> str:
    # A source of its own per test, so relays in different tests never see each other's rows.
    return f"test-{uuid.uuid4().hex[:8]}"


async def _pending(db: Database, source: str) -> list[tuple[int, bool]]:
    async with db.transaction() as s:
        rows = await s.execute(
            select(outbox.messages.c.attempts, outbox.messages.c.delivered_at.is_not(None)).where(
                outbox.messages.c.source == source
            )
        )
        return [(a, d) for a, d in rows]


async def test_message_exists_only_if_the_tenant_change_commits(
    db: Database, provision_tenant, source: str
) -> None:
    tenant = await provision_tenant()

    def announce(topic: str):
        async def write(session: AsyncSession) -> None:
            await outbox.enqueue(
                session, source=source, destination="audit", topic=topic, payload={"n": 1}
            )

        return write

    async def change_that_fails() -> None:
        async with db.tenant_transaction(tenant) as tx:
            tx.platform_writes.append(announce("rolled-back"))
            await tx.session.execute(text("SELECT count(*) FROM uploads"))
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError, match="the change fails"):
        await change_that_fails()
    async with db.tenant_transaction(tenant) as tx:
        tx.platform_writes.append(announce("committed"))
        await tx.session.execute(text("SELECT count(*) FROM uploads"))
    async with db.transaction() as s:
        topics = (
            await s.scalars(
                select(outbox.messages.c.topic).where(outbox.messages.c.source == source)
            )
        ).all()
    assert topics == ["committed"]


async def test_relay_retries_until_receiver_is_back_then_delivers_once(
    db: Database, live_server, source: str
) -> None:
    receiver = Receiver()
    receiver.down = True
    ids = []
    async with db.transaction() as s:
        for n in range(5):
            ids.append(
                await outbox.enqueue(
                    s, source=source, destination="audit", topic="t", payload={"n": n}
                )
            )
    with live_server(receiver.app) as url:
        async with httpx.AsyncClient() as http:
            relay = outbox.Relay(db, source, {"audit": http_deliverer(http, url)})
            assert await relay.run_once() == 0
            assert await _pending(db, source) == [(1, False)] * 5
            # Backed off: not retried before it is due.
            assert await relay.run_once() == 0
            assert await _pending(db, source) == [(1, False)] * 5

            receiver.down = False
            async with db.transaction() as s:
                await s.execute(
                    update(outbox.messages)
                    .where(outbox.messages.c.source == source)
                    .values(available_at=text("now()"))
                )
            assert await relay.run_once() == 5
            assert await relay.run_once() == 0
    assert receiver.seen == {str(i): 1 for i in ids}
    assert all(delivered for _, delivered in await _pending(db, source))


async def test_concurrent_relays_do_not_send_a_message_twice(
    db: Database, live_server, source: str
) -> None:
    receiver = Receiver()
    receiver.delay_s = 0.2
    async with db.transaction() as s:
        for n in range(30):
            await outbox.enqueue(s, source=source, destination="audit", topic="t", payload={"n": n})
    with live_server(receiver.app) as url:
        async with httpx.AsyncClient() as http:
            deliver = http_deliverer(http, url)
            relays = [outbox.Relay(db, source, {"audit": deliver}, batch_size=10) for _ in range(3)]
            delivered = await asyncio.gather(*(r.run_once() for r in relays))
    assert sum(delivered) == 30
    assert len(receiver.seen) == 30
    assert set(receiver.seen.values()) == {1}


async def test_message_for_another_destination_waits_untouched(
    db: Database, live_server, source: str
) -> None:
    receiver = Receiver()
    async with db.transaction() as s:
        await outbox.enqueue(s, source=source, destination="audit", topic="t", payload={})
        await outbox.enqueue(s, source=source, destination="webhook", topic="t", payload={})
    with live_server(receiver.app) as url:
        async with httpx.AsyncClient() as http:
            relay = outbox.Relay(db, source, {"webhook": http_deliverer(http, url)})
            assert await relay.run_once() == 1
    async with db.transaction() as s:
        waiting = (
            await s.execute(
                select(outbox.messages.c.attempts, outbox.messages.c.last_error).where(
                    outbox.messages.c.source == source, outbox.messages.c.destination == "audit"
                )
            )
        ).one()
    # Not retried, not failed: it waits for the relay that delivers to the audit log.
    assert tuple(waiting) == (0, None)


async def test_one_refused_message_does_not_hold_back_the_others(
    db: Database, live_server, source: str
) -> None:
    receiver = Receiver()
    refused_batches: list[int] = []

    async def strict(request: Request) -> JSONResponse:
        events = (await request.json())["events"]
        if any(e.get("bad") for e in events):  # like the audit log: the whole batch is refused
            refused_batches.append(len(events))
            return JSONResponse({"error": {"code": "invalid_event"}}, status_code=422)
        return await receiver.events_from(events)

    app = FastAPI()
    app.post("/events")(strict)
    async with db.transaction() as s:
        for n in range(7):
            await outbox.enqueue(
                s, source=source, destination="audit", topic="t", payload={"n": n, "bad": n == 4}
            )
    with live_server(app) as url:
        async with httpx.AsyncClient() as http:
            client = ServiceClient(http, url, None, service="receiver")
            deliver = outbox.http_deliverer(
                client, "/events", lambda m: {"id": str(m.id), **m.payload}
            )
            relay = outbox.Relay(db, source, {"audit": deliver})
            assert await relay.run_once() == 6
    assert sorted(receiver.seen.values()) == [1] * 6
    assert refused_batches[0] == 7  # then halves, down to the bad message alone
    async with db.transaction() as s:
        left = (
            await s.execute(
                select(outbox.messages.c.payload, outbox.messages.c.last_error).where(
                    outbox.messages.c.source == source, outbox.messages.c.delivered_at.is_(None)
                )
            )
        ).all()
    assert [(payload["n"], error) for payload, error in left] == [(4, "1 of 7 not acknowledged")]
