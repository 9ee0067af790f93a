"""HTTP binding of the FHIR interactions: routes, content negotiation, form search.

Routes (under the prefix app.py mounts, ``/fhir``): ``POST`` (a transaction or batch Bundle,
``system.py``), ``GET metadata``, ``GET {type}``,
``GET|POST {type}/_search``, ``POST {type}`` (create), ``GET|POST {type}/${operation}``,
``GET {type}/{id}``, ``PUT {type}/{id}`` (update), and a catch-all that turns every other
path or method into an OperationOutcome (404 unknown type, 405 wrong method, 400 unknown
interaction) so that nothing under /fhir answers with non-FHIR JSON. Whether a type serves
create, update or an operation is the registry's answer (405 where it does not).

Writes are authenticated by the same ``actor`` dependency as reads; with a cookie session
it also enforces the CSRF header on POST/PUT (security/http.py), bearer tokens — what FHIR
clients use — need none.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from ..errors import HealthGridError
from ..http import SessionDep
from .operation import OPERATION_HEADERS
from .outcome import (
    INTERNAL_ERROR,
    INVALID_BODY,
    UNSUPPORTED_FORMAT,
    FhirError,
    operation_outcome_response,
)
from .output import fhir_json_response, wants_pretty
from .registry import Answer, FhirRegistry

log = logging.getLogger(__name__)

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})
ACCEPTABLE = JSON_FORMATS - {"json"} | {"*/*", "application/*"}
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
METADATA_ROUTE = "fhir-metadata"


class FhirRoute(APIRoute):
    """Turns an unexpected exception into a 500 OperationOutcome (logged with its
    traceback) instead of the server's plain-text 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (HealthGridError, HTTPException, RequestValidationError):
                raise
            except Exception:
                log.exception("unexpected error serving %s %s", request.method, request.url.path)
                error = FhirError(INTERNAL_ERROR, "internal server error", status=500, issue="exception")
                return operation_outcome_response(request, error)

        return guarded


async def negotiate(request: Request) -> None:
    """JSON only: ``_format`` (which wins, as R4 http.html says) or the Accept header.
    Async although it awaits nothing: a sync dependency costs a thread-pool hop per request."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        # An unencoded '+' in a query string arrives as a space.
        if fmt.split(";")[0].strip().lower().replace(" ", "+") not in JSON_FORMATS:
            raise _not_acceptable(f"_format={fmt!r} is not supported; this server speaks JSON only")
        return
    accept = request.headers.get("accept", "").strip()
    if not accept or any(_acceptable(part) for part in accept.split(",")):
        return
    raise _not_acceptable(f"Accept {accept!r}: this server answers application/fhir+json only")


def _acceptable(part: str) -> bool:
    media, *params = (x.strip().lower() for x in part.split(";"))
    q = next((p.removeprefix("q=") for p in params if p.startswith("q=")), "1")
    try:
        return media in ACCEPTABLE and float(q) > 0
    except ValueError:
        return False


def _not_acceptable(message: str) -> FhirError:
    return FhirError(UNSUPPORTED_FORMAT, message, status=406, issue="not-supported")


async def form_items(request: Request) -> list[tuple[str, str]]:
    """Search parameters posted to ``_search`` (application/x-www-form-urlencoded)."""
    if request.method != "POST":
        return []
    body = await request.body()
    if not body:
        return []
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise FhirError(UNSUPPORTED_FORMAT, f"POST _search takes an application/x-www-form-urlencoded "
                                            f"body, not {ctype or 'an untyped body'}", status=415,
                        issue="not-supported")
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise FhirError(UNSUPPORTED_FORMAT, "the form body is not UTF-8", status=415,
                        issue="not-supported") from None


FormItems = Annotated[list[tuple[str, str]], Depends(form_items)]
# The body is read by ``json_body``, not declared as a parameter: say so in the OpenAPI document.
RESOURCE_BODY = {"requestBody": {"required": True, "content": {
    "application/fhir+json": {"schema": {"type": "object", "description": "a FHIR R4 resource"}}}}}


async def json_body(request: Request) -> Any:
    """The JSON body of a create, update or operation (R4 http.html#mime-type: FHIR JSON;
    plain application/json is accepted too, as fhirpy sends it). None when there is none."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if ctype and ctype not in JSON_FORMATS - {"json"}:
        raise FhirError(UNSUPPORTED_FORMAT, f"the body must be application/fhir+json, not {ctype}", status=415,
                        issue="not-supported")
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise FhirError(INVALID_BODY, "the body is not JSON (UTF-8)", issue="structure") from None


BUNDLE_BODY = {"requestBody": {"required": True, "content": {
    "application/fhir+json": {"schema": {"type": "object", "description": "a FHIR R4 transaction or batch Bundle"}}}}}


async def raw_body(request: Request) -> bytes:
    """The body as received (a Bundle is kept verbatim by the context that writes it)."""
    return await request.body()


