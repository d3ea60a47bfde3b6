"""Signing access tokens and publishing the keys that verify them.

The current ES256 key signs; keys rotated out stay in the JWKS (status ``previous``) until
every token they signed has expired, then are retired. Private keys are decrypted from
``identity.signing_keys`` (envelope ciphertext under the platform DEK) into memory only.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.db import Database
from jinji.keys import Envelope
from services.identity import signing
from services.identity.tables import signing_keys


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    key: ECKey


class Keyring:
    """Loaded lazily and reloaded when the current key changes (rotation by any replica)."""

    def __init__(self, db: Database, envelope: Envelope, platform_tenant: uuid.UUID) -> None:
        self.db = db
        self.envelope = envelope
        self.platform_tenant = platform_tenant
        self._active: ActiveKey | None = None
        self._checked_at = 0.0

    async def active(self) -> ActiveKey:
        # Re-read the current kid at most every 10 s: a rotation on another replica takes
        # effect here shortly after, without a database read per token.
        if self._active is None or time.monotonic() - self._checked_at > 10:
            async with self.db.transaction() as s:
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
                .where(signing_keys.c.status.in_(("current", "previous")))
                .order_by(signing_keys.c.created_at.desc())
            )
            return {"keys": [dict(r[0]) for r in rows]}

    async def rotate(self, keep_previous_for: timedelta) -> str:
        """Make a new current key; the old one verifies until ``keep_previous_for`` passes."""
        new = await signing.generate(self.envelope, self.platform_tenant)
        now = datetime.now(UTC)
        async with self.db.transaction() as s:
            await retire_expired(s, now)
            await s.execute(
                update(signing_keys)
                .where(signing_keys.c.status == "current")
                .values(status="previous", retire_after=now + keep_previous_for)
            )
            await s.execute(
                insert(signing_keys).values(
                    kid=new.kid,
                    alg=signing.ALG,
                    private_key_enc=new.private_key_enc,
                    public_jwk=new.public_jwk,
                    status="current",
                )
            )
        self._active = None
        return new.kid


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
        stale = time.monotonic() - self._loaded_at > 10
        if stale or (kid not in self._keys and time.monotonic() - self._loaded_at > 1):
            await self._load()
        return self._keys.get(kid)

    async def _load(self) -> None:
        async with self.db.transaction() as s:
            rows = await s.execute(
                select(signing_keys.c.kid, signing_keys.c.public_jwk).where(
                    signing_keys.c.status.in_(("current", "previous"))
                )
            )
            self._keys = {kid: ECKey.import_key(dict(jwk)) for kid, jwk in rows}
        self._loaded_at = time.monotonic()
