"""Opaque bearer secrets (refresh tokens, challenge tokens, SCIM tokens): random, shown once,
stored only as SHA-256. They are 256-bit random values, so a fast hash is enough: no one can
guess a preimage, and lookups by hash stay a single index probe."""

from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
