"""Ed25519 signing keys whose private halves are sealed under the platform DEK (envelope
encryption). Used for deletion certificates and audit checkpoints; each use has its own
key table with columns ``kid``, ``private_key_enc``, ``public_key``, ``created_at``."""

from __future__ import annotations

import base64
import hashlib
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.keys import AssociatedData, Envelope


class SealedEd25519:
    def __init__(self, table: Table, envelope: Envelope, platform: uuid.UUID) -> None:
        self.table = table
        self.envelope = envelope
        self.platform = platform

    def _aad(self, kid: str) -> AssociatedData:
        return AssociatedData(str(self.platform), self.table.fullname, "private_key_enc", kid)

    async def ensure_key(self, s: AsyncSession) -> str:
        """The signing key's id; the first call creates the key."""
        t = self.table
        kid = await s.scalar(select(t.c.kid).order_by(t.c.created_at.desc()).limit(1))
        if kid is not None:
            return str(kid)
        private = Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        kid = hashlib.sha256(public).hexdigest()[:16]
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        sealed = await self.envelope.encrypt(str(self.platform), raw, self._aad(kid))
        await s.execute(insert(t).values(kid=kid, private_key_enc=sealed, public_key=public))
        return kid

    async def sign(self, s: AsyncSession, message: bytes) -> tuple[str, bytes]:
        kid = await self.ensure_key(s)
        t = self.table
        sealed = (await s.execute(select(t.c.private_key_enc).where(t.c.kid == kid))).scalar_one()
        raw = await self.envelope.decrypt(str(self.platform), bytes(sealed), self._aad(kid))
        return kid, Ed25519PrivateKey.from_private_bytes(raw).sign(message)


async def public_keys(s: AsyncSession, table: Table) -> list[dict[str, str]]:
    """Published verification keys (no envelope needed: public halves are stored plain)."""
    rows = await s.execute(select(table.c.kid, table.c.public_key))
    return [
        {"kid": kid, "alg": "Ed25519", "public_key": base64.b64encode(bytes(pk)).decode()}
        for kid, pk in rows
    ]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
