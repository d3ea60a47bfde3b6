"""Benchmark: password logins/s and refresh-token grants/s per core, against Keycloak's
published sizing (about 15 password logins/s and 120 refresh-token grants/s per vCPU:
https://www.keycloak.org/high-availability/single-cluster/concepts-memory-and-cpu-sizing).

Starts ``jinji up`` on loopback (embedded PostgreSQL in a temp dir, or a scratch database on
JINJI_TEST_DATABASE_URL's server), provisions a tenant through tenant-admin, and has its
admin create users who each sign in once. Then, over real HTTP with ``httpx.AsyncClient``
workers, in the same run:

- password logins (``POST /identity/v1/login``, argon2id m=19 MiB t=2 p=1, a session, an audit
  event and an ES256 access token each) for ``--seconds``;
- refresh-token grants (``POST /identity/oauth2/token``, each worker rotating its own session's
  token) for ``--seconds``;
- baselines: ``/identity/healthz`` on the same server at the same concurrency (the bare HTTP
  floor); one argon2id verification with the service's own parameters, alone on one core in
  this process (the floor of a password login); and an ES256 access token signed as identity
  signs it, alone (what every login and refresh signs).

"Per core" is per CPU-second of the ``jinji up`` process, read from /proc (Keycloak's figures
are per vCPU of Keycloak, its database sized apart); PostgreSQL's CPU and the whole machine's
figure are reported beside it.

    .venv/bin/python bench/logins.py --seconds 10 --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _support
import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

from services.identity import passwords
from services.identity.settings import IdentitySettings

KEYCLOAK_LOGINS_PER_VCPU = 15
KEYCLOAK_REFRESHES_PER_VCPU = 120


def argon2_verifies_per_s(seconds: float = 2.0) -> tuple[float, dict[str, int]]:
    """argon2id verifications per second on one core, with identity's default parameters."""
    settings = IdentitySettings()
    hasher = passwords.hasher(settings)
    hashed = passwords.hash_password(hasher, "a benchmark passphrase")
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        assert passwords.verify_password(hasher, hashed, "a benchmark passphrase")
        count += 1
    params = {
        "memory_kib": settings.argon2_memory_kib,
        "time_cost": settings.argon2_time_cost,
        "parallelism": settings.argon2_parallelism,
    }
    return count / (time.perf_counter() - started), params


def es256_signs_per_s(seconds: float = 1.0) -> float:
    """Access tokens signed per second on one core, as identity signs them (joserfc, ES256),
    with claims like a user's."""
    key = ECKey.generate_key("P-256", {"kid": "bench"})
    claims = {
        "iss": "http://127.0.0.1/identity",
        "sub": str(uuid.uuid4()),
        "aud": ["jinji-identity", "jinji-tenants", "jinji-ingestion", "jinji-analytics"],
        "iat": 0,
        "nbf": 0,
        "exp": 300,
        "jti": uuid.uuid4().hex,
        "tid": str(uuid.uuid4()),
        "roles": ["viewer"],
        "companies": [],
        "amr": ["pwd"],
        "sid": str(uuid.uuid4()),
    }
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        jwt.encode({"alg": "ES256", "kid": "bench", "typ": "JWT"}, claims, key)
        count += 1
    return count / (time.perf_counter() - started)


def per_cpu(count: int, cpu_s: float | None) -> float | None:
    return None if not cpu_s else round(count / cpu_s, 1)


