"""Deletion certificates are signed with an Ed25519 key (see :mod:`jinji.ed25519_keys`)
over their canonical JSON, so a customer or auditor can verify one without trusting us."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from jinji import ed25519_keys
from jinji.keys import Envelope
from services.tenant_admin.tables import certificate_keys


def canonical(document: dict[str, Any]) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signer(envelope: Envelope, platform: uuid.UUID) -> ed25519_keys.SealedEd25519:
    return ed25519_keys.SealedEd25519(certificate_keys, envelope, platform)


async def ensure_key(s: AsyncSession, envelope: Envelope, platform: uuid.UUID) -> str:
    return await signer(envelope, platform).ensure_key(s)


async def sign(
    s: AsyncSession, envelope: Envelope, platform: uuid.UUID, document: dict[str, Any]
) -> tuple[str, bytes]:
    return await signer(envelope, platform).sign(s, canonical(document))


def verify(public_key: bytes, document: dict[str, Any], signature: bytes) -> bool:
    return ed25519_keys.verify(public_key, canonical(document), signature)


async def public_keys(s: AsyncSession) -> list[dict[str, str]]:
    return await ed25519_keys.public_keys(s, certificate_keys)
