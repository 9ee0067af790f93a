"""``FhirRegistry``: the registered providers and the transport-free FHIR interactions.

read, search-type, create, update, type-level $operations and capabilities are plain
methods here (parse → provider → validate → Bundle or resource, with the status and headers
R4 http.html asks for, as an ``Answer``); ``router`` only adapts HTTP to them. Contexts
register their providers at start-up (``app.py`` lists them); a misdeclared provider fails
then, not at the first request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from sqlalchemy.orm import Session

from ..config import FhirSettings
from ..errors import Forbidden, HealthGridError, Invalid, NotFound, Unauthorized
from .bundle import searchset
from .capability import capability_statement
from .operation import OperationRequest, from_body, from_query
from .outcome import (
    BAD_PRECONDITION,
    BAD_VALUE,
    ERROR_SYSTEM,
    ID_MISMATCH,
    INVALID_BODY,
    RESOURCE_NOT_FOUND,
    UNKNOWN_OPERATION,
    UNKNOWN_TYPE,
    UNSUPPORTED_INTERACTION,
    FhirError,
)
from .output import prune
from .provider import ResourceProvider, SearchResult, Written, interactions, operation_of
from .search import ID_PATTERN, ID_RULE, Include, NoMatch, ParamType, SearchRequest, parse_search
from .system import BundleHandler, BundleHandlers
from .validation import OutputValidator, check_input, model_class

# R4 http.html#concurrency: If-Match carries the weak ETag of the version read, W/"3".
_ETAG = re.compile(r'^(?:W/)?"([^"\s]{1,64})"$')


@dataclass
class Answer:
    """A response without HTTP: status, resource (None: no body) and headers."""

    status: int
    resource: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


class FhirRegistry:
    def __init__(self, settings: FhirSettings):
        self.settings = settings
        self.validator = OutputValidator(settings.validate_output)
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self._providers: dict[str, ResourceProvider] = {}
        self._bundles = BundleHandlers()  # system-level transaction / batch (system.py)

    def register(self, provider: ResourceProvider) -> None:
        _check_declaration(provider)
        if provider.resource_type in self._providers:
            raise ValueError(f"a provider for {provider.resource_type} is already registered")
        self._providers[provider.resource_type] = provider

    @property
    def resource_types(self) -> list[str]:
        return sorted(self._providers)

    def provider(self, resource_type: str) -> ResourceProvider:
        found = self._providers.get(resource_type)
        if found is None:
            served = ", ".join(self.resource_types) or "none"
            raise FhirError(UNKNOWN_TYPE, f"unknown resource type {resource_type!r}; this server serves: "
                                          f"{served}", status=404, issue="not-supported",
                            detail={"resource_type": resource_type})
        return found

    def capabilities(self, base: str) -> dict[str, Any]:
        system = ("transaction", "batch") if self._bundles.handlers else ()
        return self.validator.check(capability_statement(self._providers.values(), base=base,
                                                         date=self.started, system_interactions=system))

    def register_bundle_handler(self, handler: BundleHandler) -> None:
        """A context's writer of transaction / batch Bundles holding ``handler.resource_types``."""
        self._bundles.register(handler)

    def bundle(self, session: Session, body: Any, raw: bytes, base: str, actor: Any = None) -> Answer:
        """R4 http.html#transaction: POST [base] with a transaction or batch Bundle."""
        found = self._bundles.dispatch(session, body, raw, base, actor)
        return Answer(found.status, self.validator.check(prune(found.resource)))

    def read(self, session: Session, resource_type: str, resource_id: str, actor: Any = None) -> Answer:
        provider = self.provider(resource_type)
        _check_id(resource_id)
        try:
            found = provider.read(session, resource_id, actor)
        except NoMatch:  # e.g. an id that cannot be one of the provider's keys
            found = None
        if found is None:
            raise FhirError(RESOURCE_NOT_FOUND, f"{resource_type}/{resource_id} is not known", status=404,
                            issue="not-found", detail={"resource_type": resource_type, "id": resource_id})
        resource = self.validator.check(prune(found))
        return Answer(200, resource, version_headers(resource))

    def search(self, session: Session, resource_type: str, items: Iterable[tuple[str, str]],
               base: str, actor: Any = None) -> dict[str, Any]:
        provider = self.provider(resource_type)
        request = parse_search(resource_type, items, provider.search_params,
                               default_count=self.settings.default_count, max_count=self.settings.max_count,
                               includes=provider.includes)
        request = replace(request, actor=actor)
        try:
            result = provider.search(session, request)
        except NoMatch:
            result = SearchResult(total=0)
        except Invalid as exc:  # R4 http.html#search: a search the server cannot run is a 400
            raise FhirError(exc.code, exc.message, status=400, issue=exc.fhir_code, detail=exc.detail) from None
        resources = [self.validator.check(prune(r)) for r in result.resources]
        included, outcomes = self._included(session, request, result.resources)
        return searchset(base, request, result.total, resources, result.more, included=included,
                         outcomes=outcomes)

    def _included(self, session: Session, request: SearchRequest,
                  matches: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The resources the ``_include``s name, read through their own providers (checked and
        audited there); those refused or gone are left out, each with an OperationOutcome."""
        wanted: dict[str, list[str]] = {}
        for include in request.includes:
            for rtype, rid in _references(matches, include):
                if rid not in wanted.setdefault(rtype, []):
                    wanted[rtype].append(rid)
        matched = {(r["resourceType"], r["id"]) for r in matches}
        included, outcomes = [], []
        for rtype, ids in wanted.items():
            ids = [i for i in ids if (rtype, i) not in matched]
            found, refused = _read_all(session, self.provider(rtype), ids, request.actor)
            included += [self.validator.check(prune(r)) for r in found]
            outcomes += [_not_included(f"{rtype}/{rid}", exc) for rid, exc in refused]
        return included, outcomes

    def create(self, session: Session, resource_type: str, body: Any, base: str, actor: Any = None) -> Answer:
        """R4 http.html#create. An id in the body is ignored, as the spec says; a body that is
        not valid R4 is a 400, the context's refusals keep their own status (422, 409 …)."""
        if resource_type == "metadata":
            raise self.unsupported("POST", resource_type)
        provider = self.provider(resource_type)
        if "create" not in interactions(provider):
            raise self.unsupported("POST", resource_type)
        resource = {k: v for k, v in _body(body, resource_type).items() if k != "id"}
        return self._written(base, provider.create(session, resource, actor), location=True)

    def update(self, session: Session, resource_type: str, resource_id: str, body: Any, base: str,
               actor: Any = None, *, if_match: str | None = None) -> Answer:
        """R4 http.html#update: the body's id must be the URL's (else 400); If-Match, when
        sent, must name the current version (the provider refuses another with 412)."""
        provider = self.provider(resource_type)
        if resource_id.startswith(("_", "$")) or "update" not in interactions(provider):
            raise self.unsupported("PUT", f"{resource_type}/{resource_id}")
        _check_id(resource_id)
        resource = _body(body, resource_type)
        if resource.get("id") != resource_id:
            given = f"id {resource['id']!r}" if "id" in resource else "no id"
            raise FhirError(ID_MISMATCH, f"the body has {given}; an update's body must carry the id of the "
                                         f"URL ({resource_id!r})", detail={"id": resource_id})
        written = provider.update(session, resource_id, resource, actor, if_match=parse_if_match(if_match))
        return self._written(base, written, location=written.created)

    def operation(self, session: Session, resource_type: str, name: str, *, method: str, body: Any,
                  query: Iterable[tuple[str, str]], base: str, actor: Any = None,
                  headers: tuple[tuple[str, str], ...] = ()) -> Answer:
        """A type-level ``$name`` (R4 operations.html): POST with Parameters (or the bare
        resource the operation takes), GET with query parameters where it allows."""
        provider = self.provider(resource_type)
        op = operation_of(provider, name)
        if op is None:
            known = ", ".join(f"${o.name}" for o in provider.operations) or "none"
            raise FhirError(UNKNOWN_OPERATION, f"{resource_type} has no operation ${name}; it has: {known}",
                            issue="not-supported", detail={"operation": name})
        if method == "GET" and not op.get:
            raise _method_not_allowed(method, f"{resource_type}/${name}", "POST")
        if method == "GET":
            params = from_query(op, query)
        else:
            params = from_body(op, check_input(body)) if body is not None else ()
        result = op.handler(session, OperationRequest(resource_type, name, params, base, actor, headers))
        if isinstance(result, Written):
            return self._written(base, result, location=result.created)
        return Answer(200, self.validator.check(prune(result)))

    def _written(self, base: str, written: Written, *, location: bool) -> Answer:
        resource = self.validator.check(prune(written.resource))
        headers = version_headers(resource)
        if location:
            headers["Location"] = location_of(base, resource)
        return Answer(201 if written.created else 200, resource, headers | written.headers)

    def unsupported(self, method: str, path: str) -> FhirError:
        """Why ``method path`` is not served: unknown type (404), a served path with another
        method (405 with Allow), or an interaction this server does not implement (400)."""
        segments = [s for s in path.split("/") if s]
        allowed = self._allowed(segments)
        if allowed is not None:
            return _method_not_allowed(method, path, allowed)
        return FhirError(UNSUPPORTED_INTERACTION, f"{method} /{path}: interaction not supported; this server "
                                                  f"supports read, search-type, capabilities and, where the "
                                                  f"CapabilityStatement says so, create, update and "
                                                  f"type-level operations", issue="not-supported",
                         detail={"method": method, "path": path})

    def _allowed(self, segments: list[str]) -> str | None:
        """The methods a path is served with, or None when no interaction has that shape."""
        if segments == ["metadata"]:
            return "GET"
        if not segments:
            return "POST" if self._bundles.handlers else None
        provider = self.provider(segments[0])  # raises FHIR-001 for an unknown type
        if len(segments) > 2:
            return None
        served = interactions(provider)
        if len(segments) == 1:
            return "GET, POST" if "create" in served else "GET"
        if segments[1] == "_search":
            return "GET, POST"
        if segments[1].startswith("$"):
            op = operation_of(provider, segments[1][1:])
            return None if op is None else "GET, POST" if op.get else "POST"
        return "GET, PUT" if "update" in served else "GET"


def _references(matches: list[dict[str, Any]], include: Include) -> list[tuple[str, str]]:
    """(type, id) of the relative references ``Type/id`` in the included element of each match."""
    found = []
    for resource in matches:
        held = resource.get(include.definition.element)
        for ref in held if isinstance(held, list) else [held]:
            text = ref.get("reference", "") if isinstance(ref, dict) else ""
            rtype, _, rid = text.partition("/")
            if rtype in include.targets and rid and ID_PATTERN.match(rid):
                found.append((rtype, rid))
    return found


def _read_all(session: Session, provider: ResourceProvider, ids: list[str],
              actor: Any) -> tuple[list[dict[str, Any]], list[tuple[str, HealthGridError]]]:
    """One ``read_many``; when it is refused, each id alone, to tell which ones were."""
    if not ids:
        return [], []
    try:
        return provider.read_many(session, ids, actor), []
    except NoMatch:
        if len(ids) == 1:
            return [], []
    except (Forbidden, Unauthorized, NotFound) as exc:
        if len(ids) == 1:
            return [], [(ids[0], exc)]
    found: list[dict[str, Any]] = []
    refused: list[tuple[str, HealthGridError]] = []
    for rid in ids:
        part, why = _read_all(session, provider, [rid], actor)
        found += part
        refused += why
    return found, refused


def _not_included(reference: str, exc: HealthGridError) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{
        "severity": "warning", "code": exc.fhir_code,
        "details": {"coding": [{"system": ERROR_SYSTEM, "code": exc.code}],
                    "text": f"{reference} is not included: {exc.message}"},
        "diagnostics": f"{reference} is not included: {exc.message}"}]}


