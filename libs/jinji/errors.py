"""The one error envelope every service answers with: ``{"error": {code, message, details}}``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error a client can act on. ``code`` is stable and machine-readable."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


class Unauthorized(ApiError):
    def __init__(self, message: str = "Authentication required.") -> None:
        super().__init__(
            401,
            "unauthorized",
            message,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )


class Forbidden(ApiError):
    def __init__(self, message: str = "Not allowed.", details: dict[str, Any] | None = None):
        super().__init__(403, "forbidden", message, details)


class ServiceUnavailable(ApiError):
    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(503, "service_unavailable", message, details, {"Retry-After": "5"})
