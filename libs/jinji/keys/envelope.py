"""Envelope encryption of customer content.

Each tenant's values are encrypted under that tenant's data-encryption key (DEK); each DEK
is stored only wrapped under a key-encryption key (KEK) held by a :class:`KeyProvider`.
Destroying a tenant's KEK therefore makes all of its data, including every backup,
unreadable without touching the data itself.

Blob format: ``b"J1"`` | DEK version (4 bytes, big-endian) | 12-byte random nonce |
AES-256-GCM ciphertext and 16-byte tag. The associated data binds each blob to the cell it
belongs to (tenant, table, column, row), so a blob copied into another cell fails to decrypt.
"""

from __future__ import annotations

import asyncio
import os
import struct
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jinji.keys.dek_cache import DekCache
from jinji.keys.provider import KeyProvider

# NIST SP 800-38D: with random 96-bit nonces, one key may encrypt at most 2**32 messages
# to keep the chance of a nonce collision (which breaks GCM outright) below 2**-32.
# Rotate to a new DEK version well before a tenant's DEK reaches it.
MAX_ENCRYPTIONS_PER_DEK = 2**32

_MAGIC = b"J1"
_HEADER = struct.Struct(">2sI")
_NONCE_LEN = 12
_TAG_LEN = 16
_MAX_VERSION = 2**32 - 1
_AAD_DOMAIN = b"jinji/aad/v1"


class DecryptionFailed(Exception):
    """The blob is malformed, tampered with, or does not belong to this tenant and cell."""


class NoCurrentDek(LookupError):
    """The tenant has no DEK yet; create one with :meth:`Envelope.create_dek`."""


@dataclass(frozen=True)
class AssociatedData:
    tenant: str
    table: str
    column: str
    row: str

    def encode(self) -> bytes:
        # Length-prefixed, never joined with a separator: ("a|b", "c") and ("a", "b|c")
        # must not authenticate each other's blobs.
        out = bytearray(_AAD_DOMAIN)
        for field in (self.tenant, self.table, self.column, self.row):
            raw = field.encode()
            out += len(raw).to_bytes(4, "big") + raw
        return bytes(out)


@dataclass(frozen=True)
class WrappedDek:
    tenant: str
    version: int
    kek_ref: str
    wrapped: bytes


class DekStore(Protocol):
    async def current(self, tenant: str) -> WrappedDek | None:
        """The tenant's highest DEK version, or None."""
        ...

    async def get(self, tenant: str, version: int) -> WrappedDek | None: ...

    async def add(self, dek: WrappedDek) -> None:
        """Store a new version; must fail if (tenant, version) exists (concurrent creates)."""
        ...

    async def all(self, tenant: str) -> list[WrappedDek]:
        """Every version of the tenant's DEK, oldest first."""
        ...

    async def replace(self, dek: WrappedDek) -> None:
        """Overwrite kek_ref and wrapped of an existing (tenant, version); fail if absent."""
        ...


def _check_tenant(tenant: str, aad: AssociatedData) -> None:
    # A real check, not an assert: python -O must not turn a cross-tenant bug into data
    # encrypted under one tenant's key but labelled as another's.
    if aad.tenant != tenant:
        raise ValueError("associated data names a different tenant")


class Envelope:
    def __init__(self, provider: KeyProvider, store: DekStore, cache: DekCache) -> None:
        self._provider = provider
        self._store = store
        self._cache = cache

    async def create_dek(self, tenant: str, kek_ref: str) -> WrappedDek:
        current = await self._store.current(tenant)
        version = 1 if current is None else current.version + 1
        if version > _MAX_VERSION:
            raise OverflowError("DEK version does not fit the blob header")
        dek = AESGCM.generate_key(bit_length=256)
        record = WrappedDek(
            tenant, version, kek_ref, await self._wrap_verified(tenant, kek_ref, dek)
        )
        await self._store.add(record)
        self._cache.put(tenant, version, dek)
        return record

    async def encrypt(self, tenant: str, plaintext: bytes, aad: AssociatedData) -> bytes:
        _check_tenant(tenant, aad)
        current = await self._store.current(tenant)
        if current is None:
            raise NoCurrentDek("tenant has no data-encryption key; call Envelope.create_dek first")
        dek = await self._dek(current)
        nonce = os.urandom(_NONCE_LEN)
        header = _HEADER.pack(_MAGIC, current.version)
        return header + nonce + AESGCM(dek).encrypt(nonce, plaintext, aad.encode())

    async def decrypt(self, tenant: str, blob: bytes, aad: AssociatedData) -> bytes:
        _check_tenant(tenant, aad)
        if len(blob) < _HEADER.size + _NONCE_LEN + _TAG_LEN:
            raise DecryptionFailed("blob is too short")
        magic, version = _HEADER.unpack_from(blob)
        if magic != _MAGIC:
            raise DecryptionFailed("blob has an unknown format")
        record = await self._store.get(tenant, version)
        if record is None:
            raise DecryptionFailed("blob names a DEK version this tenant does not have")
        dek = await self._dek(record)
        nonce = blob[_HEADER.size : _HEADER.size + _NONCE_LEN]
        body = blob[_HEADER.size + _NONCE_LEN :]
        try:
            return AESGCM(dek).decrypt(nonce, body, aad.encode())
        except InvalidTag:
            raise DecryptionFailed("blob does not authenticate for this tenant and cell") from None

    async def rewrap(self, tenant: str, new_kek_ref: str) -> int:
        """Re-wrap every DEK version under ``new_kek_ref``; return how many were re-wrapped.

        Data is not re-encrypted: only the wrapped DEKs change, so every old blob stays
        readable. Safe to run again after a partial failure. Make ``new_kek_ref`` the one
        new DEKs are created under first (a DEK created under the old KEK meanwhile would be
        missed), then rerun until it returns 0, and only then destroy the old KEK.
        """
        count = 0
        for record in await self._store.all(tenant):
            if record.kek_ref == new_kek_ref:
                continue
            # Straight from the provider, not the cache: a DEK whose KEK was already destroyed
            # must not be revived from memory under a new KEK.
            dek = await asyncio.to_thread(
                self._provider.unwrap, record.kek_ref, tenant, record.wrapped
            )
            wrapped = await self._wrap_verified(tenant, new_kek_ref, dek)
            await self._store.replace(WrappedDek(tenant, record.version, new_kek_ref, wrapped))
            count += 1
        return count

    async def _wrap_verified(self, tenant: str, kek_ref: str, dek: bytes) -> bytes:
        # The wrapped DEK is the only copy of the key: check it opens before storing it, so a
        # misbehaving provider costs an error now rather than the tenant's data later.
        wrapped = await asyncio.to_thread(self._provider.wrap, kek_ref, tenant, dek)
        if await asyncio.to_thread(self._provider.unwrap, kek_ref, tenant, wrapped) != dek:
            raise RuntimeError("key provider returned a wrapped DEK that does not unwrap")
        return wrapped

    async def _dek(self, record: WrappedDek) -> bytes:
        dek = self._cache.get(record.tenant, record.version)
        if dek is None:
            dek = await asyncio.to_thread(
                self._provider.unwrap, record.kek_ref, record.tenant, record.wrapped
            )
            self._cache.put(record.tenant, record.version, dek)
        return dek
