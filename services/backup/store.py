"""Where backups are kept: a directory (a mounted volume) or an S3 bucket.

A backup is a folder ``<id>/`` of files; it is complete once its ``manifest.json`` exists,
which is written last. Files appear whole or not at all: a directory store writes to a
temporary name, fsyncs and renames; S3 completes a multipart upload only at the end. Every
failure of the store becomes a :class:`StoreUnavailable` (or :class:`StoreFull`) naming the
store and the file, never a bare ``OSError`` or ``ClientError``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from jinji.files import fsync_dir
from services.backup.errors import BackupError, BackupNotFound, StoreFull, StoreUnavailable

MANIFEST = "manifest.json"
# Backup ids sort in time order: 20261125T021500Z-3f9a.
ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4}$")
_NAME_RE = re.compile(r"^[a-z0-9_.-]{1,120}$")
_CHUNK = 1 << 20
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _check(backup_id: str, name: str) -> None:
    # Both come from our own code or a manifest: never let one name a path outside the store.
    if not ID_RE.fullmatch(backup_id) or not _NAME_RE.fullmatch(name) or name.startswith("."):
        raise BackupError(f"invalid backup file name {backup_id}/{name}")


class ObjectWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    def commit(self) -> None:
        """Make the file visible under its name; nothing is visible before."""
        ...

    def abort(self) -> None:
        """Drop what was written; safe to call after a failure and more than once."""
        ...


class Store(Protocol):
    description: str

    def check_writable(self) -> None: ...

    def writer(self, backup_id: str, name: str) -> ObjectWriter: ...

    def put(self, backup_id: str, name: str, data: bytes) -> None: ...

    def read(self, backup_id: str, name: str) -> Iterator[bytes]: ...

    def get(self, backup_id: str, name: str) -> bytes: ...

    def exists(self, backup_id: str, name: str) -> bool: ...

    def backup_ids(self) -> list[str]: ...

    def delete(self, backup_id: str) -> None: ...


# -- a directory -------------------------------------------------------------------------


class DirectoryStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)

    def _error(self, exc: OSError, doing: str) -> StoreUnavailable:
        if exc.errno in _FULL:
            return StoreFull(f"backup store {self.root} is full ({exc.strerror}) while {doing}")
        return StoreUnavailable(
            f"backup store {self.root} is not usable ({exc.strerror or exc}) while {doing}"
        )

    def check_writable(self) -> None:
        probe = self.root / f".probe-{secrets.token_hex(6)}"
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            probe.write_bytes(b"jinji")
            probe.unlink()
        except OSError as exc:
            raise self._error(exc, "checking that it is writable") from None

    def writer(self, backup_id: str, name: str) -> ObjectWriter:
        _check(backup_id, name)
        return _FileWriter(self, self.root / backup_id, name)

    def put(self, backup_id: str, name: str, data: bytes) -> None:
        out = self.writer(backup_id, name)
        try:
            out.write(data)
            out.commit()
        except BaseException:
            out.abort()
            raise

    def read(self, backup_id: str, name: str) -> Iterator[bytes]:
        _check(backup_id, name)
        path = self.root / backup_id / name
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise BackupNotFound(f"backup {backup_id} has no file {name} in {self.root}") from None
        except OSError as exc:
            raise self._error(exc, f"reading {backup_id}/{name}") from None
        with f:
            while chunk := f.read(_CHUNK):
                yield chunk

    def get(self, backup_id: str, name: str) -> bytes:
        return b"".join(self.read(backup_id, name))

    def exists(self, backup_id: str, name: str) -> bool:
        _check(backup_id, name)
        return (self.root / backup_id / name).is_file()

    def backup_ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._error(exc, "listing backups") from None
        return sorted(n for n in names if ID_RE.fullmatch(n) and (self.root / n).is_dir())

    def delete(self, backup_id: str) -> None:
        if not ID_RE.fullmatch(backup_id):
            raise BackupError(f"invalid backup id {backup_id}")
        try:
            shutil.rmtree(self.root / backup_id)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._error(exc, f"deleting backup {backup_id}") from None


class _FileWriter:
    def __init__(self, store: DirectoryStore, folder: Path, name: str) -> None:
        self._store, self._final = store, folder / name
        self._tmp = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise store._error(exc, f"creating {folder.name}/{name}") from None
        self._file: Any = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            where = f"{self._final.parent.name}/{self._final.name}"
            raise self._store._error(exc, f"writing {where}") from None

    def commit(self) -> None:
        where = f"{self._final.parent.name}/{self._final.name}"
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.rename(self._tmp, self._final)
            fsync_dir(self._final.parent)
        except OSError as exc:
            raise self._store._error(exc, f"writing {where}") from None

    def abort(self) -> None:
        # The close of a file whose write failed may fail again; the unlink is what matters.
        with contextlib.suppress(OSError):
            self._file.close()
        self._tmp.unlink(missing_ok=True)


# -- S3 ----------------------------------------------------------------------------------

# S3's minimum part size is 5 MiB; 16 MiB parts keep a 1 TB file under the 10,000-part limit.
_PART_BYTES = 16 << 20


def _client_error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    return str(exc)


class S3Store:
    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.description = f"s3://{bucket}/{self.prefix}"
        self._s3 = client

    def key(self, backup_id: str, name: str = "") -> str:
        parts = [p for p in (self.prefix, backup_id, name) if p]
        return "/".join(parts) + ("" if name else "/")

    def _error(self, exc: Exception, doing: str) -> StoreUnavailable:
        return StoreUnavailable(
            f"backup store {self.description} is not usable ({_client_error(exc)}) while {doing}"
        )

    def check_writable(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = f"{self.prefix}/" if self.prefix else ""
        key += f".probe-{secrets.token_hex(6)}"
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=b"jinji")
            self._s3.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, "checking that it is writable") from None

    def writer(self, backup_id: str, name: str) -> ObjectWriter:
        _check(backup_id, name)
        return _S3Writer(self, self.key(backup_id, name))

    def put(self, backup_id: str, name: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        _check(backup_id, name)
        try:
            self._s3.put_object(Bucket=self.bucket, Key=self.key(backup_id, name), Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"writing {backup_id}/{name}") from None

    def read(self, backup_id: str, name: str) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        _check(backup_id, name)
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self.key(backup_id, name))["Body"]
            yield from body.iter_chunks(_CHUNK)
        except ClientError as exc:
            if _client_error(exc).startswith(("NoSuchKey", "404")):
                raise BackupNotFound(
                    f"backup {backup_id} has no file {name} in {self.description}"
                ) from None
            raise self._error(exc, f"reading {backup_id}/{name}") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"reading {backup_id}/{name}") from None

    def get(self, backup_id: str, name: str) -> bytes:
        return b"".join(self.read(backup_id, name))

    def exists(self, backup_id: str, name: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        _check(backup_id, name)
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self.key(backup_id, name))
        except ClientError as exc:
            if _client_error(exc).startswith(("404", "NoSuchKey", "NotFound")):
                return False
            raise self._error(exc, f"reading {backup_id}/{name}") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"reading {backup_id}/{name}") from None
        return True

    def backup_ids(self) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[str] = []
        root = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=root, Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(root) :].rstrip("/")
                    if ID_RE.fullmatch(name):
                        found.append(name)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, "listing backups") from None
        return sorted(found)

    def delete(self, backup_id: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if not ID_RE.fullmatch(backup_id):
            raise BackupError(f"invalid backup id {backup_id}")
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key(backup_id)
            )
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    # A page holds at most 1,000 keys, delete_objects' limit.
                    self._s3.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                    )
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"deleting backup {backup_id}") from None


class _S3Writer:
    """A multipart upload fed in parts: memory stays at one part, no local spool file."""

    def __init__(self, store: S3Store, key: str) -> None:
        self._store, self._key = store, key
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            call = getattr(self._store._s3, method)
            return call(Bucket=self._store.bucket, Key=self._key, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise self._store._error(exc, f"writing {self._key}") from None

    def _flush_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._call("create_multipart_upload")["UploadId"]
        number = len(self._parts) + 1
        part = bytes(self._buffer[:_PART_BYTES])
        del self._buffer[:_PART_BYTES]
        etag = self._call("upload_part", UploadId=self._upload_id, PartNumber=number, Body=part)
        self._parts.append({"PartNumber": number, "ETag": etag["ETag"]})

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _PART_BYTES:
            self._flush_part()

    def commit(self) -> None:
        if self._upload_id is None:
            self._call("put_object", Body=bytes(self._buffer))
            return
        if self._buffer:
            self._flush_part()
        self._call(
            "complete_multipart_upload",
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        if self._upload_id is not None:
            # If this fails too, the bucket's lifecycle rule removes incomplete uploads.
            with contextlib.suppress(StoreUnavailable):
                self._call("abort_multipart_upload", UploadId=self._upload_id)
            self._upload_id = None


def open_store(location: str | None, *, endpoint_url: str | None, region: str) -> Store:
    if not location:
        raise BackupError(
            "no backup store: set JINJI_BACKUP_STORE to a directory or s3://bucket/prefix"
        )
    parsed = urlparse(location)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise BackupError(f"JINJI_BACKUP_STORE {location!r} names no bucket")
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=10, read_timeout=60, retries={"mode": "standard", "max_attempts": 5}
        )
        # Its own session: boto3's default one is not safe across the threads we use.
        client = boto3.session.Session().client(
            "s3", region_name=region, endpoint_url=endpoint_url, config=config
        )
        return S3Store(parsed.netloc, parsed.path, client)
    if parsed.scheme == "file":
        return DirectoryStore(Path(parsed.path))
    if parsed.scheme:
        raise BackupError(f"JINJI_BACKUP_STORE {location!r}: use a directory or s3://bucket/prefix")
    return DirectoryStore(Path(location))
