"""Service notices and tenant webhooks over real HTTP and PostgreSQL: the lead-time rule,
who sees which notice, who may publish, webhook management, and signed webhook delivery
through the outbox (with a retry after the receiver fails)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import select, update

from jinji import outbox
from services.tenant_admin import notices
from services.tenant_admin.tables import webhooks

SECRET = "a webhook secret of ours"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def service(stack, operator) -> dict[str, str]:
    with httpx.Client(timeout=10) as http:
        return stack.service_headers(http, operator, "notices-svc", "jinji-tenant-admin")


def notice(kind: str = "incident", *, starts_in: timedelta = timedelta(0), **extra) -> dict:
    starts_at = datetime.now(UTC) + starts_in
    return {
        "kind": kind,
        "severity": "warning",
        "title": {"ja": "メンテナンスのお知らせ", "en": "Scheduled maintenance"},
        "body": {"ja": "サービスを一時停止します。", "en": "The service will pause."},
        "starts_at": starts_at.isoformat(),
        "tenants": "all",
        **extra,
    }


def publish(http, stack, operator, body: dict) -> httpx.Response:
    return http.post(stack.tenants_url("/v1/notices"), headers=operator, json=body)


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [n["id"] for n in response.json()["notices"]]


async def test_changes_and_maintenance_are_announced_ahead_incidents_at_once(
    stack, http, operator
) -> None:
    too_late = publish(http, stack, operator, notice("change", starts_in=timedelta(days=6)))
    assert too_late.status_code == 422
    error = too_late.json()["error"]
    assert error["code"] == "notice_too_late"
    earliest = datetime.fromisoformat(error["details"]["earliest_start"])
    assert timedelta(days=6, hours=23) < earliest - datetime.now(UTC) <= timedelta(days=7)
    maintenance = notice("maintenance", starts_in=timedelta(days=6))
    assert publish(http, stack, operator, maintenance).status_code == 422

    ahead = publish(http, stack, operator, notice("change", starts_in=timedelta(days=8)))
    assert ahead.status_code == 201, ahead.text
    body = ahead.json()
    assert body["kind"] == "change"
    assert body["title"] == {"ja": "メンテナンスのお知らせ", "en": "Scheduled maintenance"}
    assert body["tenants"] == "all"
    assert body["ends_at"] is None

    now = publish(http, stack, operator, notice("incident"))
    assert now.status_code == 201, now.text
    began_earlier = notice("incident", starts_in=-timedelta(hours=1))
    assert publish(http, stack, operator, began_earlier).status_code == 201

    # Publishing is audited (ids and kinds, no text).
    async with stack.db.transaction() as s:
        events = (
            await s.scalars(
                select(outbox.messages.c.payload).where(
                    outbox.messages.c.destination == "audit",
                    outbox.messages.c.topic == "notice.published",
                )
            )
        ).all()
    event = next(e for e in events if e["target"]["id"] == body["id"])
    assert event["action"] == "tenants.notice.published"
    assert event["service"] == "tenant_admin"
    assert event["actor"]["type"] == "operator"
    assert "メンテナンス" not in json.dumps(event, ensure_ascii=False)


async def test_notice_validation(stack, http, operator) -> None:
    start = datetime.now(UTC) + timedelta(days=10)
    backwards = notice(
        "maintenance",
        starts_in=timedelta(days=10),
        ends_at=(start - timedelta(hours=1)).isoformat(),
    )
    refused = publish(http, stack, operator, backwards)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_period"

    long_title = notice(title={"ja": "あ" * 201, "en": "x"})
    assert publish(http, stack, operator, long_title).status_code == 422
    long_body = notice(body={"ja": "本文", "en": "x" * 10_001})
    assert publish(http, stack, operator, long_body).status_code == 422
    assert publish(http, stack, operator, notice(kind="outage")).status_code == 422
    assert publish(http, stack, operator, notice(severity="fatal")).status_code == 422
    assert publish(http, stack, operator, notice(tenants=[])).status_code == 422
    naive = notice(starts_at="2030-01-01T09:00:00")
    assert publish(http, stack, operator, naive).status_code == 422

    unknown = publish(http, stack, operator, notice(tenants=[str(uuid.uuid4())]))
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_tenant"


async def test_only_operators_publish(stack, http, service) -> None:
    slug, _ = await stack.customer()
    await stack.user(slug, "admin", roles=("tenant_admin",))
    await stack.user(slug, "viewer")
    for username in ("admin", "viewer"):
        headers = stack.sign_in(http, slug, username)
        assert publish(http, stack, headers, notice()).status_code == 403
    assert publish(http, stack, service, notice()).status_code == 403
    assert publish(http, stack, {}, notice()).status_code == 401
    listing = http.get(stack.tenants_url("/v1/notices"), headers=service)
    assert listing.status_code == 403


async def test_each_tenant_sees_the_notices_addressed_to_it(stack, http, operator) -> None:
    slug_a, tenant_a = await stack.customer()
    slug_b, tenant_b = await stack.customer()
    await stack.user(slug_a, "viewer")
    await stack.user(slug_b, "viewer")

    def made(body: dict) -> str:
        response = publish(http, stack, operator, body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    to_all = made(notice("incident"))
    to_a = made(notice("change", starts_in=timedelta(days=8), tenants=[str(tenant_a)]))
    to_b = made(notice("incident", tenants=[str(tenant_b)]))
    to_both = made(notice("incident", tenants=[str(tenant_a), str(tenant_b), str(tenant_a)]))
    ended = made(
        notice(
            "incident",
            starts_in=-timedelta(days=2),
            ends_at=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
        )
    )
    mine = {to_all, to_a, to_b, to_both, ended}

    url = stack.tenants_url("/v1/notices")
    viewer_a = stack.sign_in(http, slug_a, "viewer")
    seen_a = http.get(url, headers=viewer_a)
    assert [i for i in ids(seen_a) if i in mine] == [to_both, to_a, to_all]  # newest first
    # A tenant learns nothing about who else a notice went to.
    assert all("tenants" not in n for n in seen_a.json()["notices"])
    seen_b = http.get(url, headers=stack.sign_in(http, slug_b, "viewer"))
    assert [i for i in ids(seen_b) if i in mine] == [to_both, to_b, to_all]
    assert http.get(url, headers=viewer_a, params={"include_past": "true"}).status_code == 403

    everything = http.get(url, headers=operator)
    assert [i for i in ids(everything) if i in mine] == [to_both, to_b, to_a, to_all]
    by_id = {n["id"]: n for n in everything.json()["notices"]}
    assert by_id[to_a]["tenants"] == [str(tenant_a)]
    assert by_id[to_both]["tenants"] == [str(tenant_a), str(tenant_b)]
    assert by_id[to_all]["tenants"] == "all"
    past = http.get(url, headers=operator, params={"include_past": "true"})
    assert ended in ids(past)


async def test_webhook_is_managed_by_tenant_admins_and_its_secret_never_shown(
    stack, http, service
) -> None:
    slug, tenant_id = await stack.customer()
    other_slug, _ = await stack.customer()
    await stack.user(slug, "admin", roles=("tenant_admin",))
    await stack.user(slug, "viewer")
    await stack.user(other_slug, "admin", roles=("tenant_admin",))
    admin = stack.sign_in(http, slug, "admin")
    url = stack.tenants_url("/v1/webhook")
    hook = {"url": "https://hooks.example.invalid/jinji?k=1", "secret": SECRET}

    viewer = stack.sign_in(http, slug, "viewer")
    assert http.put(url, headers=viewer, json=hook).status_code == 403
    assert http.get(url, headers=viewer).status_code == 403
    assert http.delete(url, headers=viewer).status_code == 403
    assert http.put(url, headers=service, json=hook).status_code == 403

    plain = http.put(url, headers=admin, json={**hook, "url": "http://hooks.example.invalid/"})
    assert plain.status_code == 422
    assert plain.json()["error"]["code"] == "invalid_webhook_url"
    creds = {**hook, "url": "https://user:pw@hooks.example.invalid/"}
    assert http.put(url, headers=admin, json=creds).status_code == 422
    assert http.put(url, headers=admin, json={**hook, "secret": "short"}).status_code == 422
    long_url = {**hook, "url": "https://hooks.example.invalid/" + "a" * 2000}
    assert http.put(url, headers=admin, json=long_url).status_code == 422
    # Never into the platform's own network (a request forgery through our deliverer).
    for internal in (
        "https://127.0.0.1/hook",
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://identity.jinji.svc.cluster.local/hook",
    ):
        refused = http.put(url, headers=admin, json={**hook, "url": internal})
        assert refused.status_code == 422, internal
    assert http.get(url, headers=admin).status_code == 404

    saved = http.put(url, headers=admin, json=hook)
    assert saved.status_code == 200, saved.text
    assert saved.json()["url"] == hook["url"]
    shown = http.get(url, headers=admin)
    assert shown.status_code == 200
    assert set(shown.json()) == {"url", "configured_at"}
    assert SECRET not in shown.text
    async with stack.db.transaction() as s:
        stored = await s.scalar(
            select(webhooks.c.secret_enc).where(webhooks.c.tenant_id == tenant_id)
        )
    assert stored is not None
    assert SECRET.encode() not in stored

    # Another tenant's administrator sees only their own (absent) webhook.
    assert http.get(url, headers=stack.sign_in(http, other_slug, "admin")).status_code == 404

    assert http.delete(url, headers=admin).status_code == 204
    assert http.get(url, headers=admin).status_code == 404
    assert http.delete(url, headers=admin).status_code == 204


def receiver(statuses: list[int], received: list[dict]) -> FastAPI:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        received.append({"headers": dict(request.headers), "body": await request.body()})
        return Response(status_code=statuses.pop(0) if statuses else 200)

    return app


async def webhook_messages(stack, notice_id: str) -> list:
    async with stack.db.transaction() as s:
        return list(
            (
                await s.execute(
                    select(outbox.messages).where(
                        outbox.messages.c.destination == "webhook",
                        outbox.messages.c.payload["notice"]["id"].astext == notice_id,
                    )
                )
            )
            .mappings()
            .all()
        )


async def wait_for_message(stack, notice_id: str, done, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        [message] = await webhook_messages(stack, notice_id)
        if done(message):
            return message
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.1)


async def test_notices_reach_webhooks_signed_and_are_retried(
    stack, http, operator, live_server
) -> None:
    slug_a, tenant_a = await stack.customer()
    _, tenant_b = await stack.customer()
    await stack.user(slug_a, "admin", roles=("tenant_admin",))
    admin = stack.sign_in(http, slug_a, "admin")
    hook = {"url": "https://hooks.example.invalid/jinji", "secret": SECRET}
    assert http.put(stack.tenants_url("/v1/webhook"), headers=admin, json=hook).status_code == 200

    statuses = [500]
    received: list[dict] = []
    with live_server(receiver(statuses, received)) as base:
        # The API takes https:// only; the test receiver speaks plain HTTP on loopback.
        async with stack.db.transaction() as s:
            await s.execute(
                update(webhooks).where(webhooks.c.tenant_id == tenant_a).values(url=f"{base}/hook")
            )

        # Addressed to the other tenant only: nothing for A's webhook.
        elsewhere = publish(http, stack, operator, notice(tenants=[str(tenant_b)]))
        assert elsewhere.status_code == 201
        assert await webhook_messages(stack, elsewhere.json()["id"]) == []

        published = publish(http, stack, operator, notice(tenants=[str(tenant_a)]))
        assert published.status_code == 201, published.text
        notice_id = published.json()["id"]
        [message] = await webhook_messages(stack, notice_id)
        assert message["source"] == "tenant_admin"
        assert message["payload"]["tenant_id"] == str(tenant_a)
        assert SECRET not in json.dumps(message["payload"])

        # The service's own relay delivers in the background: first to a failing receiver.
        failed = await wait_for_message(
            stack, notice_id, lambda m: m["attempts"] >= 1 and len(received) >= 1
        )
        assert failed["delivered_at"] is None
        assert len(received) == 1

        # Due again (skip the backoff): the receiver now answers 200.
        async with stack.db.transaction() as s:
            await s.execute(
                update(outbox.messages)
                .where(outbox.messages.c.id == message["id"])
                .values(available_at=datetime.now(UTC))
            )
        delivered = await wait_for_message(
            stack, notice_id, lambda m: m["delivered_at"] is not None
        )
        assert delivered["attempts"] == 1

        # A webhook removed before delivery: the message is dropped, nothing is delivered.
        # (The receiver refuses meanwhile, so a try the relay makes before the removal
        # cannot succeed.)
        statuses.extend([503] * 100)
        dropped = publish(http, stack, operator, notice(tenants=[str(tenant_a)]))
        assert dropped.status_code == 201
        dropped_id = dropped.json()["id"]
        assert http.delete(stack.tenants_url("/v1/webhook"), headers=admin).status_code == 204
        async with stack.db.transaction() as s:
            await s.execute(
                update(outbox.messages)
                .where(outbox.messages.c.payload["notice"]["id"].astext == dropped_id)
                .values(available_at=datetime.now(UTC))
            )
        await wait_for_message(stack, dropped_id, lambda m: m["delivered_at"] is not None)
        refused_since = 100 - len(statuses)

    # One refused and one accepted delivery of the first notice; none of the dropped one.
    assert len(received) == 2 + refused_since
    first = [a for a in received if a["headers"]["x-jinji-delivery"] == str(message["id"])]
    assert len(first) == 2
    for attempt in first:
        headers, body = attempt["headers"], attempt["body"]
        timestamp = headers["x-jinji-timestamp"]
        expected = hmac.new(
            SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(headers["x-jinji-signature"], f"sha256={expected}")
        assert abs(time.time() - int(timestamp)) < 60
        assert headers["x-jinji-delivery"] == str(message["id"])
        assert headers["content-type"] == "application/json"
        sent = json.loads(body)
        assert sent["id"] == notice_id
        assert sent["title"]["ja"] == "メンテナンスのお知らせ"
        assert "tenants" not in sent
        assert body == notices.canonical_json(sent)
    # A signature made with another secret does not match.
    forged = hmac.new(b"another secret", b"x", hashlib.sha256).hexdigest()
    assert received[0]["headers"]["x-jinji-signature"] != f"sha256={forged}"


@pytest.mark.parametrize(
    ("url", "internal"),
    [
        ("https://127.0.0.1/hook", True),
        ("https://localhost:8443/hook", True),
        ("https://[fd00::1]/hook", True),
        ("https://10.1.2.3/hook", True),
        ("https://93.184.216.34/hook", False),
    ],
)
async def test_webhook_targets_are_checked_where_they_resolve(url: str, internal: bool) -> None:
    assert await notices.resolves_internal(url) is internal
