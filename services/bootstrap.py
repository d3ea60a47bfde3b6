"""First-start set-up of a deployment, run by `jinji up` and by `jinji bootstrap` (the chart's
bootstrap hook Job, after the migration Job).

Idempotent and resumable: each step checks what exists and does only what is missing.
1. the reserved tenant ``platform`` with its KEK and first DEK;
2. identity's first ES256 signing key (private half encrypted under the platform DEK);
3. the service clients (tenant-admin, ingestion, analytics);
4. the first platform operator, whose password must be changed at first login.

Two ways to get secrets. Locally (`jinji up`) they are generated and written to mode-600 files
in the data directory. In a cluster (`jinji bootstrap`) they are given: each service client's
secret is the one its service reads from its Secret, and the operator's first password comes
from a Secret too; nothing is generated, written or printed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import any_, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.config import Settings
from jinji.db import Database
from jinji.files import write_private
from jinji.keys import Envelope, KeyProvider
from jinji.keys.sql_store import SqlDekStore
from jinji.runtime import key_provider, make_envelope, require_database_url
from jinji.tenancy import PLATFORM_TENANT_SLUG
from services.identity import passwords, signing
from services.identity.settings import IdentitySettings
from services.identity.tables import service_clients, signing_keys, users
from services.identity.tables import tenants as identity_tenants
from services.tenant_admin import certificates
from services.tenant_admin.tables import tenants

OPERATOR_USERNAME = "operator"
INITIAL_OPERATOR_FILE = "initial-operator.json"


@dataclass(frozen=True)
class FirstLogin:
    tenant: str
    username: str
    one_time_password: str
    file: str


@dataclass(frozen=True)
class GivenSecrets:
    """Secrets a cluster provides (from its Secrets) instead of having them generated."""

    clients: dict[str, str]  # service client id → secret
    operator_password: str | None  # the first operator's password (changed at first login)


# Each service client, and the setting its service reads the secret from.
CLIENT_SECRET_SETTINGS = {
    "tenant-admin": "JINJI_IDENTITY_CLIENT_SECRET",
    "ingestion": "JINJI_INGESTION_CLIENT_SECRET",
    "analytics": "JINJI_ANALYTICS_CLIENT_SECRET",
}
MIN_SECRET_CHARS = 24
# The setting the first operator's password is read from (only while no operator exists).
OPERATOR_PASSWORD_SETTING = "JINJI_INITIAL_OPERATOR_PASSWORD"  # noqa: S105 (a name)


class BootstrapError(Exception):
    """A given secret is missing or too weak: nothing about it was changed."""


def secrets_from_environment(environ: dict[str, str]) -> GivenSecrets:
    clients = {}
    for client_id, name in CLIENT_SECRET_SETTINGS.items():
        value = environ.get(name, "")
        if len(value) < MIN_SECRET_CHARS:
            raise BootstrapError(
                f"{name} must hold the {client_id} client's secret "
                f"(at least {MIN_SECRET_CHARS} characters)"
            )
        clients[client_id] = value
    password = environ.get(OPERATOR_PASSWORD_SETTING) or None
    if password is not None:
        try:
            passwords.check_password(password, username=OPERATOR_USERNAME)
        except passwords.PasswordRejected as rejected:
            raise BootstrapError(f"{OPERATOR_PASSWORD_SETTING}: {rejected}") from None
    return GivenSecrets(clients, password)


async def run(settings: Settings, given: GivenSecrets | None = None) -> FirstLogin | None:
    db = Database(require_database_url(settings), application_name="jinji-bootstrap", pool_size=2)
    try:
        envelope = make_envelope(settings, db)
        platform_id = await ensure_platform_tenant(db, key_provider(settings), envelope)
        await ensure_identity_tenant(db, platform_id)
        async with db.transaction() as s:
            await certificates.ensure_key(s, envelope, platform_id)
        await ensure_signing_key(db, envelope, platform_id)
        identity = IdentitySettings()
        if given is None:
            await ensure_service_clients(db, identity, settings.data_dir)
            return await ensure_operator(db, identity, platform_id, settings.data_dir)
        await ensure_given_clients(db, identity, given.clients)
        await ensure_given_operator(db, identity, platform_id, given.operator_password)
        return None
    finally:
        await db.dispose()


async def ensure_platform_tenant(
    db: Database, provider: KeyProvider, envelope: Envelope
) -> uuid.UUID:
    async with db.transaction() as s:
        row = (
            await s.execute(
                select(tenants.c.id, tenants.c.status, tenants.c.kek_ref).where(
                    tenants.c.slug == PLATFORM_TENANT_SLUG
                )
            )
        ).first()
        if row is None:
            tenant_id = uuid.uuid4()
            await s.execute(
                insert(tenants).values(
                    id=tenant_id, slug=PLATFORM_TENANT_SLUG, name="Platform", status="provisioning"
                )
            )
            status, kek_ref = "provisioning", None
        else:
            tenant_id, status, kek_ref = row
    if status == "active":
        return tenant_id
    # Resume a provisioning that stopped part-way: each step is skipped once done.
    if kek_ref is None:
        kek_ref = await asyncio.to_thread(provider.create, str(tenant_id))
        async with db.transaction() as s:
            await s.execute(
                update(tenants).where(tenants.c.id == tenant_id).values(kek_ref=kek_ref)
            )
    if await SqlDekStore(db).current(str(tenant_id)) is None:
        await envelope.create_dek(str(tenant_id), str(kek_ref))
    async with db.transaction() as s:
        await s.execute(update(tenants).where(tenants.c.id == tenant_id).values(status="active"))
    return tenant_id


async def ensure_identity_tenant(db: Database, platform_id: uuid.UUID) -> None:
    """Identity's own record of the platform tenant: no seat limit, MFA always required."""
    identity = IdentitySettings()
    async with db.transaction() as s:
        await s.execute(
            pg_insert(identity_tenants)
            .values(
                id=platform_id,
                slug=PLATFORM_TENANT_SLUG,
                status="active",
                seats=None,
                mfa_required=True,
                session_idle_s=identity.session_idle_s,
                session_absolute_s=identity.session_absolute_s,
            )
            .on_conflict_do_nothing(index_elements=[identity_tenants.c.id])
        )


