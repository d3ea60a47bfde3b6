"""Operators (with MFA) manage service clients and signing keys; services get client-
credential tokens, introspect, and drive tenants through the internal API."""

from __future__ import annotations

import pytest


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def tenant_admin_client(stack, operator) -> tuple[str, str]:
    import httpx

    with httpx.Client(timeout=10) as http:
        created = http.post(
            stack.url("/v1/operator/service-clients"),
            headers=operator,
            json={
                "client_id": "provisioner",
                "audiences": ["jinji-identity"],
                "scopes": ["identity:tenants"],
            },
        )
    assert created.status_code == 201, created.text
    return created.json()["client_id"], created.json()["client_secret"]


def service_token(http, stack, client: tuple[str, str], **form: str):
    return http.post(
        stack.url("/oauth2/token"),
        data={"grant_type": "client_credentials", "audience": "jinji-identity", **form},
        auth=client,
    )


async def test_non_operators_and_operators_without_mfa_are_refused(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "admin", roles=("tenant_admin",))
    tokens = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "admin", "password": stack.password},
    ).json()
    refused = http.post(
        stack.url("/v1/operator/signing-keys/rotate"), headers=bearer(tokens["access_token"])
    )
    assert refused.status_code == 403


async def test_client_credentials_token_scopes_and_audience(
    stack, http, tenant_admin_client
) -> None:
    issued = service_token(http, stack, tenant_admin_client)
    assert issued.status_code == 200, issued.text
    wrong_secret = service_token(http, stack, (tenant_admin_client[0], "not-the-secret"))
    assert wrong_secret.status_code == 401
    wrong_audience = service_token(http, stack, tenant_admin_client, audience="jinji-analytics")
    assert wrong_audience.status_code == 400
    too_much = service_token(http, stack, tenant_admin_client, scope="identity:tenants audit:read")
    assert too_much.status_code == 400

    introspected = http.post(
        stack.url("/oauth2/introspect"),
        data={"token": issued.json()["access_token"]},
        auth=tenant_admin_client,
    ).json()
    assert introspected["active"] is True
    assert introspected["client_id"] == "provisioner"
    assert introspected["scope"] == "identity:tenants"
    garbage = http.post(
        stack.url("/oauth2/introspect"), data={"token": "x.y.z"}, auth=tenant_admin_client
    )
    assert garbage.json() == {"active": False}
    anonymous = http.post(stack.url("/oauth2/introspect"), data={"token": "x.y.z"})
    assert anonymous.status_code == 401


async def test_tenant_lifecycle_through_the_internal_api(stack, http, tenant_admin_client) -> None:
    import uuid

    service = bearer(service_token(http, stack, tenant_admin_client).json()["access_token"])
    tenant_id = uuid.uuid4()
    slug = f"acme{tenant_id.hex[:6]}"
    url = stack.url(f"/internal/v1/tenants/{tenant_id}")
    put = http.put(url, headers=service, json={"slug": slug, "seats": 10, "mfa_required": False})
    assert put.status_code == 200, put.text
    admin = http.post(f"{url}/admins", headers=service, json={"username": "admin"})
    assert admin.status_code == 201
    step = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "admin", "password": admin.json()["one_time_password"]},
    ).json()
    assert step["challenge"] == "password_change"
    tokens = http.post(
        stack.url("/v1/login/challenge"),
        json={
            "challenge_token": step["challenge_token"],
            "new_password": "a sturdy company passphrase",
        },
    ).json()
    assert http.get(url + "/users/summary", headers=service).json()["active"] == 1

    # Suspension: sessions end, logins are refused.
    assert http.post(f"{url}/suspend", headers=service).status_code == 204
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert http.post(stack.url("/oauth2/token"), data=refresh).status_code == 400
    login = {"tenant": slug, "username": "admin", "password": "a sturdy company passphrase"}
    assert http.post(stack.url("/v1/login"), json=login).status_code == 401
    assert http.post(f"{url}/resume", headers=service).status_code == 204
    assert http.post(stack.url("/v1/login"), json=login).status_code == 200

    # Purge: nothing left.
    assert http.delete(url, headers=service).status_code == 204
    assert http.get(url + "/users/summary", headers=service).json()["total"] == 0
    assert http.post(stack.url("/v1/login"), json=login).status_code == 401

    # A user token cannot use the internal API, whatever its roles.
    assert http.put(url, headers=bearer(tokens["access_token"]), json={}).status_code in (401, 403)


async def test_signing_key_rotation_publishes_ahead_then_switches(stack, http, operator) -> None:
    from datetime import timedelta

    from joserfc import jws
    from sqlalchemy import select, update

    from jinji.runtime import make_envelope
    from services.identity.context import LazyIdentity
    from services.identity.tables import signing_keys

    before = {k["kid"] for k in http.get(stack.url("/.well-known/jwks.json")).json()["keys"]}
    rotated = http.post(stack.url("/v1/operator/signing-keys/rotate"), headers=operator)
    assert rotated.status_code == 200, rotated.text
    new_kid = rotated.json()["kid"]
    after = {k["kid"] for k in http.get(stack.url("/.well-known/jwks.json")).json()["keys"]}
    # Published at once, next to the keys already in use.
    assert after == before | {new_kid}

    def signing_kid(token: str) -> str:
        return str(jws.extract_compact(token.encode()).protected["kid"])

    async def sign_now() -> str:
        lazy = LazyIdentity(stack.settings, stack.db, make_envelope(stack.settings, stack.db))
        ctx = await lazy.get()
        return await ctx.keyring.sign({"probe": True})

    # Not signing yet: verifiers may not have fetched it.
    assert signing_kid(await sign_now()) != new_kid
    async with stack.db.transaction() as s:
        await s.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == new_kid)
            .values(created_at=signing_keys.c.created_at - timedelta(minutes=2))
        )
    assert signing_kid(await sign_now()) == new_kid
    async with stack.db.transaction() as s:
        statuses = dict((await s.execute(select(signing_keys.c.kid, signing_keys.c.status))).all())
    assert statuses[new_kid] == "current"
    assert "previous" in statuses.values()
    # The operator's token, signed by the replaced key, still works.
    assert http.get(stack.url("/v1/me"), headers=operator).status_code == 200


def test_scheduled_rotation_job(stack, http) -> None:
    import json
    import os
    import subprocess
    import sys

    from jinji.config import REPO_ROOT

    before = {k["kid"] for k in http.get(stack.url("/.well-known/jwks.json")).json()["keys"]}
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINJI_")}
    env["JINJI_DATABASE_URL"] = stack.settings.database_url.get_secret_value()
    env["JINJI_DATA_DIR"] = str(stack.settings.data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "rotate-signing-key"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    kid = json.loads(done.stdout.strip().splitlines()[-1])["kid"]
    after = {k["kid"] for k in http.get(stack.url("/.well-known/jwks.json")).json()["keys"]}
    assert kid in after
    assert kid not in before


def test_operators_cannot_remove_their_second_factor(stack, http, operator) -> None:
    removed = http.request(
        "DELETE",
        stack.url("/v1/me/mfa/totp"),
        headers=operator,
        json={"password": "a long platform passphrase", "code": "000000"},
    )
    assert removed.status_code == 409
    assert removed.json()["error"]["code"] == "mfa_required"
