"""Coded errors. Contexts raise these; each surface maps them once.

API: JSON ``{code, message, detail}``; FHIR: an OperationOutcome; web: a flash message.
Codes are stable (``REG-002``) so clients and tests can rely on them.
"""

from __future__ import annotations

from typing import Any


class HealthGridError(Exception):
    status: int = 400
    fhir_code: str = "processing"

    def __init__(self, code: str, message: str, detail: dict[str, Any] | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}


class Invalid(HealthGridError):
    status = 422
    fhir_code = "invalid"


class NotFound(HealthGridError):
    status = 404
    fhir_code = "not-found"


class Conflict(HealthGridError):
    status = 409
    fhir_code = "conflict"


class Unauthorized(HealthGridError):
    """Not logged in, or the credentials are not valid (HTTP 401)."""

    status = 401
    fhir_code = "login"


class TooManyRequests(HealthGridError):
    status = 429
    fhir_code = "throttled"


class Forbidden(HealthGridError):
    status = 403
    fhir_code = "forbidden"


class PreconditionFailed(HealthGridError):
    status = 412
    fhir_code = "conflict"
