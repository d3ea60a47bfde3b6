"""The console's static files behind the gateway: the app at "/", hashed assets cached for
good, client routes answered with index.html on page navigations only, nothing outside the
build ever served, the services' paths untouched, and a strict CSP on every answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.console import CONTENT_SECURITY_POLICY, Console
from services.gateway import Gateway

INDEX = '<!doctype html><div id="root"></div><script type="module" src="/assets/app-1a2b.js">'
NAVIGATION = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    build = tmp_path / "dist"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text(INDEX)
    (build / "assets" / "app-1a2b.js").write_text("console.log(1)")
    (build / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("not for the web")
    return build


def service() -> FastAPI:
    app = FastAPI()

    @app.get("/identity/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
async def client(dist: Path):
    gateway = Gateway({"/identity": service()}, console=Console(dist))
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://jinji.test") as http:
        yield http


async def test_the_app_is_served_at_the_root_with_a_strict_csp(client: httpx.AsyncClient) -> None:
    index = await client.get("/")
    assert index.status_code == 200
    assert index.text == INDEX
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert index.headers["x-frame-options"] == "DENY"
    assert index.headers["x-content-type-options"] == "nosniff"
    # A new build must reach browsers at once: index.html is revalidated every time.
    assert index.headers["cache-control"] == "no-cache"


async def test_hashed_assets_are_cached_for_good_other_files_revalidated(
    client: httpx.AsyncClient,
) -> None:
    script = await client.get("/assets/app-1a2b.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    icon = await client.get("/favicon.svg")
    assert icon.headers["cache-control"] == "no-cache"
    assert (await client.head("/favicon.svg")).status_code == 200


async def test_a_reload_on_a_client_route_gets_the_app(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboards/overview", headers=NAVIGATION)
    assert page.status_code == 200
    assert page.text == INDEX


async def test_other_requests_for_missing_files_get_the_404_envelope(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/assets/gone-9f8e.js", "/payroll/healthz"):
        missing = await client.get(path)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert missing.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_nothing_outside_the_build_is_served(client: httpx.AsyncClient) -> None:
    for path in ("/../secret.txt", "/assets/..%2F..%2Fsecret.txt", "/%2e%2e/secret.txt"):
        answer = await client.get(path)
        assert "not for the web" not in answer.text
    # Even a page navigation gets the app, never the file.
    answer = await client.get("/assets/..%2F..%2Fsecret.txt", headers=NAVIGATION)
    assert answer.text == INDEX


async def test_only_reads_are_answered(client: httpx.AsyncClient) -> None:
    posted = await client.post("/dashboards/overview", headers=NAVIGATION)
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET, HEAD"


async def test_the_services_keep_their_paths(client: httpx.AsyncClient) -> None:
    health = await client.get("/identity/healthz", headers=NAVIGATION)
    assert health.json() == {"status": "ok"}
    unknown = await client.get("/identity/nothing-here", headers=NAVIGATION)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/json")


async def test_health_for_the_probes_of_its_own_deployment(dist: Path) -> None:
    transport = httpx.ASGITransport(app=Console(dist))
    async with httpx.AsyncClient(transport=transport, base_url="http://jinji.test") as http:
        health = await http.get("/healthz")
        assert health.json() == {"status": "ok", "service": "console"}
        assert (await http.get("/", headers=NAVIGATION)).text == INDEX


def test_no_console_without_a_build(tmp_path: Path) -> None:
    assert Console.if_built(tmp_path / "dist") is None


async def test_without_a_build_the_root_lists_the_services() -> None:
    gateway = Gateway({"/identity": service()})
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://jinji.test") as http:
        assert (await http.get("/")).json() == {"services": ["/identity"]}
