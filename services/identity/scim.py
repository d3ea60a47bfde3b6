"""SCIM 2.0 provisioning (RFC 7643, RFC 7644) for enterprise directories (Entra ID, Okta).

A tenant administrator issues SCIM tokens; a directory holding one creates, finds, disables
and deletes the tenant's users. User changes go through :mod:`services.identity.users`, so
seats, the last administrator and session revocation apply exactly as in the admin API.

Jinji keeps no personal data about a user beyond the username: names, e-mail addresses and
the other attributes a directory sends are accepted and ignored. Roles and company scope are
not provisioned; SCIM-created users are viewers until a tenant administrator says otherwise.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jinji.errors import ApiError
from services.identity import audit, users
from services.identity.context import Identity
from services.identity.secrets_util import new_token, token_hash
from services.identity.tables import scim_tokens, tenants

MEDIA_TYPE = "application/scim+json"
SCIM_PREFIX = "jscim"
_MAX_TOKEN_CHARS = 256

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

MAX_RESULTS = 200
DEFAULT_COUNT = 100
# The roles a provisioned user starts with: tenant administrators grant anything more.
PROVISIONED_ROLES = ("viewer",)


# --------------------------------------------------------------------------- errors


class ScimError(ApiError):
    """An error answered in SCIM's format (RFC 7644 §3.12). It is an :class:`ApiError` so
    that, should one escape a SCIM route, the service still answers with its status."""

    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, scim_type or "scim_error", detail, headers=headers)
        self.scim_type = scim_type
        self.detail = detail


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type is not None:
        body["scimType"] = scim_type
    return body


def as_scim_error(exc: ApiError) -> ScimError:
    """The SCIM form of an error raised by the users domain or the web layer."""
    if isinstance(exc, ScimError):
        return exc
    if isinstance(exc, users.UsernameTaken):
        return ScimError(409, exc.message, "uniqueness")
    if isinstance(exc, users.SeatLimitReached):
        # RFC 7644 has no scimType for a licence limit; "tooMany" means a too-large result.
        seats = exc.details.get("seats")
        return ScimError(409, f"{exc.message} Contracted seats: {seats}.")
    if isinstance(exc, users.LastAdmin):
        return ScimError(409, exc.message, "mutability")
    if exc.status in (400, 422):
        return ScimError(400, exc.message, "invalidValue")
    return ScimError(exc.status, exc.message, headers=exc.headers or None)


def unauthorized(detail: str = "A valid SCIM bearer token is required.") -> ScimError:
    return ScimError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="scim"'})


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class ScimClient:
    """The directory calling: which SCIM token, hence which tenant."""

    token_id: uuid.UUID
    tenant_id: uuid.UUID

    @property
    def actor(self) -> tuple[str, str | None]:
        return ("scim", str(self.token_id))


@dataclass(frozen=True)
class IssuedToken:
    id: uuid.UUID
    token: str
    created_at: datetime


class TokenNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "not_found", "No such SCIM token in this tenant.")


async def issue_token(
    ctx: Identity,
    *,
    tenant_id: uuid.UUID,
    created_by: uuid.UUID,
    actor: tuple[str, str | None],
    source_ip: str | None = None,
) -> IssuedToken:
    """A new SCIM token, returned once; only its SHA-256 is stored."""
    token = new_token(SCIM_PREFIX)
    token_id = uuid.uuid4()
    async with ctx.db.transaction() as s:
        created_at = await s.scalar(
            insert(scim_tokens)
            .values(
                id=token_id,
                tenant_id=tenant_id,
                token_hash=token_hash(token),
                created_by=created_by,
            )
            .returning(scim_tokens.c.created_at)
        )
        await audit.record(
            s,
            "scim_token.created",
            actor=actor,
            tenant_id=tenant_id,
            target=("scim_token", str(token_id)),
            source_ip=source_ip,
        )
    assert created_at is not None
    return IssuedToken(token_id, token, created_at)


async def list_tokens(s: AsyncSession, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await s.execute(
        select(
            scim_tokens.c.id,
            scim_tokens.c.created_by,
            scim_tokens.c.created_at,
            scim_tokens.c.revoked_at,
        )
        .where(scim_tokens.c.tenant_id == tenant_id)
        .order_by(scim_tokens.c.created_at.desc(), scim_tokens.c.id)
    )
    return [
        {
            "id": str(r.id),
            "created_by": str(r.created_by),
            "created_at": r.created_at.isoformat(),
            "revoked": r.revoked_at is not None,
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in rows
    ]


async def revoke_token(
    ctx: Identity,
    *,
    tenant_id: uuid.UUID,
    token_id: uuid.UUID,
    actor: tuple[str, str | None],
    source_ip: str | None = None,
) -> None:
    """Revokes at once: the next request with the token is refused. Revoking twice is a
    no-op (and records nothing the second time)."""
    async with ctx.db.transaction() as s:
        revoked = await s.scalar(
            update(scim_tokens)
            .where(
                scim_tokens.c.id == token_id,
                scim_tokens.c.tenant_id == tenant_id,
                scim_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=ctx.now())
            .returning(scim_tokens.c.id)
        )
        if revoked is None:
            exists = await s.scalar(
                select(scim_tokens.c.id).where(
                    scim_tokens.c.id == token_id, scim_tokens.c.tenant_id == tenant_id
                )
            )
            if exists is None:
                raise TokenNotFound()
            return
        await audit.record(
            s,
            "scim_token.revoked",
            actor=actor,
            tenant_id=tenant_id,
            target=("scim_token", str(token_id)),
            source_ip=source_ip,
        )


async def authenticate(ctx: Identity, token: str) -> ScimClient:
    """The client a SCIM bearer token belongs to; anything but a live SCIM token of an
    active tenant is refused (access tokens included: they are never SCIM tokens)."""
    if not token.startswith(f"{SCIM_PREFIX}_") or len(token) > _MAX_TOKEN_CHARS:
        raise unauthorized()
    async with ctx.db.transaction() as s:
        row = (
            await s.execute(
                select(scim_tokens.c.id, scim_tokens.c.tenant_id, tenants.c.status)
                .join(tenants, tenants.c.id == scim_tokens.c.tenant_id)
                .where(
                    scim_tokens.c.token_hash == token_hash(token),
                    scim_tokens.c.revoked_at.is_(None),
                )
            )
        ).first()
    if row is None:
        raise unauthorized()
    if row.status != "active":
        raise ScimError(403, "The tenant is suspended.")
    return ScimClient(row.id, row.tenant_id)


# --------------------------------------------------------------------------- users


def user_resource(user: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """A SCIM User from :func:`services.identity.users.describe`'s output."""
    return {
        "schemas": [USER_SCHEMA],
        "id": user["id"],
        "userName": user["username"],
        "active": user["active"],
        "meta": {
            "resourceType": "User",
            "created": user["created_at"],
            "location": f"{base_url}/Users/{user['id']}",
        },
    }


