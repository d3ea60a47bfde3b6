"""What every benchmark needs: a PostgreSQL server and a scratch database on it, or ``jinji up``
running as a person runs it, with a tenant, users and files."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from jinji import tenancy
from jinji.config import REPO_ROOT
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


async def tenant_ids(url: str) -> list[str]:
    """The tenants whose schemas a database holds (their roles outlive the database)."""
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return [s.removeprefix("t_") for s in await tenancy.list_tenant_schemas(conn)]
    finally:
        await engine.dispose()


def free_port() -> int:
    """A loopback port free right now (for a server whose URL must be known before it starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(
    url: str, timeout_s: float = 60.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers 200 (a service's /readyz); give up early if ``process``
    (the server) has exited."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before {url} was up")
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


# --- `jinji up` as a person runs it, for the HTTP benchmarks and `make load` -----------------


@dataclass
class Up:
    """A running ``jinji up``: its base URL, process and the operator's first login."""

    base: str
    process: subprocess.Popen[bytes]
    one_time_password: str
    pgdata: Path | None  # the embedded cluster's data directory (None: an external server)

    @property
    def identity(self) -> str:
        return f"{self.base}/identity"


@contextmanager
def jinji_up(work: Path) -> Iterator[Up]:
    """``jinji up`` in a process of its own on a free loopback port, with its own embedded
    PostgreSQL in ``work`` (first start: migrate, bootstrap), or a scratch database on the
    server in JINJI_TEST_DATABASE_URL when set. Stopped with SIGTERM, as a process manager
    stops it (its embedded PostgreSQL goes down with it)."""
    external = os.environ.get("JINJI_TEST_DATABASE_URL")
    data_dir = work / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINJI_")}
    env["JINJI_DATA_DIR"] = str(data_dir)
    env["JINJI_LOG_LEVEL"] = "WARNING"
    name = ""
    if external:
        name, url = asyncio.run(create_database(external))
        env["JINJI_DATABASE_URL"] = url
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own CLI, argv list
        [sys.executable, "-m", "services.cli", "up", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for prefix in ("identity", "tenants", "ingestion", "analytics", "audit"):
            wait_ready(f"{base}/{prefix}/readyz", timeout_s=180, process=process)
        first = json.loads((data_dir / "initial-operator.json").read_text())
        pgdata = None if external else data_dir / "postgres" / "pgdata"
        yield Up(base, process, first["one_time_password"], pgdata)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if external and name:
            asyncio.run(
                drop_database(external, name, asyncio.run(tenant_ids(env["JINJI_DATABASE_URL"])))
            )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process so far (its own threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(pgdata: Path | None) -> float | None:
    """CPU time of an embedded cluster so far: the postmaster, its exited children (waited
    for) and its live backends. None for an external server (not on this machine's books)."""
    if pgdata is None:
        return None
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(stat[1]) == postmaster:
            total += (int(stat[11]) + int(stat[12])) / tick
    return total


@dataclass
class Tenant:
    """A tenant provisioned through tenant-admin, its admin signed in (password changed)."""

    id: str
    slug: str
    admin_password: str
    admin: dict[str, str]
    admin_id: str


def provision_tenant(
    http: httpx.Client,
    base: str,
    operator: str,
    companies: dict[str, str],
    seats: int = 1000,
    **settings: Any,
) -> Tenant:
    """``settings``: more of the tenant's fields (fiscal_year_start_month, min_group_size …)."""
    created = http.post(
        f"{base}/tenants/v1/tenants",
        headers={"Authorization": f"Bearer {operator}"},
        json={
            "slug": f"bench-{uuid.uuid4().hex[:8]}",
            "name": "ベンチマーク",
            "seats": seats,
            "mfa_required": False,
            "companies": [{"code": code, "name": name} for code, name in companies.items()],
            **settings,
        },
    )
    if created.status_code != 201:
        raise RuntimeError(f"provisioning failed: {created.status_code} {created.text}")
    body = created.json()
    password = f"bench {uuid.uuid4().hex}"
    step = http.post(
        f"{base}/identity/v1/login",
        json={
            "tenant": body["slug"],
            "username": "admin",
            "password": body["initial_admin"]["one_time_password"],
        },
    ).json()
    tokens = http.post(
        f"{base}/identity/v1/login/challenge",
        json={"challenge_token": step["challenge_token"], "new_password": password},
    ).json()
    token = tokens["access_token"]
    return Tenant(
        body["id"],
        body["slug"],
        password,
        {"Authorization": f"Bearer {token}"},
        claims(token)["sub"],
    )


def new_user(
    http: httpx.Client, base: str, tenant: Tenant, username: str, roles: list[str]
) -> tuple[str, str]:
    """A user made by the tenant's admin and signed in once (one-time password changed):
    its id and password."""
    made = http.post(
        f"{base}/identity/v1/users",
        headers=tenant.admin,
        json={"username": username, "roles": roles, "companies": []},
    )
    if made.status_code != 201:
        raise RuntimeError(f"user creation failed: {made.status_code} {made.text}")
    password = f"bench {uuid.uuid4().hex}"
    step = http.post(
        f"{base}/identity/v1/login",
        json={
            "tenant": tenant.slug,
            "username": username,
            "password": made.json()["one_time_password"],
        },
    ).json()
    changed = http.post(
        f"{base}/identity/v1/login/challenge",
        json={"challenge_token": step["challenge_token"], "new_password": password},
    )
    if changed.status_code != 200:
        raise RuntimeError(f"first login failed: {changed.status_code} {changed.text}")
    return str(made.json()["id"]), password


def claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (the benchmark's own token, for its ids)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def employees_csv(rows: int, *, seed: int, companies: tuple[str, ...] = ("HQ",)) -> bytes:
    """An employees file (CP932) of ``rows`` people, all employed at the snapshot."""
    rng = random.Random(seed)
    lines = ["社員番号,会社コード,部署,性別,生年月日,入社日,退職日,退職理由,雇用形態,管理職,等級"]
    for i in range(rows):
        lines.append(
            f"E{seed % 100_000:05d}{i:05d},{companies[i % len(companies)]},"
            f"{rng.choice(['営業部', '人事部', '開発部'])},{rng.choice(['男', '女'])},"
            f"{rng.randint(1960, 1985)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)},"
            f"2010-04-01,,,{rng.choice(['正社員', '契約社員'])},{rng.choice(['○', '×'])},"
            f"G{rng.randint(1, 6)}"
        )
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def percentiles_ms(latencies: list[float]) -> dict[str, float]:
    if len(latencies) < 2:
        return {f"p{p}": round(latencies[0] * 1000, 1) if latencies else 0.0 for p in (50, 95, 99)}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {f"p{p}": round(cuts[p - 1] * 1000, 1) for p in (50, 95, 99)}


@dataclass
class Run:
    """What a timed run of concurrent requests saw."""

    latencies: list[float]
    statuses: dict[int, int]
    seconds: float
    jinji_cpu_s: float
    postgres_cpu_s: float | None

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def per_s(self) -> float:
        return self.count / self.seconds

    def summary(self, prefix: str) -> dict[str, Any]:
        return {
            f"{prefix}_per_s": round(self.per_s, 1),
            **{f"{prefix}_{k}_ms": v for k, v in percentiles_ms(self.latencies).items()},
            f"{prefix}_requests": self.count,
            f"{prefix}_jinji_cpu_ms_per_request": round(1000 * self.jinji_cpu_s / self.count, 2),
        }


Request = Any  # (client: httpx.AsyncClient, worker: int) -> Awaitable[httpx.Response]


def drive(
    up: Up,
    request: Request,
    *,
    concurrency: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    ok: tuple[int, ...] = (200,),
) -> Run:
    """``concurrency`` workers, an ``httpx.AsyncClient`` each (keep-alive), sending
    ``request(client, worker)`` back to back for ``seconds``; the server's CPU time over the
    run is read from /proc. Each worker connects first (one untimed request), and the clock
    starts once all have. A status outside ``ok`` stops the run (a benchmark of errors
    measures nothing)."""

    async def run() -> Run:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        connected = 0
        go = asyncio.Event()
        deadline = 0.0

        async def worker(index: int) -> None:
            nonlocal connected
            async with httpx.AsyncClient(base_url=up.base, headers=headers, timeout=60) as client:
                await client.get("/identity/healthz")
                connected += 1
                if connected == concurrency:
                    go.set()
                await go.wait()
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    response = await request(client, index)
                    latencies.append(time.perf_counter() - started)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code not in ok:
                        raise RuntimeError(
                            f"{response.request.method} {response.request.url.path}: "
                            f"{response.status_code} {response.text[:300]}"
                        )

        async def clock() -> None:
            nonlocal deadline, jinji_before, pg_before, started
            await go.wait()
            jinji_before = cpu_seconds(up.process.pid)
            pg_before = postgres_cpu_seconds(up.pgdata)
            started = time.perf_counter()
            deadline = started + seconds

        jinji_before, pg_before, started = 0.0, None, 0.0
        # The clock task is created first, so it runs before any worker sees the event.
        await asyncio.gather(clock(), *(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
        pg_after = postgres_cpu_seconds(up.pgdata)
        return Run(
            latencies,
            statuses,
            elapsed,
            cpu_seconds(up.process.pid) - jinji_before,
            None if pg_before is None or pg_after is None else pg_after - pg_before,
        )

    return asyncio.run(run())


def wait_outbox_drained(base: str, sources: Iterable[str], timeout_s: float = 120.0) -> None:
    """Until every outbox message of ``sources`` is delivered (read from /metrics): e.g.
    ingestion's "dataset committed" messages, acknowledged by analytics once it has recomputed,
    so no recompute runs behind a measurement."""
    wanted = {f'jinji_outbox_pending_messages{{source="{s}"}}' for s in sources}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = {
            name: float(value)
            for name, value in (
                line.rsplit(" ", 1)
                for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines()
                if line.startswith("jinji_outbox_pending_messages{")
            )
        }
        if all(pending.get(name, 1.0) == 0 for name in wanted):
            return
        time.sleep(0.5)
    raise RuntimeError(f"outbox of {sorted(sources)} not drained after {timeout_s}s")
