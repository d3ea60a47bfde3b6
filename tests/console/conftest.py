"""The web console in a real browser: the gateway as `jinji up` runs it (five services and the
built console on one loopback origin, a bootstrapped scratch database) and Debian's Chromium
driven by Playwright, headless, with no browser of Playwright's own."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from pydantic import SecretStr

from jinji import tenancy
from jinji.config import REPO_ROOT
from jinji.db import Database
from services import bootstrap
from services.analytics.app import create_app as create_analytics
from services.analytics.settings import AnalyticsSettings
from services.audit_log.app import create_app as create_audit_log
from services.audit_log.settings import AuditLogSettings
from services.console import Console
from services.gateway import Gateway
from services.identity.app import create_app as create_identity
from services.identity.settings import IdentitySettings
from services.ingestion.app import create_app as create_ingestion
from services.ingestion.settings import IngestionSettings
from services.tenant_admin.app import create_app as create_tenant_admin
from services.tenant_admin.settings import TenantAdminSettings
from tests.conftest import Stack

CHROMIUM = Path("/usr/bin/chromium")
WEB_DIST = REPO_ROOT / "web" / "dist"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "console"
# Without the background-networking switches Chromium keeps calling home, which a closed
# network refuses; --no-sandbox because the tests may run as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every page records the CSP violations and uncaught errors it meets; the tests expect none.
PAGE_PROBE = (
    "window.__cspViolations = []; window.__errors = [];"
    "document.addEventListener('securitypolicyviolation',"
    " (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    "window.addEventListener('error', (e) => window.__errors.push(String(e.message)));"
    "window.addEventListener('unhandledrejection', (e) => window.__errors.push(String(e.reason)));"
)


# Waits for what a page shows: long enough for a first analytics computation on 2 cores.
expect.set_options(timeout=15_000)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
async def gateway(
    scratch_database, live_server, tmp_path_factory, tenant_roles: list[str]
) -> AsyncIterator[Stack]:
    """All five services and the console behind the gateway on one origin, as `jinji up`."""
    assert (WEB_DIST / "index.html").is_file(), "build the console first: make test does"
    data_dir: Path = tmp_path_factory.mktemp("console-data")
    base = f"http://127.0.0.1:{_free_port()}"
    common: dict[str, Any] = {"data_dir": data_dir, "issuer": f"{base}/identity"}
    async with scratch_database() as url:
        common["database_url"] = SecretStr(url)
        first = await bootstrap.run(IdentitySettings(**common))
        assert first is not None
        clients = json.loads((data_dir / bootstrap.SERVICE_CLIENTS_FILE).read_text())
        # Identity's refresh cookie stays Secure: Chromium treats loopback as a secure origin.
        identity = IdentitySettings(**common)
        tenant_admin = TenantAdminSettings(
            **common,
            identity_client_secret=SecretStr(clients["tenant-admin"]),
            lifecycle_interval_s=3600,
        )
        audit = AuditLogSettings(**common)
        apps = {
            "/identity": create_identity(identity),
            "/tenants": create_tenant_admin(tenant_admin),
            "/ingestion": create_ingestion(
                IngestionSettings(**common, ingestion_client_secret=SecretStr(clients["ingestion"]))
            ),
            "/analytics": create_analytics(
                AnalyticsSettings(
                    **common,
                    analytics_client_secret=SecretStr(clients["analytics"]),
                    tenant_settings_ttl_s=0,
                )
            ),
            "/audit": create_audit_log(audit),
        }
        db = Database(url, pool_size=2)
        port = int(base.rsplit(":", 1)[1])
        try:
            with live_server(Gateway(apps, console=Console(WEB_DIST)), port=port) as served:
                assert served == base
                yield Stack(identity, db, base, first, base, tenant_admin, base, audit, base, base)
        finally:
            async with db.engine.connect() as conn:
                tenant_roles.extend(await tenancy.list_tenant_schemas(conn))
            await db.dispose()


@pytest.fixture(scope="module")
def chromium() -> Path:
    assert CHROMIUM.exists(), "Debian's chromium is missing: make test installs it"
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Screenshots of each main screen, kept after the run (test-artifacts/, not in git)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


async def new_page(browser: Browser) -> tuple[BrowserContext, Page]:
    """A fresh browser profile (its own cookies and storage), Japanese and in Japan time."""
    context = await browser.new_context(
        locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1400, "height": 1000}
    )
    context.set_default_timeout(15_000)
    await context.add_init_script(PAGE_PROBE)
    return context, await context.new_page()


@dataclass
class Totp:
    """One user's authenticator: a fresh code for a later time step each time, since a step
    once accepted is never accepted again (waits for the next step when it must)."""

    secret: str
    last_step: int = field(default=-1)

    def next_code(self) -> str:
        while True:
            now = int(time.time() // 30)
            step = max(now, self.last_step + 1)
            if step <= now + 1:  # identity accepts one step either side of its clock
                self.last_step = step
                return str(pyotp.TOTP(self.secret).at(step * 30))
            time.sleep(1)
