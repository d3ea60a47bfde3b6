"""SCIM 2.0 provisioning over real HTTP: SCIM tokens, discovery, users (seats, filter,
disable ends sessions, delete), tenant boundaries, SCIM's media type and error format."""

from __future__ import annotations

import json

from sqlalchemy import select

from jinji import outbox

SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def scim_headers(token: str) -> dict[str, str]:
    return {**bearer(token), "Content-Type": SCIM, "Accept": SCIM}


def sign_in(http, stack, slug: str, username: str, password: str | None = None) -> dict:
    response = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": username, "password": password or stack.password},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def admin_of(stack, http, *, seats: int | None = 50) -> tuple[str, dict[str, str]]:
    slug = await stack.tenant(seats=seats)
    await stack.user(slug, "admin", roles=("tenant_admin",))
    return slug, bearer(sign_in(http, stack, slug, "admin")["access_token"])


def issue(http, stack, admin: dict[str, str]) -> dict:
    response = http.post(stack.url("/v1/scim-tokens"), headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def new_user(http, stack, token: str, user_name: str, **extra: object):
    body = {"schemas": [USER], "userName": user_name, **extra}
    return http.post(
        stack.url("/scim/v2/Users"), headers=scim_headers(token), content=json.dumps(body)
    )


def patch(http, stack, token: str, user_id: str, *operations: dict):
    body = {"schemas": [PATCH], "Operations": list(operations)}
    return http.patch(
        stack.url(f"/scim/v2/Users/{user_id}"),
        headers=scim_headers(token),
        content=json.dumps(body),
    )


def assert_scim_error(response, status: int, scim_type: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == SCIM
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body["detail"]
    assert body.get("scimType") == scim_type
    return body


async def test_scim_tokens_are_issued_listed_and_revoked(stack, http) -> None:
    _, admin = await admin_of(stack, http)
    issued = issue(http, stack, admin)
    assert issued["token"].startswith("jscim_")
    assert set(issued) == {"id", "token", "created_at"}
    users_url = stack.url("/scim/v2/Users")
    assert http.get(users_url, headers=bearer(issued["token"])).status_code == 200

    listed = http.get(stack.url("/v1/scim-tokens"), headers=admin)
    assert listed.status_code == 200
    [entry] = listed.json()["tokens"]
    assert entry["id"] == issued["id"]
    assert entry["revoked"] is False
    assert issued["token"] not in listed.text

    revoke_url = stack.url(f"/v1/scim-tokens/{issued['id']}")
    assert http.delete(revoke_url, headers=admin).status_code == 204
    assert http.delete(revoke_url, headers=admin).status_code == 204  # idempotent
    [entry] = http.get(stack.url("/v1/scim-tokens"), headers=admin).json()["tokens"]
    assert entry["revoked"] is True
    refused = http.get(users_url, headers=bearer(issued["token"]))
    assert_scim_error(refused, 401)
    assert refused.headers["www-authenticate"].startswith("Bearer")

    unknown = http.delete(
        stack.url("/v1/scim-tokens/00000000-0000-4000-8000-000000000000"), headers=admin
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"

    async with stack.db.transaction() as s:
        rows = (
            await s.execute(
                select(outbox.messages.c.payload).where(
                    outbox.messages.c.source == "identity",
                    outbox.messages.c.destination == "audit",
                )
            )
        ).scalars()
        actions = [
            e["action"] for e in rows if e["target"] == {"type": "scim_token", "id": issued["id"]}
        ]
    assert sorted(actions) == ["identity.scim_token.created", "identity.scim_token.revoked"]


async def test_only_tenant_admins_manage_scim_tokens(stack, http) -> None:
    slug, admin = await admin_of(stack, http)
    issued = issue(http, stack, admin)
    await stack.user(slug, "viewer1")
    viewer = bearer(sign_in(http, stack, slug, "viewer1")["access_token"])
    assert http.post(stack.url("/v1/scim-tokens"), headers=viewer).status_code == 403
    assert http.get(stack.url("/v1/scim-tokens"), headers=viewer).status_code == 403
    revoke = http.delete(stack.url(f"/v1/scim-tokens/{issued['id']}"), headers=viewer)
    assert revoke.status_code == 403
    # A SCIM token is not an access token either.
    assert (
        http.get(stack.url("/v1/scim-tokens"), headers=bearer(issued["token"])).status_code == 401
    )
    # Another tenant's admin cannot see or revoke it.
    _, other_admin = await admin_of(stack, http)
    assert http.get(stack.url("/v1/scim-tokens"), headers=other_admin).json()["tokens"] == []
    revoke = http.delete(stack.url(f"/v1/scim-tokens/{issued['id']}"), headers=other_admin)
    assert revoke.status_code == 404


async def test_access_tokens_and_junk_are_refused_on_scim(stack, http) -> None:
    _, admin = await admin_of(stack, http)
    url = stack.url("/scim/v2/Users")
    assert_scim_error(http.get(url, headers=admin), 401)
    assert_scim_error(http.get(url), 401)
    assert_scim_error(http.get(url, headers=bearer("jscim_not-a-real-token")), 401)
    assert_scim_error(http.get(url, headers={"Authorization": "Basic YWRtaW46YWRtaW4="}), 401)
    created = http.post(url, headers={**admin, "Content-Type": SCIM}, json={"userName": "x"})
    assert_scim_error(created, 401)
    assert_scim_error(http.get(stack.url("/scim/v2/ServiceProviderConfig"), headers=admin), 401)


async def test_discovery_endpoints(stack, http) -> None:
    _, admin = await admin_of(stack, http)
    token = issue(http, stack, admin)["token"]
    spc = http.get(stack.url("/scim/v2/ServiceProviderConfig"), headers=bearer(token))
    assert spc.status_code == 200
    assert spc.headers["content-type"] == SCIM
    config = spc.json()
    assert config["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert config["patch"] == {"supported": True}
    assert config["filter"] == {"supported": True, "maxResults": 200}
    for feature in ("bulk", "sort", "etag", "changePassword"):
        assert config[feature]["supported"] is False
    assert [s["type"] for s in config["authenticationSchemes"]] == ["oauthbearertoken"]

    schemas = http.get(stack.url("/scim/v2/Schemas"), headers=bearer(token)).json()
    assert schemas["schemas"] == [LIST]
    [user_schema] = schemas["Resources"]
    assert user_schema["id"] == USER
    attributes = {a["name"]: a for a in user_schema["attributes"]}
    assert attributes["userName"]["required"] is True
    assert attributes["userName"]["uniqueness"] == "server"
    assert attributes["active"]["type"] == "boolean"
    one = http.get(stack.url(f"/scim/v2/Schemas/{USER}"), headers=bearer(token))
    assert one.json()["id"] == USER
    assert_scim_error(http.get(stack.url("/scim/v2/Schemas/urn:x"), headers=bearer(token)), 404)

    types = http.get(stack.url("/scim/v2/ResourceTypes"), headers=bearer(token)).json()
    [user_type] = types["Resources"]
    assert user_type["endpoint"] == "/Users"
    assert user_type["schema"] == USER
    assert http.get(stack.url("/scim/v2/ResourceTypes/User"), headers=bearer(token)).json() == (
        user_type
    )


async def test_provisioned_users_are_viewers_and_count_against_seats(stack, http) -> None:
    _, admin = await admin_of(stack, http, seats=2)
    token = issue(http, stack, admin)["token"]
    created = new_user(
        http,
        stack,
        token,
        "Sato.Hiroshi@Example.com",
        name={"givenName": "Hiroshi", "familyName": "Sato"},
        emails=[{"value": "sato@example.com", "primary": True}],
    )
    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == SCIM
    body = created.json()
    assert body["schemas"] == [USER]
    assert body["userName"] == "sato.hiroshi@example.com"
    assert body["active"] is True
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["created"]
    assert body["meta"]["location"].endswith(f"/identity/scim/v2/Users/{body['id']}")
    assert created.headers["location"] == body["meta"]["location"]
    # No password of any kind, and nothing Jinji does not keep.
    assert "password" not in created.text.lower()
    assert "Hiroshi" not in created.text

    listed = http.get(stack.url("/v1/users"), headers=admin).json()["users"]
    [provisioned] = [u for u in listed if u["id"] == body["id"]]
    assert provisioned["roles"] == ["viewer"]
    assert provisioned["companies"] == []
    assert provisioned["must_change_password"] is True

    fetched = http.get(stack.url(f"/scim/v2/Users/{body['id']}"), headers=bearer(token))
    assert fetched.status_code == 200
    assert fetched.json() == body

    full = new_user(http, stack, token, "suzuki@example.com")
    detail = assert_scim_error(full, 409)["detail"]
    assert "seats" in detail.lower()


async def test_create_user_errors(stack, http) -> None:
    _, admin = await admin_of(stack, http)
    token = issue(http, stack, admin)["token"]
    assert new_user(http, stack, token, "ito").status_code == 201
    assert_scim_error(new_user(http, stack, token, "ITO"), 409, "uniqueness")
    assert_scim_error(new_user(http, stack, token, "has space"), 400, "invalidValue")
    assert_scim_error(new_user(http, stack, token, ""), 400, "invalidValue")
    missing = http.post(
        stack.url("/scim/v2/Users"),
        headers=scim_headers(token),
        content=json.dumps({"schemas": [USER]}),
    )
    assert_scim_error(missing, 400, "invalidValue")
    broken = http.post(stack.url("/scim/v2/Users"), headers=scim_headers(token), content=b"{nope")
    assert_scim_error(broken, 400, "invalidSyntax")
    wrong_schema = http.post(
        stack.url("/scim/v2/Users"),
        headers=scim_headers(token),
        content=json.dumps({"schemas": ["urn:x"], "userName": "abe"}),
    )
    assert_scim_error(wrong_schema, 400, "invalidSyntax")
    # A directory may provision a user disabled.
    disabled = new_user(http, stack, token, "endo", active=False)
    assert disabled.status_code == 201
    assert disabled.json()["active"] is False


async def test_filter_by_username_and_paging(stack, http) -> None:
    _, admin = await admin_of(stack, http)
    token = issue(http, stack, admin)["token"]
    for name in ("kimura", "kondo", "kubo"):
        assert new_user(http, stack, token, name).status_code == 201
    url = stack.url("/scim/v2/Users")

    found = http.get(url, headers=bearer(token), params={"filter": 'userName eq "Kondo"'})
    assert found.status_code == 200
    assert found.headers["content-type"] == SCIM
    page = found.json()
    assert page["schemas"] == [LIST]
    assert page["totalResults"] == 1
    assert page["startIndex"] == 1
    assert page["itemsPerPage"] == 1
    assert [u["userName"] for u in page["Resources"]] == ["kondo"]
    # Attribute names and operators are case-insensitive; the value is a JSON string.
    again = http.get(url, headers=bearer(token), params={"filter": 'USERNAME EQ "kondo"'})
    assert again.json()["totalResults"] == 1
    none = http.get(url, headers=bearer(token), params={"filter": 'userName eq "nobody"'})
    assert none.json() == {
        "schemas": [LIST],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }
    for unsupported in ('userName sw "k"', 'emails.value eq "a@b"', "userName eq kondo", "x"):
        response = http.get(url, headers=bearer(token), params={"filter": unsupported})
        assert_scim_error(response, 400, "invalidFilter")

    everyone = http.get(url, headers=bearer(token)).json()
    assert everyone["totalResults"] == 4  # the admin too
    second = http.get(url, headers=bearer(token), params={"startIndex": 2, "count": 2}).json()
    assert second["totalResults"] == 4
    assert second["startIndex"] == 2
    assert [u["userName"] for u in second["Resources"]] == ["kimura", "kondo"]
    bad = http.get(url, headers=bearer(token), params={"count": "many"})
    assert_scim_error(bad, 400, "invalidValue")


async def test_disabling_through_scim_ends_sessions_and_can_be_undone(stack, http) -> None:
    slug, admin = await admin_of(stack, http)
    token = issue(http, stack, admin)["token"]
    user_id = str(await stack.user(slug, "kato"))
    session = sign_in(http, stack, slug, "kato")

    disabled = patch(
        http, stack, token, user_id, {"op": "replace", "path": "active", "value": False}
    )
    assert disabled.status_code == 200, disabled.text
    assert disabled.headers["content-type"] == SCIM
    assert disabled.json()["active"] is False
    refresh = {"grant_type": "refresh_token", "refresh_token": session["refresh_token"]}
    assert http.post(stack.url("/oauth2/token"), data=refresh).status_code == 400
    login = http.post(
        stack.url("/v1/login"),
        json={"tenant": slug, "username": "kato", "password": stack.password},
    )
    assert login.status_code == 401

    # Entra ID's form: no path, capitalised op, attributes in the value.
    enabled = patch(http, stack, token, user_id, {"op": "Replace", "value": {"active": True}})
    assert enabled.json()["active"] is True
    assert sign_in(http, stack, slug, "kato")["token_type"] == "Bearer"
    # ...including booleans sent as strings, and attributes Jinji does not keep.
    quirky = patch(
        http,
        stack,
        token,
        user_id,
        {"op": "Add", "path": "displayName", "value": "Kato Ken"},
        {"op": "Replace", "value": {"active": "False", "name.givenName": "Ken"}},
    )
    assert quirky.status_code == 200
    assert quirky.json()["active"] is False

    rename = patch(http, stack, token, user_id, {"op": "replace", "path": "userName", "value": "x"})
    assert_scim_error(rename, 400, "mutability")
    same_name = patch(
        http, stack, token, user_id, {"op": "replace", "path": "userName", "value": "KATO"}
    )
    assert same_name.status_code == 200
    assert_scim_error(
        patch(http, stack, token, user_id, {"op": "move", "path": "active"}), 400, "invalidSyntax"
    )
    assert_scim_error(patch(http, stack, token, user_id, {"op": "remove"}), 400, "noTarget")
    bad_value = patch(http, stack, token, user_id, {"op": "replace", "path": "active", "value": 3})
    assert_scim_error(bad_value, 400, "invalidValue")


async def test_scim_cannot_remove_the_last_admin(stack, http) -> None:
    _, admin = await admin_of(stack, http)
    token = issue(http, stack, admin)["token"]
    listed = http.get(
        stack.url("/scim/v2/Users"), headers=bearer(token), params={"filter": 'userName eq "admin"'}
    )
    [admin_user] = listed.json()["Resources"]
    off = patch(
        http, stack, token, admin_user["id"], {"op": "replace", "path": "active", "value": False}
    )
    assert_scim_error(off, 409, "mutability")
    gone = http.delete(stack.url(f"/scim/v2/Users/{admin_user['id']}"), headers=bearer(token))
    assert_scim_error(gone, 409, "mutability")


async def test_delete_user(stack, http) -> None:
    _, admin = await admin_of(stack, http)
    token = issue(http, stack, admin)["token"]
    user_id = new_user(http, stack, token, "nakamura").json()["id"]
    url = stack.url(f"/scim/v2/Users/{user_id}")
    deleted = http.delete(url, headers=bearer(token))
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_scim_error(http.get(url, headers=bearer(token)), 404)
    assert_scim_error(http.delete(url, headers=bearer(token)), 404)
    assert_scim_error(http.get(stack.url("/scim/v2/Users/not-a-uuid"), headers=bearer(token)), 404)
    assert all(
        u["id"] != user_id for u in http.get(stack.url("/v1/users"), headers=admin).json()["users"]
    )


async def test_a_scim_token_of_tenant_a_cannot_touch_users_of_tenant_b(stack, http) -> None:
    _, admin_a = await admin_of(stack, http)
    slug_b = await stack.tenant()
    victim = str(await stack.user(slug_b, "victim"))
    token_a = issue(http, stack, admin_a)["token"]
    url = stack.url(f"/scim/v2/Users/{victim}")
    assert_scim_error(http.get(url, headers=bearer(token_a)), 404)
    off = patch(http, stack, token_a, victim, {"op": "replace", "path": "active", "value": False})
    assert_scim_error(off, 404)
    assert_scim_error(http.delete(url, headers=bearer(token_a)), 404)
    search = http.get(
        stack.url("/scim/v2/Users"),
        headers=bearer(token_a),
        params={"filter": 'userName eq "victim"'},
    )
    assert search.json()["totalResults"] == 0
    # The victim is untouched.
    assert sign_in(http, stack, slug_b, "victim")["token_type"] == "Bearer"
