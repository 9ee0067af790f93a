"""The system-level write: ``POST [base]`` with a transaction or batch Bundle (R4
http.html#transaction).

The platform checks the envelope — a JSON object, a Bundle of type ``transaction`` or
``batch``, entries that are objects with a ``request`` (bdl-3) and, where they carry a
resource, one with a resourceType — and hands the Bundle, as parsed and as the bytes received,
to the handler whose declared resource types cover every entry's (the most specific one —
fewest types — when several do). Contexts register a
``BundleHandler`` for the types they write (the results context for DiagnosticReport,
Observation, ImagingStudy and the resources such a report points at); the platform knows no
context. A Bundle no handler covers, or that two equally specific ones cover, is refused
(FHIR-031). The handler
owns the semantics (all-or-none for a transaction, per entry for a batch, references between
entries) and answers a transaction-response / batch-response Bundle, or an OperationOutcome
with the status of the failure; the registry validates what it answers like any output.

Codes: FHIR-030 (400) not a transaction or batch Bundle; FHIR-031 (422) no single handler for
the entries' types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from .outcome import FhirError
from .validation import model_class

NOT_A_BATCH = "FHIR-030"
NO_HANDLER = "FHIR-031"
KINDS = ("transaction", "batch")


@dataclass(frozen=True)
class BundleRequest:
    bundle: dict[str, Any]
    kind: str  # transaction | batch
    raw: bytes  # the body as received
    base: str
    actor: Any = None


@dataclass(frozen=True)
class BundleAnswer:
    status: int  # 200 with a *-response Bundle; 4xx with an OperationOutcome
    resource: dict[str, Any]


@dataclass(frozen=True)
class BundleHandler:
    name: str
    resource_types: frozenset[str]
    handle: Callable[[Session, BundleRequest], BundleAnswer]
    documentation: str = ""


class BundleHandlers:
    def __init__(self) -> None:
        self.handlers: list[BundleHandler] = []

    def register(self, handler: BundleHandler) -> None:
        for rtype in handler.resource_types:
            model_class(rtype)  # LookupError at start-up for a type R4 does not have
        if any(h.name == handler.name for h in self.handlers):
            raise ValueError(f"a Bundle handler named {handler.name} is already registered")
        self.handlers.append(handler)

    def dispatch(self, session: Session, body: Any, raw: bytes, base: str, actor: Any) -> BundleAnswer:
        kind, types = envelope(body)
        fit = [h for h in self.handlers if types <= h.resource_types]
        fit = [h for h in fit if len(h.resource_types) == min(len(f.resource_types) for f in fit)]
        if len(fit) != 1:
            served = "; ".join(f"{h.name}: {', '.join(sorted(h.resource_types))}" for h in self.handlers) or "none"
            why = "no handler takes" if not fit else "several handlers take"
            raise FhirError(NO_HANDLER, f"{why} a Bundle of {', '.join(sorted(types)) or 'no resources'}; this server"
                                        f" takes transaction and batch Bundles of ({served})", status=422,
                            issue="not-supported", detail={"types": sorted(types)})
        return fit[0].handle(session, BundleRequest(body, kind, raw, base, actor))


def envelope(body: Any) -> tuple[str, frozenset[str]]:
    """(Bundle.type, the entries' resource types) of a well-formed transaction or batch."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        shown = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
        raise _not_a_batch(f"POST to the base takes a transaction or batch Bundle, not {shown!r}", "resourceType")
    kind = body.get("type")
    if kind not in KINDS:
        raise _not_a_batch(f"Bundle.type {kind!r}: POST to the base takes type transaction or batch", "type")
    entries = body.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise _not_a_batch("Bundle.entry must be a list of objects", "entry")
    types = set()
    for i, e in enumerate(entries):
        if not isinstance(e.get("request"), dict):
            raise _not_a_batch(f"Bundle.entry[{i}].request is missing: every entry of a {kind} says what to do"
                               " (bdl-3)", f"entry[{i}].request")
        res = e.get("resource")
        if res is not None:
            if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
                raise _not_a_batch(f"Bundle.entry[{i}].resource has no resourceType", f"entry[{i}].resource")
            types.add(res["resourceType"])
    shell = {**body, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in entries]}
    try:
        model_class("Bundle").model_validate(shell)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(str(p) for p in err["loc"])
        raise _not_a_batch(f"the Bundle is not valid R4: {path}: {err['msg']}", path) from None
    return kind, frozenset(types)


def _not_a_batch(message: str, element: str) -> FhirError:
    return FhirError(NOT_A_BATCH, message, status=400, issue="structure", detail={"element": f"Bundle.{element}"})
