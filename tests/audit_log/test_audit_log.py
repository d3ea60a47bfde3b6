"""The audit log over real HTTP and PostgreSQL: intake, no personal data, idempotency,
tamper evidence (verify, proofs, offline export), access rules, and producers that lose
nothing while the audit log is down."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from jinji.config import REPO_ROOT
from services.audit_log import merkle
from services.audit_log.tables import events


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def writer(stack) -> dict[str, str]:
    """A service token with scope audit:write (tenant-admin's client)."""
    secret = stack.tenant_admin_settings.identity_client_secret.get_secret_value()
    with httpx.Client(timeout=10) as http:
        token = http.post(
            stack.url("/oauth2/token"),
            data={"grant_type": "client_credentials", "audience": "jinji-audit-log"},
            auth=("tenant-admin", secret),
        ).json()["access_token"]
    return bearer(token)


def event(stream_tenant: uuid.UUID | None = None, **overrides) -> dict:
    body = {
        "id": str(uuid.uuid4()),
        "occurred_at": datetime.now(UTC).isoformat(),
        "service": "tenant_admin",
        "action": "tenants.test.done",
        "outcome": "success",
        "actor": {"type": "service", "id": "tenant-admin"},
        "tenant_id": str(stream_tenant) if stream_tenant else None,
        "details": {"reason": "ok", "count": 3},
    }
    body.update(overrides)
    return body


def post(http, stack, headers, *items):
    return http.post(stack.audit_url("/v1/events"), headers=headers, json={"events": list(items)})


async def test_intake_is_idempotent_and_needs_the_scope(stack, http, writer) -> None:
    tenant = uuid.uuid4()
    first = event(tenant)
    response = post(http, stack, writer, first, event(tenant))
    assert response.status_code == 200, response.text
    assert response.json()["recorded"] == 2
    again = post(http, stack, writer, first)
    assert again.json() == {"accepted": [first["id"]], "recorded": 0, "duplicates": 1}
    async with stack.db.transaction() as s:
        rows = (await s.execute(select(events.c.seq).where(events.c.stream == str(tenant)))).all()
    assert sorted(r.seq for r in rows) == [0, 1]
    # Only services holding audit:write may write.
    slug = await stack.tenant()
    await stack.user(slug, "admin", roles=("tenant_admin",))
    user = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "admin", "password": stack.password},
    ).json()
    assert post(http, stack, bearer(user["access_token"]), event()).status_code == 403


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"email": "taro.yamada@example.co.jp"}, "details.email"),
        ({"note": "Yamada Taro asked for this"}, "details.note"),
        ({"name": "山田太郎"}, "details.name"),
        ({"nested": {"a": 1}}, "details.nested"),
    ],
)
def test_personal_data_is_refused_naming_the_field(stack, http, writer, details, field) -> None:
    response = post(http, stack, writer, event(details=details))
    assert response.status_code == 422
    messages = " ".join(e["message"] for e in response.json()["error"]["details"]["errors"])
    assert field in messages
    # Nothing of the refused value is echoed back.
    assert "yamada" not in response.text.lower()
    assert "山田" not in response.text


async def _wait_for(stack, predicate, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with stack.db.transaction() as s:
            found = await predicate(s)
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("not delivered in time")


async def test_identity_events_reach_the_log_through_the_outbox(stack, http) -> None:
    slug = await stack.tenant()
    user_id = await stack.user(slug, "relayed")
    http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "relayed", "password": stack.password},
    )

    async def arrived(s):
        return (
            await s.execute(
                select(events.c.action).where(
                    events.c.actor_id == str(user_id), events.c.action == "identity.login.succeeded"
                )
            )
        ).all()

    assert len(await _wait_for(stack, arrived)) == 1


async def _stream_with_events(http, stack, writer, count: int) -> str:
    tenant = uuid.uuid4()
    response = post(http, stack, writer, *[event(tenant) for _ in range(count)])
    assert response.status_code == 200
    return str(tenant)


