"""Validation of outgoing resources against the R4B models of ``fhir.resources``.

``fhir.resources`` 8 has no plain R4 package; R4B is the closest (for the resources we
serve the two versions have the same elements). A resource that fails is a bug in a
mapper, so it becomes a 500 OperationOutcome rather than invalid JSON on the wire.

Cost: ``model_validate`` of a typical Organization takes ~80 µs here; ``model_dump``
afterwards would add ~220 µs and only reorder keys, so the mapper's own (pruned) dict is
what we send once it has validated.
"""

from __future__ import annotations

import importlib
import logging
from functools import cache
from typing import Any

from pydantic import ValidationError

from .outcome import INVALID_OUTPUT, FhirError

log = logging.getLogger(__name__)


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


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)
