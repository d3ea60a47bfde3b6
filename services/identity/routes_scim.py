"""SCIM 2.0 for enterprise provisioning (``/scim/v2``) and the SCIM tokens tenant
administrators issue for it (``/v1/scim-tokens``).

SCIM routes authenticate with SCIM tokens only (never access tokens) and answer in SCIM's
media type and error format; the token routes are ordinary admin API routes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, ClassVar, TypeVar

from fastapi import Body, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from jinji.errors import ApiError
from jinji.tokens import Principal, bearer_token, require_roles
from jinji.web import SCIM_SCHEME, AccessRoute, service_router
from services.identity import scim, users
from services.identity.context import Identity, IdentityDep
from services.identity.routes_auth import client_ip
from services.identity.routes_users import Username
from services.registry import SPECS

router = service_router(SPECS["identity"])
TenantAdmin = Annotated[Principal, Depends(require_roles("tenant_admin"))]

SCIM_PATH = "/scim/v2"
_USERNAME = TypeAdapter(Username)


class ScimResponse(JSONResponse):
    media_type = scim.MEDIA_TYPE


def _scim_error(error: scim.ScimError) -> Response:
    return ScimResponse(
        scim.error_body(error.status, error.detail, error.scim_type),
        status_code=error.status,
        headers=error.headers or None,
    )


class ScimRoute(AccessRoute):
    """Answers every error of a SCIM route, its dependencies and request parsing included,
    in SCIM's format (RFC 7644 §3.12) instead of the service's error envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handle(request)
            except ApiError as exc:
                return _scim_error(scim.as_scim_error(exc))
            except RequestValidationError as exc:
                syntax = any(e.get("type") == "json_invalid" for e in exc.errors())
                detail = "The body is not valid JSON." if syntax else "The request is not valid."
                return _scim_error(
                    scim.ScimError(400, detail, "invalidSyntax" if syntax else "invalidValue")
                )
            except StarletteHTTPException as exc:
                return _scim_error(scim.ScimError(exc.status_code, str(exc.detail)))

        return scim_handler


Endpoint = TypeVar("Endpoint", bound=Callable[..., Coroutine[Any, Any, Any]])


def _scim_route(
    method: str, path: str, *, status_code: int = 200
) -> Callable[[Endpoint], Endpoint]:
    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            SCIM_PATH + path,
            endpoint,
            methods=[method],
            status_code=status_code,
            tags=["scim"],
            response_class=ScimResponse,
            route_class_override=ScimRoute,
        )
        return endpoint

    return register


class _ScimClientGate:
    """The tenant's provisioning client, by its SCIM bearer token (not a JWT)."""

    openapi_security: ClassVar[list[dict[str, list[str]]]] = [{SCIM_SCHEME: []}]

    async def __call__(self, request: Request, ctx: IdentityDep) -> scim.ScimClient:
        token = bearer_token(request)
        if token is None:
            raise scim.unauthorized()
        return await scim.authenticate(ctx, token)


ScimClientDep = Annotated[scim.ScimClient, Depends(_ScimClientGate())]


def _base_url(ctx: Identity) -> str:
    return f"{ctx.settings.issuer}{SCIM_PATH}"


# --------------------------------------------------------------------------- tokens


def _tenant(principal: Principal) -> uuid.UUID:
    # The tenant comes from the administrator's token, never from the request.
    assert principal.tenant_id is not None
    return uuid.UUID(principal.tenant_id)


@router.post("/v1/scim-tokens", status_code=201, tags=["scim"])
async def create_scim_token(
    principal: TenantAdmin, ctx: IdentityDep, request: Request
) -> dict[str, str]:
    issued = await scim.issue_token(
        ctx,
        tenant_id=_tenant(principal),
        created_by=uuid.UUID(principal.subject),
        actor=("user", principal.subject),
        source_ip=client_ip(request),
    )
    return {
        "id": str(issued.id),
        "token": issued.token,
        "created_at": issued.created_at.isoformat(),
    }


@router.get("/v1/scim-tokens", tags=["scim"])
async def list_scim_tokens(principal: TenantAdmin, ctx: IdentityDep) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        return {"tokens": await scim.list_tokens(s, _tenant(principal))}


@router.delete("/v1/scim-tokens/{token_id}", status_code=204, tags=["scim"])
async def revoke_scim_token(
    token_id: uuid.UUID, principal: TenantAdmin, ctx: IdentityDep, request: Request
) -> Response:
    await scim.revoke_token(
        ctx,
        tenant_id=_tenant(principal),
        token_id=token_id,
        actor=("user", principal.subject),
        source_ip=client_ip(request),
    )
    return Response(status_code=204)


# --------------------------------------------------------------------------- discovery


@_scim_route("GET", "/ServiceProviderConfig")
async def service_provider_config(_: ScimClientDep, ctx: IdentityDep) -> dict[str, Any]:
    return scim.service_provider_config(_base_url(ctx))