async def ensure_signing_key(db: Database, envelope: Envelope, platform_id: uuid.UUID) -> None:
    async with db.transaction() as s:
        current = await s.scalar(
            select(signing_keys.c.kid).where(signing_keys.c.status == "current")
        )
    if current is not None:
        return
    key = await signing.generate(envelope, platform_id)
    async with db.transaction() as s:
        await s.execute(
            insert(signing_keys).values(
                kid=key.kid,
                alg=signing.ALG,
                private_key_enc=key.private_key_enc,
                public_jwk=key.public_jwk,
                status="current",
            )
        )


# Service clients a local deployment needs (in Kubernetes, operators create them and the
# chart passes each secret from an existing Secret).
SERVICE_CLIENTS: dict[str, dict[str, list[str]]] = {
    "tenant-admin": {
        "audiences": ["jinji-identity", "jinji-audit-log"],
        "scopes": ["audit:write", "identity:tenants"],
    },
    "ingestion": {
        "audiences": ["jinji-audit-log", "jinji-analytics"],
        "scopes": ["analytics:datasets", "audit:write"],
    },
    "analytics": {
        "audiences": ["jinji-audit-log", "jinji-tenant-admin"],
        "scopes": ["audit:write", "tenants:read"],
    },
}
SERVICE_CLIENTS_FILE = "service-clients.json"


async def ensure_service_clients(
    db: Database, settings: IdentitySettings, data_dir: Path
) -> dict[str, str]:
    """Register the local service clients; their secrets live only in a mode-600 file in the
    data directory. A client whose secret was lost gets a new one."""
    path = data_dir / SERVICE_CLIENTS_FILE
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    hasher = passwords.hasher(settings)
    changed = False
    for client_id, grant in SERVICE_CLIENTS.items():
        async with db.transaction() as s:
            exists = await s.scalar(
                select(service_clients.c.client_id).where(service_clients.c.client_id == client_id)
            )
        if exists and client_id in known:
            continue
        secret = secrets.token_urlsafe(32)
        await _store_client(db, hasher, client_id, grant, secret)
        known[client_id] = secret
        changed = True
    if changed:
        write_private(path, json.dumps(known, indent=2) + "\n")
    return known


