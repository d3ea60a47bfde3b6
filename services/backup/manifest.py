"""The manifest of a backup: what it holds, how to check it, and the wrapped key that opens it.

Written last, so a backup without one is incomplete. It is plain JSON (retention reads dates
without keys) and authenticated with GMAC under the backup's key (see :mod:`sealing`): nothing
in it is trusted before that check. It holds schema names, counts, sizes, checksums and
versions, never customer content.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from jinji import tenancy
from services.backup import sealing
from services.backup.errors import BackupCorrupt

FORMAT = "jinji-backup/1"
SchemaKind = Literal["control", "tenant"]


@dataclass(frozen=True)
class SchemaFile:
    schema: str
    kind: SchemaKind
    file: str
    # The schema's Alembic revision when it was dumped.
    revision: str | None
    # Exact row counts, read in the same snapshot as the dump.
    rows: dict[str, int]
    dump_bytes: int
    stored_bytes: int
    # SHA-256 of the stored (encrypted) file, checkable without keys, and of the pg_dump archive.
    sha256: str
    dump_sha256: str

    @property
    def tenant_id(self) -> uuid.UUID | None:
        return uuid.UUID(hex=self.schema[2:]) if self.kind == "tenant" else None


@dataclass(frozen=True)
class KeyInfo:
    kek_ref: str
    owner: str
    wrapped: str  # base64 of the backup key wrapped by the platform KEK
    cipher: str = "AES-256-GCM"
    segment_bytes: int = sealing.SEGMENT_BYTES

    def wrapped_bytes(self) -> bytes:
        return base64.b64decode(self.wrapped)


@dataclass(frozen=True)
class Manifest:
    id: str
    created_at: str
    snapshot_at: str
    finished_at: str
    database: str
    postgresql: dict[str, str]
    # Code's migration heads when the backup was made, by component.
    migration_heads: dict[str, str | None]
    key: KeyInfo
    schemas: list[SchemaFile] = field(default_factory=list)
    # Schemas in the snapshot that were dropped (purged) before they could be dumped.
    skipped: list[dict[str, str]] = field(default_factory=list)
    format: str = FORMAT

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def stored_bytes(self) -> int:
        return sum(s.stored_bytes for s in self.schemas)

    def schema(self, name: str) -> SchemaFile | None:
        return next((s for s in self.schemas if s.schema == name), None)

    def tenant(self, tenant_id: uuid.UUID) -> SchemaFile | None:
        return self.schema(tenancy.schema_name(tenant_id))

    def document(self) -> dict[str, Any]:
        return asdict(self)


def dumps(manifest: Manifest, key: bytes) -> bytes:
    document = manifest.document()
    document["seal"] = sealing.manifest_tag(key, manifest.document())
    return json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"


def parse(raw: bytes, backup_id: str) -> tuple[Manifest, str]:
    """The manifest and its seal, unchecked: call :func:`check` before trusting any of it."""
    try:
        document = json.loads(raw)
        seal = document.pop("seal")
        if document.get("format") != FORMAT:
            raise BackupCorrupt(f"backup {backup_id}: unknown manifest format")
        manifest = Manifest(
            **{
                **document,
                "key": KeyInfo(**document["key"]),
                "schemas": [SchemaFile(**s) for s in document["schemas"]],
            }
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupCorrupt(f"backup {backup_id}: the manifest is unreadable ({exc})") from None
    if manifest.id != backup_id:
        raise BackupCorrupt(f"backup {backup_id}: the manifest is another backup's")
    return manifest, str(seal)


def check(manifest: Manifest, seal: str, key: bytes) -> None:
    sealing.check_manifest_tag(key, manifest.document(), seal)


def created_at(raw: bytes) -> datetime | None:
    """Only the creation time, for retention (which needs no keys); None if unreadable."""
    try:
        return datetime.fromisoformat(json.loads(raw)["created_at"])
    except (ValueError, KeyError, TypeError):
        return None
