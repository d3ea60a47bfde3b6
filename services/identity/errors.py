"""Identity's client-facing errors (all in the shared envelope)."""

from __future__ import annotations

from jinji.errors import ApiError


class InvalidCredentials(ApiError):
    # One answer for unknown tenant, unknown user, disabled user and wrong password, so the
    # response never tells which part was wrong (no account enumeration).
    def __init__(self) -> None:
        super().__init__(401, "invalid_credentials", "Tenant, username or password is incorrect.")


class InvalidChallenge(ApiError):
    def __init__(self) -> None:
        super().__init__(
            401,
            "invalid_challenge",
            "The login step has expired or was already used; log in again.",
        )


class InvalidCode(ApiError):
    def __init__(self) -> None:
        super().__init__(401, "invalid_code", "The code is incorrect or was already used.")


class PasswordNotAccepted(ApiError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(422, "password_rejected", message, {"reason": reason})
