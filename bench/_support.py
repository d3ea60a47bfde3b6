"""What every benchmark needs: a PostgreSQL server and a scratch database on it."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyotp
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from jinji import tenancy
from jinji.db import async_url
from jinji.pgembed import EmbeddedPostgres


@contextmanager
def server(work: Path) -> Iterator[str]:
    """The server in JINJI_TEST_DATABASE_URL, else an embedded one under ``work``."""
    external = os.environ.get("JINJI_TEST_DATABASE_URL")
    if external:
        yield external
        return
    embedded = EmbeddedPostgres(work / "postgres")
    try:
        yield embedded.start()
    finally:
        embedded.stop()


async def admin(server_url: str, *statements: str) -> None:
    engine = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for sql in statements:
                await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def create_database(server_url: str) -> tuple[str, str]:
    name = f"jinji_bench_{uuid.uuid4().hex[:8]}"
    await admin(server_url, f'CREATE DATABASE "{name}"')
    return name, make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, name: str, tenants: Iterable[object] = ()) -> None:
    """Drop the database, then the tenants' roles (roles belong to the cluster)."""
    await admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    roles = [
        f"DROP ROLE IF EXISTS {tenancy.quote_ident(tenancy.role_name(str(t)))}" for t in tenants
    ]
    if roles:
        await admin(server_url, *roles)


def free_port() -> int:
    """A loopback port free right now (for a server whose URL must be known before it starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    """Poll ``url`` until it answers 200 (a service's /readyz)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become ready")
        time.sleep(0.1)


def operator_token(http: httpx.Client, identity: str, one_time_password: str) -> str:
    """The bootstrap operator's first login at ``identity`` (".../identity"): new password,
    TOTP enrolment, then an access token."""
    step = http.post(
        f"{identity}/v1/login",
        json={"tenant": "platform", "username": "operator", "password": one_time_password},
    ).json()
    step = http.post(
        f"{identity}/v1/login/challenge",
        json={"challenge_token": step["challenge_token"], "new_password": "bench platform phrase"},
    ).json()
    challenge = step["challenge_token"]
    secret = http.post(
        f"{identity}/v1/login/challenge/totp", json={"challenge_token": challenge}
    ).json()["secret"]
    tokens = http.post(
        f"{identity}/v1/login/challenge",
        json={"challenge_token": challenge, "code": pyotp.TOTP(secret).now()},
    ).json()
    return str(tokens["access_token"])
