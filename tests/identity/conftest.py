"""Identity over real HTTP on a bootstrapped database of its own."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp
import pytest
from pydantic import SecretStr
from sqlalchemy import insert, select

from jinji.db import Database
from services import bootstrap
from services.identity import passwords
from services.identity.app import create_app
from services.identity.settings import IdentitySettings
from services.identity.tables import tenants, users

ISSUER = "http://identity.test/identity"
PASSWORD = "correct horse battery staple"


@dataclass
class Stack:
    settings: IdentitySettings
    db: Database
    base: str
    first_login: bootstrap.FirstLogin

    password: str = PASSWORD

    def url(self, path: str) -> str:
        return f"{self.base}/identity{path}"

    def operator_token(self, http: httpx.Client) -> str:
        """The bootstrap operator's first login: new password, TOTP enrolment, tokens."""
        first = self.first_login
        step = http.post(
            self.url("/v1/login"),
            json={
                "tenant": first.tenant,
                "username": first.username,
                "password": first.one_time_password,
            },
        ).json()
        challenge = step["challenge_token"]
        step = http.post(
            self.url("/v1/login/challenge"),
            json={"challenge_token": challenge, "new_password": "a long platform passphrase"},
        ).json()
        challenge = step["challenge_token"]
        setup = http.post(
            self.url("/v1/login/challenge/totp"), json={"challenge_token": challenge}
        ).json()
        tokens = http.post(
            self.url("/v1/login/challenge"),
            json={"challenge_token": challenge, "code": self.code(setup["secret"])},
        ).json()
        return str(tokens["access_token"])

    @staticmethod
    def code(secret: str, offset_steps: int = 0) -> str:
        return str(pyotp.TOTP(secret).at(time.time() + offset_steps * 30))

    async def tenant(self, *, mfa_required: bool = False, seats: int | None = 50) -> str:
        slug = f"t{uuid.uuid4().hex[:10]}"
        async with self.db.transaction() as s:
            await s.execute(
                insert(tenants).values(
                    id=uuid.uuid4(),
                    slug=slug,
                    status="active",
                    seats=seats,
                    mfa_required=mfa_required,
                    session_idle_s=1800,
                    session_absolute_s=43200,
                )
            )
        return slug

    async def user(
        self,
        slug: str,
        username: str = "yamada",
        *,
        password: str = PASSWORD,
        roles: tuple[str, ...] = ("viewer",),
        must_change: bool = False,
    ) -> uuid.UUID:
        user_id = uuid.uuid4()
        hashed = passwords.hash_password(passwords.hasher(self.settings), password)
        async with self.db.transaction() as s:
            tenant_id = await s.scalar(select(tenants.c.id).where(tenants.c.slug == slug))
            await s.execute(
                insert(users).values(
                    id=user_id,
                    tenant_id=tenant_id,
                    username=username,
                    password_hash=hashed,
                    roles=list(roles),
                    companies=[],
                    must_change_password=must_change,
                    status="active",
                )
            )
        return user_id


@pytest.fixture(scope="module")
async def stack(scratch_database, live_server, tmp_path_factory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("identity-data")
    async with scratch_database() as url:
        settings = IdentitySettings(
            database_url=SecretStr(url),
            data_dir=data_dir,
            issuer=ISSUER,
            refresh_cookie_secure=False,
        )
        first = await bootstrap.run(settings)
        assert first is not None
        db = Database(url, pool_size=2)
        try:
            with live_server(create_app(settings)) as base:
                yield Stack(settings, db, base, first)
        finally:
            await db.dispose()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client