async def _store_client(
    db: Database,
    hasher: PasswordHasher,
    client_id: str,
    grant: dict[str, list[str]],
    secret: str,
) -> None:
    """Register (or re-enable) a service client with the hash of ``secret``."""
    hashed = await asyncio.to_thread(passwords.hash_password, hasher, secret)
    async with db.transaction() as s:
        await s.execute(
            pg_insert(service_clients)
            .values(client_id=client_id, secret_hash=hashed, **grant)
            .on_conflict_do_update(
                index_elements=[service_clients.c.client_id],
                set_={"secret_hash": hashed, **grant, "disabled_at": None},
            )
        )


async def ensure_given_clients(
    db: Database, settings: IdentitySettings, given: dict[str, str]
) -> None:
    """Register each service client with the secret its service holds; a client whose stored
    hash does not match (the Secret was rotated) gets the new one."""
    hasher = passwords.hasher(settings)
    for client_id, grant in SERVICE_CLIENTS.items():
        secret = given[client_id]
        async with db.transaction() as s:
            stored = await s.scalar(
                select(service_clients.c.secret_hash).where(
                    service_clients.c.client_id == client_id
                )
            )
        if stored is not None and await asyncio.to_thread(
            passwords.verify_password, hasher, stored, secret
        ):
            continue
        await _store_client(db, hasher, client_id, grant, secret)


async def ensure_given_operator(
    db: Database, settings: IdentitySettings, platform_id: uuid.UUID, password: str | None
) -> None:
    """The first operator, with the given password to change at first login (only when there
    is no operator yet: a later run never resets anyone's password)."""
    async with db.transaction() as s:
        exists = await s.scalar(
            select(users.c.id).where(
                users.c.tenant_id == platform_id, literal("operator") == any_(users.c.roles)
            )
        )
    if exists is not None:
        return
    if password is None:
        raise BootstrapError(
            f"no operator exists yet: set {OPERATOR_PASSWORD_SETTING} (from a Secret)"
        )
    password_hash = await asyncio.to_thread(
        passwords.hash_password, passwords.hasher(settings), password
    )
    async with db.transaction() as s:
        await _insert_operator(s, platform_id, password_hash)


async def ensure_operator(
    db: Database, settings: IdentitySettings, platform_id: uuid.UUID, data_dir: Path
) -> FirstLogin | None:
    path = data_dir / INITIAL_OPERATOR_FILE
    async with db.transaction() as s:
        row = (
            await s.execute(
                select(users.c.must_change_password).where(
                    users.c.tenant_id == platform_id, literal("operator") == any_(users.c.roles)
                )
            )
        ).first()
    if row is not None:
        if not row[0]:
            # The one-time password has been changed: the file would only mislead.
            path.unlink(missing_ok=True)
            return None
        return _read_first_login(path)
    otp = passwords.one_time_password()
    password_hash = await asyncio.to_thread(passwords.hasher(settings).hash, otp)
    first = FirstLogin(PLATFORM_TENANT_SLUG, OPERATOR_USERNAME, otp, str(path))
    async with db.transaction() as s:
        await _insert_operator(s, platform_id, password_hash)
        # Written before commit: if writing fails, no account exists whose password is lost.
        write_private(path, json.dumps(asdict(first), indent=2) + "\n")
    return first


async def _insert_operator(s: AsyncSession, platform_id: uuid.UUID, password_hash: str) -> None:
    """The first operator, who must choose a new password at the first login."""
    await s.execute(
        insert(users).values(
            id=uuid.uuid4(),
            tenant_id=platform_id,
            username=OPERATOR_USERNAME,
            password_hash=password_hash,
            roles=["operator"],
            companies=[],
            must_change_password=True,
            status="active",
        )
    )


def _read_first_login(path: Path) -> FirstLogin | None:
    try:
        return FirstLogin(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
