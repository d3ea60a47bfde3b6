"""The web console: the built single-page app (``web/dist``) as static files.

`jinji up` serves it at ``/`` behind the gateway, on the origin of the APIs (the refresh
cookie is SameSite=Strict and scoped to identity's token endpoint); in Kubernetes it is its
own Deployment (`jinji serve console`) behind the same Ingress host.

Files are answered as they are, with a strict CSP (scripts, styles and connections only from
the origin itself; ``data:`` images for the TOTP QR code). A page navigation (``Accept:
text/html``) to any other path gets ``index.html``, so client routes survive a reload; other
requests for a missing file get the 404 envelope, as the services answer. ``/healthz``
answers as the services' do, for the Deployment's probes.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from jinji.errors import envelope

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}
# Vite names every file under assets/ by its content hash: a new build is a new name.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
HEALTH_PATH = "/healthz"


class Console:
    def __init__(self, dist: Path) -> None:
        self.dist = dist.resolve()
        self.index = self.dist / "index.html"

    @classmethod
    def if_built(cls, dist: Path) -> Console | None:
        """The console when ``dist`` holds a build, else None (the APIs run without it)."""
        return cls(dist) if (dist / "index.html").is_file() else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response = self.respond(scope)
        await response(scope, receive, send)

    def respond(self, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return _error(405, "method_not_allowed", "The console serves only GET and HEAD.")
        path: str = scope.get("path", "/")
        if path == HEALTH_PATH:
            return JSONResponse(
                {"status": "ok", "service": "console"}, headers={"Cache-Control": "no-store"}
            )
        found = self._file(path)
        if found is not None:
            immutable = found.parent == self.dist / "assets"
            return _file(found, IMMUTABLE if immutable else REVALIDATE)
        if path == "/" or _wants_html(scope):
            return _file(self.index, REVALIDATE)
        return _error(404, "not_found", "No such file.")

    def _file(self, path: str) -> Path | None:
        relative = path.lstrip("/")
        if not relative:
            return None
        try:
            candidate = (self.dist / relative).resolve()
        except (OSError, ValueError):  # a NUL byte, a loop
            return None
        if not candidate.is_relative_to(self.dist) or not candidate.is_file():
            return None
        return candidate


def _wants_html(scope: Scope) -> bool:
    for key, value in scope.get("headers", []):
        if key.lower() == b"accept":
            return b"text/html" in bytes(value).lower()
    return False


def _file(path: Path, cache_control: str) -> Response:
    return FileResponse(path, headers={**SECURITY_HEADERS, "Cache-Control": cache_control})


def _error(status: int, code: str, message: str) -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    if status == 405:
        headers["Allow"] = "GET, HEAD"
    return JSONResponse(envelope(code, message), status_code=status, headers=headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    # Served alone (`jinji serve console`): nothing to start or stop.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
