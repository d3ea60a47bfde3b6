"""Tenant administrators manage users: seats, roles, the last admin, tenant boundaries."""

from __future__ import annotations


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(http, stack, slug: str, username: str, password: str | None = None) -> dict:
    response = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": username, "password": password or stack.password},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_create_user_with_one_time_password_that_must_be_changed(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "admin", roles=("tenant_admin",))
    admin = bearer(sign_in(http, stack, slug, "admin")["access_token"])
    created = http.post(
        stack.url("/v1/users"),
        headers=admin,
        json={"username": "Hayashi", "roles": ["viewer"], "companies": ["C01", "C02"]},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["username"] == "hayashi"
    assert body["companies"] == ["C01", "C02"]
    first = sign_in(http, stack, slug, "hayashi", body["one_time_password"])
    assert first["challenge"] == "password_change"
    listed = http.get(stack.url("/v1/users"), headers=admin).json()
    assert {u["username"] for u in listed["users"]} == {"admin", "hayashi"}

    duplicate = http.post(
        stack.url("/v1/users"), headers=admin, json={"username": "hayashi", "roles": ["viewer"]}
    )
    assert duplicate.status_code == 409
    bad_role = http.post(
        stack.url("/v1/users"), headers=admin, json={"username": "x1", "roles": ["operator"]}
    )
    assert bad_role.status_code == 422
    assert bad_role.json()["error"]["code"] == "unknown_role"


async def test_seat_limit_is_enforced(stack, http) -> None:
    slug = await stack.tenant(seats=2)
    await stack.user(slug, "admin", roles=("tenant_admin",))
    admin = bearer(sign_in(http, stack, slug, "admin")["access_token"])
    ok = http.post(
        stack.url("/v1/users"), headers=admin, json={"username": "u1", "roles": ["viewer"]}
    )
    assert ok.status_code == 201
    full = http.post(
        stack.url("/v1/users"), headers=admin, json={"username": "u2", "roles": ["viewer"]}
    )
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "seat_limit_reached"
    # Disabling a user frees a seat.
    user_id = ok.json()["id"]
    assert (
        http.patch(stack.url(f"/v1/users/{user_id}"), headers=admin, json={"active": False})
    ).status_code == 200
    again = http.post(
        stack.url("/v1/users"), headers=admin, json={"username": "u2", "roles": ["viewer"]}
    )
    assert again.status_code == 201
    # ...and re-enabling one needs a free seat.
    back = http.patch(stack.url(f"/v1/users/{user_id}"), headers=admin, json={"active": True})
    assert back.status_code == 409


async def test_last_admin_cannot_be_removed_or_demoted(stack, http) -> None:
    slug = await stack.tenant()
    admin_id = await stack.user(slug, "admin", roles=("tenant_admin",))
    admin = bearer(sign_in(http, stack, slug, "admin")["access_token"])
    url = stack.url(f"/v1/users/{admin_id}")
    demote = http.patch(url, headers=admin, json={"roles": ["viewer"]})
    assert demote.status_code == 409
    assert demote.json()["error"]["code"] == "last_admin"
    assert http.patch(url, headers=admin, json={"active": False}).status_code == 409
    assert http.delete(url, headers=admin).status_code == 409
    # With a second admin, the first may step down.
    second = http.post(
        stack.url("/v1/users"),
        headers=admin,
        json={"username": "admin2", "roles": ["tenant_admin"]},
    )
    assert second.status_code == 201
    assert http.patch(url, headers=admin, json={"roles": ["viewer"]}).status_code == 200


async def test_disabling_a_user_ends_its_sessions_at_once(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "admin", roles=("tenant_admin",))
    user_id = await stack.user(slug, "yoshida")
    admin = bearer(sign_in(http, stack, slug, "admin")["access_token"])
    session = sign_in(http, stack, slug, "yoshida")
    http.patch(stack.url(f"/v1/users/{user_id}"), headers=admin, json={"active": False})
    refresh = {"grant_type": "refresh_token", "refresh_token": session["refresh_token"]}
    assert http.post(stack.url("/oauth2/token"), data=refresh).status_code == 400
    login = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "yoshida", "password": stack.password},
    )
    assert login.status_code == 401


async def test_reset_gives_a_new_one_time_password_and_clears_mfa(stack, http) -> None:
    slug = await stack.tenant()
    await stack.user(slug, "admin", roles=("tenant_admin",))
    user_id = await stack.user(slug, "mori")
    admin = bearer(sign_in(http, stack, slug, "admin")["access_token"])
    reset = http.post(stack.url(f"/v1/users/{user_id}/reset"), headers=admin)
    assert reset.status_code == 200
    assert sign_in(http, stack, slug, "mori", reset.json()["one_time_password"])["challenge"] == (
        "password_change"
    )
    old = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "mori", "password": stack.password},
    )
    assert old.status_code == 401


async def test_an_admin_of_tenant_a_cannot_manage_users_of_tenant_b(stack, http) -> None:
    slug_a, slug_b = await stack.tenant(), await stack.tenant()
    await stack.user(slug_a, "admin", roles=("tenant_admin",))
    victim = await stack.user(slug_b, "victim")
    admin_a = bearer(sign_in(http, stack, slug_a, "admin")["access_token"])
    for response in (
        http.get(stack.url(f"/v1/users/{victim}"), headers=admin_a),
        http.patch(stack.url(f"/v1/users/{victim}"), headers=admin_a, json={"active": False}),
        http.delete(stack.url(f"/v1/users/{victim}"), headers=admin_a),
        http.post(stack.url(f"/v1/users/{victim}/reset"), headers=admin_a),
    ):
        assert response.status_code == 404
    assert sign_in(http, stack, slug_b, "victim")["token_type"] == "Bearer"
    # Viewers are not administrators.
    viewer = bearer(sign_in(http, stack, slug_b, "victim")["access_token"])
    assert http.get(stack.url("/v1/users"), headers=viewer).status_code == 403
