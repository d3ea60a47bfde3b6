"""Dataset versions as stored in a tenant schema: zstd Parquet sealed under the tenant's DEK.

Ingestion writes them and analytics reads them (and writes its derived results the same
way); the associated data binds each ciphertext to its tenant, table, column and row, so a
version cannot be passed off as another or moved to another tenant.
"""

from __future__ import annotations

import io
import uuid

import polars as pl

from jinji.keys import AssociatedData

__all__ = ["from_parquet", "parquet_bytes", "version_aad"]


def version_aad(tenant_id: uuid.UUID, kind: str, period: str, version: int) -> AssociatedData:
    return AssociatedData(
        str(tenant_id), "dataset_versions", "content_enc", f"{kind}/{period}/{version}"
    )


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


def from_parquet(content: bytes) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(content))
