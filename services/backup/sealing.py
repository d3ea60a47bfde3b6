"""Encryption of backup files: AES-256-GCM in fixed-size segments under a per-backup key.

Each backup has its own data key (256 bits), stored in the manifest only wrapped by the
platform KEK through the :class:`~jinji.keys.KeyProvider`, so the KEK never leaves the key
provider and a backup is unreadable without it. (The tenant content inside is ciphertext
under each tenant's own keys already; this layer hides the rest: names, counts, metadata.)

A file is ``b"JBK1"`` | segment size (4 bytes) | segments, each a random 96-bit nonce and the
AES-GCM ciphertext and tag of up to ``segment size`` plaintext bytes: the online-AEAD "STREAM"
construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015), as age and Tink's streaming AEAD
use it. Each segment's associated data names the backup, the file, the segment's index and
whether it is the last, so a segment moved to another position or file, a file cut at a
segment boundary, or one with segments appended, fails to open. Every segment but the last
is full, so a reader needs no lengths. Memory stays at one segment whatever the file size.

The manifest is authenticated with GMAC (AES-GCM over an empty message, NIST SP 800-38D)
under the same key: a changed checksum, count or wrapped key is detected before it is used.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jinji.keys import KeyProvider, KeyUnavailable, UnwrapFailed
from services.backup.errors import BackupCorrupt, BackupKeyError

MAGIC = b"JBK1"
SEGMENT_BYTES = 1 << 20
_HEADER = struct.Struct(">4sI")
_NONCE = 12
_TAG = 16
_AAD_DOMAIN = b"jinji/backup/v1"
_MANIFEST_DOMAIN = b"jinji/backup-manifest/v1"


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_key(provider: KeyProvider, kek_ref: str, owner: str, key: bytes) -> bytes:
    wrapped = provider.wrap(kek_ref, owner, key)
    # The wrapped key is the only way back into the backup: prove it opens before using it.
    if provider.unwrap(kek_ref, owner, wrapped) != key:
        raise BackupKeyError("the key provider returned a wrapped key that does not unwrap")
    return wrapped


def unwrap_key(provider: KeyProvider, kek_ref: str, owner: str, wrapped: bytes) -> bytes:
    try:
        return provider.unwrap(kek_ref, owner, wrapped)
    except KeyUnavailable as exc:
        raise BackupKeyError(
            f"the backup's key cannot be unwrapped: platform KEK {kek_ref} is not available to "
            f"this key provider ({exc}); use the key provider and key directory of the "
            "deployment that made the backup"
        ) from None
    except UnwrapFailed as exc:
        raise BackupKeyError(
            f"the backup's key does not open under platform KEK {kek_ref} ({exc}): the manifest's "
            "wrapped key was changed, or belongs to another deployment"
        ) from None


def _lp(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(4, "big") + raw


def _aad(backup_id: str, name: str, index: int, final: bool) -> bytes:
    return _AAD_DOMAIN + _lp(backup_id) + _lp(name) + struct.pack(">QB", index, final)


class Sealer:
    """Encrypts one file: feed plaintext, write what comes back, then what :meth:`finish` gives."""

    def __init__(
        self, key: bytes, backup_id: str, name: str, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        self._aead = AESGCM(key)
        self._backup_id, self._name = backup_id, name
        self._segment = segment_bytes
        self._buffer = bytearray()
        self._index = 0
        self._started = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        if not self._started:
            out += _HEADER.pack(MAGIC, self._segment)
            self._started = True
        # Keep at least one byte back: only finish() knows which segment is the last.
        while len(self._buffer) > self._segment:
            out += self._seal(bytes(self._buffer[: self._segment]), final=False)
            del self._buffer[: self._segment]
        return bytes(out)

    def finish(self) -> bytes:
        head = b"" if self._started else _HEADER.pack(MAGIC, self._segment)
        self._started = True
        tail = self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()
        return head + tail

    def _seal(self, chunk: bytes, final: bool) -> bytes:
        nonce = os.urandom(_NONCE)
        aad = _aad(self._backup_id, self._name, self._index, final)
        self._index += 1
        return nonce + self._aead.encrypt(nonce, chunk, aad)


class Opener:
    """Decrypts one file sealed by :class:`Sealer`; raises :class:`BackupCorrupt` on any change."""

    def __init__(self, key: bytes, backup_id: str, name: str) -> None:
        self._aead = AESGCM(key)
        self._backup_id, self._name = backup_id, name
        self._buffer = bytearray()
        self._segment: int | None = None
        self._index = 0
        self._done = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        if self._segment is None:
            if len(self._buffer) < _HEADER.size:
                return b""
            magic, segment = _HEADER.unpack_from(self._buffer)
            if magic != MAGIC or not 0 < segment <= 1 << 26:
                raise BackupCorrupt(f"{self._name}: not a Jinji backup file (bad header)")
            self._segment = segment
            del self._buffer[: _HEADER.size]
        sealed = self._segment + _NONCE + _TAG
        out = bytearray()
        while len(self._buffer) > sealed:
            out += self._open(bytes(self._buffer[:sealed]), final=False)
            del self._buffer[:sealed]
        return bytes(out)

    def finish(self) -> bytes:
        if self._segment is None:
            raise BackupCorrupt(f"{self._name}: file is truncated (no header)")
        if len(self._buffer) < _NONCE + _TAG:
            raise BackupCorrupt(f"{self._name}: file is truncated (segment {self._index})")
        out = self._open(bytes(self._buffer), final=True)
        self._buffer.clear()
        self._done = True
        return out

    def _open(self, sealed: bytes, final: bool) -> bytes:
        aad = _aad(self._backup_id, self._name, self._index, final)
        try:
            plain = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except InvalidTag:
            where = "its last segment" if final else f"segment {self._index}"
            raise BackupCorrupt(
                f"{self._name}: {where} does not authenticate (the file was changed, truncated "
                "or extended, or belongs to another backup)"
            ) from None
        self._index += 1
        return plain


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def manifest_tag(key: bytes, document: dict[str, Any]) -> str:
    nonce = os.urandom(_NONCE)
    tag = AESGCM(key).encrypt(nonce, b"", _MANIFEST_DOMAIN + canonical(document))
    return base64.b64encode(nonce + tag).decode()


def check_manifest_tag(key: bytes, document: dict[str, Any], sealed: str) -> None:
    try:
        raw = base64.b64decode(sealed, validate=True)
        AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], _MANIFEST_DOMAIN + canonical(document))
    except (ValueError, InvalidTag):
        raise BackupCorrupt(
            "the manifest does not authenticate: it was changed after the backup was made"
        ) from None
