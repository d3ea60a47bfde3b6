"""Real PostgreSQL for every test that needs one.

``JINJI_TEST_DATABASE_URL`` (a server URL, e.g. the machine's PostgreSQL) is used when set;
otherwise one embedded PostgreSQL is started for the session in a temp dir. Either way the
run creates its own database and drops it at the end.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from jinji import tenancy
from jinji.config import REPO_ROOT
from jinji.db import Database, async_url
from jinji.migrate import migrate_all, upgrade_tenant
from jinji.pgembed import EmbeddedPostgres
from jinji.runtime import make_envelope
from services import bootstrap
from services.analytics.app import create_app as create_analytics
from services.analytics.settings import AnalyticsSettings
from services.audit_log.app import create_app as create_audit_log
from services.audit_log.settings import AuditLogSettings
from services.identity import passwords
from services.identity.app import create_app as create_identity
from services.identity.keyring import Keyring
from services.identity.settings import IdentitySettings
from services.identity.tables import tenants, users
from services.ingestion.app import create_app as create_ingestion
from services.ingestion.settings import IngestionSettings
from services.tenant_admin.app import create_app as create_tenant_admin
from services.tenant_admin.settings import TenantAdminSettings
from services.tenant_admin.tables import tenants as tenancy_tenants

MIGRATIONS = REPO_ROOT / "migrations"


@contextmanager
def _embedded_pg_root() -> Iterator[Path]:
    """A directory for an embedded cluster outside pytest's temp tree: pytest resets its
    base temp dir to mode 700 when a session starts, which would lock out the server's own
    system user (used when the tests run as root) in any other session running meanwhile."""
    root = Path(tempfile.mkdtemp(prefix="jinji-test-pg-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def embedded_pg_root() -> Iterator[Path]:
    with _embedded_pg_root() as root:
        yield root


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    external = os.environ.get("JINJI_TEST_DATABASE_URL")
    if external:
        yield external
        return
    with _embedded_pg_root() as root:
        server = EmbeddedPostgres(root)
        url = server.start()
        try:
            yield url
        finally:
            server.stop()


async def _admin(server_url: str, sql: str) -> None:
    engine = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def tenant_roles(pg_server_url: str) -> AsyncIterator[list[str]]:
    """Tenant roles the run creates. Roles belong to the cluster, not to a database, so they
    are dropped last, after every database that held their schemas."""
    roles: list[str] = []
    yield roles
    for role in roles:
        await _admin(pg_server_url, f"DROP ROLE IF EXISTS {tenancy.quote_ident(role)}")


@asynccontextmanager
async def _scratch_database(server_url: str, *, migrated: bool = True) -> AsyncIterator[str]:
    """A database of its own on the test server, dropped afterwards."""
    name = f"jinji_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            report = await migrate_all(url, MIGRATIONS, workers=1)
            assert report.ok, report.failures
        yield url
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


ScratchDatabase = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture(scope="session")
def scratch_database(pg_server_url: str) -> ScratchDatabase:
    """For tests that need an empty database (first start) or break one on purpose:
    ``async with scratch_database(migrated=False) as url: ...``."""
    return functools.partial(_scratch_database, pg_server_url)


@pytest.fixture(scope="session")
async def database_url(pg_server_url: str, tenant_roles: list[str]) -> AsyncIterator[str]:
    async with _scratch_database(pg_server_url) as url:
        yield url


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, application_name="jinji-tests", pool_size=4)
    try:
        yield database
    finally:
        await database.dispose()


ProvisionTenant = Callable[[], Awaitable[uuid.UUID]]


@pytest.fixture
def provision_tenant(db: Database, tenant_roles: list[str]) -> ProvisionTenant:
    """Creates a tenant's role and schema and migrates it, as tenant provisioning does."""

    async def make() -> uuid.UUID:
        tenant_id = uuid.uuid4()
        tenant_roles.append(tenancy.role_name(tenant_id))
        async with db.engine.connect() as conn:
            await tenancy.provision(conn, tenant_id)
            await conn.commit()
            await upgrade_tenant(conn, MIGRATIONS, tenant_id)
        return tenant_id

    return make


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@contextmanager
def _serve_in_thread(app: Any, port: int = 0) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server() -> Callable[[Any], AbstractContextManager[str]]:
    """Serves an ASGI app over real HTTP on a loopback port (its own thread and loop)."""
    return _serve_in_thread