def fhir_base(request: Request) -> str:
    """The absolute base URL of the FHIR surface as this client reached it."""
    return str(request.url_for(METADATA_ROUTE)).removesuffix("/metadata")


def respond(request: Request, body: dict[str, Any]) -> Response:
    return fhir_json_response(body, pretty=wants_pretty(request))


def answer(request: Request, found: Answer) -> Response:
    """An Answer as HTTP; ``Prefer: return=minimal`` drops the body of a write (R4 http.html#ops)."""
    minimal = request.method in ("POST", "PUT") and "return=minimal" in request.headers.get("prefer", "")
    if found.resource is None or minimal:
        return Response(status_code=found.status, headers=found.headers)
    return fhir_json_response(found.resource, status=found.status, pretty=wants_pretty(request),
                              headers=found.headers)


def build_fhir_router(registry: FhirRegistry, *, actor: Callable[..., Any] | None = None) -> APIRouter:
    """The FHIR REST surface. ``actor``: the dependency that authenticates a read or search
    and returns who asks (the security context's); its result reaches the providers on
    ``SearchRequest.actor``. The CapabilityStatement stays public, as FHIR clients expect."""
    router = APIRouter(route_class=FhirRoute, dependencies=[Depends(negotiate)], tags=["fhir"])

    async def nobody() -> None:
        return None

    # A default, not an Annotated alias: this module's annotations are strings, and FastAPI
    # resolves them in the module's globals, where a local alias does not exist.
    asked_by = Depends(actor or nobody)

    @router.get("/metadata", name=METADATA_ROUTE)
    def metadata(request: Request) -> Response:
        return respond(request, registry.capabilities(fhir_base(request)))

    @router.post("/{resource_type}/_search")
    def search_post(request: Request, resource_type: str, session: SessionDep, form: FormItems,
                    asker: Any = asked_by) -> Response:
        items = request.query_params.multi_items() + form
        return respond(request, registry.search(session, resource_type, items, fhir_base(request), asker))

    # GET _search is an alias of plain search; kept out of OpenAPI so operation ids stay unique.
    @router.get("/{resource_type}/_search", include_in_schema=False)
    @router.get("/{resource_type}")
    def search(request: Request, resource_type: str, session: SessionDep, asker: Any = asked_by) -> Response:
        items = request.query_params.multi_items()
        return respond(request, registry.search(session, resource_type, items, fhir_base(request), asker))

    @router.post("/{resource_type}", status_code=201, openapi_extra=RESOURCE_BODY)
    def create(request: Request, resource_type: str, session: SessionDep, asker: Any = asked_by,
               body: Any = Depends(json_body)) -> Response:
        return answer(request, registry.create(session, resource_type, body, fhir_base(request), asker))

    @router.post("/{resource_type}/${operation}", openapi_extra=RESOURCE_BODY)
    def operation_post(request: Request, resource_type: str, operation: str, session: SessionDep,
                       asker: Any = asked_by, body: Any = Depends(json_body)) -> Response:
        return answer(request, registry.operation(session, resource_type, operation, method="POST", body=body,
                                                  query=(), base=fhir_base(request), actor=asker,
                                                  headers=_operation_headers(request)))

    def _operation_headers(request: Request) -> tuple[tuple[str, str], ...]:
        return tuple((n, request.headers[n]) for n in OPERATION_HEADERS if n in request.headers)

    @router.get("/{resource_type}/${operation}")
    def operation_get(request: Request, resource_type: str, operation: str, session: SessionDep,
                      asker: Any = asked_by) -> Response:
        return answer(request, registry.operation(session, resource_type, operation, method="GET", body=None,
                                                  query=request.query_params.multi_items(),
                                                  base=fhir_base(request), actor=asker))

    @router.get("/{resource_type}/{resource_id}")
    def read(request: Request, resource_type: str, resource_id: str, session: SessionDep,
             asker: Any = asked_by) -> Response:
        return answer(request, registry.read(session, resource_type, resource_id, asker))

    @router.put("/{resource_type}/{resource_id}", openapi_extra=RESOURCE_BODY)
    def update(request: Request, resource_type: str, resource_id: str, session: SessionDep,
               asker: Any = asked_by, body: Any = Depends(json_body)) -> Response:
        return answer(request, registry.update(session, resource_type, resource_id, body, fhir_base(request),
                                               asker, if_match=request.headers.get("if-match")))

    # R4 http.html#transaction: a transaction or batch Bundle posted to the base.
    @router.post("/", include_in_schema=False)
    @router.post("", openapi_extra=BUNDLE_BODY)
    def system_bundle(request: Request, session: SessionDep, asker: Any = asked_by, body: Any = Depends(json_body),
                      raw: bytes = Depends(raw_body)) -> Response:
        found = registry.bundle(session, body, raw, fhir_base(request), asker)
        return fhir_json_response(found.resource, status=found.status, pretty=wants_pretty(request))

    @router.api_route("/{path:path}", methods=ALL_METHODS, include_in_schema=False)
    def unsupported(request: Request, path: str) -> Response:
        raise registry.unsupported(request.method, path)

    return router
