"""First start of a deployment (`services/bootstrap.py`): the platform tenant with its KEK and
DEK, identity's signing key (private half only as ciphertext), and the first operator with a
one-time password handed over in a mode-600 file. Idempotent and resumable.

Bootstrap acts on empty identity and tenancy tables, so every test gets a scratch database of
its own, migrated as `jinji migrate` does, and dropped at the end.
"""

from __future__ import annotations

import base64
import json
import re
import stat
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from pydantic import SecretStr
from sqlalchemy import func, insert, select, update

from jinji.config import REPO_ROOT, Settings
from jinji.db import Database
from jinji.keys import LocalKeyProvider
from jinji.keys.sql_store import data_keys
from jinji.runtime import make_envelope
from services import bootstrap
from services.bootstrap import FirstLogin
from services.identity import signing
from services.identity.tables import signing_keys, users
from services.tenant_admin.tables import tenants

MIGRATIONS = REPO_ROOT / "migrations"
_ARGON2ID = re.compile(
    r"^\$argon2id\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)


@pytest.fixture
async def scratch_url(scratch_database) -> AsyncIterator[str]:
    async with scratch_database() as url:
        yield url


@pytest.fixture
async def scratch_db(scratch_url: str) -> AsyncIterator[Database]:
    database = Database(scratch_url, application_name="jinji-tests-bootstrap", pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def settings(scratch_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=SecretStr(scratch_url), data_dir=data_dir, key_provider="local", key_dir=None
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _one(db: Database, query: Any) -> Any:
    async with db.transaction() as s:
        return (await s.execute(query)).one()


async def _count(db: Database, table: Any) -> int:
    async with db.transaction() as s:
        return int(await s.scalar(select(func.count()).select_from(table)) or 0)


def _leftover_tmp_files(data_dir: Path) -> list[str]:
    return [p.name for p in data_dir.iterdir() if p.suffix == ".tmp"]


def _key_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "keys").glob("*.kek"))


async def test_first_run_hands_over_a_one_time_password_in_a_private_file(
    settings: Settings, data_dir: Path
) -> None:
    first = await bootstrap.run(settings)

    path = data_dir / "initial-operator.json"
    assert first is not None
    assert first.tenant == "platform"
    assert first.username == "operator"
    assert len(first.one_time_password) >= 16
    assert first.file == str(path)
    assert _mode(path) == 0o600
    assert json.loads(path.read_text()) == asdict(first)
    assert _leftover_tmp_files(data_dir) == []


async def test_operator_password_is_argon2id_and_must_be_changed(
    settings: Settings, scratch_db: Database
) -> None:
    first = await bootstrap.run(settings)
    assert first is not None

    platform_id = (
        await _one(scratch_db, select(tenants.c.id).where(tenants.c.slug == "platform"))
    )[0]
    user = await _one(
        scratch_db,
        select(
            users.c.tenant_id,
            users.c.username,
            users.c.password_hash,
            users.c.roles,
            users.c.must_change_password,
            users.c.status,
        ),
    )
    assert await _count(scratch_db, users) == 1
    assert user.tenant_id == platform_id
    assert user.username == "operator"
    assert user.roles == ["operator"]
    assert user.must_change_password is True
    assert user.status == "active"

    match = _ARGON2ID.match(user.password_hash)
    assert match is not None, "password hash is not argon2id"
    _, memory_kib, time_cost, parallelism = (int(g) for g in match.groups())
    # At or above OWASP's minimum for argon2id.
    assert memory_kib >= 19_456
    assert time_cost >= 2
    assert parallelism == 1
    assert first.one_time_password not in user.password_hash
    assert PasswordHasher().verify(user.password_hash, first.one_time_password)
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(user.password_hash, first.one_time_password + "x")


async def test_platform_tenant_is_active_with_a_kek_file_and_one_dek(
    settings: Settings, scratch_db: Database, data_dir: Path
) -> None:
    await bootstrap.run(settings)

    assert await _count(scratch_db, tenants) == 1
    tenant = await _one(
        scratch_db,
        select(tenants.c.id, tenants.c.status, tenants.c.kek_ref).where(
            tenants.c.slug == "platform"
        ),
    )
    assert tenant.status == "active"
    assert tenant.kek_ref is not None
    key_file = data_dir / "keys" / f"{tenant.kek_ref}.kek"
    assert key_file.is_file()
    assert _mode(key_file) == 0o600
    assert _mode(data_dir / "keys") == 0o700
    assert _key_files(data_dir) == [key_file]
    # The KEK lives outside the database: its bytes are in no wrapped DEK row.
    kek = key_file.read_bytes()
    assert len(kek) == 32

    dek = await _one(scratch_db, select(data_keys))
    assert dek.tenant_id == tenant.id
    assert dek.version == 1
    assert dek.kek_ref == tenant.kek_ref
    assert kek not in bytes(dek.wrapped_dek)


async def test_signing_key_private_half_is_stored_only_encrypted(
    settings: Settings, scratch_db: Database
) -> None:
    await bootstrap.run(settings)

    assert await _count(scratch_db, signing_keys) == 1
    row = await _one(
        scratch_db,
        select(
            signing_keys.c.kid,
            signing_keys.c.alg,
            signing_keys.c.private_key_enc,
            signing_keys.c.public_jwk,
            signing_keys.c.status,
        ),
    )
    assert row.status == "current"
    assert row.alg == "ES256"
    assert row.public_jwk["alg"] == "ES256"
    assert row.public_jwk["use"] == "sig"
    assert "d" not in row.public_jwk
    assert row.public_jwk["kid"] == row.kid

    platform_id = (await _one(scratch_db, select(tenants.c.id)))[0]
    sealed = bytes(row.private_key_enc)
    key = await signing.load_private(
        make_envelope(settings, scratch_db), platform_id, row.kid, sealed
    )
    public = {k: v for k, v in row.public_jwk.items() if k not in ("alg", "use")}
    assert key.as_dict(private=False) == public

    d = str(key.as_dict(private=True)["d"])
    assert d.encode() not in sealed
    assert base64.urlsafe_b64decode(d + "=" * (-len(d) % 4)) not in sealed
    assert b'"d"' not in sealed


async def test_second_run_is_idempotent_and_returns_the_same_credentials(
    settings: Settings, scratch_db: Database, data_dir: Path
) -> None:
    first = await bootstrap.run(settings)
    user_id = (await _one(scratch_db, select(users.c.id)))[0]
    kid = (await _one(scratch_db, select(signing_keys.c.kid)))[0]
    tenant = await _one(scratch_db, select(tenants.c.id, tenants.c.kek_ref))
    wrapped = (await _one(scratch_db, select(data_keys.c.wrapped_dek)))[0]

    again = await bootstrap.run(settings)

    assert again == first
    assert await _count(scratch_db, users) == 1
    assert (await _one(scratch_db, select(users.c.id)))[0] == user_id
    assert await _count(scratch_db, signing_keys) == 1
    assert (await _one(scratch_db, select(signing_keys.c.kid)))[0] == kid
    assert await _count(scratch_db, tenants) == 1
    assert tuple(await _one(scratch_db, select(tenants.c.id, tenants.c.kek_ref))) == tuple(tenant)
    assert await _count(scratch_db, data_keys) == 1
    assert (await _one(scratch_db, select(data_keys.c.wrapped_dek)))[0] == wrapped
    assert len(_key_files(data_dir)) == 1
    assert _mode(data_dir / "initial-operator.json") == 0o600


async def test_file_is_removed_once_the_one_time_password_is_changed(
    settings: Settings, scratch_db: Database, data_dir: Path
) -> None:
    assert await bootstrap.run(settings) is not None
    path = data_dir / "initial-operator.json"
    assert path.exists()
    async with scratch_db.transaction() as s:
        await s.execute(update(users).values(must_change_password=False))

    assert await bootstrap.run(settings) is None
    assert not path.exists()
    # And it stays gone: no new operator, no new password.
    assert await bootstrap.run(settings) is None
    assert not path.exists()
    assert await _count(scratch_db, users) == 1


@pytest.mark.parametrize("stopped_after", ["tenant_row", "kek", "dek"])
async def test_interrupted_platform_provisioning_is_finished_by_the_next_run(
    settings: Settings, scratch_db: Database, data_dir: Path, stopped_after: str
) -> None:
    """A first start that stopped part-way (row inserted; KEK made; DEK stored) resumes."""
    platform_id = uuid.uuid4()
    kek_ref: str | None = None
    if stopped_after in ("kek", "dek"):
        kek_ref = LocalKeyProvider(data_dir / "keys").create(str(platform_id))
    async with scratch_db.transaction() as s:
        await s.execute(
            insert(tenants).values(
                id=platform_id,
                slug="platform",
                name="Platform",
                status="provisioning",
                kek_ref=kek_ref,
            )
        )
    wrapped_before: bytes | None = None
    if stopped_after == "dek":
        assert kek_ref is not None
        created = await make_envelope(settings, scratch_db).create_dek(str(platform_id), kek_ref)
        wrapped_before = created.wrapped
    files_before = _key_files(data_dir)

    first = await bootstrap.run(settings)

    tenant = await _one(scratch_db, select(tenants.c.id, tenants.c.status, tenants.c.kek_ref))
    assert await _count(scratch_db, tenants) == 1
    assert tenant.id == platform_id
    assert tenant.status == "active"
    assert tenant.kek_ref is not None
    assert (data_dir / "keys" / f"{tenant.kek_ref}.kek").is_file()
    if kek_ref is not None:
        # The KEK made before the interruption is used, not a second one.
        assert tenant.kek_ref == kek_ref
        assert _key_files(data_dir) == files_before
    else:
        assert len(_key_files(data_dir)) == 1

    assert await _count(scratch_db, data_keys) == 1
    dek = await _one(scratch_db, select(data_keys))
    assert dek.tenant_id == platform_id
    assert dek.version == 1
    assert dek.kek_ref == tenant.kek_ref
    if wrapped_before is not None:
        assert bytes(dek.wrapped_dek) == wrapped_before

    # The rest of the first start followed: a usable signing key and the operator.
    row = await _one(scratch_db, select(signing_keys.c.kid, signing_keys.c.private_key_enc))
    await signing.load_private(
        make_envelope(settings, scratch_db), platform_id, row.kid, bytes(row.private_key_enc)
    )
    assert isinstance(first, FirstLogin)
    user = await _one(scratch_db, select(users.c.tenant_id, users.c.must_change_password))
    assert user.tenant_id == platform_id
    assert user.must_change_password is True


CLUSTER_SECRETS = {
    "JINJI_IDENTITY_CLIENT_SECRET": "tenant-admin-secret-from-a-k8s-secret",
    "JINJI_INGESTION_CLIENT_SECRET": "ingestion-secret-from-a-k8s-secret-1",
    "JINJI_ANALYTICS_CLIENT_SECRET": "analytics-secret-from-a-k8s-secret-1",
    "JINJI_INITIAL_OPERATOR_PASSWORD": "first platform passphrase 2026",
}


def _jinji_bootstrap(settings: Settings, **env: str) -> tuple[int, str]:
    import os
    import subprocess
    import sys

    assert settings.database_url is not None
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JINJI_")}
    environ.update(
        JINJI_DATABASE_URL=settings.database_url.get_secret_value(),
        JINJI_DATA_DIR=str(settings.data_dir),
        **env,
    )
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "bootstrap"],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


