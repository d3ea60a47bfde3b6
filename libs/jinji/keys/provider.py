"""The key-encryption-key (KEK) interface every key backend implements.

Methods are synchronous because both backends block (file I/O, a KMS round trip); async
callers go through ``asyncio.to_thread`` so one slow KMS call never stalls the event loop.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

# Tenant ids (UUIDs, with or without hyphens) and "platform". No ':', '/' or '.': an owner
# ends up in key refs and file names, which must split unambiguously and stay in key_dir.
OWNER_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_OWNER_RE = re.compile(OWNER_PATTERN)


class KeyUnavailable(Exception):
    """The KEK is destroyed or unknown: every unwrap under it fails, now and later."""


class UnwrapFailed(Exception):
    """The wrapped key does not open under this KEK and owner: wrong owner or tampered bytes."""


def check_owner(owner: str) -> str:
    """Return ``owner`` if it is a valid KEK owner; every backend accepts the same set."""
    if not _OWNER_RE.fullmatch(owner):
        raise ValueError("KEK owner must be a tenant id or 'platform'")
    return owner


class KeyProvider(Protocol):
    def create(self, owner: str) -> str:
        """Create a KEK for ``owner`` (a tenant id or ``"platform"``); return its opaque ref."""
        ...

    def wrap(self, kek_ref: str, owner: str, dek: bytes) -> bytes:
        """Encrypt ``dek`` under the KEK, bound to ``owner`` so no other owner can unwrap it."""
        ...

    def unwrap(self, kek_ref: str, owner: str, wrapped: bytes) -> bytes:
        """Reverse :meth:`wrap`; raises :class:`KeyUnavailable` or :class:`UnwrapFailed`."""
        ...

    def destroy(self, kek_ref: str) -> None:
        """Make the KEK unusable for good (crypto-shredding); calling it again is a no-op."""
        ...


def make_provider(
    kind: str, *, key_dir: Path, kms_region: str, kms_endpoint_url: str | None
) -> KeyProvider:
    # Imported here so a deployment on local keys never imports boto3, and the backends can
    # import the exceptions above without an import cycle.
    if kind == "local":
        from jinji.keys.local import LocalKeyProvider

        return LocalKeyProvider(key_dir)
    if kind == "aws-kms":
        from jinji.keys.aws_kms import AwsKmsKeyProvider

        return AwsKmsKeyProvider(kms_region, kms_endpoint_url)
    raise ValueError(f"unknown key provider {kind!r}; expected 'local' or 'aws-kms'")