async def test_verify_pinpoints_edited_deleted_and_reordered_events(stack, http, writer, operator):
    streams = [await _stream_with_events(http, stack, writer, 12) for _ in range(3)]

    def verify(stream: str) -> dict:
        return http.get(stack.audit_url(f"/v1/verify?stream={stream}"), headers=operator).json()

    assert all(verify(s)["ok"] for s in streams)
    edited, deleted, reordered = streams
    async with stack.db.transaction() as s:
        # The superuser switches the triggers off, as an intruder with full access could.
        await s.execute(text("SET LOCAL session_replication_role = replica"))
        await s.execute(
            text(
                "UPDATE audit.events SET body = convert_to(replace(convert_from(body, 'UTF8'),"
                " '\"ok\"', '\"no\"'), 'UTF8') WHERE stream = :s AND seq = 7"
            ),
            {"s": edited},
        )
        await s.execute(
            text("DELETE FROM audit.events WHERE stream = :s AND seq = 4"), {"s": deleted}
        )
        for old, new in ((2, -1), (9, 2), (-1, 9)):
            await s.execute(
                text("UPDATE audit.events SET seq = :new WHERE stream = :s AND seq = :old"),
                {"s": reordered, "old": old, "new": new},
            )
    assert verify(edited)["first_bad_seq"] == 7
    assert verify(deleted)["first_bad_seq"] == 4
    assert verify(reordered)["first_bad_seq"] == 2
    assert not any(verify(s)["ok"] for s in streams)


