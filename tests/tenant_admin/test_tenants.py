"""Tenant lifecycle over real HTTP and PostgreSQL: provision (and resume a failed attempt),
first admin login, inventory, settings, terminate, purge with crypto-shredding, certificate."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import delete, insert, select, text

from jinji import outbox, tenancy
from jinji.config import REPO_ROOT
from jinji.db import TENANT_STATUS_TTL_S
from jinji.keys import AssociatedData, DekCache, KeyUnavailable
from jinji.keys.sql_store import data_keys
from jinji.runtime import make_envelope
from services.identity.tables import tenants as identity_tenants
from services.identity.tables import users as identity_users
from services.tenant_admin import certificates
from services.tenant_admin.tables import tenants

COMPANIES = [{"code": "HQ", "name": "本社"}, {"code": "SUB1", "name": "子会社1"}]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_tenant(http, stack, operator, slug: str, **extra):
    body = {"slug": slug, "name": "Acme 株式会社", "seats": 20, "companies": COMPANIES, **extra}
    return http.post(stack.tenants_url("/v1/tenants"), headers=operator, json=body)


def first_login(http, stack, slug: str, admin: dict) -> dict:
    step = http.post(
        stack.url("/v1/login"),
        json={
            "tenant": slug,
            "username": admin["username"],
            "password": admin["one_time_password"],
        },
    ).json()
    assert step["challenge"] == "password_change"
    step = http.post(
        stack.url("/v1/login/challenge"),
        json={
            "challenge_token": step["challenge_token"],
            "new_password": "the tenant's passphrase",
        },
    ).json()
    if step.get("challenge") == "mfa_enrollment":
        token = step["challenge_token"]
        setup = http.post(
            stack.url("/v1/login/challenge/totp"), json={"challenge_token": token}
        ).json()
        step = http.post(
            stack.url("/v1/login/challenge"),
            json={"challenge_token": token, "code": stack.code(setup["secret"])},
        ).json()
    return step


async def test_failed_provisioning_is_invisible_and_a_retry_finishes_it(
    stack, http, operator
) -> None:
    slug = f"retry{uuid.uuid4().hex[:6]}"
    # Identity will refuse the tenant's policy: its slug is taken there (a step failure).
    blocker = uuid.uuid4()
    async with stack.db.transaction() as s:
        await s.execute(
            insert(identity_tenants).values(
                id=blocker,
                slug=slug,
                status="active",
                seats=1,
                mfa_required=True,
                session_idle_s=1800,
                session_absolute_s=43200,
            )
        )
    failed = new_tenant(http, stack, operator, slug)
    assert failed.status_code == 503, failed.text
    assert failed.json()["error"]["code"] == "identity_unavailable"
    async with stack.db.transaction() as s:
        status = await s.scalar(select(tenants.c.status).where(tenants.c.slug == slug))
        await s.execute(delete(identity_tenants).where(identity_tenants.c.id == blocker))
    assert status == "provisioning"
    listed = http.get(stack.tenants_url("/v1/tenants?status=active"), headers=operator).json()
    assert slug not in {t["slug"] for t in listed["tenants"]}

    retried = new_tenant(http, stack, operator, slug)
    assert retried.status_code == 201, retried.text
    async with stack.db.transaction() as s:
        rows = (
            await s.execute(select(tenants.c.id, tenants.c.status).where(tenants.c.slug == slug))
        ).all()
    assert [r.status for r in rows] == ["active"]
    assert str(rows[0].id) == retried.json()["id"]
    tokens = first_login(http, stack, slug, retried.json()["initial_admin"])
    assert "access_token" in tokens


async def test_create_tenant_first_admin_login_and_assets(stack, http, operator) -> None:
    slug = f"acme{uuid.uuid4().hex[:6]}"
    created = new_tenant(http, stack, operator, slug, mfa_required=False)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "active"
    assert body["initial_admin"]["username"] == "admin"
    assert new_tenant(http, stack, operator, slug).status_code == 409

    tokens = first_login(http, stack, slug, body["initial_admin"])
    admin = bearer(tokens["access_token"])
    tenant = http.get(stack.tenants_url(f"/v1/tenants/{body['id']}"), headers=admin).json()
    assert [c["code"] for c in tenant["companies"]] == ["HQ", "SUB1"]
    assets = http.get(stack.tenants_url(f"/v1/tenants/{body['id']}/assets"), headers=admin)
    assert assets.status_code == 200, assets.text
    inventory = assets.json()
    assert inventory["users"]["active"] == 1
    assert {t["table"] for t in inventory["tables"]} >= {"uploads", "dataset_versions"}
    assert inventory["keys"]["deks"][0]["version"] == 1
    assert inventory["keys"]["kek"]["state"] == "active"


async def test_invalid_tenants_are_refused(stack, http, operator) -> None:
    us = new_tenant(http, stack, operator, f"us{uuid.uuid4().hex[:6]}", data_region="us")
    assert us.status_code == 422
    assert us.json()["error"]["details"]["errors"][0]["loc"] == ["body", "data_region"]
    reserved = new_tenant(http, stack, operator, "platform")
    assert reserved.status_code == 422
    doubled = new_tenant(
        http, stack, operator, f"d{uuid.uuid4().hex[:6]}", companies=[COMPANIES[0], COMPANIES[0]]
    )
    assert doubled.status_code == 422


async def test_tenant_admin_changes_only_its_security_settings(stack, http, operator) -> None:
    slug = f"conf{uuid.uuid4().hex[:6]}"
    body = new_tenant(http, stack, operator, slug, mfa_required=False).json()
    admin = bearer(first_login(http, stack, slug, body["initial_admin"])["access_token"])
    url = stack.tenants_url(f"/v1/tenants/{body['id']}")
    ok = http.patch(url, headers=admin, json={"min_group_size": 10, "mfa_required": True})
    assert ok.status_code == 200, ok.text
    assert ok.json()["min_group_size"] == 10
    assert http.patch(url, headers=admin, json={"min_group_size": 2}).status_code == 422
    assert http.patch(url, headers=admin, json={"seats": 999}).status_code == 403
    # The new MFA policy reaches identity: the next login asks for enrolment.
    step = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "admin", "password": "the tenant's passphrase"},
    ).json()
    assert step["challenge"] == "mfa_enrollment"
    seats = http.patch(url, headers=operator, json={"seats": 1})
    assert seats.status_code == 200
    async with stack.db.transaction() as s:
        assert (
            await s.scalar(select(identity_tenants.c.seats).where(identity_tenants.c.slug == slug))
        ) == 1


async def test_terminate_purge_crypto_shred_and_certificate(stack, http, operator) -> None:
    slug = f"bye{uuid.uuid4().hex[:6]}"
    body = new_tenant(http, stack, operator, slug, mfa_required=False).json()
    tenant_id = uuid.UUID(body["id"])
    tokens = first_login(http, stack, slug, body["initial_admin"])

    # Customer content encrypted under the tenant's keys, and the wrapped DEK as a backup
    # taken today would hold it.
    envelope = make_envelope(stack.tenant_admin_settings, stack.db, DekCache(ttl=0))
    aad = AssociatedData(str(tenant_id), "dataset_versions", "content_enc", "v1")
    blob = await envelope.encrypt(str(tenant_id), "給与 8,500,000".encode(), aad)
    async with stack.db.transaction() as s:
        backup_of_keys = [
            dict(r._mapping)
            for r in await s.execute(select(data_keys).where(data_keys.c.tenant_id == tenant_id))
        ]

    terminated = http.post(
        stack.tenants_url(f"/v1/tenants/{tenant_id}/terminate"), headers=operator, json={}
    )
    assert terminated.status_code == 200, terminated.text
    login = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "admin", "password": "the tenant's passphrase"},
    )
    assert login.status_code == 401
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert http.post(stack.url("/oauth2/token"), data=refresh).status_code == 400
    # The admin's access token is unexpired, yet the ended contract reaches nothing (once the
    # service's last "active" answer is older than its lifetime).
    await asyncio.sleep(TENANT_STATUS_TTL_S)
    ended = http.get(
        stack.tenants_url(f"/v1/tenants/{tenant_id}"), headers=bearer(tokens["access_token"])
    )
    assert ended.status_code == 401
    assert ended.json()["error"]["message"] == "The tenant's contract has ended."

    # The purge job, as the CronJob runs it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINJI_")}
    settings = stack.tenant_admin_settings
    env.update(
        JINJI_DATABASE_URL=settings.database_url.get_secret_value(),
        JINJI_DATA_DIR=str(settings.data_dir),
        JINJI_IDENTITY_URL=str(settings.identity_url),
        JINJI_IDENTITY_CLIENT_SECRET=settings.identity_client_secret.get_secret_value(),
    )
    job = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", "purge"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert job.returncode == 0, job.stderr
    assert json.loads(job.stdout.strip().splitlines()[-1])["purged"] >= 1

    async with stack.db.transaction() as s:
        assert await s.scalar(select(tenants.c.status).where(tenants.c.id == tenant_id)) == "purged"
        schema = await s.scalar(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :n"),
            {"n": tenancy.schema_name(tenant_id)},
        )
        role = await s.scalar(
            text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": tenancy.role_name(tenant_id)}
        )
        users_left = await s.scalar(
            select(identity_users.c.id).where(identity_users.c.tenant_id == tenant_id)
        )
        events = (
            await s.scalars(
                select(outbox.messages.c.topic).where(
                    outbox.messages.c.payload["tenant_id"].astext == str(tenant_id)
                )
            )
        ).all()
    assert schema is None
    assert role is None
    assert users_left is None
    assert {"tenant.provisioned", "tenant.terminated", "tenant.purged"} <= set(events)

    # A copy of the ciphertext and of the wrapped DEK (a backup) no longer opens.
    async with stack.db.transaction() as s:
        await s.execute(insert(data_keys), backup_of_keys)
    with pytest.raises(KeyUnavailable):
        await envelope.decrypt(str(tenant_id), blob, aad)

    cert = http.get(
        stack.tenants_url(f"/v1/tenants/{tenant_id}/deletion-certificate"), headers=operator
    )
    assert cert.status_code == 200, cert.text
    document = cert.json()
    assert document["certificate"]["tenant_id"] == str(tenant_id)
    assert document["certificate"]["deleted"]["users"]["total"] == 1
    keys = http.get(stack.tenants_url("/v1/certificate-keys")).json()["keys"]
    public = next(k for k in keys if k["kid"] == document["kid"])
    assert certificates.verify(
        base64.b64decode(public["public_key"]),
        document["certificate"],
        base64.b64decode(document["signature"]),
    )
    tampered = {**document["certificate"], "tenant_slug": "someone-else"}
    assert not certificates.verify(
        base64.b64decode(public["public_key"]), tampered, base64.b64decode(document["signature"])
    )


async def test_lifecycle_metrics(stack, http) -> None:
    body = http.get(f"{stack.tenant_admin_base}/metrics").text
    assert 'jinji_tenants{status="active"}' in body
    assert "jinji_tenant_purges_overdue 0.0" in body
    assert "jinji_tenant_provisioning_seconds_count" in body
