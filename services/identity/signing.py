"""ES256 signing keys: generated here, private half stored only as envelope ciphertext."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey

from jinji.keys import AssociatedData, Envelope

ALG = "ES256"


@dataclass(frozen=True)
class NewSigningKey:
    kid: str
    private_key_enc: bytes
    public_jwk: dict[str, Any]


def _aad(platform_tenant: uuid.UUID, kid: str) -> AssociatedData:
    return AssociatedData(str(platform_tenant), "identity.signing_keys", "private_key_enc", kid)


async def generate(envelope: Envelope, platform_tenant: uuid.UUID) -> NewSigningKey:
    key = ECKey.generate_key("P-256", auto_kid=True)
    kid = str(key.kid)
    private = json.dumps(key.as_dict(private=True)).encode()
    public = {**key.as_dict(private=False), "alg": ALG, "use": "sig"}
    sealed = await envelope.encrypt(str(platform_tenant), private, _aad(platform_tenant, kid))
    return NewSigningKey(kid, sealed, public)


async def load_private(
    envelope: Envelope, platform_tenant: uuid.UUID, kid: str, sealed: bytes
) -> ECKey:
    raw = await envelope.decrypt(str(platform_tenant), sealed, _aad(platform_tenant, kid))
    return ECKey.import_key(json.loads(raw))
