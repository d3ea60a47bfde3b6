"""Ed25519 keys that sign deletion certificates, and the signing itself.

The private key is stored sealed under the platform DEK (envelope encryption); the public
key is published so a customer or auditor can verify a certificate without trusting us.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.keys import AssociatedData, Envelope
from services.tenant_admin.tables import certificate_keys


def canonical(document: dict[str, Any]) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _aad(platform: uuid.UUID, kid: str) -> AssociatedData:
    return AssociatedData(str(platform), "tenancy.certificate_keys", "private_key_enc", kid)


async def ensure_key(s: AsyncSession, envelope: Envelope, platform: uuid.UUID) -> str:
    kid = await s.scalar(select(certificate_keys.c.kid).order_by(certificate_keys.c.created_at))
    if kid is not None:
        return str(kid)
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = hashlib.sha256(public).hexdigest()[:16]
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    sealed = await envelope.encrypt(str(platform), raw, _aad(platform, kid))
    await s.execute(
        insert(certificate_keys).values(kid=kid, private_key_enc=sealed, public_key=public)
    )
    return kid


async def sign(
    s: AsyncSession, envelope: Envelope, platform: uuid.UUID, document: dict[str, Any]
) -> tuple[str, bytes]:
    kid = await ensure_key(s, envelope, platform)
    sealed = (
        await s.execute(
            select(certificate_keys.c.private_key_enc).where(certificate_keys.c.kid == kid)
        )
    ).scalar_one()
    raw = await envelope.decrypt(str(platform), bytes(sealed), _aad(platform, kid))
    return kid, Ed25519PrivateKey.from_private_bytes(raw).sign(canonical(document))


def verify(public_key: bytes, document: dict[str, Any], signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, canonical(document))
    except InvalidSignature:
        return False
    return True


async def public_keys(s: AsyncSession) -> list[dict[str, str]]:
    rows = await s.execute(select(certificate_keys.c.kid, certificate_keys.c.public_key))
    return [
        {"kid": kid, "alg": "Ed25519", "public_key": base64.b64encode(bytes(pk)).decode()}
        for kid, pk in rows
    ]
