"""Password hashing (argon2id) and one-time passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type

from services.identity.settings import IdentitySettings

# No look-alike characters: one-time passwords are read off a screen and typed.
_OTP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


def hasher(settings: IdentitySettings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def one_time_password(length: int = 20) -> str:
    return "".join(secrets.choice(_OTP_ALPHABET) for _ in range(length))