async def test_the_database_refuses_changes_to_the_log(stack, http, writer) -> None:
    stream = await _stream_with_events(http, stack, writer, 1)
    for sql in (
        "UPDATE audit.events SET outcome = 'failure' WHERE stream = :s",
        "DELETE FROM audit.events WHERE stream = :s",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with stack.db.transaction() as s:
                await s.execute(text(sql), {"s": stream})


async def test_inclusion_and_consistency_proofs(stack, http, writer, operator) -> None:
    stream = await _stream_with_events(http, stack, writer, 11)
    b = base64.b64decode
    proof = http.get(
        stack.audit_url(f"/v1/proofs/inclusion?stream={stream}&seq=6&size=11"), headers=operator
    ).json()
    path = [b(h) for h in proof["proof"]]
    assert merkle.verify_inclusion(b(proof["leaf_hash"]), 6, 11, path, b(proof["root_hash"]))
    assert not merkle.verify_inclusion(b(proof["leaf_hash"]), 5, 11, path, b(proof["root_hash"]))
    tampered = [path[0][:-1] + bytes([path[0][-1] ^ 1]), *path[1:]]
    assert not merkle.verify_inclusion(
        b(proof["leaf_hash"]), 6, 11, tampered, b(proof["root_hash"])
    )

    c = http.get(
        stack.audit_url(f"/v1/proofs/consistency?stream={stream}&first=5&second=11"),
        headers=operator,
    ).json()
    cpath = [b(h) for h in c["proof"]]
    assert merkle.verify_consistency(5, 11, b(c["first_root"]), b(c["second_root"]), cpath)
    assert not merkle.verify_consistency(5, 11, b(c["second_root"]), b(c["first_root"]), cpath)

    # The latest signed checkpoint covers the whole stream (every 5 events, and the rest by
    # the timer): its root equals the one the proof was computed against once size matches.
    latest = http.get(stack.audit_url(f"/v1/checkpoints/latest?stream={stream}"), headers=operator)
    assert latest.status_code == 200
    assert latest.json()["size"] in (10, 11)


def test_export_verifies_offline_and_detects_tampering(stack, http, writer, operator, tmp_path):
    tenant = uuid.uuid4()
    assert post(http, stack, writer, *[event(tenant) for _ in range(10)]).status_code == 200
    exported = http.get(stack.audit_url(f"/v1/events/export?stream={tenant}"), headers=operator)
    assert exported.status_code == 200
    good = tmp_path / "stream.ndjson"
    good.write_bytes(exported.content)

    def offline(path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("JINJI_")}
        return subprocess.run(
            [sys.executable, "-m", "services.cli", "audit", "verify", str(path)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = offline(good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout.strip().splitlines()[-1])["streams"][str(tenant)]["checked"] == 10

    lines = exported.content.decode().splitlines()
    index = next(i for i, line in enumerate(lines) if '"seq":3' in line)
    item = json.loads(lines[index])
    body = json.loads(base64.b64decode(item["body"]))
    body["outcome"] = "failure"
    item["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    lines[index] = json.dumps(item)
    bad = tmp_path / "tampered.ndjson"
    bad.write_text("\n".join(lines) + "\n")
    refused = offline(bad)
    assert refused.returncode == 1
    assert (
        json.loads(refused.stdout.strip().splitlines()[-1])["streams"][str(tenant)]["first_bad_seq"]
        == 3
    )


async def test_a_tenant_admin_reads_only_its_own_stream(stack, http, writer, operator) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "auditor", roles=("tenant_admin",))
    tokens = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "auditor", "password": stack.password},
    ).json()
    admin = bearer(tokens["access_token"])
    own = await _tenant_id(stack, slug)
    other = await _stream_with_events(http, stack, writer, 2)

    mine = http.get(stack.audit_url("/v1/events"), headers=admin)
    assert mine.status_code == 200
    assert all(e["stream"] == own for e in mine.json()["events"])
    assert http.get(stack.audit_url(f"/v1/events?stream={other}"), headers=admin).status_code == 404
    assert http.get(stack.audit_url(f"/v1/verify?stream={other}"), headers=admin).status_code == 404
    theirs = http.get(stack.audit_url(f"/v1/events?stream={other}"), headers=operator).json()
    assert len(theirs["events"]) == 2
    viewer_slug = await stack.tenant()
    await stack.user(viewer_slug, "v1")
    viewer = http.post(
        stack.url("/v1/login"),
        json={"tenant": viewer_slug, "username": "v1", "password": stack.password},
    ).json()
    assert (
        http.get(stack.audit_url("/v1/events"), headers=bearer(viewer["access_token"])).status_code
        == 403
    )


async def _tenant_id(stack, slug: str) -> str:
    from services.identity.tables import tenants

    async with stack.db.transaction() as s:
        return str(await s.scalar(select(tenants.c.id).where(tenants.c.slug == slug)))


async def test_retention_cuts_whole_segments_and_the_rest_still_verifies(
    stack, http, writer, operator, tmp_path
) -> None:
    from datetime import timedelta

    from services.audit_log import retention

    tenant = uuid.uuid4()
    stream = str(tenant)
    for count in (5, 5, 2):  # a checkpoint is signed after each batch reaching 5 more events
        assert post(http, stack, writer, *[event(tenant) for _ in range(count)]).status_code == 200
    async with stack.db.transaction() as s:
        # Ten events recorded long ago (as if 500 days had passed).
        await s.execute(text("SET LOCAL session_replication_role = replica"))
        await s.execute(
            text(
                "UPDATE audit.events SET recorded_at = recorded_at - interval '500 days' "
                "WHERE stream = :s AND seq < 10"
            ),
            {"s": stream},
        )
    async with stack.db.transaction() as s:
        cut = await retention.apply(s, datetime.now(UTC), timedelta(days=400))
    assert cut[stream] == 10
    async with stack.db.transaction() as s:
        left = (await s.scalars(select(events.c.seq).where(events.c.stream == stream))).all()
    assert sorted(left) == [10, 11]

    report = http.get(stack.audit_url(f"/v1/verify?stream={stream}"), headers=operator).json()
    assert report["ok"], report
    assert report["checked"] == 2
    exported = http.get(stack.audit_url(f"/v1/events/export?stream={stream}"), headers=operator)
    path = tmp_path / "cut.ndjson"
    path.write_bytes(exported.content)
    from services.audit_log.offline import verify_export

    assert verify_export(path)["ok"]

    # What remains is still tamper-evident.
    async with stack.db.transaction() as s:
        await s.execute(text("SET LOCAL session_replication_role = replica"))
        await s.execute(
            text("UPDATE audit.events SET leaf_hash = '\\x00' WHERE stream = :s AND seq = 10"),
            {"s": stream},
        )
    report = http.get(stack.audit_url(f"/v1/verify?stream={stream}"), headers=operator).json()
    assert report["first_bad_seq"] == 10
