"""Self-service MFA, one-time password and session limits, audit events without personal
data, and identity's metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from jinji import outbox
from services.identity.tables import sessions, users


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(http, stack, slug: str, username: str, password: str | None = None):
    return http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": username, "password": password or stack.password},
    )


async def test_self_service_totp_enrol_then_required_then_removed(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "ueda")
    auth = bearer(sign_in(http, stack, slug, "ueda").json()["access_token"])
    setup = http.post(stack.url("/v1/me/mfa/totp"), headers=auth).json()
    wrong = http.post(stack.url("/v1/me/mfa/totp/confirm"), headers=auth, json={"code": "123456"})
    assert wrong.status_code == 401
    confirmed = http.post(
        stack.url("/v1/me/mfa/totp/confirm"),
        headers=auth,
        json={"code": stack.code(setup["secret"])},
    )
    assert confirmed.status_code == 200, confirmed.text
    assert len(confirmed.json()["recovery_codes"]) == 10
    assert sign_in(http, stack, slug, "ueda").json()["challenge"] == "mfa"

    # Removing it takes the password and a fresh code (the confirmed one is spent).
    spent = http.request(
        "DELETE",
        stack.url("/v1/me/mfa/totp"),
        headers=auth,
        json={"password": stack.password, "code": stack.code(setup["secret"])},
    )
    assert spent.status_code == 401
    removed = http.request(
        "DELETE",
        stack.url("/v1/me/mfa/totp"),
        headers=auth,
        json={"password": stack.password, "code": stack.code(setup["secret"], offset_steps=1)},
    )
    assert removed.status_code == 204, removed.text
    assert "access_token" in sign_in(http, stack, slug, "ueda").json()


async def test_expired_one_time_password_is_refused(stack, http) -> None:
    slug = await stack.tenant()
    user_id = await stack.user(slug, "okada", must_change=True)
    async with stack.db.transaction() as s:
        await s.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(one_time_password_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    response = sign_in(http, stack, slug, "okada")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


async def test_idle_session_cannot_be_refreshed(stack, http) -> None:
    slug = await stack.tenant()
    user_id = await stack.user(slug, "fujita")
    tokens = sign_in(http, stack, slug, "fujita").json()
    async with stack.db.transaction() as s:
        await s.execute(
            update(sessions)
            .where(sessions.c.user_id == user_id)
            .values(idle_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert http.post(stack.url("/oauth2/token"), data=refresh).status_code == 400


async def test_audit_events_carry_ids_and_reasons_but_no_personal_data(stack, http) -> None:
    slug = await stack.tenant()
    user_id = await stack.user(slug, "tsuda-hanako")
    sign_in(http, stack, slug, "tsuda-hanako", "a wrong password here")
    sign_in(http, stack, slug, "tsuda-hanako")
    async with stack.db.transaction() as s:
        rows = (
            await s.execute(
                select(outbox.messages.c.payload).where(
                    outbox.messages.c.source == "identity",
                    outbox.messages.c.destination == "audit",
                )
            )
        ).scalars()
        events = [e for e in rows if e["actor"]["id"] == str(user_id)]
    actions = {(e["action"], e["outcome"]) for e in events}
    assert ("identity.login.failed", "failure") in actions
    assert ("identity.login.succeeded", "success") in actions
    failed = next(e for e in events if e["action"] == "identity.login.failed")
    assert failed["details"] == {"reason": "wrong_password"}
    text = json.dumps(events)
    assert "tsuda" not in text
    assert stack.password not in text
    assert "a wrong password here" not in text


async def test_identity_metrics(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "metrics-user")
    sign_in(http, stack, slug, "metrics-user")
    sign_in(http, stack, slug, "metrics-user", "wrong wrong wrong")
    body = http.get(f"{stack.base}/metrics").text
    assert 'jinji_identity_logins_total{result="success"}' in body
    assert 'jinji_identity_logins_total{result="failure"}' in body
    assert 'jinji_identity_tokens_issued_total{grant="login"}' in body
    assert "jinji_identity_password_hash_seconds_count" in body


async def test_housekeeping_counts_active_sessions_and_clears_spent_rows(stack, http) -> None:
    from services.identity import housekeeping
    from services.identity.context import LazyIdentity
    from services.identity.tables import challenges

    slug = await stack.tenant(mfa_required=True)
    await stack.user(slug, "kimura")
    pending = sign_in(http, stack, slug, "kimura").json()
    assert pending["challenge"] == "mfa_enrollment"
    async with stack.db.transaction() as s:
        await s.execute(
            update(challenges).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    ctx = await LazyIdentity(stack.settings, stack.db, _envelope(stack)).get()
    result = await housekeeping.run_once(ctx)
    assert result["challenges_removed"] >= 1
    plain = await stack.tenant()
    await stack.user(plain, "kimura2")
    assert "access_token" in sign_in(http, stack, plain, "kimura2").json()
    after_login = await housekeeping.run_once(ctx)
    assert after_login["active_sessions"] == result["active_sessions"] + 1
    async with stack.db.transaction() as s:
        left = (await s.execute(select(challenges.c.id))).all()
    assert left == []
    assert "jinji_identity_active_sessions" in http.get(f"{stack.base}/metrics").text


def _envelope(stack):
    from jinji.runtime import make_envelope

    return make_envelope(stack.settings, stack.db)