def _body(body: Any, resource_type: str | None) -> dict[str, Any]:
    if body is None:
        raise FhirError(INVALID_BODY, f"a {resource_type or 'FHIR resource'} is expected as the body",
                        issue="required")
    return check_input(body, resource_type)


def _check_id(resource_id: str) -> None:
    if not ID_PATTERN.match(resource_id):
        raise FhirError(BAD_VALUE, f"{resource_id!r} {ID_RULE}", issue="value", detail={"id": resource_id})


def parse_if_match(header: str | None) -> str | None:
    """The version named by an If-Match header (``W/"3"``), None without one."""
    if header is None:
        return None
    found = _ETAG.match(header.strip())
    if found is None:
        raise FhirError(BAD_PRECONDITION, f"If-Match {header!r} is not an ETag such as W/\"3\" (the ETag of "
                                          f"the version read)", issue="value")
    return found.group(1)


def version_headers(resource: dict[str, Any]) -> dict[str, str]:
    """ETag and Last-Modified from meta.versionId and meta.lastUpdated (R4 http.html#read)."""
    meta = resource.get("meta", {})
    headers = {}
    if "versionId" in meta:
        headers["ETag"] = f'W/"{meta["versionId"]}"'
    if "lastUpdated" in meta:
        stamp = datetime.fromisoformat(meta["lastUpdated"]).astimezone(UTC)
        headers["Last-Modified"] = format_datetime(stamp, usegmt=True)
    return headers


