"""Load: a mixed workload from several tenants against ``jinji up`` on loopback, then the
checks a customer relies on.

Starts ``jinji up`` as a person runs it (its own embedded PostgreSQL in a temp dir, or a
scratch database on JINJI_TEST_DATABASE_URL's server), provisions ``--tenants`` tenants through
tenant-admin, and runs ``--workers`` clients per tenant (an ``httpx.AsyncClient`` each, as the
tenant's admin) for ``--seconds``, each picking its next operation at random (seeded):
password logins, dashboard reads, dataset lists, employees uploads (each a month of its own),
user creation, dashboard access rules and the tenant's own settings. Every request carries an
``X-Request-ID`` of its own. Then:

- no request was answered 5xx, none failed to connect, and none got an unexpected status;
- every action's audit event is in the audit log exactly once, read back through the audit
  API as each tenant's admin (own stream) and matched by action, target id and request id;
- every accepted upload is readable: listed by ``GET /ingestion/v1/datasets`` with its version
  and rows, and reflected by analytics (the headcount of its month is its row count).

Prints a JSON summary (per operation: count, rate, p50/p95/p99, statuses); exits 1 when a
check fails.

    .venv/bin/python bench/load.py --seconds 60 --tenants 3 --workers 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _support
import httpx

# Operation → weight. Reads dominate, as in a customer's day; every write is audited.
MIX = {
    "login": 8,
    "dashboard": 40,
    "datasets": 12,
    "upload": 10,
    "create_user": 10,
    "access_rule": 12,
    "tenant_setting": 8,
}
ACCESS_RULES = (["tenant_admin", "group_viewer"], ["tenant_admin", "group_viewer", "viewer"])
RULE_BOARDS = ("workforce", "turnover", "working_hours")
# Analytics reads months up to 120 at a time; uploads take one month each from here on.
FIRST_MONTH = (2011, 1)
OUTBOX_SOURCES = ("identity", "tenant_admin", "ingestion", "analytics")


@dataclass
class Expected:
    """An audit event an action must have left: action, target id, request id."""

    action: str
    target: str
    request_id: str


@dataclass
class Upload:
    period: str
    rows: int
    version: int


@dataclass
class TenantLoad:
    tenant: _support.Tenant
    boards: list[str]
    expected: list[Expected] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    months: int = 0
    users: int = 0

    def next_month(self) -> str:
        year, month = FIRST_MONTH
        index = month - 1 + self.months
        self.months += 1
        return f"{year + index // 12}-{index % 12 + 1:02d}"


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    transport_errors: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)

    def add(self, op: str, seconds: float, status: int) -> None:
        self.latencies.setdefault(op, []).append(seconds)
        self.statuses.setdefault(op, Counter())[status] += 1


async def worker(
    up: _support.Up, load: TenantLoad, tally: Tally, seed: int, deadline: float
) -> None:
    rng = random.Random(seed)
    ops, weights = list(MIX), list(MIX.values())
    tenant = load.tenant
    async with httpx.AsyncClient(base_url=up.base, timeout=120) as client:
        token_at = 0.0
        headers: dict[str, str] = {}
        while time.monotonic() < deadline:
            # A token lasts 5 minutes: a worker signs in again well before.
            op = "login" if time.monotonic() - token_at > 200 else rng.choices(ops, weights)[0]
            rid = f"load-{uuid.uuid4().hex}"
            call = {**headers, "X-Request-ID": rid}
            started = time.perf_counter()
            try:
                status, expected = await _do(op, client, call, load, rng)
            except httpx.TransportError as error:
                tally.transport_errors[f"{op}: {type(error).__name__}"] += 1
                continue
            tally.add(op, time.perf_counter() - started, status)
            if isinstance(expected, str):  # a login: its access token
                headers = {"Authorization": f"Bearer {expected}"}
                token_at = time.monotonic()
                expected = Expected(
                    "identity.login.succeeded", _support.claims(expected)["sid"], rid
                )
            if status not in (200, 201):
                tally.unexpected.append(f"{op} {tenant.slug}: {status}")
            elif expected is not None:
                expected.request_id = rid
                load.expected.append(expected)


async def _do(
    op: str, client: httpx.AsyncClient, headers: dict[str, str], load: TenantLoad, rng: Any
) -> tuple[int, Any]:
    """One operation; its status and what it leaves (an Expected event, or a login's token)."""
    tenant = load.tenant
    if op == "login":
        r = await client.post(
            "/identity/v1/login",
            headers=headers,
            json={"tenant": tenant.slug, "username": "admin", "password": tenant.admin_password},
        )
        return r.status_code, r.json()["access_token"] if r.status_code == 200 else None
    if op == "dashboard":
        key = rng.choice(load.boards)
        r = await client.get(f"/analytics/v1/dashboards/{key}", headers=headers)
        return r.status_code, Expected("analytics.dashboard.viewed", key, "")
    if op == "datasets":
        r = await client.get("/ingestion/v1/datasets", headers=headers)
        return r.status_code, None
    if op == "upload":
        period = load.next_month()
        rows = rng.randint(20, 80)
        content = _support.employees_csv(
            rows, seed=rng.randint(0, 10**9), companies=("HQ", "SALES")
        )
        r = await client.post(
            "/ingestion/v1/uploads",
            headers=headers,
            files={"file": (f"employees-{period}.csv", content)},
            data={"kind": "employees", "as_of": period},
        )
        if r.status_code != 201:
            return r.status_code, None
        body = r.json()
        load.uploads.append(Upload(period, rows, body["dataset"]["version"]))
        return r.status_code, Expected("ingestion.upload.accepted", body["upload_id"], "")
    if op == "create_user":
        load.users += 1
        r = await client.post(
            "/identity/v1/users",
            headers=headers,
            json={
                "username": f"u{load.users}-{uuid.uuid4().hex[:6]}",
                "roles": [rng.choice(["viewer", "group_viewer", "data_updater"])],
                "companies": [],
            },
        )
        if r.status_code != 201:
            return r.status_code, None
        return r.status_code, Expected("identity.user.created", r.json()["id"], "")
    if op == "access_rule":
        key = rng.choice(RULE_BOARDS)
        r = await client.put(
            f"/analytics/v1/dashboards/{key}/access",
            headers=headers,
            json={"roles": rng.choice(ACCESS_RULES), "users": []},
        )
        return r.status_code, Expected("analytics.dashboard_access.changed", key, "")
    if op == "tenant_setting":
        r = await client.patch(
            f"/tenants/v1/tenants/{tenant.id}",
            headers=headers,
            json={"min_group_size": rng.randint(3, 10)},
        )
        return r.status_code, Expected("tenants.tenant.updated", tenant.id, "")
    raise ValueError(op)


# --- afterwards ------------------------------------------------------------------------------


def audit_events(http: httpx.Client, headers: dict[str, str], stream: str, since: str) -> list[Any]:
    """Every event of the tenant's stream since ``since``, read as its admin, page by page."""
    found: list[Any] = []
    cursor = None
    while True:
        params = {"stream": stream, "since": since, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/audit/v1/events", headers=headers, params=params)
        page.raise_for_status()
        body = page.json()
        found += body["events"]
        cursor = body["next_cursor"]
        if not cursor:
            return found


def check_audit(events: list[Any], expected: list[Expected]) -> dict[str, Any]:
    ours = {e.request_id for e in expected}
    seen = Counter(
        (e["action"], (e.get("target") or {}).get("id"), e.get("request_id"))
        for e in events
        if e.get("request_id") in ours
    )
    wanted = Counter((e.action, e.target, e.request_id) for e in expected)
    missing = [k for k in wanted if seen[k] < wanted[k]]
    doubled = [k for k in wanted if seen[k] > wanted[k]]
    unexpected = [k for k in seen if k not in wanted]
    return {
        "expected": sum(wanted.values()),
        "found_once": sum(1 for k in wanted if seen[k] == wanted[k]),
        "missing": len(missing),
        "doubled": len(doubled),
        "unexpected": len(unexpected),
        "examples": [list(k) for k in (missing + doubled + unexpected)[:5]],
    }


def check_uploads(http: httpx.Client, headers: dict[str, str], load: TenantLoad) -> dict[str, Any]:
    listed = {
        (d["kind"], d["period"]): d
        for d in http.get("/ingestion/v1/datasets", headers=headers)
        .raise_for_status()
        .json()["datasets"]
    }
    readable = [
        u
        for u in load.uploads
        if (d := listed.get(("employees", u.period))) is not None
        and d["version"] == u.version
        and d["rows"] == u.rows
    ]
    periods = sorted(u.period for u in load.uploads)
    headcount: dict[str, Any] = {}
    for start in range(0, len(periods), 120):
        chunk = periods[start : start + 120]
        series = (
            http.get(
                "/analytics/v1/metrics/headcount",
                headers=headers,
                params={"from": chunk[0], "to": chunk[-1]},
            )
            .raise_for_status()
            .json()["series"]
        )
        headcount |= {
            s["period"]: s["value"]
            for s in series
            if s["company"] is None and s.get("group") is None
        }
    reflected = [u for u in load.uploads if headcount.get(u.period) == u.rows]
    return {
        "accepted": len(load.uploads),
        "listed": len(readable),
        "reflected_in_analytics": len(reflected),
        "examples": [
            {
                "period": u.period,
                "rows": u.rows,
                "listed": listed.get(("employees", u.period)),
                "headcount": headcount.get(u.period),
            }
            for u in load.uploads
            if u not in readable or u not in reflected
        ][:3],
    }


def main(work: Path, seconds: float, tenants: int, workers: int, seed: int) -> dict[str, Any]:
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    with _support.jinji_up(work) as up, httpx.Client(base_url=up.base, timeout=120) as http:
        operator = _support.operator_token(http, up.identity, up.one_time_password)
        loads = []
        for _ in range(tenants):
            tenant = _support.provision_tenant(
                http, up.base, operator, {"HQ": "本社", "SALES": "販売"}, seats=100_000
            )
            boards = http.get("/analytics/v1/dashboards", headers=tenant.admin).json()
            loads.append(TenantLoad(tenant, [b["key"] for b in boards["dashboards"]]))
        tally = Tally()
        started = time.monotonic()

        async def run() -> None:
            deadline = time.monotonic() + seconds
            await asyncio.gather(
                *(
                    worker(up, load, tally, seed * 1000 + t * 100 + w, deadline)
                    for t, load in enumerate(loads)
                    for w in range(workers)
                )
            )

        asyncio.run(run())
        elapsed = time.monotonic() - started

        # Every producer's relay has delivered (or analytics has recomputed), then read back.
        wait_started = time.monotonic()
        _support.wait_outbox_drained(up.base, OUTBOX_SOURCES, timeout_s=180)
        delivery_s = time.monotonic() - wait_started
        audit: dict[str, Any] = {"expected": 0, "found_once": 0, "missing": 0, "doubled": 0}
        audit |= {"unexpected": 0, "examples": []}
        uploads: dict[str, Any] = {"accepted": 0, "listed": 0, "reflected_in_analytics": 0}
        uploads["examples"] = []
        for load in loads:
            tenant = load.tenant
            admin = {
                "Authorization": "Bearer "
                + http.post(
                    "/identity/v1/login",
                    json={
                        "tenant": tenant.slug,
                        "username": "admin",
                        "password": tenant.admin_password,
                    },
                )
                .raise_for_status()
                .json()["access_token"]
            }
            found = check_audit(audit_events(http, admin, tenant.id, since), load.expected)
            for key in ("expected", "found_once", "missing", "doubled", "unexpected"):
                audit[key] += found[key]
            audit["examples"] += found["examples"]
            read = check_uploads(http, admin, load)
            for key in ("accepted", "listed", "reflected_in_analytics"):
                uploads[key] += read[key]
            uploads["examples"] += read["examples"]
        audit["delivery_wait_s"] = round(delivery_s, 1)

    per_op = {
        op: {
            "count": len(lat),
            "per_s": round(len(lat) / elapsed, 1),
            **_support.percentiles_ms(lat),
            "statuses": {str(k): v for k, v in sorted(tally.statuses[op].items())},
        }
        for op, lat in sorted(tally.latencies.items())
    }
    server_errors = sum(
        n for counts in tally.statuses.values() for status, n in counts.items() if status >= 500
    )
    checks = {
        "no_5xx": server_errors == 0,
        "no_transport_errors": not tally.transport_errors,
        "no_unexpected_status": not tally.unexpected,
        "every_audit_event_once": audit["found_once"] == audit["expected"]
        and audit["unexpected"] == 0,
        "every_upload_listed": uploads["listed"] == uploads["accepted"],
        "every_upload_in_analytics": uploads["reflected_in_analytics"] == uploads["accepted"],
    }
    return {
        "benchmark": "load",
        "seconds": round(elapsed, 1),
        "tenants": tenants,
        "workers_per_tenant": workers,
        "requests": sum(len(lat) for lat in tally.latencies.values()),
        "requests_per_s": round(sum(len(lat) for lat in tally.latencies.values()) / elapsed, 1),
        "operations": per_op,
        "server_errors": server_errors,
        "transport_errors": dict(tally.transport_errors),
        "unexpected_statuses": tally.unexpected[:10],
        "audit": audit,
        "uploads": uploads,
        "checks": checks,
        "ok": all(checks.values()),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="clients per tenant")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jinji-load-"))
    try:
        result = main(work, args.seconds, args.tenants, args.workers, args.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, ensure_ascii=False))
    sys.exit(0 if result["ok"] else 1)
