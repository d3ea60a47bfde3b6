"""Backup file encryption: segments under a per-backup key, real AES-GCM and a real local KEK.

Whatever happens to a stored file (a changed byte, a cut at a segment boundary, a segment
moved, a file renamed into another backup) it must refuse to open, never yield other bytes.
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import pytest

from jinji.keys import LocalKeyProvider
from services.backup import sealing
from services.backup.errors import BackupCorrupt, BackupKeyError

BACKUP = "20261125T021500Z-3f9a"
NAME = "t_0123456789abcdef0123456789abcdef.pgdump.jbk"
SEGMENT = 64  # small segments: every boundary case in a few hundred bytes
SEALED = SEGMENT + 28


def seal(plain: bytes, key: bytes, name: str = NAME, backup: str = BACKUP) -> bytes:
    sealer = sealing.Sealer(key, backup, name, segment_bytes=SEGMENT)
    rng = random.Random(len(plain))
    out, at = bytearray(), 0
    while at < len(plain):  # fed in uneven pieces, as a pipe delivers them
        step = rng.randint(1, 150)
        out += sealer.feed(plain[at : at + step])
        at += step
    return bytes(out + sealer.finish())


def unseal(blob: bytes, key: bytes, name: str = NAME, backup: str = BACKUP) -> bytes:
    opener = sealing.Opener(key, backup, name)
    out = bytearray()
    for at in range(0, len(blob), 100):
        out += opener.feed(blob[at : at + 100])
    return bytes(out + opener.finish())


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 1000])
def test_round_trip_at_every_boundary(size: int) -> None:
    key = sealing.new_key()
    plain = os.urandom(size)
    blob = seal(plain, key)
    assert unseal(blob, key) == plain
    assert plain[:16] not in blob or size < 16
    # Header, then full segments, then one last segment of at most SEGMENT bytes.
    segments = max(1, -(-size // SEGMENT))
    assert len(blob) == 8 + size + 28 * segments


def test_any_change_is_refused() -> None:
    key = sealing.new_key()
    plain = os.urandom(5 * SEGMENT + 10)
    blob = seal(plain, key)
    segments = [blob[8 + i * SEALED : 8 + (i + 1) * SEALED] for i in range(6)]
    flipped = bytearray(blob)
    flipped[8 + 2 * SEALED + 20] ^= 1
    cases = {
        "a changed byte": bytes(flipped),
        "cut after a whole segment": blob[: 8 + 3 * SEALED],
        "cut inside a segment": blob[: 8 + 3 * SEALED + 10],
        "last segment dropped": blob[: 8 + 5 * SEALED],
        "segments swapped": blob[:8] + segments[1] + segments[0] + b"".join(segments[2:]),
        "a segment appended": blob + segments[1],
        "header only": blob[:8],
        "empty": b"",
    }
    for what, bad in cases.items():
        try:
            unseal(bad, key)
        except BackupCorrupt:
            continue
        pytest.fail(f"{what}: opened")


def test_a_file_opens_only_as_itself_and_only_with_its_key() -> None:
    key = sealing.new_key()
    blob = seal(b"COPY uploads FROM stdin;", key)
    with pytest.raises(BackupCorrupt, match="does not authenticate"):
        unseal(blob, key, name="t_fedcba9876543210fedcba9876543210.pgdump.jbk")
    with pytest.raises(BackupCorrupt, match="does not authenticate"):
        unseal(blob, key, backup="20261126T021500Z-0000")
    with pytest.raises(BackupCorrupt, match="does not authenticate"):
        unseal(blob, sealing.new_key())


def test_manifest_tag_detects_any_edit() -> None:
    key = sealing.new_key()
    document = {"id": BACKUP, "schemas": [{"schema": "tenancy", "rows": {"tenants": 3}}]}
    tag = sealing.manifest_tag(key, document)
    sealing.check_manifest_tag(key, document, tag)
    edited = {"id": BACKUP, "schemas": [{"schema": "tenancy", "rows": {"tenants": 4}}]}
    with pytest.raises(BackupCorrupt, match="manifest does not authenticate"):
        sealing.check_manifest_tag(key, edited, tag)
    with pytest.raises(BackupCorrupt):
        sealing.check_manifest_tag(sealing.new_key(), document, tag)
    with pytest.raises(BackupCorrupt):
        sealing.check_manifest_tag(key, document, "not base64!")


def test_backup_key_unwraps_only_under_its_platform_kek(tmp_path: Path) -> None:
    platform = str(uuid.uuid4())
    provider = LocalKeyProvider(tmp_path / "keys")
    kek = provider.create(platform)
    key = sealing.new_key()
    wrapped = sealing.wrap_key(provider, kek, platform, key)
    assert key not in wrapped
    assert sealing.unwrap_key(provider, kek, platform, wrapped) == key

    # Another deployment's key directory: the KEK is not there.
    with pytest.raises(BackupKeyError, match="not available to this key provider"):
        sealing.unwrap_key(LocalKeyProvider(tmp_path / "other"), kek, platform, wrapped)
    # A wrapped key made under another KEK, or changed.
    other = sealing.wrap_key(provider, provider.create(platform), platform, key)
    with pytest.raises(BackupKeyError, match="does not open"):
        sealing.unwrap_key(provider, kek, platform, other)
    # The KEK destroyed (as a purge does to a tenant's): gone for good.
    provider.destroy(kek)
    with pytest.raises(BackupKeyError, match="not available"):
        sealing.unwrap_key(provider, kek, platform, wrapped)
