"""Errors of the FHIR surface and their one rendering: the OperationOutcome.

Owns the stable ``FHIR-NNN`` codes raised by the core (search parsing, routing, content
negotiation, request bodies, operation input, preconditions, output validation) and
``operation_outcome_response``, which turns any ``HealthGridError`` raised under ``/fhir``
— ours or a context's — into an R4 OperationOutcome with the error's HTTP status.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from ..errors import HealthGridError
from .output import fhir_json_response, wants_pretty

ERROR_SYSTEM = "https://healthgrid.example/fhir/CodeSystem/error"

# Stable codes of the FHIR core; clients and tests rely on them.
UNKNOWN_TYPE = "FHIR-001"  # 404: no provider for this resource type
UNKNOWN_PARAMETER = "FHIR-002"  # 400: search parameter not supported for this type
BAD_VALUE = "FHIR-003"  # 400: malformed or out-of-range parameter value
UNKNOWN_MODIFIER = "FHIR-004"  # 400: modifier not supported for this parameter
UNSUPPORTED_INTERACTION = "FHIR-005"  # 405 / 400: e.g. delete, history, create where not served
UNSUPPORTED_FORMAT = "FHIR-006"  # 406 / 415: only JSON is spoken here
INVALID_OUTPUT = "FHIR-007"  # 500: a mapper built a resource that is not valid R4
RESOURCE_NOT_FOUND = "FHIR-008"  # 404: no resource with this id
INTERNAL_ERROR = "FHIR-009"  # 500: anything unexpected
INVALID_BODY = "FHIR-010"  # 400: no body, not JSON, not an object, or another resourceType
INVALID_RESOURCE = "FHIR-011"  # 400: the body is not a valid R4 resource
ID_MISMATCH = "FHIR-012"  # 400: an update whose body has no id or another id than the URL
UNKNOWN_OPERATION = "FHIR-013"  # 400: no such $operation on this type
BAD_OPERATION_PARAMETER = "FHIR-014"  # 400: an operation's parameter is unknown, repeated or mistyped
BAD_PRECONDITION = "FHIR-015"  # 400: an If-Match header that is not an ETag
VERSION_CONFLICT = "FHIR-016"  # 412: If-Match names another version than the current one


class FhirError(HealthGridError):
    """A coded error of the FHIR surface; status and FHIR issue code are per instance
    because one kind of fault (an unsupported thing) maps to several statuses."""

    def __init__(self, code: str, message: str, *, status: int = 400, issue: str = "invalid",
                 detail: dict[str, Any] | None = None):
        super().__init__(code, message, detail)
        self.status = status
        self.fhir_code = issue


def bad_value(parameter: str, message: str) -> FhirError:
    return FhirError(BAD_VALUE, f"search parameter '{parameter}': {message}", issue="value",
                     detail={"parameter": parameter})


def operation_outcome(exc: HealthGridError) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": "error",
            "code": exc.fhir_code,
            "details": {"coding": [{"system": ERROR_SYSTEM, "code": exc.code}], "text": exc.message},
            "diagnostics": exc.message,
        }],
    }


def operation_outcome_response(request: Request, exc: HealthGridError) -> Response:
    """The renderer app.py installs for every path under /fhir."""
    headers = {"Allow": exc.detail["allow"]} if exc.status == 405 and "allow" in exc.detail else None
    return fhir_json_response(operation_outcome(exc), status=exc.status,
                              pretty=wants_pretty(request), headers=headers)