def location_of(base: str, resource: dict[str, Any]) -> str:
    """R4 http.html#create: Location is [base]/[type]/[id]/_history/[vid] when versioned."""
    url = f"{base}/{resource['resourceType']}/{resource['id']}"
    version = resource.get("meta", {}).get("versionId")
    return f"{url}/_history/{version}" if version else url


def _method_not_allowed(method: str, path: str, allowed: str) -> FhirError:
    return FhirError(UNSUPPORTED_INTERACTION, f"{method} /{path} is not supported (allowed: {allowed})",
                     status=405, issue="not-supported", detail={"method": method, "path": path, "allow": allowed})


def _check_declaration(provider: ResourceProvider) -> None:
    rtype = provider.resource_type
    model_class(rtype)  # LookupError for a type R4 does not have
    names = [p.name for p in provider.search_params]
    if "_id" not in names:
        raise ValueError(f"{rtype} provider must declare _id (read is a search on _id)")
    if len(set(names)) != len(names):
        raise ValueError(f"{rtype} provider declares a search parameter twice")
    for param in provider.search_params:
        if param.type is ParamType.REFERENCE:
            if not param.targets:
                raise ValueError(f"{rtype}.{param.name}: a reference parameter needs its target types")
            for target in param.targets:
                model_class(target)
    for include in provider.includes:
        for target in include.targets:
            model_class(target)
    if len({i.name for i in provider.includes}) != len(provider.includes):
        raise ValueError(f"{rtype} provider declares an _include twice")
    ops = [op.name for op in provider.operations]
    if len(set(ops)) != len(ops):
        raise ValueError(f"{rtype} provider declares an operation twice")
