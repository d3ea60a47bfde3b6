"""Logging in over HTTP against real PostgreSQL: each step, tokens, refresh, enumeration."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, update

from services.identity.tables import throttle
from services.identity.throttle import account_key


def login(http: httpx.Client, stack, slug: str, username: str, password: str, **extra):
    body = {"tenant": slug, "username": username, "password": password, **extra}
    return http.post(stack.url("/v1/login"), json=body)


def answer(http: httpx.Client, stack, token: str, **fields):
    return http.post(stack.url("/v1/login/challenge"), json={"challenge_token": token, **fields})


async def test_first_operator_login_changes_password_then_enrols_totp(stack, http) -> None:
    first = stack.first_login
    assert (stack.settings.data_dir / "initial-operator.json").exists()

    step = login(http, stack, first.tenant, first.username, first.one_time_password).json()
    assert step["challenge"] == "password_change"

    weak = answer(http, stack, step["challenge_token"], new_password="password1234")
    assert weak.status_code == 422
    assert weak.json()["error"]["details"]["reason"] == "common"

    step = answer(http, stack, step["challenge_token"], new_password="a long platform passphrase")
    assert step.status_code == 200, step.text
    step = step.json()
    # Operators always need a second factor.
    assert step["challenge"] == "mfa_enrollment"
    assert not (stack.settings.data_dir / "initial-operator.json").exists()

    setup = http.post(
        stack.url("/v1/login/challenge/totp"), json={"challenge_token": step["challenge_token"]}
    ).json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/")
    assert setup["qr_svg"].startswith("<svg")

    wrong = answer(http, stack, step["challenge_token"], code="000000")
    assert wrong.status_code == 401
    done = answer(http, stack, step["challenge_token"], code=stack.code(setup["secret"]))
    assert done.status_code == 200, done.text
    tokens = done.json()
    assert tokens["token_type"] == "Bearer"
    assert len(tokens["recovery_codes"]) == 10
    me = http.get(
        stack.url("/v1/me"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["roles"] == ["operator"]
    assert me.json()["mfa_enabled"] is True
    assert set(me.json()["amr"]) == {"pwd", "otp", "mfa"}

    # The challenge was used up.
    again = answer(http, stack, step["challenge_token"], code=stack.code(setup["secret"]))
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "invalid_challenge"


async def test_wrong_tenant_user_or_password_are_indistinguishable(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "suzuki")
    answers = [
        login(http, stack, slug, "suzuki", "not the password at all"),
        login(http, stack, slug, "nobody-here", stack.password),
        login(http, stack, "no-such-tenant", "suzuki", stack.password),
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.text for r in answers}) == 1
    assert answers[0].json()["error"]["code"] == "invalid_credentials"


async def test_plain_login_refresh_rotation_and_reuse_kills_the_session(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "tanaka")
    tokens = login(http, stack, slug, "tanaka", stack.password).json()
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}

    first = tokens["refresh_token"]
    rotated = http.post(
        stack.url("/oauth2/token"), data={"grant_type": "refresh_token", "refresh_token": first}
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    assert second != first

    # The old token again: taken as theft, the whole session ends.
    reused = http.post(
        stack.url("/oauth2/token"), data={"grant_type": "refresh_token", "refresh_token": first}
    )
    assert reused.status_code == 400
    assert reused.json()["error"]["code"] == "invalid_grant"
    after = http.post(
        stack.url("/oauth2/token"), data={"grant_type": "refresh_token", "refresh_token": second}
    )
    assert after.status_code == 400
    me = http.get(
        stack.url("/v1/me"),
        headers={"Authorization": f"Bearer {rotated.json()['access_token']}"},
    )
    assert me.status_code == 401


async def test_browser_gets_refresh_token_only_as_strict_httponly_cookie(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "kato")
    response = login(http, stack, slug, "kato", stack.password, client="browser")
    assert "refresh_token" not in response.json()
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/identity/oauth2/token" in cookie
    refreshed = http.post(stack.url("/oauth2/token"), data={"grant_type": "refresh_token"})
    assert refreshed.status_code == 200, refreshed.text
    assert "refresh_token" not in refreshed.json()
    assert "jinji_refresh=" in refreshed.headers["set-cookie"]


async def test_totp_code_cannot_be_replayed_and_recovery_code_works_once(stack, http) -> None:
    slug = await stack.tenant(mfa_required=True)
    await stack.user(slug, "ito")
    step = login(http, stack, slug, "ito", stack.password).json()
    assert step["challenge"] == "mfa_enrollment"
    setup = http.post(
        stack.url("/v1/login/challenge/totp"), json={"challenge_token": step["challenge_token"]}
    ).json()
    code = stack.code(setup["secret"])
    enrolled = answer(http, stack, step["challenge_token"], code=code).json()
    recovery = enrolled["recovery_codes"]

    # The code used for enrolment cannot log in again (same time step).
    step = login(http, stack, slug, "ito", stack.password).json()
    assert step["challenge"] == "mfa"
    replay = answer(http, stack, step["challenge_token"], code=code)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "invalid_code"

    ok = answer(http, stack, step["challenge_token"], recovery_code=recovery[0].upper())
    assert ok.status_code == 200, ok.text
    step = login(http, stack, slug, "ito", stack.password).json()
    used = answer(http, stack, step["challenge_token"], recovery_code=recovery[0])
    assert used.status_code == 401


async def test_repeated_failures_lock_the_account_with_retry_after(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "sato")
    for _ in range(5):
        assert login(http, stack, slug, "sato", "wrong password!!").status_code == 401
    locked = login(http, stack, slug, "sato", "wrong password!!")
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    # Even the right password is refused while the lock lasts.
    assert login(http, stack, slug, "sato", stack.password).status_code == 429

    # When the block has run out, the right password works again.
    async with stack.db.transaction() as s:
        await s.execute(
            update(throttle)
            .where(throttle.c.key == account_key(slug, "sato"))
            .values(blocked_until=func.now() - timedelta(seconds=1))
        )
    assert login(http, stack, slug, "sato", stack.password).status_code == 200


async def test_password_change_ends_other_sessions(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "nakamura")
    laptop = login(http, stack, slug, "nakamura", stack.password).json()
    phone = login(http, stack, slug, "nakamura", stack.password).json()
    changed = http.post(
        stack.url("/v1/me/password"),
        headers={"Authorization": f"Bearer {laptop['access_token']}"},
        json={"current_password": stack.password, "new_password": "another long passphrase"},
    )
    assert changed.status_code == 204, changed.text
    refresh = {"grant_type": "refresh_token", "refresh_token": phone["refresh_token"]}
    assert http.post(stack.url("/oauth2/token"), data=refresh).status_code == 400
    refresh["refresh_token"] = laptop["refresh_token"]
    assert http.post(stack.url("/oauth2/token"), data=refresh).status_code == 200


async def test_logout_ends_the_session(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "kobayashi")
    tokens = login(http, stack, slug, "kobayashi", stack.password).json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert http.get(stack.url("/v1/me/sessions"), headers=auth).json()["sessions"][0]["current"]
    assert http.post(stack.url("/v1/logout"), headers=auth).status_code == 204
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert http.post(stack.url("/oauth2/token"), data=refresh).status_code == 400


async def test_discovery_and_jwks(stack, http) -> None:
    config = http.get(stack.url("/.well-known/openid-configuration")).json()
    assert config["issuer"] == stack.settings.issuer
    keys = http.get(stack.url("/.well-known/jwks.json")).json()["keys"]
    assert keys
    assert all(k["kty"] == "EC" and k["alg"] == "ES256" and "d" not in k for k in keys)


async def test_revoking_a_refresh_token_ends_its_session(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "hasegawa")
    tokens = login(http, stack, slug, "hasegawa", stack.password).json()
    revoked = http.post(stack.url("/oauth2/revoke"), data={"token": tokens["refresh_token"]})
    assert revoked.status_code == 200
    # RFC 7009: an unknown token gets the same answer.
    assert http.post(stack.url("/oauth2/revoke"), data={"token": "jrt_unknown"}).status_code == 200
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert http.post(stack.url("/oauth2/token"), data=refresh).status_code == 400


async def test_knowing_the_password_does_not_reset_code_guessing(stack, http) -> None:
    slug = await stack.tenant(mfa_required=True)
    await stack.user(slug, "ogawa")
    step = login(http, stack, slug, "ogawa", stack.password).json()
    setup = http.post(
        stack.url("/v1/login/challenge/totp"), json={"challenge_token": step["challenge_token"]}
    ).json()
    answer(http, stack, step["challenge_token"], code=stack.code(setup["secret"]))

    statuses = []
    for _ in range(3):
        # Each round: the right password again, then wrong codes.
        step = login(http, stack, slug, "ogawa", stack.password).json()
        for guess in ("111111", "222222"):
            statuses.append(answer(http, stack, step["challenge_token"], code=guess).status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
