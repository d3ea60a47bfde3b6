"""The local gateway of `jinji up`: all five services in one process, routed by prefix.

Every service already serves its routes under its own prefix, so the gateway passes each
request through unchanged, as the Kubernetes Ingress does in production. Each service keeps
its own lifespan (its own pool, verifier and clients), started and stopped with the gateway.
Every other path goes to the web console when it is built (``services.console``).
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from jinji.errors import envelope
from services.console import Console


class Gateway:
    def __init__(self, apps: dict[str, FastAPI], console: Console | None = None) -> None:
        # prefix ("/identity") -> app
        self.apps = apps
        self.console = console
        self._metrics_app = next(iter(apps.values()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope.get("path", "")
        if path == "/metrics":
            # One process, one registry: any service renders every service's metrics.
            await self._metrics_app(scope, receive, send)
            return
        prefix = "/" + path.lstrip("/").split("/", 1)[0]
        app = self.apps.get(prefix)
        if app is not None:
            await app(scope, receive, send)
            return
        if self.console is not None and scope["type"] == "http":
            await self.console(scope, receive, send)
            return
        if scope["type"] == "http":
            body = (
                {"services": sorted(self.apps)}
                if path == "/"
                else envelope("not_found", "No service serves this path.")
            )
            response = JSONResponse(body, status_code=200 if path == "/" else 404)
            await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        stack = AsyncExitStack()
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            for app in self.apps.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
        except Exception as exc:
            await stack.aclose()
            await send({"type": "lifespan.startup.failed", "message": repr(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await stack.aclose()
        await send({"type": "lifespan.shutdown.complete"})
