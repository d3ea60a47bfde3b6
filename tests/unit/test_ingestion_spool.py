"""The upload is spooled to a private file, hashed on the way; over the limit it is a 413
and nothing is left on disk."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile

import pytest
from fastapi import UploadFile

from jinji.errors import ApiError
from services.ingestion.routes import _spool


async def test_spooled_file_is_private_and_hashed() -> None:
    content = "社員番号\nE1\n".encode("cp932")
    path, digest, size = await _spool(UploadFile(io.BytesIO(content), filename="社員.csv"), 1024)
    try:
        assert path.suffix == ".csv"
        assert path.read_bytes() == content
        assert digest == hashlib.sha256(content).hexdigest()
        assert size == len(content)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        path.unlink()


async def test_too_large_is_413_and_leaves_nothing() -> None:
    before = set(os.listdir(tempfile.gettempdir()))
    with pytest.raises(ApiError) as refused:
        await _spool(UploadFile(io.BytesIO(b"x" * 5000), filename="../../etc/big.csv"), 1024)
    assert refused.value.status == 413
    assert refused.value.code == "file_too_large"
    leftovers = {n for n in set(os.listdir(tempfile.gettempdir())) - before if "jinji-upload" in n}
    assert leftovers == set()