ISSUER = "http://identity.test/identity"
PASSWORD = "correct horse battery staple"
TENANT_PASSWORD = "the tenant's passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Provisioned:
    """A customer tenant made through tenant-admin's API, and its first admin signed in."""

    id: str
    slug: str
    admin: dict[str, str]


@dataclass
class Stack:
    settings: IdentitySettings
    db: Database
    base: str
    first_login: bootstrap.FirstLogin
    tenant_admin_base: str
    tenant_admin_settings: TenantAdminSettings
    audit_base: str
    audit_settings: AuditLogSettings
    ingestion_base: str
    analytics_base: str

    password: str = PASSWORD

    def url(self, path: str) -> str:
        return f"{self.base}/identity{path}"

    def tenants_url(self, path: str) -> str:
        return f"{self.tenant_admin_base}/tenants{path}"

    def audit_url(self, path: str) -> str:
        return f"{self.audit_base}/audit{path}"

    def ingestion_url(self, path: str) -> str:
        return f"{self.ingestion_base}/ingestion{path}"

    def analytics_url(self, path: str) -> str:
        return f"{self.analytics_base}/analytics{path}"

    def sign_as_identity(self, claims: dict[str, Any]) -> str:
        """``claims`` signed with identity's real current signing key, as identity signs:
        for tokens that are genuine in every respect but the one a test changes."""

        async def sign() -> str:
            assert self.settings.database_url is not None
            db = Database(self.settings.database_url.get_secret_value(), pool_size=1)
            try:
                async with db.engine.connect() as conn:
                    platform = await tenancy.platform_tenant_id(conn)
                ring = Keyring(db, make_envelope(self.settings, db), platform, timedelta(0))
                return await ring.sign(claims)
            finally:
                await db.dispose()

        return asyncio.run(sign())

    async def customer(self) -> tuple[str, uuid.UUID]:
        """A tenant known to identity and to tenant-admin (same id), without provisioning's
        schema and keys: enough for endpoints that only need the tenant records."""
        slug = await self.tenant()
        async with self.db.transaction() as s:
            tenant_id = await s.scalar(select(tenants.c.id).where(tenants.c.slug == slug))
        return slug, uuid.UUID(str(tenant_id))

    def login(self, http: httpx.Client, slug: str, username: str, password: str) -> dict[str, str]:
        """Sign in with a one-time password (changed to TENANT_PASSWORD) or a normal one."""
        step = http.post(
            self.url("/v1/login"),
            json={"tenant": slug, "username": username, "password": password},
        ).json()
        if step.get("challenge") == "password_change":
            step = http.post(
                self.url("/v1/login/challenge"),
                json={"challenge_token": step["challenge_token"], "new_password": TENANT_PASSWORD},
            ).json()
        return bearer(step["access_token"])

    def provision(
        self,
        http: httpx.Client,
        operator: dict[str, str],
        companies: dict[str, str],
        **settings: Any,
    ) -> Provisioned:
        slug = f"hr{uuid.uuid4().hex[:6]}"
        created = http.post(
            self.tenants_url("/v1/tenants"),
            headers=operator,
            json={
                "slug": slug,
                "name": "人事テスト",
                "seats": 20,
                "mfa_required": False,
                "companies": [{"code": c, "name": n} for c, n in companies.items()],
                **settings,
            },
        )
        assert created.status_code == 201, created.text
        body = created.json()
        admin = self.login(http, slug, "admin", body["initial_admin"]["one_time_password"])
        return Provisioned(body["id"], slug, admin)

    def add_user(
        self,
        http: httpx.Client,
        tenant: Provisioned,
        username: str,
        roles: list[str],
        companies: list[str] | None = None,
    ) -> dict[str, str]:
        """A user made by the tenant's admin, signed in."""
        made = http.post(
            self.url("/v1/users"),
            headers=tenant.admin,
            json={"username": username, "roles": roles, "companies": companies or []},
        )
        assert made.status_code == 201, made.text
        return self.login(http, tenant.slug, username, made.json()["one_time_password"])

    def upload(
        self,
        http: httpx.Client,
        headers: dict[str, str],
        content: bytes,
        filename: str,
        kind: str,
        **form: str,
    ) -> httpx.Response:
        return http.post(
            self.ingestion_url("/v1/uploads"),
            headers=headers,
            files={"file": (filename, content)},
            data={"kind": kind, **form},
        )

    def sign_in(
        self, http: httpx.Client, slug: str, username: str, password: str | None = None
    ) -> dict[str, str]:
        response = http.post(
            self.url("/v1/login"),
            json={"tenant": slug, "username": username, "password": password or self.password},
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def service_headers(
        self, http: httpx.Client, operator: dict[str, str], client_id: str, audience: str
    ) -> dict[str, str]:
        """A client-credentials token of a new service client for ``audience``."""
        created = http.post(
            self.url("/v1/operator/service-clients"),
            headers=operator,
            json={"client_id": client_id, "audiences": [audience]},
        )
        assert created.status_code == 201, created.text
        issued = http.post(
            self.url("/oauth2/token"),
            data={"grant_type": "client_credentials", "audience": audience},
            auth=(created.json()["client_id"], created.json()["client_secret"]),
        )
        assert issued.status_code == 200, issued.text
        return {"Authorization": f"Bearer {issued.json()['access_token']}"}

    def operator_token(self, http: httpx.Client) -> str:
        """The bootstrap operator's first login: new password, TOTP enrolment, tokens."""
        first = self.first_login
        step = http.post(
            self.url("/v1/login"),
            json={
                "tenant": first.tenant,
                "username": first.username,
                "password": first.one_time_password,
            },
        ).json()
        challenge = step["challenge_token"]
        step = http.post(
            self.url("/v1/login/challenge"),
            json={"challenge_token": challenge, "new_password": "a long platform passphrase"},
        ).json()
        challenge = step["challenge_token"]
        setup = http.post(
            self.url("/v1/login/challenge/totp"), json={"challenge_token": challenge}
        ).json()
        tokens = http.post(
            self.url("/v1/login/challenge"),
            json={"challenge_token": challenge, "code": self.code(setup["secret"])},
        ).json()
        return str(tokens["access_token"])

    @staticmethod
    def code(secret: str, offset_steps: int = 0) -> str:
        return str(pyotp.TOTP(secret).at(time.time() + offset_steps * 30))

    async def tenant(self, *, mfa_required: bool = False, seats: int | None = 50) -> str:
        slug = f"t{uuid.uuid4().hex[:10]}"
        tenant_id = uuid.uuid4()
        async with self.db.transaction() as s:
            # Registered with tenant-admin too, as provisioning does: every service serves a
            # user only while the tenant is active there.
            await s.execute(
                insert(tenancy_tenants).values(
                    id=tenant_id, slug=slug, name=f"{slug} 株式会社", status="active"
                )
            )
            await s.execute(
                insert(tenants).values(
                    id=tenant_id,
                    slug=slug,
                    status="active",
                    seats=seats,
                    mfa_required=mfa_required,
                    session_idle_s=1800,
                    session_absolute_s=43200,
                )
            )
        return slug

    async def user(
        self,
        slug: str,
        username: str = "yamada",
        *,
        password: str = PASSWORD,
        roles: tuple[str, ...] = ("viewer",),
        must_change: bool = False,
    ) -> uuid.UUID:
        user_id = uuid.uuid4()
        hashed = passwords.hash_password(passwords.hasher(self.settings), password)
        async with self.db.transaction() as s:
            tenant_id = await s.scalar(select(tenants.c.id).where(tenants.c.slug == slug))
            await s.execute(
                insert(users).values(
                    id=user_id,
                    tenant_id=tenant_id,
                    username=username,
                    password_hash=hashed,
                    roles=list(roles),
                    companies=[],
                    must_change_password=must_change,
                    status="active",
                )
            )
        return user_id


@pytest.fixture(scope="module")
async def stack(
    scratch_database, live_server, tmp_path_factory, tenant_roles: list[str]
) -> AsyncIterator[Stack]:
    """Identity and tenant-admin over real HTTP on a bootstrapped database of their own
    (one per test module)."""
    data_dir: Path = tmp_path_factory.mktemp("stack-data")
    async with scratch_database() as url:
        first = await bootstrap.run(
            IdentitySettings(database_url=SecretStr(url), data_dir=data_dir, issuer=ISSUER)
        )
        assert first is not None
        clients = json.loads((data_dir / bootstrap.SERVICE_CLIENTS_FILE).read_text())
        db = Database(url, pool_size=2)
        # Identity and the audit log each need the other's address: fix identity's port first.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            identity_port = int(probe.getsockname()[1])
        identity_base = f"http://127.0.0.1:{identity_port}"
        audit_settings = AuditLogSettings(
            database_url=SecretStr(url),
            data_dir=data_dir,
            issuer=ISSUER,
            jwks_url=f"{identity_base}/identity/.well-known/jwks.json",
            checkpoint_every=5,
        )
        try:
            with (
                live_server(create_audit_log(audit_settings)) as audit_base,
                live_server(
                    create_identity(
                        settings := IdentitySettings(
                            database_url=SecretStr(url),
                            data_dir=data_dir,
                            issuer=ISSUER,
                            refresh_cookie_secure=False,
                            audit_url=audit_base,
                        )
                    ),
                    port=identity_port,
                ) as identity,
            ):
                tenant_admin_settings = TenantAdminSettings(
                    database_url=SecretStr(url),
                    data_dir=data_dir,
                    issuer=ISSUER,
                    jwks_url=f"{identity}/identity/.well-known/jwks.json",
                    identity_url=f"{identity}/identity",
                    identity_client_secret=SecretStr(clients["tenant-admin"]),
                    lifecycle_interval_s=3600,
                    audit_url=audit_base,
                    # The tests' webhook receivers listen on loopback.
                    webhook_allow_internal=True,
                )
                jwks = f"{identity}/identity/.well-known/jwks.json"
                with (
                    live_server(create_tenant_admin(tenant_admin_settings)) as tenant_admin,
                    live_server(
                        create_analytics(
                            AnalyticsSettings(
                                database_url=SecretStr(url),
                                data_dir=data_dir,
                                issuer=ISSUER,
                                jwks_url=jwks,
                                identity_url=f"{identity}/identity",
                                tenants_url=tenant_admin,
                                audit_url=audit_base,
                                analytics_client_secret=SecretStr(clients["analytics"]),
                                tenant_settings_ttl_s=0,
                            )
                        )
                    ) as analytics,
                    live_server(
                        create_ingestion(
                            IngestionSettings(
                                database_url=SecretStr(url),
                                data_dir=data_dir,
                                issuer=ISSUER,
                                jwks_url=jwks,
                                identity_url=f"{identity}/identity",
                                tenants_url=tenant_admin,
                                audit_url=audit_base,
                                analytics_url=analytics,
                                ingestion_client_secret=SecretStr(clients["ingestion"]),
                            )
                        )
                    ) as ingestion,
                ):
                    yield Stack(
                        settings,
                        db,
                        identity,
                        first,
                        tenant_admin,
                        tenant_admin_settings,
                        audit_base,
                        audit_settings,
                        ingestion,
                        analytics,
                    )
        finally:
            # Tenants provisioned through the API own cluster-wide roles: drop them at the end.
            async with db.engine.connect() as conn:
                tenant_roles.extend(await tenancy.list_tenant_schemas(conn))
            await db.dispose()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def operator(stack: Stack) -> dict[str, str]:
    """Headers of the bootstrap operator, signed in with a second factor (once per stack)."""
    with httpx.Client(timeout=10) as http:
        return {"Authorization": f"Bearer {stack.operator_token(http)}"}


# Stand-in AWS credentials and no developer profile or config: moto's server accepts any key.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}
AWS_PROFILE_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode (KMS, S3) on a free loopback port, with fake AWS credentials in
    this process's environment; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs each request to a stream handler it adds itself, which outlives pytest's
    # captured stderr; request lines are not wanted anyway.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in FAKE_AWS_ENV.items():
            mp.setenv(name, value)
        for name in AWS_PROFILE_ENV:
            mp.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()  # the port the OS picked for port=0
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
