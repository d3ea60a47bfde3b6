"""KEKs kept as files on local disk, for development and single-machine deployments.

Each KEK is 32 random bytes in ``<key_dir>/<kek_ref>.kek``. The directory should live
outside the database's data directory: a database backup must never carry the keys that
open it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jinji.files import fsync_dir
from jinji.keys.provider import OWNER_PATTERN, KeyUnavailable, UnwrapFailed, check_owner

_KEY_LEN = 32
_NONCE_LEN = 12
_TAG_LEN = 16
# Strict, so a ref read from a database row can never name a path outside key_dir.
_REF_RE = re.compile(rf"local:{OWNER_PATTERN}:[0-9a-f]{{32}}")
_AAD_PREFIX = b"jinji/kek/v1|"


def _aad(owner: str) -> bytes:
    # Binds the wrapped key to its owner and to this use, so a wrapped DEK copied to another
    # tenant's row, or a blob made for some other purpose, fails authentication.
    return _AAD_PREFIX + owner.encode()


class LocalKeyProvider:
    def __init__(self, key_dir: Path) -> None:
        self._dir = key_dir
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is cut by the umask and ignored for an existing directory.
        os.chmod(key_dir, 0o700)

    def _path(self, kek_ref: str) -> Path:
        # Validated before any filesystem call: the ref may come from a database row.
        if not _REF_RE.fullmatch(kek_ref):
            raise ValueError("malformed local kek_ref")
        return self._dir / f"{kek_ref}.kek"

    def _read(self, kek_ref: str) -> bytes:
        path = self._path(kek_ref)
        try:
            # O_NOFOLLOW: a symlink planted in key_dir must not redirect us to another file.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise KeyUnavailable("KEK is destroyed or unknown") from None
        with os.fdopen(fd, "rb") as f:
            key = f.read(_KEY_LEN + 1)
        if len(key) != _KEY_LEN:
            raise KeyUnavailable("KEK file is damaged")
        return key

    def create(self, owner: str) -> str:
        kek_ref = f"local:{check_owner(owner)}:{uuid.uuid4().hex}"
        final = self._path(kek_ref)
        tmp = self._dir / f".{uuid.uuid4().hex}.tmp"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o600)  # the open mode is cut by the umask
                f.write(secrets.token_bytes(_KEY_LEN))
                f.flush()
                os.fsync(f.fileno())
            # A complete file appears under the final name or nothing does. link() rather than
            # os.replace(): it fails if the name exists, so an existing KEK is never overwritten.
            os.link(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(self._dir)
        return kek_ref

    def wrap(self, kek_ref: str, owner: str, dek: bytes) -> bytes:
        key = self._read(kek_ref)
        nonce = os.urandom(_NONCE_LEN)
        return nonce + AESGCM(key).encrypt(nonce, dek, _aad(owner))

    def unwrap(self, kek_ref: str, owner: str, wrapped: bytes) -> bytes:
        key = self._read(kek_ref)
        if len(wrapped) < _NONCE_LEN + _TAG_LEN:
            raise UnwrapFailed("wrapped key is too short")
        nonce, body = wrapped[:_NONCE_LEN], wrapped[_NONCE_LEN:]
        try:
            return AESGCM(key).decrypt(nonce, body, _aad(owner))
        except InvalidTag:
            raise UnwrapFailed("wrapped key does not open under this KEK and owner") from None

    def destroy(self, kek_ref: str) -> None:
        path = self._path(kek_ref)
        shred = path.with_suffix(".shred")
        # Off its name first: a crash mid-overwrite then leaves no half-random "KEK" that would
        # turn KeyUnavailable into a misleading UnwrapFailed. A rerun finishes the job.
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, shred)
        try:
            fd = os.open(shred, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        with os.fdopen(fd, "wb") as f:
            # Best effort only: SSD wear levelling and copy-on-write filesystems may keep the old
            # blocks. Deployments that need a guarantee use KMS or an encrypted volume.
            f.write(secrets.token_bytes(max(os.fstat(f.fileno()).st_size, _KEY_LEN)))
            f.flush()
            os.fsync(f.fileno())
        os.unlink(shred)
        fsync_dir(self._dir)
