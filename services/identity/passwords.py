"""Password hashing (argon2id), password policy and one-time passwords.

Policy (OWASP ASVS 5.0 level 2, NIST SP 800-63B): 12 to 128 characters, no composition rules,
no common passwords, not the username. Passwords are NFC-normalised before they are checked,
hashed or verified, so "é" typed as one code point (most keyboards) and as "e" plus a combining
accent (some input methods, macOS file names pasted into a field) is the same password.

argon2 hashing is CPU- and memory-bound on purpose: call these functions from async code with
``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import unicodedata
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from services.identity.metrics import PASSWORD_HASH_SECONDS
from services.identity.settings import IdentitySettings

# No look-alike characters: one-time passwords are read off a screen and typed.
_OTP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

MIN_LENGTH = 12
# Long enough for any passphrase; bounded so nobody can make us hash a megabyte per request.
MAX_LENGTH = 128
# Below this, "contains the username" would refuse far too much ("al" is in many passwords).
_MIN_USERNAME_LENGTH_TO_CHECK = 3

_COMMON_PASSWORDS_FILE = "common-passwords.txt"


class PasswordRejected(ValueError):
    """The password breaks the policy; ``code`` is stable for API clients, ``message`` is for
    people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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


def normalise(password: str) -> str:
    return unicodedata.normalize("NFC", password)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased; read on first use only, since most
    processes (every service but identity) never check a password."""
    text = (
        resources.files("services.identity")
        .joinpath("data", _COMMON_PASSWORDS_FILE)
        .read_text(encoding="utf-8")
    )
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def check_password(password: str, *, username: str) -> None:
    """Raise :class:`PasswordRejected` unless ``password`` meets the policy.

    Length counts Unicode code points after NFC, not bytes: a 12-character Japanese passphrase
    is as long as a 12-character English one to the person typing it.
    """
    password = normalise(password)
    length = len(password)
    if length < MIN_LENGTH:
        raise PasswordRejected("too_short", f"Use at least {MIN_LENGTH} characters.")
    if length > MAX_LENGTH:
        raise PasswordRejected("too_long", f"Use at most {MAX_LENGTH} characters.")
    # casefold, not lower: it also folds non-ASCII case pairs ("ß"/"SS") the way people expect.
    folded = password.casefold()
    if folded in common_passwords():
        raise PasswordRejected(
            "common", "This password is too common and easy to guess; choose another one."
        )
    folded_username = normalise(username).strip().casefold()
    if len(folded_username) >= _MIN_USERNAME_LENGTH_TO_CHECK and folded_username in folded:
        raise PasswordRejected("contains_username", "The password must not contain the username.")


def hash_password(hasher: PasswordHasher, password: str) -> str:
    with PASSWORD_HASH_SECONDS.time():
        return hasher.hash(normalise(password))


def _parameters_key(hasher: PasswordHasher) -> tuple[Type, int, int, int, int, int]:
    return (
        hasher.type,
        hasher.time_cost,
        hasher.memory_cost,
        hasher.parallelism,
        hasher.hash_len,
        hasher.salt_len,
    )


@functools.cache
def _dummy_hash(key: tuple[Type, int, int, int, int, int]) -> str:
    # Keyed by the parameters (argon2's Parameters is unhashable) so a dummy always costs what a
    # real hash made by the same hasher costs. The password is random and thrown away: nothing
    # can ever match it, and verify_password refuses regardless.
    type_, time_cost, memory_cost, parallelism, hash_len, salt_len = key
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_cost,
        parallelism=parallelism,
        hash_len=hash_len,
        salt_len=salt_len,
        type=type_,
    ).hash(secrets.token_urlsafe(32))


def verify_password(hasher: PasswordHasher, password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; never raises for a wrong password.

    Pass ``None`` for an unknown user: the password is then checked against a dummy hash with
    the same parameters, so the response time does not tell an attacker which usernames exist.
    """
    with PASSWORD_HASH_SECONDS.time():
        return _verify(hasher, password_hash, normalise(password))


def _verify(hasher: PasswordHasher, password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        with contextlib.suppress(VerificationError):
            hasher.verify(_dummy_hash(_parameters_key(hasher)), password)
        return False
    try:
        return hasher.verify(password_hash, password)
    # VerificationError covers VerifyMismatchError and any other failed check. A hash we cannot
    # even parse (InvalidHashError; UnicodeError when it is not ASCII) cannot match either.
    except (VerificationError, InvalidHashError, UnicodeError):
        return False


def needs_rehash(hasher: PasswordHasher, password_hash: str) -> bool:
    """True when the hash was made with other parameters than ``hasher``'s (call after a
    successful verify, then store ``hash_password`` of the password just typed)."""
    try:
        return hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        # Unparsable: it never verifies, so the only sensible thing to do with it is replace it.
        return True