async def _client_secret_matches(db: Database, client_id: str, secret: str) -> bool:
    from services.identity import passwords
    from services.identity.settings import IdentitySettings
    from services.identity.tables import service_clients

    stored = (
        await _one(
            db,
            select(service_clients.c.secret_hash).where(service_clients.c.client_id == client_id),
        )
    )[0]
    return passwords.verify_password(passwords.hasher(IdentitySettings()), stored, secret)


async def test_cluster_bootstrap_takes_every_secret_from_the_environment(
    settings: Settings, scratch_db: Database, data_dir: Path
) -> None:
    missing = {k: v for k, v in CLUSTER_SECRETS.items() if k != "JINJI_INGESTION_CLIENT_SECRET"}
    code, output = _jinji_bootstrap(settings, **missing)
    assert code == 2
    assert "JINJI_INGESTION_CLIENT_SECRET" in output
    assert await _count(scratch_db, tenants) == 0  # refused before changing anything

    code, output = _jinji_bootstrap(settings, **CLUSTER_SECRETS)
    assert code == 0, output
    for secret in CLUSTER_SECRETS.values():
        assert secret not in output
    for client_id, name in bootstrap.CLIENT_SECRET_SETTINGS.items():
        assert await _client_secret_matches(scratch_db, client_id, CLUSTER_SECRETS[name])
    operator = await _one(scratch_db, select(users.c.password_hash, users.c.must_change_password))
    assert operator.must_change_password is True
    PasswordHasher().verify(
        operator.password_hash, CLUSTER_SECRETS["JINJI_INITIAL_OPERATOR_PASSWORD"]
    )
    # Nothing secret was generated or written to disk.
    assert not (data_dir / bootstrap.SERVICE_CLIENTS_FILE).exists()
    assert not (data_dir / bootstrap.INITIAL_OPERATOR_FILE).exists()

    # A rotated client Secret is taken on the next run; the operator's password never reset.
    rotated = {
        **CLUSTER_SECRETS,
        "JINJI_INGESTION_CLIENT_SECRET": "a-rotated-ingestion-secret-2027",
        "JINJI_INITIAL_OPERATOR_PASSWORD": "another passphrase entirely 2027",
    }
    code, output = _jinji_bootstrap(settings, **rotated)
    assert code == 0, output
    assert await _client_secret_matches(
        scratch_db, "ingestion", rotated["JINJI_INGESTION_CLIENT_SECRET"]
    )
    assert await _client_secret_matches(
        scratch_db, "analytics", CLUSTER_SECRETS["JINJI_ANALYTICS_CLIENT_SECRET"]
    )
    again = await _one(scratch_db, select(users.c.password_hash))
    assert again.password_hash == operator.password_hash
    assert await _count(scratch_db, users) == 1


async def test_cluster_bootstrap_refuses_a_weak_operator_password(
    settings: Settings, scratch_db: Database
) -> None:
    code, output = _jinji_bootstrap(
        settings, **{**CLUSTER_SECRETS, "JINJI_INITIAL_OPERATOR_PASSWORD": "short"}
    )
    assert code == 2
    assert "JINJI_INITIAL_OPERATOR_PASSWORD" in output
    assert await _count(scratch_db, tenants) == 0