@_scim_route("GET", "/Schemas")
async def list_schemas(_: ScimClientDep, ctx: IdentityDep) -> dict[str, Any]:
    return scim.list_response([scim.user_schema(_base_url(ctx))], total=1, start_index=1)


@_scim_route("GET", "/Schemas/{schema_id}")
async def get_schema(schema_id: str, _: ScimClientDep, ctx: IdentityDep) -> dict[str, Any]:
    if schema_id != scim.USER_SCHEMA:
        raise scim.ScimError(404, "No such schema.")
    return scim.user_schema(_base_url(ctx))


@_scim_route("GET", "/ResourceTypes")
async def list_resource_types(_: ScimClientDep, ctx: IdentityDep) -> dict[str, Any]:
    return scim.list_response([scim.user_resource_type(_base_url(ctx))], total=1, start_index=1)


@_scim_route("GET", "/ResourceTypes/{name}")
async def get_resource_type(name: str, _: ScimClientDep, ctx: IdentityDep) -> dict[str, Any]:
    if name != "User":
        raise scim.ScimError(404, "No such resource type.")
    return scim.user_resource_type(_base_url(ctx))


# --------------------------------------------------------------------------- users


def _valid_username(value: str) -> str:
    try:
        return _USERNAME.validate_python(value)
    except ValidationError:
        raise scim.ScimError(
            400,
            '"userName" must be 1-64 characters of letters, digits and . _ @ -',
            "invalidValue",
        ) from None


async def _describe(ctx: Identity, tenant_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.db.transaction() as s:
        return users.describe(await users.get_user(s, tenant_id, user_id))


@_scim_route("POST", "/Users", status_code=201)
async def create_user(
    body: Annotated[dict[str, Any], Body()],
    client: ScimClientDep,
    ctx: IdentityDep,
    request: Request,
) -> Response:
    wanted = scim.parse_new_user(body)
    new = await users.create_user(
        ctx,
        tenant_id=client.tenant_id,
        username=_valid_username(wanted.user_name),
        roles=scim.PROVISIONED_ROLES,
        companies=(),
        actor=client.actor,
        source_ip=client_ip(request),
    )
    # The one-time password is not returned: provisioned users sign in through their
    # directory's SSO, or get a password from a tenant administrator's reset.
    if wanted.active:
        user = await _describe(ctx, client.tenant_id, new.id)
    else:
        user = await users.update_user(
            ctx,
            tenant_id=client.tenant_id,
            user_id=new.id,
            active=False,
            actor=client.actor,
            source_ip=client_ip(request),
        )
    resource = scim.user_resource(user, _base_url(ctx))
    return ScimResponse(
        resource, status_code=201, headers={"Location": resource["meta"]["location"]}
    )


@_scim_route("GET", "/Users")
async def list_users(client: ScimClientDep, ctx: IdentityDep, request: Request) -> dict[str, Any]:
    query = request.query_params
    start, count = scim.paging(query.get("startIndex"), query.get("count"))
    expression = query.get("filter")
    username = scim.parse_filter(expression) if expression is not None else None
    async with ctx.db.transaction() as s:
        rows, total = await users.list_users(
            s, client.tenant_id, username=username, limit=count, offset=start - 1
        )
    base = _base_url(ctx)
    return scim.list_response(
        [scim.user_resource(users.describe(r), base) for r in rows],
        total=total,
        start_index=start,
    )


@_scim_route("GET", "/Users/{user_id}")
async def get_user(user_id: str, client: ScimClientDep, ctx: IdentityDep) -> dict[str, Any]:
    user = await _describe(ctx, client.tenant_id, scim.parse_user_id(user_id))
    return scim.user_resource(user, _base_url(ctx))


@_scim_route("PATCH", "/Users/{user_id}")
async def patch_user(
    user_id: str,
    body: Annotated[dict[str, Any], Body()],
    client: ScimClientDep,
    ctx: IdentityDep,
    request: Request,
) -> dict[str, Any]:
    patch = scim.parse_patch(body)
    uid = scim.parse_user_id(user_id)
    user = await _describe(ctx, client.tenant_id, uid)
    if patch.user_name is not None and (
        users.normalise_username(patch.user_name) != user["username"]
    ):
        raise scim.ScimError(400, '"userName" cannot be changed.', "mutability")
    # Directories repeat their state on every sync; only a change is applied (and audited).
    if patch.active is not None and patch.active != user["active"]:
        user = await users.update_user(
            ctx,
            tenant_id=client.tenant_id,
            user_id=uid,
            active=patch.active,
            actor=client.actor,
            source_ip=client_ip(request),
        )
    return scim.user_resource(user, _base_url(ctx))


@_scim_route("DELETE", "/Users/{user_id}", status_code=204)
async def delete_user(
    user_id: str, client: ScimClientDep, ctx: IdentityDep, request: Request
) -> Response:
    await users.delete_user(
        ctx,
        tenant_id=client.tenant_id,
        user_id=scim.parse_user_id(user_id),
        actor=client.actor,
        source_ip=client_ip(request),
    )
    return Response(status_code=204)
