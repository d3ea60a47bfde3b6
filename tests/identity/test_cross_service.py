"""Another service accepts identity's tokens, fetched and checked over real HTTP, and
rejects forged ones."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import ECKey

from jinji.service import build_service
from jinji.tokens import CurrentPrincipal
from jinji.web import service_router
from services.analytics.settings import AnalyticsSettings
from services.registry import SPECS


def analytics_probe(database_url: str, issuer: str, jwks_url: str):
    router = service_router(SPECS["analytics"])

    @router.get("/v1/probe/whoami")
    async def whoami(principal: CurrentPrincipal) -> dict[str, object]:
        return {"sub": principal.subject, "roles": sorted(principal.roles)}

    settings = AnalyticsSettings(database_url=database_url, issuer=issuer, jwks_url=jwks_url)
    return build_service(SPECS["analytics"], settings, routers=[router])


async def test_analytics_accepts_identity_tokens_and_rejects_forged_ones(
    stack, http, live_server
) -> None:
    slug = await stack.tenant()
    user_id = await stack.user(slug, "watanabe", roles=("group_viewer",))
    tokens = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "watanabe", "password": stack.password},
    ).json()
    jwks_url = stack.url("/.well-known/jwks.json")
    # The probe shares the stack's database: it serves a user only while the tenant is active.
    url = stack.settings.database_url.get_secret_value()
    app = analytics_probe(url, stack.settings.issuer, jwks_url)

    # Same claims, signed by a key identity never published.
    forger = ECKey.generate_key("P-256", {"kid": "forged"})
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "ES256", "kid": "forged"},
        {
            "iss": stack.settings.issuer,
            "aud": ["jinji-analytics"],
            "sub": str(user_id),
            "tid": "x",
            "jti": "j",
            "iat": now,
            "exp": now + 300,
            "roles": ["tenant_admin"],
        },
        forger,
    )
    with live_server(app) as base:
        url = f"{base}/analytics/v1/probe/whoami"
        genuine = http.get(url, headers={"Authorization": f"Bearer {tokens['access_token']}"})
        fake = http.get(url, headers={"Authorization": f"Bearer {forged}"})
    assert genuine.status_code == 200, genuine.text
    assert genuine.json() == {"sub": str(user_id), "roles": ["group_viewer"]}
    assert fake.status_code == 401
