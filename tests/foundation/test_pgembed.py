"""The embedded PostgreSQL of `make run` and the tests: loopback only, password required,
stable across restarts, and never stopped by someone who did not start it."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from jinji.pgembed import EmbeddedPostgres


async def _query(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_loopback_only_password_required_and_reused_safely(embedded_pg_root: Path) -> None:
    first = EmbeddedPostgres(embedded_pg_root)
    url = first.start()
    try:
        assert await _query(url, "SHOW listen_addresses") == "127.0.0.1"
        assert await _query(url, "SHOW password_encryption") == "scram-sha-256"
        no_password = f"postgresql://postgres@127.0.0.1:{first.port}/postgres"
        with pytest.raises(asyncpg.InvalidPasswordError):
            await _query(no_password, "SELECT 1")

        # A second `jinji up` on the same data directory uses the running server...
        second = EmbeddedPostgres(embedded_pg_root)
        assert second.start() == url
        # ...and leaves it running when it stops.
        second.stop()
        assert await _query(url, "SELECT 1") == 1
    finally:
        first.stop()
    assert not (embedded_pg_root / "pgdata" / "postmaster.pid").exists()

    # A restart keeps the data directory and, the port being free, the same URL.
    again = EmbeddedPostgres(embedded_pg_root)
    try:
        assert again.start() == url
    finally:
        again.stop()
