"""What identity's request handlers need, built once per process by the app's lifespan."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from argon2 import PasswordHasher
from fastapi import Depends, FastAPI, Request
from sqlalchemy import select

from jinji.db import Database
from jinji.keys import Envelope
from jinji.runtime import make_envelope
from jinji.tenancy import PLATFORM_TENANT_SLUG
from jinji.web import Lifespan
from services.identity import passwords
from services.identity.keyring import Keyring
from services.identity.settings import IdentitySettings
from services.identity.tables import tenants
from services.identity.throttle import Throttle


@dataclass
class Identity:
    settings: IdentitySettings
    db: Database
    envelope: Envelope
    keyring: Keyring
    throttle: Throttle
    hasher: PasswordHasher
    platform_tenant: uuid.UUID

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)


def lifespan(settings: IdentitySettings) -> Lifespan:
    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        db: Database = app.state.db
        envelope = make_envelope(settings, db)
        app.state.identity = LazyIdentity(settings, db, envelope)
        yield

    return run


class LazyIdentity:
    """The platform tenant id is read on first use, not at start-up: identity must start
    (and answer /readyz) while the database is still unreachable."""

    def __init__(self, settings: IdentitySettings, db: Database, envelope: Envelope) -> None:
        self.settings = settings
        self.db = db
        self.envelope = envelope
        self.value: Identity | None = None

    async def get(self) -> Identity:
        if self.value is None:
            async with self.db.transaction() as s:
                platform = await s.scalar(
                    select(tenants.c.id).where(tenants.c.slug == PLATFORM_TENANT_SLUG)
                )
            if platform is None:
                raise RuntimeError("platform tenant missing: run the bootstrap (jinji up)")
            self.value = Identity(
                settings=self.settings,
                db=self.db,
                envelope=self.envelope,
                keyring=Keyring(
                    self.db,
                    self.envelope,
                    platform,
                    # Tokens signed by a replaced key must verify until they expire.
                    keep_previous_for=timedelta(
                        seconds=self.settings.access_token_ttl_s + self.settings.token_leeway_s + 60
                    ),
                ),
                throttle=Throttle(self.db),
                hasher=passwords.hasher(self.settings),
                platform_tenant=platform,
            )
        return self.value


async def get_identity(request: Request) -> Identity:
    lazy: LazyIdentity = request.app.state.identity
    return await lazy.get()


IdentityDep = Annotated[Identity, Depends(get_identity)]