def main(work: Path, seconds: float, concurrency: int, users: int) -> dict[str, Any]:
    argon2_per_s, params = argon2_verifies_per_s()
    es256_per_s = es256_signs_per_s()
    with _support.jinji_up(work) as up, httpx.Client(base_url=up.base, timeout=60) as http:
        operator = _support.operator_token(http, up.identity, up.one_time_password)
        tenant = _support.provision_tenant(http, up.base, operator, {"HQ": "本社"})
        accounts = [
            (f"login{i}", _support.new_user(http, up.base, tenant, f"login{i}", ["viewer"])[1])
            for i in range(users)
        ]
        refresh_tokens: dict[int, str] = {}

        async def login(client: httpx.AsyncClient, worker: int) -> httpx.Response:
            username, password = accounts[worker % len(accounts)]
            response = await client.post(
                "/identity/v1/login",
                json={"tenant": tenant.slug, "username": username, "password": password},
            )
            if response.status_code == 200:
                refresh_tokens[worker] = response.json()["refresh_token"]
            return response

        async def refresh(client: httpx.AsyncClient, worker: int) -> httpx.Response:
            response = await client.post(
                "/identity/oauth2/token",
                data={"grant_type": "refresh_token", "refresh_token": refresh_tokens[worker]},
            )
            if response.status_code == 200:
                refresh_tokens[worker] = response.json()["refresh_token"]
            return response

        async def healthz(client: httpx.AsyncClient, worker: int) -> httpx.Response:
            return await client.get("/identity/healthz")

        # Warm-up: every worker signs in once (its refresh token), the healthz path runs.
        _support.drive(up, login, concurrency=concurrency, seconds=1)
        _support.drive(up, healthz, concurrency=concurrency, seconds=1)
        logins = _support.drive(up, login, concurrency=concurrency, seconds=seconds)
        refreshes = _support.drive(up, refresh, concurrency=concurrency, seconds=seconds)
        health = _support.drive(up, healthz, concurrency=concurrency, seconds=seconds / 2)

    cores = os.cpu_count() or 1
    login_per_core = logins.count / logins.jinji_cpu_s
    refresh_per_core = refreshes.count / refreshes.jinji_cpu_s
    healthz_per_core = health.count / health.jinji_cpu_s
    return {
        "benchmark": "logins",
        "concurrency": concurrency,
        "seconds": seconds,
        "users": users,
        "argon2id": params,
        **logins.summary("login"),
        "login_per_core": round(login_per_core, 1),
        "login_per_server_cpu_s": per_cpu(
            logins.count, logins.jinji_cpu_s + (logins.postgres_cpu_s or 0)
        ),
        "login_per_machine_core": round(logins.per_s / cores, 1),
        "login_postgres_cpu_ms": None
        if logins.postgres_cpu_s is None
        else round(1000 * logins.postgres_cpu_s / logins.count, 2),
        "argon2id_verify_per_core": round(argon2_per_s, 1),
        "login_cpu_share_argon2id": round(login_per_core / argon2_per_s, 2),
        "keycloak_logins_per_vcpu": KEYCLOAK_LOGINS_PER_VCPU,
        "login_per_core_vs_keycloak": round(login_per_core / KEYCLOAK_LOGINS_PER_VCPU, 2),
        **refreshes.summary("refresh"),
        "refresh_per_core": round(refresh_per_core, 1),
        "refresh_per_server_cpu_s": per_cpu(
            refreshes.count, refreshes.jinji_cpu_s + (refreshes.postgres_cpu_s or 0)
        ),
        "refresh_per_machine_core": round(refreshes.per_s / cores, 1),
        "refresh_postgres_cpu_ms": None
        if refreshes.postgres_cpu_s is None
        else round(1000 * refreshes.postgres_cpu_s / refreshes.count, 2),
        "es256_sign_per_core": round(es256_per_s, 1),
        "refresh_cpu_share_es256": round(refresh_per_core / es256_per_s, 2),
        "keycloak_refreshes_per_vcpu": KEYCLOAK_REFRESHES_PER_VCPU,
        "refresh_per_core_vs_keycloak": round(refresh_per_core / KEYCLOAK_REFRESHES_PER_VCPU, 2),
        **health.summary("healthz"),
        "healthz_per_core": round(healthz_per_core, 1),
        "refresh_cpu_vs_healthz": round(healthz_per_core / refresh_per_core, 1),
        "goals": {
            "login_per_core_vs_keycloak": ">= 1.0",
            "refresh_per_core_vs_keycloak": ">= 1.0",
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each timed phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jinji-bench-logins-"))
    try:
        result = main(work, args.seconds, args.concurrency, args.users)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
