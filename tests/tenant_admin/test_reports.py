"""Security reports over real HTTP and PostgreSQL: filing, who sees which report, the status
workflow with operator-only notes, tenant boundaries, and audit events without report text."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from jinji import outbox

TITLE = "不審なログイン通知"
DESCRIPTION = "深夜に見覚えのない IP からのログイン通知が届きました。"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def service(stack, operator) -> dict[str, str]:
    with httpx.Client(timeout=10) as http:
        return stack.service_headers(http, operator, "reports-svc", "jinji-tenant-admin")


def report(http, stack, headers, **body) -> httpx.Response:
    return http.post(
        stack.tenants_url("/v1/security-reports"),
        headers=headers,
        json={"title": TITLE, "description": DESCRIPTION, **body},
    )


def listed(http, stack, headers, **params) -> list[str]:
    response = http.get(stack.tenants_url("/v1/security-reports"), headers=headers, params=params)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["reports"]]


def move(http, stack, headers, report_id: str, status: str, note: str = "確認中") -> httpx.Response:
    return http.post(
        stack.tenants_url(f"/v1/security-reports/{report_id}/transitions"),
        headers=headers,
        json={"status": status, "note": note},
    )


async def test_reports_are_seen_by_their_reporter_and_tenant_admins_only(stack, http) -> None:
    slug, _ = await stack.customer()
    await stack.user(slug, "admin", roles=("tenant_admin",))
    alice_id = await stack.user(slug, "alice")
    await stack.user(slug, "bob", roles=("data_updater",))
    alice, bob = stack.sign_in(http, slug, "alice"), stack.sign_in(http, slug, "bob")
    admin = stack.sign_in(http, slug, "admin")

    occurred = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    filed = report(http, stack, alice, occurred_at=occurred)
    assert filed.status_code == 201, filed.text
    body = filed.json()
    assert set(body) == {"id", "status", "created_at"}
    assert body["status"] == "received"
    alices = body["id"]
    bobs = report(http, stack, bob).json()["id"]

    assert listed(http, stack, alice) == [alices]
    assert listed(http, stack, bob) == [bobs]
    assert listed(http, stack, admin) == [bobs, alices]

    url = stack.tenants_url(f"/v1/security-reports/{alices}")
    assert http.get(url, headers=bob).status_code == 404
    own = http.get(url, headers=alice)
    assert own.status_code == 200
    detail = own.json()
    assert detail["title"] == TITLE
    assert detail["description"] == DESCRIPTION
    assert detail["reporter_id"] == str(alice_id)
    assert datetime.fromisoformat(detail["occurred_at"]) == datetime.fromisoformat(occurred)
    assert [h["status"] for h in detail["history"]] == ["received"]
    assert http.get(url, headers=admin).json()["id"] == alices


async def test_report_validation(stack, http, service) -> None:
    slug, _ = await stack.customer()
    await stack.user(slug, "viewer")
    viewer = stack.sign_in(http, slug, "viewer")
    assert report(http, stack, viewer, title="x" * 201).status_code == 422
    assert report(http, stack, viewer, description="x" * 20_001).status_code == 422
    assert report(http, stack, viewer, title="   ").status_code == 422
    assert report(http, stack, viewer, classification="secret").status_code == 422
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    refused = report(http, stack, viewer, occurred_at=future)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "occurred_in_future"
    assert report(http, stack, viewer, description="x" * 20_000).status_code == 201

    # Service tokens are not people: they can neither file nor read reports.
    assert report(http, stack, service).status_code == 403
    assert http.get(stack.tenants_url("/v1/security-reports"), headers=service).status_code == 403
    assert report(http, stack, {}).status_code == 401


async def test_operators_move_reports_through_their_statuses(stack, http, operator) -> None:
    slug, _ = await stack.customer()
    await stack.user(slug, "admin", roles=("tenant_admin",))
    await stack.user(slug, "alice")
    alice, admin = stack.sign_in(http, slug, "alice"), stack.sign_in(http, slug, "admin")
    first = report(http, stack, alice).json()["id"]
    second = report(http, stack, alice).json()["id"]

    received = listed(http, stack, operator, status="received")
    assert {first, second} <= set(received)

    # Only operators move a report, and only forwards.
    assert move(http, stack, admin, first, "investigating").status_code == 403
    assert move(http, stack, alice, first, "investigating").status_code == 403
    investigating = move(http, stack, operator, first, "investigating", "ログを確認しています")
    assert investigating.status_code == 200, investigating.text
    assert investigating.json()["status"] == "investigating"
    again = move(http, stack, operator, first, "investigating")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invalid_transition"
    assert again.json()["error"]["details"]["from"] == "investigating"
    resolved = move(http, stack, operator, first, "resolved", "攻撃ではありませんでした")
    assert resolved.status_code == 200
    back = move(http, stack, operator, first, "investigating")
    assert back.status_code == 409
    assert move(http, stack, operator, second, "received").status_code == 422
    # received -> resolved directly is allowed.
    assert move(http, stack, operator, second, "resolved").status_code == 200
    assert move(http, stack, operator, str(uuid.uuid4()), "resolved").status_code == 404
    assert move(http, stack, operator, first, "resolved", note="").status_code == 422

    assert first in listed(http, stack, operator, status="resolved")
    assert first not in listed(http, stack, operator, status="received")
    assert listed(http, stack, alice, status="resolved") == [second, first]

    url = stack.tenants_url(f"/v1/security-reports/{first}")
    # Operators see the notes; the tenant sees when the status changed, not the notes.
    staff = http.get(url, headers=operator).json()["history"]
    assert [(h["status"], h.get("note")) for h in staff] == [
        ("received", None),
        ("investigating", "ログを確認しています"),
        ("resolved", "攻撃ではありませんでした"),
    ]
    for headers in (alice, admin):
        shown = http.get(url, headers=headers)
        assert shown.status_code == 200
        history = shown.json()["history"]
        assert [h["status"] for h in history] == ["received", "investigating", "resolved"]
        assert all(set(h) == {"status", "at"} for h in history)
        assert "ログを確認" not in shown.text

    async with stack.db.transaction() as s:
        events = (
            await s.scalars(
                select(outbox.messages.c.payload).where(
                    outbox.messages.c.destination == "audit",
                    outbox.messages.c.source == "tenant_admin",
                )
            )
        ).all()
    about_first = [e for e in events if e["target"] and e["target"]["id"] == first]
    assert sorted(e["action"] for e in about_first) == [
        "tenants.security_report.received",
        "tenants.security_report.status_changed",
        "tenants.security_report.status_changed",
    ]
    changed = [e for e in about_first if e["action"].endswith("status_changed")]
    assert {(e["details"]["from"], e["details"]["to"]) for e in changed} == {
        ("received", "investigating"),
        ("investigating", "resolved"),
    }
    assert all(e["actor"]["type"] == "operator" for e in changed)
    text = json.dumps(about_first, ensure_ascii=False)
    assert TITLE not in text
    assert DESCRIPTION not in text
    assert "ログを確認" not in text


async def test_other_tenants_reports_are_not_found(stack, http, operator) -> None:
    (slug_a, _), (slug_b, _) = await stack.customer(), await stack.customer()
    for slug in (slug_a, slug_b):
        await stack.user(slug, "admin", roles=("tenant_admin",))
        await stack.user(slug, "alice")
    alice_a = stack.sign_in(http, slug_a, "alice")
    admin_b, alice_b = stack.sign_in(http, slug_b, "admin"), stack.sign_in(http, slug_b, "alice")
    of_a = report(http, stack, alice_a).json()["id"]
    of_b = report(http, stack, alice_b).json()["id"]

    url = stack.tenants_url(f"/v1/security-reports/{of_a}")
    assert http.get(url, headers=admin_b).status_code == 404
    assert http.get(url, headers=alice_b).status_code == 404
    assert of_a not in listed(http, stack, admin_b)
    assert listed(http, stack, admin_b) == [of_b]
    assert of_a not in listed(http, stack, alice_b, status="received")
    # Operators see across tenants.
    assert {of_a, of_b} <= set(listed(http, stack, operator))
    assert (
        http.get(url, headers=operator).json()["tenant_id"]
        != (
            http.get(stack.tenants_url(f"/v1/security-reports/{of_b}"), headers=operator).json()[
                "tenant_id"
            ]
        )
    )
