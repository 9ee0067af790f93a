"""HTTP binding of the FHIR interactions: routes, content negotiation, form search.

Routes (under the prefix app.py mounts, ``/fhir``): ``GET metadata``, ``GET {type}``,
``GET|POST {type}/_search``, ``GET {type}/{id}``, and a catch-all that turns every other
path or method into an OperationOutcome (404 unknown type, 405 wrong method, 400 unknown
interaction) so that nothing under /fhir answers with non-FHIR JSON.
"""

from __future__ import annotations

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
from .outcome import (
    INTERNAL_ERROR,
    UNSUPPORTED_FORMAT,
    UNSUPPORTED_INTERACTION,
    FhirError,
    operation_outcome_response,
)
from .output import fhir_json_response, wants_pretty
from .registry import FhirRegistry

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


def fhir_base(request: Request) -> str:
    """The absolute base URL of the FHIR surface as this client reached it."""
    return str(request.url_for(METADATA_ROUTE)).removesuffix("/metadata")


def respond(request: Request, body: dict[str, Any]) -> Response:
    return fhir_json_response(body, pretty=wants_pretty(request))


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

    @router.get("/{resource_type}/{resource_id}")
    def read(request: Request, resource_type: str, resource_id: str, session: SessionDep,
             asker: Any = asked_by) -> Response:
        return respond(request, registry.read(session, resource_type, resource_id, asker))

    @router.api_route("/{path:path}", methods=ALL_METHODS, include_in_schema=False)
    def unsupported(request: Request, path: str) -> Response:
        raise unsupported_interaction(registry, request.method, path)

    return router


def unsupported_interaction(registry: FhirRegistry, method: str, path: str) -> FhirError:
    """Why ``method path`` is not served: unknown type (404), a served path with another
    method (405 with Allow), or an interaction this server does not implement (400)."""
    segments = [s for s in path.split("/") if s]
    if segments == ["metadata"]:
        return _method_not_allowed(method, path, "GET")
    if segments:
        registry.provider(segments[0])  # raises FHIR-001 for an unknown type
    if 1 <= len(segments) <= 2:
        allowed = "GET, POST" if segments[1:] == ["_search"] else "GET"
        return _method_not_allowed(method, path, allowed)
    return FhirError(UNSUPPORTED_INTERACTION, f"{method} /{path}: interaction not supported; this server "
                                              f"supports read, search-type and capabilities only",
                     issue="not-supported", detail={"method": method, "path": path})


def _method_not_allowed(method: str, path: str, allowed: str) -> FhirError:
    return FhirError(UNSUPPORTED_INTERACTION, f"{method} /{path} is not supported (read-only server: "
                                              f"{allowed} only)", status=405, issue="not-supported",
                     detail={"method": method, "path": path, "allow": allowed})
