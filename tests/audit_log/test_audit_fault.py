"""Producers lose nothing: with the audit log stopped, user actions still succeed, and
when it starts every event arrives exactly once. A deployment of its own (database,
identity, audit log), so no other relay can deliver the events behind the test's back."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import insert, select

from jinji.db import Database
from services import bootstrap
from services.audit_log.app import create_app as create_audit_log
from services.audit_log.settings import AuditLogSettings
from services.audit_log.tables import events
from services.identity import passwords
from services.identity.app import create_app as create_identity
from services.identity.settings import IdentitySettings
from services.identity.tables import tenants, users

ISSUER = "http://fault.test/identity"
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _user(db: Database, settings: IdentitySettings) -> tuple[str, uuid.UUID]:
    slug, tenant_id, user_id = f"f{uuid.uuid4().hex[:8]}", uuid.uuid4(), uuid.uuid4()
    hashed = passwords.hash_password(passwords.hasher(settings), PASSWORD)
    async with db.transaction() as s:
        await s.execute(
            insert(tenants).values(
                id=tenant_id,
                slug=slug,
                status="active",
                seats=5,
                mfa_required=False,
                session_idle_s=1800,
                session_absolute_s=43200,
            )
        )
        await s.execute(
            insert(users).values(
                id=user_id,
                tenant_id=tenant_id,
                username="taro",
                password_hash=hashed,
                roles=["viewer"],
                companies=[],
                must_change_password=False,
                status="active",
            )
        )
    return slug, user_id


async def _recorded(db: Database, user_id: uuid.UUID) -> list[str]:
    async with db.transaction() as s:
        rows = await s.scalars(
            select(events.c.action).where(
                events.c.actor_id == str(user_id), events.c.action == "identity.login.succeeded"
            )
        )
        return list(rows)


@pytest.mark.fault
async def test_audit_log_down_then_up_every_event_once(
    scratch_database, live_server, tmp_path
) -> None:
    identity_port, audit_port = _free_port(), _free_port()
    async with scratch_database() as url:
        settings = IdentitySettings(
            database_url=SecretStr(url),
            data_dir=tmp_path,
            issuer=ISSUER,
            audit_url=f"http://127.0.0.1:{audit_port}",
        )
        await bootstrap.run(settings)
        db = Database(url, pool_size=2)
        try:
            slug, user_id = await _user(db, settings)
            with live_server(create_identity(settings), port=identity_port) as identity:
                async with httpx.AsyncClient(timeout=10) as http:
                    for _ in range(3):
                        login = await http.post(
                            f"{identity}/identity/v1/login",
                            json={"tenant": slug, "username": "taro", "password": PASSWORD},
                        )
                        assert login.status_code == 200
                await asyncio.sleep(1.5)  # the relay has tried (and failed) meanwhile
                assert await _recorded(db, user_id) == []

                audit = AuditLogSettings(
                    database_url=SecretStr(url),
                    data_dir=tmp_path,
                    issuer=ISSUER,
                    jwks_url=f"{identity}/identity/.well-known/jwks.json",
                )
                with live_server(create_audit_log(audit), port=audit_port):
                    deadline = time.monotonic() + 90
                    while len(await _recorded(db, user_id)) < 3:
                        assert time.monotonic() < deadline, "events not delivered"
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(1.5)  # a duplicate delivery would show up by now
                    assert len(await _recorded(db, user_id)) == 3
        finally:
            await db.dispose()
