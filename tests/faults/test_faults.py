"""Faults in a deployment of five separate processes on their own embedded PostgreSQL:
identity stopped, PostgreSQL restarted, ingestion killed in the middle of an upload. Users
get clear answers (never a 500), nothing half-done is ever visible, and everything recovers
without restarting the other services."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from jinji.config import REPO_ROOT
from jinji.db import Database
from jinji.migrate import migrate_all
from jinji.pgembed import EmbeddedPostgres
from services import bootstrap
from services.cli import ensure_database
from services.identity.settings import IdentitySettings
from services.registry import SPECS
from tests.conftest import Provisioned, Stack, _embedded_pg_root
from tests.e2e.test_processes import free_port, wait_until_healthy

pytestmark = pytest.mark.fault

HEADER = "社員番号,会社コード,部署,性別,生年月日,入社日,退職日,退職理由,雇用形態,管理職,等級\r\n"


def employees(rows: int) -> bytes:
    lines = [HEADER] + [
        f"E{i:07d},HQ,営業部,{'男' if i % 2 else '女'},1980/1/1,2010/4/1,,,正社員,×,G1\r\n"
        for i in range(rows)
    ]
    return "".join(lines).encode("cp932")


@dataclass
class Deployment:
    postgres: EmbeddedPostgres
    url: str
    env: dict[str, str]
    ports: dict[str, int]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def base(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> None:
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", name, "--port", str(self.ports[name])],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until_healthy(f"{self.base(name)}{SPECS[name].prefix}/healthz", self.procs[name])

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    with _embedded_pg_root() as root:
        yield from _deploy(root)


def _deploy(root: Path) -> Iterator[Deployment]:
    postgres = EmbeddedPostgres(root / "postgres")
    server = postgres.start()
    try:
        asyncio.run(ensure_database(server, "jinji"))
        url = postgres.url("jinji")
        asyncio.run(migrate_all(url, REPO_ROOT / "migrations", workers=1))
        ports = {name: free_port() for name in SPECS}
        issuer = f"http://127.0.0.1:{ports['identity']}/identity"
        settings = IdentitySettings(
            database_url=SecretStr(url), data_dir=root / "data", issuer=issuer
        )
        first = asyncio.run(bootstrap.run(settings))
        assert first is not None
        clients = json.loads((root / "data" / bootstrap.SERVICE_CLIENTS_FILE).read_text())
        env = {k: v for k, v in os.environ.items() if not k.startswith("JINJI_")}
        env.update(
            JINJI_DATABASE_URL=url,
            JINJI_DATA_DIR=str(root / "data"),
            JINJI_ISSUER=issuer,
            JINJI_AUDIT_URL=f"http://127.0.0.1:{ports['audit_log']}",
            JINJI_TENANTS_URL=f"http://127.0.0.1:{ports['tenant_admin']}",
            JINJI_ANALYTICS_URL=f"http://127.0.0.1:{ports['analytics']}",
            JINJI_IDENTITY_CLIENT_SECRET=clients["tenant-admin"],
            JINJI_INGESTION_CLIENT_SECRET=clients["ingestion"],
            JINJI_ANALYTICS_CLIENT_SECRET=clients["analytics"],
            JINJI_REFRESH_COOKIE_SECURE="false",
        )
        deployment = Deployment(postgres, url, env, ports)
        deployment.first_login = first  # type: ignore[attr-defined]
        deployment.settings = settings  # type: ignore[attr-defined]
        try:
            for name in SPECS:
                deployment.start(name)
            yield deployment
        finally:
            for name in list(deployment.procs):
                deployment.stop(name, signal.SIGKILL)
    finally:
        postgres.stop()


@pytest.fixture(scope="module")
def stack(deployment: Deployment) -> Stack:
    """The test helpers (sign-in, provisioning, uploads) pointed at the processes."""
    return Stack(
        deployment.settings,  # type: ignore[attr-defined]
        Database(deployment.url, pool_size=1),
        deployment.base("identity"),
        deployment.first_login,  # type: ignore[attr-defined]
        deployment.base("tenant_admin"),
        None,  # type: ignore[arg-type]
        deployment.base("audit_log"),
        None,  # type: ignore[arg-type]
        deployment.base("ingestion"),
        deployment.base("analytics"),
    )


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> Provisioned:
    with httpx.Client(timeout=60) as http:
        operator = {"Authorization": f"Bearer {stack.operator_token(http)}"}
        return stack.provision(http, operator, {"HQ": "本社"})


def _datasets(stack: Stack, http: httpx.Client, tenant: Provisioned) -> list[dict[str, object]]:
    response = http.get(stack.ingestion_url("/v1/datasets"), headers=tenant.admin)
    assert response.status_code == 200, response.text
    return list(response.json()["datasets"])


def test_identity_down_other_services_keep_serving(deployment, stack, http, tenant) -> None:
    reads = [
        stack.analytics_url("/v1/dashboards"),
        stack.ingestion_url("/v1/datasets"),
        stack.tenants_url(f"/v1/tenants/{tenant.id}/settings"),
    ]
    for url in reads:  # each service has verified a token: it holds identity's keys
        assert http.get(url, headers=tenant.admin).status_code == 200
    deployment.stop("identity")
    try:
        # Tokens issued before stay good: every service holds identity's keys already.
        assert (
            http.get(stack.analytics_url("/v1/dashboards"), headers=tenant.admin).status_code == 200
        )
        assert (
            http.get(stack.ingestion_url("/v1/datasets"), headers=tenant.admin).status_code == 200
        )
        settings = http.get(
            stack.tenants_url(f"/v1/tenants/{tenant.id}/settings"), headers=tenant.admin
        )
        assert settings.status_code == 200
        # What needs identity itself answers a clear 503, not a 500.
        detail = http.get(stack.tenants_url(f"/v1/tenants/{tenant.id}"), headers=tenant.admin)
        assert detail.status_code == 503, detail.text
        assert detail.json()["error"]["code"] == "service_unavailable"
        with pytest.raises(httpx.ConnectError):  # no one answers logins (the Ingress: 502)
            http.post(stack.url("/v1/login"), json={"tenant": tenant.slug, "username": "x"})
    finally:
        deployment.start("identity")
    again = http.get(stack.tenants_url(f"/v1/tenants/{tenant.id}"), headers=tenant.admin)
    assert again.status_code == 200


def test_postgres_restart_gives_503_then_recovers_without_restarts(
    deployment, stack, http, tenant
) -> None:
    content = employees(2_000)
    deployment.postgres.stop()
    try:
        for name in SPECS:
            ready = http.get(f"{deployment.base(name)}{SPECS[name].prefix}/readyz")
            assert ready.status_code == 503, (name, ready.text)
        refused = stack.upload(http, tenant.admin, content, "e.csv", "employees", as_of="2024-05")
        assert refused.status_code == 503, refused.text
        assert refused.headers.get("retry-after")
    finally:
        deployment.postgres.start()
    deadline = time.monotonic() + 30
    while http.get(stack.ingestion_url("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "ingestion did not see PostgreSQL come back"
        time.sleep(0.5)
    retried = stack.upload(http, tenant.admin, content, "e.csv", "employees", as_of="2024-05")
    assert retried.status_code == 201, retried.text
    versions = [d for d in _datasets(stack, http, tenant) if d["period"] == "2024-05"]
    assert [(d["version"], d["rows"]) for d in versions] == [(1, 2_000)]


def test_ingestion_killed_in_the_middle_of_an_upload_leaves_nothing_half_done(
    deployment, stack, http, tenant
) -> None:
    content = employees(300_000)
    outcome: list[object] = []

    def send() -> None:
        try:
            with httpx.Client(timeout=120) as client:
                outcome.append(
                    stack.upload(
                        client, tenant.admin, content, "big.csv", "employees", as_of="2024-06"
                    ).status_code
                )
        except httpx.HTTPError as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.8)  # the file is being received, read or committed
    deployment.stop("ingestion", signal.SIGKILL)
    sender.join(timeout=120)
    deployment.start("ingestion")
    assert outcome, "the request did not end"
    stored = [d for d in _datasets(stack, http, tenant) if d["period"] == "2024-06"]
    if outcome[0] == 201:  # the commit won the race with the kill: all of it is there
        assert [(d["version"], d["rows"]) for d in stored] == [(1, 300_000)]
    else:  # the client saw it fail: nothing of it is visible
        assert stored == []
    again = stack.upload(http, tenant.admin, content, "big.csv", "employees", as_of="2024-06")
    assert again.status_code in (200, 201), again.text
    versions = [d for d in _datasets(stack, http, tenant) if d["period"] == "2024-06"]
    assert [(d["version"], d["rows"]) for d in versions] == [(1, 300_000)]