def list_response(
    resources: list[dict[str, Any]], *, total: int, start_index: int
) -> dict[str, Any]:
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def parse_user_id(raw: str) -> uuid.UUID:
    """A resource id from a URL; anything that is not one of ours is simply not found."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ScimError(404, "No such user in this tenant.") from None


def _attr(doc: Mapping[str, Any], name: str) -> Any:
    """An attribute by name: SCIM attribute names are case-insensitive (RFC 7643 §2.1)."""
    wanted = name.lower()
    for key, value in doc.items():
        if key.lower() == wanted:
            return value
    return None


def _check_schemas(doc: Mapping[str, Any], schema: str) -> None:
    schemas = doc.get("schemas")
    if schemas is None:
        return
    if not isinstance(schemas, list) or schema not in schemas:
        raise ScimError(400, f'"schemas" must include "{schema}".', "invalidSyntax")


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    # Entra ID's non-compliant mode sends booleans as "True"/"False".
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ScimError(400, f'"{name}" must be a boolean.', "invalidValue")


@dataclass(frozen=True)
class UserIn:
    user_name: str
    active: bool


def parse_new_user(doc: Mapping[str, Any]) -> UserIn:
    """The attributes of a POSTed User that Jinji keeps: ``userName`` and ``active``."""
    _check_schemas(doc, USER_SCHEMA)
    user_name = _attr(doc, "userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise ScimError(400, '"userName" is required.', "invalidValue")
    active = _attr(doc, "active")
    return UserIn(user_name, True if active is None else _boolean(active, "active"))


@dataclass(frozen=True)
class UserPatch:
    active: bool | None = None
    # A userName the directory asserts; it must be the current one (usernames are immutable).
    user_name: str | None = None


_CORE_PREFIX = f"{USER_SCHEMA}:".lower()


def _core_name(path: str) -> str:
    name = path.strip().lower()
    return name.removeprefix(_CORE_PREFIX)


def parse_patch(doc: Mapping[str, Any]) -> UserPatch:
    """A PatchOp (RFC 7644 §3.5.2) reduced to what Jinji stores. Both the path form
    (``{"op": "replace", "path": "active", "value": false}``) and Entra ID's value form
    (``{"op": "Replace", "value": {"active": false}}``) are understood; attributes Jinji does
    not keep (names, e-mails, enterprise extension) are ignored."""
    _check_schemas(doc, PATCH_SCHEMA)
    operations = _attr(doc, "Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, '"Operations" must be a non-empty list.', "invalidSyntax")
    active: bool | None = None
    user_name: str | None = None

    def assign(name: str, value: Any) -> None:
        nonlocal active, user_name
        if name == "active":
            active = _boolean(value, "active")
        elif name == "username":
            if not isinstance(value, str):
                raise ScimError(400, '"userName" must be a string.', "invalidValue")
            user_name = value

    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimError(400, "Each operation must be an object.", "invalidSyntax")
        op = _attr(operation, "op")
        op = op.lower() if isinstance(op, str) else None
        if op not in ("add", "replace", "remove"):
            raise ScimError(400, '"op" must be "add", "replace" or "remove".', "invalidSyntax")
        path = _attr(operation, "path")
        if path is not None and not isinstance(path, str):
            raise ScimError(400, '"path" must be a string.', "invalidPath")
        value = _attr(operation, "value")
        if op == "remove":
            if path is None:
                raise ScimError(400, '"remove" needs a "path".', "noTarget")
            if _core_name(path) in ("active", "username"):
                raise ScimError(400, f'"{path}" cannot be removed.', "mutability")
            continue
        if path is not None:
            assign(_core_name(path), value)
        elif isinstance(value, dict):
            for key, item in value.items():
                assign(_core_name(key), item)
        else:
            raise ScimError(400, 'Without "path", "value" must be an object.', "invalidValue")
    return UserPatch(active=active, user_name=user_name)


_USERNAME_EQ = re.compile(
    rf"^\s*(?:{re.escape(USER_SCHEMA)}:)?userName\s+eq\s+(\"(?:[^\"\\]|\\.)*\")\s*$",
    re.IGNORECASE,
)


def parse_filter(expression: str) -> str:
    """The username in ``userName eq "..."``, the only filter supported."""
    match = _USERNAME_EQ.match(expression)
    if match is None:
        raise ScimError(400, 'Only the filter userName eq "..." is supported.', "invalidFilter")
    try:
        value = json.loads(match.group(1))
    except ValueError:
        raise ScimError(400, "The filter's value is not a valid string.", "invalidFilter") from None
    assert isinstance(value, str)
    return value


def _int(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ScimError(400, f'"{name}" must be an integer.', "invalidValue") from None


def paging(start_index: str | None, count: str | None) -> tuple[int, int]:
    """(startIndex, count) per RFC 7644 §3.4.2.4: below 1 means 1, negative means 0; the
    count is capped at the advertised maximum."""
    start = max(1, _int(start_index, "startIndex", 1))
    size = min(MAX_RESULTS, max(0, _int(count, "count", DEFAULT_COUNT)))
    return start, size


# --------------------------------------------------------------------------- discovery


def service_provider_config(base_url: str) -> dict[str, Any]:
    """RFC 7643 §5."""
    return {
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A SCIM token issued by a tenant administrator "
                "(POST /v1/scim-tokens), sent as Authorization: Bearer.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url}/ServiceProviderConfig",
        },
    }


def _string_attribute(
    name: str, description: str, *, required: bool, mutability: str, uniqueness: str
) -> dict[str, Any]:
    return {
        "name": name,
        "type": "string",
        "multiValued": False,
        "description": description,
        "required": required,
        "caseExact": False,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": uniqueness,
    }


def user_schema(base_url: str) -> dict[str, Any]:
    """RFC 7643 §7: the User attributes Jinji supports."""
    user_name = _string_attribute(
        "userName",
        "Unique identifier for the user within the tenant, used to sign in. Stored in "
        "lower case; it cannot be changed after creation.",
        required=True,
        mutability="immutable",
        uniqueness="server",
    )
    return {
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "User Account",
        "attributes": [
            user_name,
            {
                "name": "active",
                "type": "boolean",
                "multiValued": False,
                "description": "Whether the user may sign in. Disabling ends the user's "
                "sessions at once.",
                "required": False,
                "mutability": "readWrite",
                "returned": "default",
            },
        ],
        "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{USER_SCHEMA}"},
    }


def user_resource_type(base_url: str) -> dict[str, Any]:
    """RFC 7643 §6."""
    return {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_SCHEMA,
        "schemaExtensions": [],
        "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/User"},
    }
