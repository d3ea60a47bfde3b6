"""The app factory every service is built with.

It gives each service the same outer shell: ``/<prefix>/healthz``, ``/<prefix>/readyz``,
``/metrics``, OpenAPI at ``/<prefix>/openapi.json``, request ids, JSON access logs, RED
metrics, security headers and one error envelope. Services add only their routers and
dependencies; nothing in a service re-implements any of this.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy.exc
from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jinji import metrics, tokens
from jinji.errors import ApiError, envelope
from jinji.logs import request_id_var

log = logging.getLogger("jinji.web")
access_log = logging.getLogger("jinji.access")

ReadyCheck = Callable[[], Awaitable[None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
READY_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # metric label and log name, e.g. "tenant_admin"
    prefix: str  # public path prefix, e.g. "/tenants"
    title: str

    @property
    def audience(self) -> str:
        """The ``aud`` a token must carry to be accepted by this service."""
        return f"jinji-{self.name.replace('_', '-')}"


class ObservabilityMiddleware:
    """Request id, RED metrics by route template, access log and security headers.

    A plain ASGI middleware (not BaseHTTPMiddleware) so streaming bodies and background
    tasks are not buffered or broken.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming if incoming and _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        status = 500
        started_response = False
        start = time.perf_counter()
        in_flight = metrics.IN_FLIGHT.labels(self.service)
        in_flight.inc()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            # Handled here, inside the request's context, so the 500 carries the request id
            # and security headers like every other answer (Starlette's outermost error
            # middleware would answer outside this one).
            log.exception("unhandled error")
            if started_response:
                raise
            response = _error(500, "internal_error", "Internal error.", {"request_id": rid})
            await response(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            in_flight.dec()
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            metrics.REQUESTS.labels(self.service, method, route, str(status)).inc()
            metrics.LATENCY.labels(self.service, method, route).observe(elapsed)
            # Route template only: raw paths and query strings may carry identifiers.
            access_log.info(
                "request",
                extra={
                    "service": self.service,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _error(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(envelope(code, message, details), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.code, exc.message, exc.details, exc.headers)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # The offending input is left out on purpose: it may be a password or HR data.
        errors = [
            {"loc": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return _error(422, "validation_error", "The request is not valid.", {"errors": errors})

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return _error(exc.status_code, code, str(exc.detail), headers=headers)

    async def database_error(_: Request, exc: Exception) -> Response:
        log.warning("database unavailable", extra={"error": type(exc).__name__})
        return _error(
            503,
            "database_unavailable",
            "The database is not reachable; nothing was changed. Retry shortly.",
            headers={"Retry-After": "5"},
        )

    async def unstorable_text(_: Request, exc: Exception) -> Response:
        # Text PostgreSQL cannot store (a NUL character): the client's input, not our fault.
        # Anything else the database refused is a bug: on to the 500 handler.
        assert isinstance(exc, sqlalchemy.exc.DBAPIError)
        if getattr(exc.orig, "sqlstate", None) not in UNSTORABLE_TEXT_SQLSTATES:
            raise exc
        return _error(
            422, "invalid_text", "The request contains a character that cannot be stored."
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, unstorable_text)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for exc_type in DB_OUTAGE_ERRORS:
        app.add_exception_handler(exc_type, database_error)


# character_not_in_repertoire (a NUL in text), untranslatable_character.
UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})

# Raised when PostgreSQL is down, restarting or the pool cannot get a connection.
DB_OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    ConnectionError,
)


async def run_ready_checks(checks: dict[str, ReadyCheck]) -> dict[str, str]:
    async def one(check: ReadyCheck) -> str:
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await check()
        except Exception:  # any failure means "not ready"; the reason is logged, not returned
            log.warning("readiness check failed", exc_info=True)
            return "unavailable"
        return "ok"

    names = list(checks)
    results = await asyncio.gather(*(one(checks[n]) for n in names))
    return dict(zip(names, results, strict=True))


def create_app(
    spec: ServiceSpec,
    *,
    routers: Sequence[APIRouter] = (),
    lifespans: Iterable[Lifespan] = (),
    ready_checks: Callable[[FastAPI], dict[str, ReadyCheck]] = lambda app: {},
    version: str = "0.1.0",
) -> FastAPI:
    lifespan_list = list(lifespans)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for hook in lifespan_list:
                await stack.enter_async_context(hook(app))
            yield

    app = FastAPI(
        title=spec.title,
        version=version,
        openapi_url=f"{spec.prefix}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.spec = spec
    install_error_handlers(app)
    document_error_envelope(app)
    app.add_middleware(ObservabilityMiddleware, service=spec.name)

    @app.get(f"{spec.prefix}/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @app.get(f"{spec.prefix}/readyz", tags=["ops"], summary="Readiness (database and dependencies)")
    async def readyz() -> Response:
        results = await run_ready_checks(ready_checks(app))
        if all(v == "ok" for v in results.values()):
            return JSONResponse({"status": "ready", "service": spec.name, "checks": results})
        return _error(
            503,
            "not_ready",
            f"{spec.name} is not ready.",
            {"checks": results},
            headers={"Retry-After": "5"},
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    for router in routers:
        if router.prefix != spec.prefix:
            raise ValueError(
                f"{spec.name} routers must be made with service_router() (prefix {spec.prefix})"
            )
        app.include_router(router)
    return app


# The one error shape (jinji.errors.envelope), as OpenAPI documents it.
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


def document_error_envelope(app: FastAPI) -> None:
    """FastAPI documents its own shape for 422 (``{"detail": [...]}``); ours answers the error
    envelope (``install_error_handlers``): the OpenAPI says so."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        found = schema.get("components", {}).get("schemas", {})
        found.pop("HTTPValidationError", None)
        found.pop("ValidationError", None)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        envelope_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                invalid = operation.get("responses", {}).get("422")
                if invalid is not None:
                    invalid["content"] = envelope_ref
        _document_security(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


SCIM_SCHEME = "scim"


def _document_security(schema: dict[str, Any]) -> None:
    """The two kinds of access token the operations' ``security`` names (see ``AccessRoute``)."""
    scopes = sorted(
        {
            scope
            for item in schema.get("paths", {}).values()
            for operation in item.values()
            for requirement in operation.get("security", [])
            for scope in requirement.get(tokens.SERVICE_SCHEME, [])
        }
    )
    known = {
        tokens.USER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A user's access token from identity's sign-in. A requirement "
            "lists the roles of which the user needs one; none: any signed-in user. A tenant "
            "whose contract has ended is refused (401).",
        },
        tokens.SERVICE_SCHEME: {
            "type": "oauth2",
            "description": "A service client's access token (client credentials).",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/identity/oauth2/token",
                    "scopes": {scope: f"Internal operation {scope}." for scope in scopes},
                }
            },
        },
        SCIM_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant's SCIM provisioning token (issued by its administrators).",
        },
    }
    used = {
        name
        for item in schema.get("paths", {}).values()
        for operation in item.values()
        for requirement in operation.get("security", [])
        for name in requirement
    }
    if used:
        schema["components"]["securitySchemes"] = {k: v for k, v in known.items() if k in used}


def _calls(dependant: Dependant) -> list[object]:
    found: list[object] = []
    for sub in dependant.dependencies:
        found.append(sub.call)
        found.extend(_calls(sub))
    return found


class AccessRoute(APIRoute):
    """A route whose OpenAPI ``security`` says who may call it, read off the access gates
    among its dependencies (``jinji.tokens``), so the documentation cannot drift from the
    checks; the attack suite derives its expectations from it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        security = tokens.openapi_security(_calls(self.dependant))
        if security is not None:
            self.openapi_extra = {**(self.openapi_extra or {}), "security": security}


def file_responses(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI of a route that answers a file (use with ``response_class=Response``): its
    media types, not JSON."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": "The file.", "content": dict.fromkeys(media_types, binary)}}


def service_router(spec: ServiceSpec) -> APIRouter:
    """A router for one of the service's own route groups.

    The prefix is set on the router itself so each route's template is the full public path
    (``/analytics/v1/...``): that is what metrics, logs and OpenAPI show.
    """
    return APIRouter(prefix=spec.prefix, route_class=AccessRoute)
