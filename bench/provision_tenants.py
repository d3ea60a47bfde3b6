"""Benchmark: tenant provisioning (POST /tenants/v1/tenants) over real HTTP.

Starts an embedded PostgreSQL (or uses JINJI_TEST_DATABASE_URL's server), bootstraps a
database, serves identity and tenant-admin on loopback, signs the operator in, then creates
N tenants one after another. The baseline, measured in the same run, is the database part
alone (role, schema and migrations of one tenant), the floor any provisioning pays.

    .venv/bin/python bench/provision_tenants.py --tenants 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import _support
import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine

from jinji import tenancy
from jinji.config import REPO_ROOT
from jinji.db import async_url
from jinji.migrate import migrate_all, upgrade_tenant
from services import bootstrap
from services.identity.app import create_app as create_identity
from services.identity.settings import IdentitySettings
from services.tenant_admin.app import create_app as create_tenant_admin
from services.tenant_admin.settings import TenantAdminSettings

ISSUER = "http://bench.local/identity"


def serve(app: Any) -> tuple[str, uvicorn.Server]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", server


async def baseline(url: str, count: int, created: list[str]) -> list[float]:
    engine = create_async_engine(async_url(url))
    times = []
    async with engine.connect() as conn:
        for _ in range(count):
            tenant_id = uuid.uuid4()
            created.append(str(tenant_id))
            started = time.perf_counter()
            await tenancy.provision(conn, tenant_id)
            await conn.commit()
            await upgrade_tenant(conn, REPO_ROOT / "migrations", tenant_id)
            times.append(time.perf_counter() - started)
    await engine.dispose()
    return times


def run(server_url: str, tenants: int, data_dir: Path) -> dict[str, Any]:
    name, url = asyncio.run(_support.create_database(server_url))
    created: list[str] = []
    try:
        asyncio.run(migrate_all(url, REPO_ROOT / "migrations", workers=1))
        settings = IdentitySettings(database_url=SecretStr(url), data_dir=data_dir, issuer=ISSUER)
        first = asyncio.run(bootstrap.run(settings))
        assert first is not None
        secret = json.loads((data_dir / bootstrap.SERVICE_CLIENTS_FILE).read_text())
        identity, id_server = serve(create_identity(settings))
        tenant_admin, ta_server = serve(
            create_tenant_admin(
                TenantAdminSettings(
                    database_url=SecretStr(url),
                    data_dir=data_dir,
                    issuer=ISSUER,
                    jwks_url=f"{identity}/identity/.well-known/jwks.json",
                    identity_url=f"{identity}/identity",
                    identity_client_secret=SecretStr(secret["tenant-admin"]),
                )
            )
        )
        with httpx.Client(timeout=30) as http:
            token = _support.operator_token(http, f"{identity}/identity", first.one_time_password)
            auth = {"Authorization": f"Bearer {token}"}
            times = []
            for i in range(tenants):
                body = {
                    "slug": f"bench{i}-{uuid.uuid4().hex[:6]}",
                    "name": "Bench",
                    "seats": 100,
                    "companies": [{"code": "HQ", "name": "本社"}],
                }
                started = time.perf_counter()
                response = http.post(f"{tenant_admin}/tenants/v1/tenants", headers=auth, json=body)
                times.append(time.perf_counter() - started)
                if response.status_code != 201:
                    raise RuntimeError(f"provisioning failed: {response.text}")
                created.append(response.json()["id"])
        id_server.should_exit = ta_server.should_exit = True
        floor = asyncio.run(baseline(url, tenants, created))
    finally:
        asyncio.run(_support.drop_database(server_url, name, created))
    p50, base = statistics.median(times), statistics.median(floor)
    return {
        "benchmark": "provision_tenants",
        "tenants": tenants,
        "provision_p50_s": round(p50, 3),
        "provision_max_s": round(max(times), 3),
        "baseline_schema_only_p50_s": round(base, 3),
        "provision_vs_schema_only": round(p50 / base, 1),
        "target_s": 1.0,
        "within_target": max(times) < 1.0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=20)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="jinji-bench-data-"))
    try:
        with _support.server(data_dir) as server_url:
            result = run(server_url, args.tenants, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(json.dumps(result))
