"""Signing access tokens and publishing the keys that verify them.

A rotation adds a ``next`` key, published in the JWKS at once but not used to sign until
it has been published for :data:`PUBLISH_AHEAD` (longer than a verifier's refetch limit on
unknown key ids), so no service ever sees a token whose key it cannot fetch yet. Then it is
promoted to ``current``; the key it replaces becomes ``previous`` and stays published until
every token it signed has expired, then is retired. Private keys are decrypted from
``identity.signing_keys`` (envelope ciphertext under the platform DEK) into memory only.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.db import Database
from jinji.keys import Envelope
from services.identity import signing
from services.identity.tables import signing_keys

PUBLISH_AHEAD = timedelta(seconds=60)
PUBLISHED = ("next", "current", "previous")
RECHECK_S = 10.0


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    key: ECKey


class Keyring:
    """Loaded lazily; re-checked every few seconds, so a rotation or promotion made by any
    replica takes effect everywhere without a database read per token."""

    def __init__(
        self,
        db: Database,
        envelope: Envelope,
        platform_tenant: uuid.UUID,
        keep_previous_for: timedelta,
    ) -> None:
        self.db = db
        self.envelope = envelope
        self.platform_tenant = platform_tenant
        self.keep_previous_for = keep_previous_for
        self._active: ActiveKey | None = None
        self._checked_at = 0.0

    async def active(self) -> ActiveKey:
        if self._active is None or time.monotonic() - self._checked_at > RECHECK_S:
            async with self.db.transaction() as s:
                await promote_due(s, self.keep_previous_for)
                row = (
                    await s.execute(
                        select(signing_keys.c.kid, signing_keys.c.private_key_enc).where(
                            signing_keys.c.status == "current"
                        )
                    )
                ).first()
            if row is None:
                raise RuntimeError("no current signing key; run the bootstrap (jinji up/migrate)")
            kid, sealed = row
            if self._active is None or self._active.kid != kid:
                key = await signing.load_private(self.envelope, self.platform_tenant, kid, sealed)
                self._active = ActiveKey(kid, key)
            self._checked_at = time.monotonic()
        return self._active

    async def sign(self, claims: dict[str, Any]) -> str:
        active = await self.active()
        return jwt.encode({"alg": signing.ALG, "kid": active.kid, "typ": "JWT"}, claims, active.key)

    async def jwks(self) -> dict[str, Any]:
        async with self.db.transaction() as s:
            rows = await s.execute(
                select(signing_keys.c.public_jwk)
                .where(signing_keys.c.status.in_(PUBLISHED))
                .order_by(signing_keys.c.created_at.desc())
            )
            return {"keys": [dict(r[0]) for r in rows]}

    async def rotate(self) -> str:
        """Publish a new key; it starts signing once it has been published long enough."""
        new = await signing.generate(self.envelope, self.platform_tenant)
        async with self.db.transaction() as s:
            # A newer rotation replaces a next key that never signed anything.
            await s.execute(
                update(signing_keys)
                .where(signing_keys.c.status == "next")
                .values(status="retired", retire_after=func.now())
            )
            await s.execute(
                insert(signing_keys).values(
                    kid=new.kid,
                    alg=signing.ALG,
                    private_key_enc=new.private_key_enc,
                    public_jwk=new.public_jwk,
                    status="next",
                )
            )
        self._checked_at = 0.0
        return new.kid


async def promote_due(s: AsyncSession, keep_previous_for: timedelta) -> None:
    """Make a ``next`` key published for PUBLISH_AHEAD the current one (idempotent; the row
    lock makes concurrent replicas promote once)."""
    due = (
        await s.execute(
            select(signing_keys.c.kid)
            .where(
                signing_keys.c.status == "next",
                signing_keys.c.created_at <= func.now() - PUBLISH_AHEAD,
            )
            .order_by(signing_keys.c.created_at.desc())
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    ).scalar()
    if due is None:
        return
    await s.execute(
        update(signing_keys)
        .where(signing_keys.c.status == "current")
        .values(status="previous", retire_after=func.now() + keep_previous_for)
    )
    await s.execute(update(signing_keys).where(signing_keys.c.kid == due).values(status="current"))


async def retire_expired(s: AsyncSession, now: datetime) -> None:
    await s.execute(
        update(signing_keys)
        .where(signing_keys.c.status == "previous", signing_keys.c.retire_after <= now)
        .values(status="retired")
    )


class StoredKeys:
    """Identity verifies its own tokens from its key table (a :class:`jinji.tokens.KeySource`),
    not over HTTP from itself. Re-read at most every 10 s, and at once on an unknown kid."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._keys: dict[str, ECKey] = {}
        self._loaded_at = 0.0

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    async def get(self, kid: str) -> ECKey | None:
        stale = time.monotonic() - self._loaded_at > RECHECK_S
        if stale or (kid not in self._keys and time.monotonic() - self._loaded_at > 1):
            await self._load()
        return self._keys.get(kid)

    async def _load(self) -> None:
        async with self.db.transaction() as s:
            rows = await s.execute(
                select(signing_keys.c.kid, signing_keys.c.public_jwk).where(
                    signing_keys.c.status.in_(PUBLISHED)
                )
            )
            self._keys = {kid: ECKey.import_key(dict(jwk)) for kid, jwk in rows}
        self._loaded_at = time.monotonic()
