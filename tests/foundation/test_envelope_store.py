"""Envelope encryption with DEKs in PostgreSQL (``tenancy.data_keys``, SqlDekStore) and KEKs in
local files: what is stored, versions, re-wrapping, and crypto-shredding by KEK destruction.

Each test uses a random tenant id of its own, so tests share the session database safely.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from jinji.db import Database
from jinji.keys import (
    AssociatedData,
    DecryptionFailed,
    DekCache,
    Envelope,
    KeyUnavailable,
    LocalKeyProvider,
    UnwrapFailed,
    WrappedDek,
)
from jinji.keys.sql_store import SqlDekStore, data_keys

_HEADER_LEN = 6  # b"J1" + 4-byte DEK version
_NONCE_LEN = 12


@pytest.fixture
def tenant() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def provider(tmp_path: Path) -> LocalKeyProvider:
    return LocalKeyProvider(tmp_path / "keys")


@pytest.fixture
def store(db: Database) -> SqlDekStore:
    return SqlDekStore(db)


def fresh_envelope(provider: LocalKeyProvider, db: Database) -> Envelope:
    """As a newly started process has it: nothing cached."""
    return Envelope(provider, SqlDekStore(db), DekCache())


def cell(tenant: str, row: str = "r1") -> AssociatedData:
    return AssociatedData(tenant, "dataset_versions", "content_enc", row)


def blob_version(blob: bytes) -> int:
    return int.from_bytes(blob[2:_HEADER_LEN], "big")


async def stored_rows(db: Database, tenant: str) -> list[tuple[int, str, bytes]]:
    async with db.transaction() as s:
        rows = await s.execute(
            select(data_keys.c.version, data_keys.c.kek_ref, data_keys.c.wrapped_dek)
            .where(data_keys.c.tenant_id == uuid.UUID(tenant))
            .order_by(data_keys.c.version)
        )
        return [(int(v), str(k), bytes(w)) for v, k, w in rows]


async def rows_containing(db: Database, needle: bytes) -> int:
    """How many rows of the whole DEK table hold ``needle`` anywhere, raw or hex-encoded."""
    async with db.transaction() as s:
        count = await s.scalar(
            text(
                "SELECT count(*) FROM tenancy.data_keys "
                "WHERE position(:raw IN wrapped_dek) > 0 "
                "OR position(:hex IN encode(wrapped_dek, 'hex')) > 0 "
                "OR position(:hex IN kek_ref) > 0"
            ),
            {"raw": needle, "hex": needle.hex()},
        )
    return int(count or 0)


async def test_round_trip_through_the_database(
    db: Database, provider: LocalKeyProvider, store: SqlDekStore, tenant: str
) -> None:
    kek = provider.create(tenant)
    envelope = Envelope(provider, store, DekCache())
    record = await envelope.create_dek(tenant, kek)
    assert (record.tenant, record.version, record.kek_ref) == (tenant, 1, kek)
    assert await store.current(tenant) == record
    assert await store.get(tenant, 1) == record
    assert await store.all(tenant) == [record]

    plaintext = "社員番号 1234, 山田太郎".encode()
    blob = await envelope.encrypt(tenant, plaintext, cell(tenant))
    assert plaintext not in blob
    assert await envelope.decrypt(tenant, blob, cell(tenant)) == plaintext
    # Another process (no cache) reads the DEK from the database and the KEK from its file.
    assert await fresh_envelope(provider, db).decrypt(tenant, blob, cell(tenant)) == plaintext
    with pytest.raises(DecryptionFailed):
        await envelope.decrypt(tenant, blob, cell(tenant, row="r2"))


async def test_dek_is_stored_only_wrapped(
    db: Database, provider: LocalKeyProvider, store: SqlDekStore, tenant: str, tmp_path: Path
) -> None:
    kek = provider.create(tenant)
    envelope = Envelope(provider, store, DekCache())
    await envelope.create_dek(tenant, kek)
    plaintext = b"salary: 5,000,000 JPY"
    blob = await envelope.encrypt(tenant, plaintext, cell(tenant))

    [(version, kek_ref, wrapped)] = await stored_rows(db, tenant)
    assert (version, kek_ref) == (1, kek)
    dek = provider.unwrap(kek, tenant, wrapped)
    assert len(dek) == 32
    # It is the very key the data is encrypted with...
    nonce = blob[_HEADER_LEN : _HEADER_LEN + _NONCE_LEN]
    body = blob[_HEADER_LEN + _NONCE_LEN :]
    assert AESGCM(dek).decrypt(nonce, body, cell(tenant).encode()) == plaintext
    # ...and neither it nor the KEK is anywhere in the table, raw or hex.
    assert await rows_containing(db, wrapped) == 1  # the search does find what is there
    assert dek not in wrapped
    assert await rows_containing(db, dek) == 0
    kek_bytes = (tmp_path / "keys" / f"{kek}.kek").read_bytes()
    assert len(kek_bytes) == 32
    assert await rows_containing(db, kek_bytes) == 0


async def test_two_versions_both_decrypt(
    db: Database, provider: LocalKeyProvider, store: SqlDekStore, tenant: str
) -> None:
    kek = provider.create(tenant)
    envelope = Envelope(provider, store, DekCache())
    await envelope.create_dek(tenant, kek)
    old = await envelope.encrypt(tenant, b"written under v1", cell(tenant))
    second = await envelope.create_dek(tenant, kek)
    new = await envelope.encrypt(tenant, b"written under v2", cell(tenant))

    assert second.version == 2
    assert (blob_version(old), blob_version(new)) == (1, 2)
    assert await store.current(tenant) == second
    rows = await stored_rows(db, tenant)
    assert [r[0] for r in rows] == [1, 2]
    deks = [provider.unwrap(kek, tenant, r[2]) for r in rows]
    assert deks[0] != deks[1]

    reader = fresh_envelope(provider, db)
    assert await reader.decrypt(tenant, old, cell(tenant)) == b"written under v1"
    assert await reader.decrypt(tenant, new, cell(tenant)) == b"written under v2"


async def test_rewrap_to_a_new_kek_then_destroy_the_old_one(
    db: Database, provider: LocalKeyProvider, store: SqlDekStore, tenant: str
) -> None:
    old_kek = provider.create(tenant)
    envelope = Envelope(provider, store, DekCache())
    await envelope.create_dek(tenant, old_kek)
    v1 = await envelope.encrypt(tenant, b"one", cell(tenant))
    await envelope.create_dek(tenant, old_kek)
    v2 = await envelope.encrypt(tenant, b"two", cell(tenant))
    deks_before = [provider.unwrap(old_kek, tenant, r[2]) for r in await stored_rows(db, tenant)]

    new_kek = provider.create(tenant)
    assert await envelope.rewrap(tenant, new_kek) == 2
    assert await envelope.rewrap(tenant, new_kek) == 0  # rerun until 0, as documented
    rows = await stored_rows(db, tenant)
    assert [(v, k) for v, k, _ in rows] == [(1, new_kek), (2, new_kek)]
    # Same DEKs (so no data re-encryption), now wrapped under the new KEK only.
    assert [provider.unwrap(new_kek, tenant, r[2]) for r in rows] == deks_before

    provider.destroy(old_kek)
    reader = fresh_envelope(provider, db)
    assert await reader.decrypt(tenant, v1, cell(tenant)) == b"one"
    assert await reader.decrypt(tenant, v2, cell(tenant)) == b"two"
    # New data goes on under the new KEK.
    third = await reader.create_dek(tenant, new_kek)
    v3 = await reader.encrypt(tenant, b"three", cell(tenant))
    assert blob_version(v3) == third.version == 3
    assert await fresh_envelope(provider, db).decrypt(tenant, v3, cell(tenant)) == b"three"


async def test_destroying_the_current_kek_makes_data_unreadable(
    db: Database, provider: LocalKeyProvider, store: SqlDekStore, tenant: str
) -> None:
    kek = provider.create(tenant)
    cache = DekCache()
    envelope = Envelope(provider, store, cache)
    await envelope.create_dek(tenant, kek)
    blob = await envelope.encrypt(tenant, b"to be shredded", cell(tenant))

    provider.destroy(kek)
    # A DEK still cached cannot be revived under a new KEK: rewrap goes to the provider.
    with pytest.raises(KeyUnavailable):
        await envelope.rewrap(tenant, provider.create(tenant))

    cache.clear()
    with pytest.raises(KeyUnavailable):
        await envelope.decrypt(tenant, blob, cell(tenant))
    with pytest.raises(KeyUnavailable):
        await envelope.encrypt(tenant, b"more", cell(tenant))
    with pytest.raises(KeyUnavailable):
        await fresh_envelope(provider, db).decrypt(tenant, blob, cell(tenant))
    # The wrapped DEK is still in the database; it simply no longer opens.
    assert [r[1] for r in await stored_rows(db, tenant)] == [kek]


async def test_wrapped_dek_copied_to_another_tenant_does_not_open(
    db: Database, provider: LocalKeyProvider, store: SqlDekStore, tenant: str
) -> None:
    kek = provider.create(tenant)
    envelope = Envelope(provider, store, DekCache())
    record = await envelope.create_dek(tenant, kek)
    blob = await envelope.encrypt(tenant, b"tenant A only", cell(tenant))

    intruder = str(uuid.uuid4())
    await store.add(WrappedDek(intruder, 1, record.kek_ref, record.wrapped))
    with pytest.raises(UnwrapFailed):
        await fresh_envelope(provider, db).decrypt(intruder, blob, cell(intruder))


async def test_adding_an_existing_version_fails(
    db: Database, provider: LocalKeyProvider, store: SqlDekStore, tenant: str
) -> None:
    kek = provider.create(tenant)
    envelope = Envelope(provider, store, DekCache())
    record = await envelope.create_dek(tenant, kek)
    blob = await envelope.encrypt(tenant, b"kept", cell(tenant))

    other_dek = AESGCM.generate_key(bit_length=256)
    clash = WrappedDek(tenant, 1, kek, provider.wrap(kek, tenant, other_dek))
    with pytest.raises(IntegrityError):
        await store.add(clash)
    # The first DEK survives: data under it still reads.
    assert await stored_rows(db, tenant) == [(1, kek, record.wrapped)]
    assert await fresh_envelope(provider, db).decrypt(tenant, blob, cell(tenant)) == b"kept"


async def test_concurrent_dek_creation_never_overwrites_a_version(
    db: Database, provider: LocalKeyProvider, tenant: str
) -> None:
    kek = provider.create(tenant)
    envelopes = [fresh_envelope(provider, db) for _ in range(4)]
    results = await asyncio.gather(
        *(e.create_dek(tenant, kek) for e in envelopes), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, WrappedDek)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert created
    assert all(isinstance(f, IntegrityError) for f in failed), failed
    rows = await stored_rows(db, tenant)
    # Each stored version is exactly the one its creator was told about.
    assert sorted((r.version, r.wrapped) for r in created) == [(v, w) for v, _, w in rows]


async def test_replacing_a_missing_version_raises(
    db: Database, provider: LocalKeyProvider, store: SqlDekStore, tenant: str
) -> None:
    kek = provider.create(tenant)
    dek = AESGCM.generate_key(bit_length=256)
    wrapped = provider.wrap(kek, tenant, dek)
    with pytest.raises(LookupError):
        await store.replace(WrappedDek(tenant, 1, kek, wrapped))
    assert await stored_rows(db, tenant) == []

    record = await Envelope(provider, store, DekCache()).create_dek(tenant, kek)
    with pytest.raises(LookupError):
        await store.replace(WrappedDek(tenant, 2, kek, wrapped))
    assert await stored_rows(db, tenant) == [(1, kek, record.wrapped)]
