"""Validation of outgoing resources — and of the resources clients send — against the R4B
models of ``fhir.resources``.

``fhir.resources`` 8 has no plain R4 package; R4B is the closest (for the resources we
serve the two versions have the same elements). A resource that fails is a bug in a
mapper, so it becomes a 500 OperationOutcome rather than invalid JSON on the wire.

Cost: ``model_validate`` of a typical Organization takes ~80 µs here; ``model_dump``
afterwards would add ~220 µs and only reorder keys, so the mapper's own (pruned) dict is
what we send once it has validated.

Incoming bodies (create, update, operation input) go through ``check_input``: a body that
is not a resource of the expected type, or not valid R4, is the client's error — 400, as
R4 http.html#create says for a resource that "could not be parsed or failed basic FHIR
validation rules" (a valid resource that breaks a context's rules is 422, from the context).
"""

from __future__ import annotations

import importlib
import logging
import re
from functools import cache
from typing import Any

from pydantic import ValidationError

from .outcome import INVALID_BODY, INVALID_OUTPUT, INVALID_RESOURCE, FhirError

log = logging.getLogger(__name__)
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


@cache
def model_class(resource_type: str) -> type:
    """The R4B pydantic model for a resource type; LookupError if there is none."""
    try:
        module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
        return getattr(module, resource_type)
    except (ImportError, AttributeError):
        raise LookupError(f"{resource_type} is not an R4 resource type") from None


class OutputValidator:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def check(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Return ``resource`` unchanged if it is valid R4(B); raise FHIR-007 if not."""
        if not self.enabled:
            return resource
        rtype = resource.get("resourceType", "?")
        try:
            model_class(rtype).model_validate(resource)
        except (ValidationError, LookupError) as exc:
            log.error("outgoing %s/%s is not valid R4: %s", rtype, resource.get("id"), exc)
            first = _first_error(exc)
            raise FhirError(INVALID_OUTPUT, f"server error: built an invalid {rtype}/{resource.get('id')}"
                                            f" ({first})", status=500, issue="exception") from exc
        return resource


def check_input(body: Any, resource_type: str | None = None) -> dict[str, Any]:
    """``body`` as a resource of ``resource_type`` (any type when None), valid R4(B);
    FHIR-010 or FHIR-011 (400) if it is not."""
    if not isinstance(body, dict):
        raise FhirError(INVALID_BODY, "the body must be a FHIR resource (a JSON object)", issue="structure")
    rtype = body.get("resourceType")
    # A resource type is a name (R4 resource.html); checked before it becomes a module path.
    if not isinstance(rtype, str) or not _TYPE_NAME.match(rtype) or rtype != (resource_type or rtype):
        shown = rtype if isinstance(rtype, str) else "JSON object without resourceType"
        raise FhirError(INVALID_BODY, f"the body is a {shown}, not a {resource_type or 'FHIR resource'}",
                        issue="structure", detail={"resourceType": shown})
    try:
        model_class(rtype).model_validate(body)
    except (ValidationError, LookupError) as exc:
        raise FhirError(INVALID_RESOURCE, f"the {rtype} is not valid R4: {_first_error(exc)}",
                        issue="structure") from None
    return body


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)
