"""Local KEK provider and envelope encryption, with real cryptography throughout.

The only stand-ins are an in-memory DEK store (the PostgreSQL one lives elsewhere) and a
wrapper that counts provider calls; every key, wrap and cipher is the real thing.
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest

from jinji.keys import (
    AssociatedData,
    DecryptionFailed,
    DekCache,
    Envelope,
    KeyUnavailable,
    LocalKeyProvider,
    NoCurrentDek,
    UnwrapFailed,
    WrappedDek,
    make_provider,
)

TENANT_A = "3f1c9a52-6f0e-4c8e-9a43-1d2b7c5e8f01"
TENANT_B = "9b2e4d61-0a7f-4b3c-8e15-6c9d2f4a7b02"
DEK = bytes(range(32))


class MemoryDekStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], WrappedDek] = {}

    async def current(self, tenant: str) -> WrappedDek | None:
        versions = [v for (t, v) in self.rows if t == tenant]
        return self.rows[(tenant, max(versions))] if versions else None

    async def get(self, tenant: str, version: int) -> WrappedDek | None:
        return self.rows.get((tenant, version))

    async def add(self, dek: WrappedDek) -> None:
        if (dek.tenant, dek.version) in self.rows:
            raise ValueError("DEK version exists")
        self.rows[(dek.tenant, dek.version)] = dek

    async def all(self, tenant: str) -> list[WrappedDek]:
        return [self.rows[k] for k in sorted(self.rows) if k[0] == tenant]

    async def replace(self, dek: WrappedDek) -> None:
        if (dek.tenant, dek.version) not in self.rows:
            raise KeyError("no such DEK version")
        self.rows[(dek.tenant, dek.version)] = dek


class CountingProvider:
    """The real provider, with its unwraps counted: cache tests need to see the round trips."""

    def __init__(self, inner: LocalKeyProvider) -> None:
        self.inner = inner
        self.unwraps = 0

    def create(self, owner: str) -> str:
        return self.inner.create(owner)

    def wrap(self, kek_ref: str, owner: str, dek: bytes) -> bytes:
        return self.inner.wrap(kek_ref, owner, dek)

    def unwrap(self, kek_ref: str, owner: str, wrapped: bytes) -> bytes:
        self.unwraps += 1
        return self.inner.unwrap(kek_ref, owner, wrapped)

    def destroy(self, kek_ref: str) -> None:
        self.inner.destroy(kek_ref)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def cell(tenant: str = TENANT_A, row: str = "42") -> AssociatedData:
    return AssociatedData(tenant=tenant, table="employees", column="salary", row=row)


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def provider(key_dir: Path) -> LocalKeyProvider:
    return LocalKeyProvider(key_dir)


@pytest.fixture
def store() -> MemoryDekStore:
    return MemoryDekStore()


@pytest.fixture
def cache() -> DekCache:
    return DekCache(ttl=300)


@pytest.fixture
def envelope(provider: LocalKeyProvider, store: MemoryDekStore, cache: DekCache) -> Envelope:
    return Envelope(provider, store, cache)


# --- local provider ---------------------------------------------------------------------


def test_wrap_unwrap_round_trip(provider: LocalKeyProvider) -> None:
    ref = provider.create(TENANT_A)
    assert ref.startswith(f"local:{TENANT_A}:")
    wrapped = provider.wrap(ref, TENANT_A, DEK)
    assert DEK not in wrapped
    assert provider.unwrap(ref, TENANT_A, wrapped) == DEK
    # Random nonces: wrapping twice never gives the same bytes.
    assert provider.wrap(ref, TENANT_A, DEK) != wrapped


def test_unwrap_as_another_owner_fails(provider: LocalKeyProvider) -> None:
    ref = provider.create("platform")
    wrapped = provider.wrap(ref, TENANT_A, DEK)
    with pytest.raises(UnwrapFailed):
        provider.unwrap(ref, TENANT_B, wrapped)


def test_unwrap_under_another_kek_fails(provider: LocalKeyProvider) -> None:
    ref_a, ref_b = provider.create(TENANT_A), provider.create(TENANT_A)
    with pytest.raises(UnwrapFailed):
        provider.unwrap(ref_b, TENANT_A, provider.wrap(ref_a, TENANT_A, DEK))


@pytest.mark.parametrize(
    "index",
    [0, 11, 12, 30, -16, -1],
    ids=["nonce0", "nonce11", "body0", "body", "tag0", "tag-last"],
)
def test_tampered_wrapped_key_fails(provider: LocalKeyProvider, index: int) -> None:
    ref = provider.create(TENANT_A)
    wrapped = provider.wrap(ref, TENANT_A, DEK)
    with pytest.raises(UnwrapFailed):
        provider.unwrap(ref, TENANT_A, flip(wrapped, index))


@pytest.mark.parametrize("length", [0, 12, 27])
def test_truncated_wrapped_key_fails(provider: LocalKeyProvider, length: int) -> None:
    ref = provider.create(TENANT_A)
    with pytest.raises(UnwrapFailed):
        provider.unwrap(ref, TENANT_A, provider.wrap(ref, TENANT_A, DEK)[:length])


def test_kek_file_and_directory_modes(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    key_dir.mkdir(mode=0o755)
    old_umask = os.umask(0)  # the most permissive umask must not loosen anything
    try:
        provider = LocalKeyProvider(key_dir)
        ref = provider.create(TENANT_A)
    finally:
        os.umask(old_umask)
    path = key_dir / f"{ref}.kek"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert path.stat().st_size == 32
    assert sorted(p.name for p in key_dir.iterdir()) == [f"{ref}.kek"]  # no temp file left


def test_create_never_overwrites_an_existing_kek(
    provider: LocalKeyProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixed = uuid.UUID("00000000-0000-4000-8000-000000000000")
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    ref = provider.create(TENANT_A)
    wrapped = provider.wrap(ref, TENANT_A, DEK)
    with pytest.raises(FileExistsError):
        provider.create(TENANT_A)
    assert provider.unwrap(ref, TENANT_A, wrapped) == DEK


@pytest.mark.parametrize("owner", ["", "../etc", "a:b", "a/b", "a.b", "x" * 65, "platform\n"])
def test_create_refuses_a_bad_owner(provider: LocalKeyProvider, owner: str) -> None:
    with pytest.raises(ValueError, match="owner"):
        provider.create(owner)


def test_path_traversal_kek_ref_is_refused(tmp_path: Path, key_dir: Path) -> None:
    provider = LocalKeyProvider(key_dir)
    victim = tmp_path / "victim.kek"
    victim.write_bytes(b"v" * 32)
    # Make the traversal work at the OS level, so only the ref check stands in the way.
    (key_dir / "local:x:").mkdir()
    evil = "local:x:/../../victim"
    assert (key_dir / f"{evil}.kek").exists()
    for call in (
        lambda: provider.unwrap(evil, TENANT_A, b"\0" * 40),
        lambda: provider.wrap(evil, TENANT_A, DEK),
        lambda: provider.destroy(evil),
    ):
        with pytest.raises(ValueError, match="malformed"):
            call()
    assert victim.read_bytes() == b"v" * 32


@pytest.mark.parametrize(
    "ref",
    [
        "../local:platform:" + "0" * 32,
        "local:platform:" + "0" * 32 + "\n",
        "local:platform:" + "0" * 31,
        "local:platform:" + "G" * 32,
        "local:..:" + "0" * 32,
        "local:platform:" + "0" * 32 + "/../../x",
        "aws-kms:arn:aws:kms:ap-northeast-1:123456789012:key/abc",
    ],
)
def test_malformed_kek_refs_are_refused(provider: LocalKeyProvider, ref: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        provider.unwrap(ref, TENANT_A, b"\0" * 40)


def test_unknown_kek_is_unavailable(provider: LocalKeyProvider) -> None:
    ref = f"local:{TENANT_A}:{uuid.uuid4().hex}"
    with pytest.raises(KeyUnavailable):
        provider.unwrap(ref, TENANT_A, b"\0" * 40)
    with pytest.raises(KeyUnavailable):
        provider.wrap(ref, TENANT_A, DEK)


def test_destroy_is_final_and_idempotent(provider: LocalKeyProvider, key_dir: Path) -> None:
    ref = provider.create(TENANT_A)
    wrapped = provider.wrap(ref, TENANT_A, DEK)
    provider.destroy(ref)
    for _ in range(2):
        with pytest.raises(KeyUnavailable):
            provider.unwrap(ref, TENANT_A, wrapped)
    provider.destroy(ref)
    with pytest.raises(KeyUnavailable):
        LocalKeyProvider(key_dir).unwrap(ref, TENANT_A, wrapped)
    with pytest.raises(KeyUnavailable):
        provider.wrap(ref, TENANT_A, DEK)
    assert list(key_dir.iterdir()) == []


def test_destroy_finishes_an_interrupted_shred(provider: LocalKeyProvider, key_dir: Path) -> None:
    ref = provider.create(TENANT_A)
    wrapped = provider.wrap(ref, TENANT_A, DEK)
    # As if a crash hit right after destroy moved the KEK off its name.
    (key_dir / f"{ref}.kek").rename(key_dir / f"{ref}.shred")
    with pytest.raises(KeyUnavailable):
        provider.unwrap(ref, TENANT_A, wrapped)
    provider.destroy(ref)
    assert list(key_dir.iterdir()) == []


def test_destroy_leaves_other_keks_alone(provider: LocalKeyProvider) -> None:
    gone, kept = provider.create(TENANT_A), provider.create(TENANT_B)
    wrapped = provider.wrap(kept, TENANT_B, DEK)
    provider.destroy(gone)
    assert provider.unwrap(kept, TENANT_B, wrapped) == DEK


def test_make_provider(key_dir: Path) -> None:
    local = make_provider(
        "local", key_dir=key_dir, kms_region="ap-northeast-1", kms_endpoint_url=None
    )
    assert isinstance(local, LocalKeyProvider)
    with pytest.raises(ValueError, match="unknown key provider"):
        make_provider("vault", key_dir=key_dir, kms_region="ap-northeast-1", kms_endpoint_url=None)


# --- associated data --------------------------------------------------------------------


def test_associated_data_encoding_is_unambiguous() -> None:
    tuples = [
        ("a|b", "c", "d", "e"),
        ("a", "b|c", "d", "e"),
        ("ab", "", "d", "e"),
        ("a", "b", "d", "e"),
        ("", "ab", "d", "e"),
        ("a", "b", "c", "d\x00"),
        ("a", "b", "c\x00", "d"),
        ("a\x00\x00\x00\x01b", "c", "d", "e"),
        ('["a"', 'b"]', "d", "e"),
        ("人事", "c", "d", "e"),
    ]
    encodings = {AssociatedData(*t).encode() for t in tuples}
    assert len(encodings) == len(tuples)
    assert (
        AssociatedData("a", "b", "c", "d").encode() == AssociatedData("a", "b", "c", "d").encode()
    )


# --- envelope ---------------------------------------------------------------------------


async def test_envelope_round_trip(envelope: Envelope, provider: LocalKeyProvider) -> None:
    dek = await envelope.create_dek(TENANT_A, provider.create(TENANT_A))
    assert dek.version == 1
    for plaintext in (b"", b"8500000", "山田太郎".encode() * 1000):
        blob = await envelope.encrypt(TENANT_A, plaintext, cell())
        assert blob[:6] == b"J1\x00\x00\x00\x01"
        assert len(blob) == 2 + 4 + 12 + len(plaintext) + 16
        assert await envelope.decrypt(TENANT_A, blob, cell()) == plaintext


async def test_encrypt_without_a_dek_says_so(envelope: Envelope) -> None:
    with pytest.raises(NoCurrentDek):
        await envelope.encrypt(TENANT_A, b"x", cell())


async def test_associated_data_must_name_the_tenant(
    envelope: Envelope, provider: LocalKeyProvider
) -> None:
    await envelope.create_dek(TENANT_A, provider.create(TENANT_A))
    blob = await envelope.encrypt(TENANT_A, b"x", cell())
    with pytest.raises(ValueError, match="different tenant"):
        await envelope.encrypt(TENANT_A, b"x", cell(TENANT_B))
    with pytest.raises(ValueError, match="different tenant"):
        await envelope.decrypt(TENANT_A, blob, cell(TENANT_B))


@pytest.mark.parametrize(
    "other",
    [
        AssociatedData(TENANT_A, "employees", "salary", "43"),
        AssociatedData(TENANT_A, "employees", "bonus", "42"),
        AssociatedData(TENANT_A, "applicants", "salary", "42"),
    ],
    ids=["row", "column", "table"],
)
async def test_wrong_associated_data_fails(
    envelope: Envelope, provider: LocalKeyProvider, other: AssociatedData
) -> None:
    await envelope.create_dek(TENANT_A, provider.create(TENANT_A))
    blob = await envelope.encrypt(TENANT_A, b"8500000", cell())
    with pytest.raises(DecryptionFailed):
        await envelope.decrypt(TENANT_A, blob, other)


@pytest.mark.parametrize(
    "index",
    [0, 1, 2, 5, 6, 17, 18, -17, -16, -1],
    ids=[
        "magic0",
        "magic1",
        "version-high",
        "version-low",
        "nonce0",
        "nonce11",
        "body0",
        "body-last",
        "tag0",
        "tag-last",
    ],
)
async def test_tampered_blob_fails(
    envelope: Envelope, provider: LocalKeyProvider, index: int
) -> None:
    await envelope.create_dek(TENANT_A, provider.create(TENANT_A))
    blob = await envelope.encrypt(TENANT_A, b"8500000", cell())
    with pytest.raises(DecryptionFailed):
        await envelope.decrypt(TENANT_A, flip(blob, index), cell())


@pytest.mark.parametrize("length", [0, 2, 6, 18, 33])
async def test_truncated_blob_fails(
    envelope: Envelope, provider: LocalKeyProvider, length: int
) -> None:
    await envelope.create_dek(TENANT_A, provider.create(TENANT_A))
    blob = await envelope.encrypt(TENANT_A, b"8500000", cell())
    with pytest.raises(DecryptionFailed):
        await envelope.decrypt(TENANT_A, blob[:length], cell())


async def test_blob_of_one_tenant_does_not_decrypt_as_another(
    envelope: Envelope, provider: LocalKeyProvider
) -> None:
    await envelope.create_dek(TENANT_A, provider.create(TENANT_A))
    blob = await envelope.encrypt(TENANT_A, b"8500000", cell(TENANT_A))
    # B has no DEK yet, then has one with the same version number as A's.
    with pytest.raises(DecryptionFailed):
        await envelope.decrypt(TENANT_B, blob, cell(TENANT_B))
    await envelope.create_dek(TENANT_B, provider.create(TENANT_B))
    with pytest.raises(DecryptionFailed):
        await envelope.decrypt(TENANT_B, blob, cell(TENANT_B))


async def test_wrapped_dek_of_another_tenant_does_not_unwrap(
    envelope: Envelope, provider: LocalKeyProvider, store: MemoryDekStore, cache: DekCache
) -> None:
    # A database-level attack: B's DEK row overwritten with A's wrapped DEK.
    a = await envelope.create_dek(TENANT_A, provider.create(TENANT_A))
    b = await envelope.create_dek(TENANT_B, provider.create(TENANT_B))
    await store.replace(WrappedDek(TENANT_B, b.version, a.kek_ref, a.wrapped))
    cache.clear()
    with pytest.raises(UnwrapFailed):
        await envelope.encrypt(TENANT_B, b"x", cell(TENANT_B))


async def test_destroyed_kek_makes_data_unreadable_for_good(
    envelope: Envelope,
    provider: LocalKeyProvider,
    store: MemoryDekStore,
    cache: DekCache,
    key_dir: Path,
) -> None:
    kek = provider.create(TENANT_A)
    await envelope.create_dek(TENANT_A, kek)
    blob = await envelope.encrypt(TENANT_A, b"8500000", cell())
    provider.destroy(kek)
    with pytest.raises(KeyUnavailable):
        provider.unwrap(kek, TENANT_A, store.rows[(TENANT_A, 1)].wrapped)
    # Until the cache lets go, this process can still read; clearing it ends that at once.
    assert await envelope.decrypt(TENANT_A, blob, cell()) == b"8500000"
    cache.clear(TENANT_A)
    for _ in range(2):
        with pytest.raises(KeyUnavailable):
            await envelope.decrypt(TENANT_A, blob, cell())
    with pytest.raises(KeyUnavailable):
        await envelope.encrypt(TENANT_A, b"x", cell())
    with pytest.raises(KeyUnavailable):
        await envelope.create_dek(TENANT_A, kek)
    restarted = Envelope(LocalKeyProvider(key_dir), store, DekCache(ttl=300))
    with pytest.raises(KeyUnavailable):
        await restarted.decrypt(TENANT_A, blob, cell())


async def test_dek_versions(envelope: Envelope, provider: LocalKeyProvider) -> None:
    kek = provider.create(TENANT_A)
    await envelope.create_dek(TENANT_A, kek)
    old = await envelope.encrypt(TENANT_A, b"old", cell())
    v2 = await envelope.create_dek(TENANT_A, kek)
    assert v2.version == 2
    new = await envelope.encrypt(TENANT_A, b"new", cell())
    assert old[2:6] == (1).to_bytes(4, "big")
    assert new[2:6] == (2).to_bytes(4, "big")
    assert await envelope.decrypt(TENANT_A, old, cell()) == b"old"
    assert await envelope.decrypt(TENANT_A, new, cell()) == b"new"
    # Relabelled to the other, existing version: the wrong DEK, so it must not authenticate.
    relabelled = old[:2] + (2).to_bytes(4, "big") + old[6:]
    with pytest.raises(DecryptionFailed):
        await envelope.decrypt(TENANT_A, relabelled, cell())


async def test_rewrap_moves_every_version_to_the_new_kek(
    envelope: Envelope, provider: LocalKeyProvider, store: MemoryDekStore, cache: DekCache
) -> None:
    old_kek = provider.create(TENANT_A)
    await envelope.create_dek(TENANT_A, old_kek)
    blob1 = await envelope.encrypt(TENANT_A, b"one", cell())
    await envelope.create_dek(TENANT_A, old_kek)
    blob2 = await envelope.encrypt(TENANT_A, b"two", cell())
    new_kek = provider.create(TENANT_A)

    assert await envelope.rewrap(TENANT_A, new_kek) == 2
    assert [d.kek_ref for d in await store.all(TENANT_A)] == [new_kek, new_kek]
    assert await envelope.rewrap(TENANT_A, new_kek) == 0  # a rerun has nothing left to do

    provider.destroy(old_kek)
    cache.clear()
    assert await envelope.decrypt(TENANT_A, blob1, cell()) == b"one"
    assert await envelope.decrypt(TENANT_A, blob2, cell()) == b"two"
    assert (
        await envelope.decrypt(TENANT_A, await envelope.encrypt(TENANT_A, b"3", cell()), cell())
        == b"3"
    )


async def test_rewrap_does_not_revive_a_destroyed_kek_from_the_cache(
    envelope: Envelope, provider: LocalKeyProvider
) -> None:
    old_kek = provider.create(TENANT_A)
    await envelope.create_dek(TENANT_A, old_kek)  # leaves the DEK in the cache
    provider.destroy(old_kek)
    with pytest.raises(KeyUnavailable):
        await envelope.rewrap(TENANT_A, provider.create(TENANT_A))


async def test_cache_expiry_forces_a_new_unwrap(
    provider: LocalKeyProvider, store: MemoryDekStore
) -> None:
    counting = CountingProvider(provider)
    clock = FakeClock()
    envelope = Envelope(counting, store, DekCache(ttl=10, clock=clock))
    await envelope.create_dek(TENANT_A, provider.create(TENANT_A))
    counting.unwraps = 0  # create_dek checks its wrap once

    blob = await envelope.encrypt(TENANT_A, b"x", cell())
    await envelope.decrypt(TENANT_A, blob, cell())
    clock.now += 9.9
    await envelope.decrypt(TENANT_A, blob, cell())
    assert counting.unwraps == 0

    clock.now += 0.1
    await envelope.decrypt(TENANT_A, blob, cell())
    assert counting.unwraps == 1
    await envelope.decrypt(TENANT_A, blob, cell())
    await envelope.encrypt(TENANT_A, b"y", cell())
    assert counting.unwraps == 1


async def test_zero_ttl_disables_the_cache(
    provider: LocalKeyProvider, store: MemoryDekStore
) -> None:
    counting = CountingProvider(provider)
    envelope = Envelope(counting, store, DekCache(ttl=0))
    await envelope.create_dek(TENANT_A, provider.create(TENANT_A))
    counting.unwraps = 0
    blob = await envelope.encrypt(TENANT_A, b"x", cell())
    await envelope.decrypt(TENANT_A, blob, cell())
    assert counting.unwraps == 2


# --- DEK cache --------------------------------------------------------------------------


def test_dek_cache_evicts_least_recently_used() -> None:
    cache = DekCache(ttl=60, max_size=2)
    cache.put(TENANT_A, 1, b"a1")
    cache.put(TENANT_A, 2, b"a2")
    assert cache.get(TENANT_A, 1) == b"a1"  # now the most recently used
    cache.put(TENANT_B, 1, b"b1")
    assert cache.get(TENANT_A, 2) is None
    assert cache.get(TENANT_A, 1) == b"a1"
    assert cache.get(TENANT_B, 1) == b"b1"


def test_dek_cache_clear_by_tenant() -> None:
    cache = DekCache(ttl=60)
    cache.put(TENANT_A, 1, b"a1")
    cache.put(TENANT_A, 2, b"a2")
    cache.put(TENANT_B, 1, b"b1")
    cache.clear(TENANT_A)
    assert len(cache) == 1
    assert cache.get(TENANT_B, 1) == b"b1"
    cache.clear()
    assert len(cache) == 0


def test_dek_cache_repr_shows_no_keys() -> None:
    cache = DekCache(ttl=60)
    cache.put(TENANT_A, 1, DEK)
    assert DEK.hex() not in repr(cache)
    assert repr(DEK) not in repr(cache)
