"""The contract between the FHIR core and a context: ``ResourceProvider``.

A provider binds one resource type: it declares its search parameters once and answers a
typed ``SearchRequest`` with a page of resources (plain dicts in R4 JSON shape) plus the
total. It only binds — it calls its context's service/queries, which own the transactions
and the storage (the HAPI "resource provider" split). Reading by id defaults to a search
on ``_id``, so every provider must declare ``_id``.

Writes are optional: a provider that overrides ``create`` and/or ``update`` serves those
interactions (and the CapabilityStatement lists them); one that does not answers 405.
Type-level ``$operations`` are declared once in ``operations`` (``operation.OperationDef``).

``_include``: a provider declares the includes it serves in ``includes`` (``IncludeDef``:
which top-level element holds the references); the registry then reads the referenced
resources through their own providers' ``read_many`` — so each is access-checked and
audited by its context — and adds them to the Bundle with ``search.mode = include``.
``read_many`` defaults to one ``read`` per id; a provider may answer in one query.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from .operation import OperationDef
from .search import IncludeDef, SearchParamDef, SearchRequest


@dataclass
class SearchResult:
    """A page of matches. ``total`` None: the provider does not count its matches (the
    Bundle then has no total and no last link); ``more`` says whether a next page exists."""

    total: int | None
    resources: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False


@dataclass
class Written:
    """What a create or update made: the resource as it now stands (with ``meta.versionId``
    and ``meta.lastUpdated`` when the provider versions it), whether a new resource was
    made (201) or an existing one answers (200), and any headers of the provider's own."""

    resource: dict[str, Any]
    created: bool = True
    headers: dict[str, str] = field(default_factory=dict)


class ResourceProvider(ABC):
    resource_type: ClassVar[str]
    search_params: ClassVar[tuple[SearchParamDef, ...]]
    # Markdown shown as rest.resource.documentation in the CapabilityStatement.
    documentation: ClassVar[str | None] = None
    # CapabilityStatement.rest.resource.versioning (R4 codesystem-versioning-policy).
    versioning: ClassVar[str] = "no-version"
    operations: ClassVar[tuple[OperationDef, ...]] = ()
    includes: ClassVar[tuple[IncludeDef, ...]] = ()

    @abstractmethod
    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        """Resources matching ``request``, ``request.count`` of them from ``request.offset``
        in a stable order, and the total; with ``count`` 0 only the total."""

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        found = self.search(session, SearchRequest.for_id(self.resource_type, resource_id, actor))
        return found.resources[0] if found.resources else None

    def read_many(self, session: Session, resource_ids: list[str], actor: Any = None) -> list[dict[str, Any]]:
        """The resources of these ids that exist (for ``_include``), in any order. A refusal
        raises as ``read`` does (the registry then leaves the resource out and says so)."""
        return [r for r in (self.read(session, i, actor) for i in resource_ids) if r is not None]

    def create(self, session: Session, resource: dict[str, Any], actor: Any = None) -> Written:
        """Make a resource from ``resource`` (already valid R4 of this type, its id dropped).
        Raise a coded error for the context's rules (Invalid → 422)."""
        raise NotImplementedError

    def update(self, session: Session, resource_id: str, resource: dict[str, Any], actor: Any = None, *,
               if_match: str | None = None) -> Written:
        """Replace the resource ``resource_id`` (``resource['id']`` equals it). ``if_match``:
        the version the client read (from If-Match), None when it sent none; a provider
        that versions refuses another with 412."""
        raise NotImplementedError


def interactions(provider: ResourceProvider) -> tuple[str, ...]:
    """The type and instance interactions a provider serves (R4 http.html names)."""
    found = ["read", "search-type"]
    for name in ("create", "update"):
        if getattr(type(provider), name) is not getattr(ResourceProvider, name):
            found.append(name)
    return tuple(found)


def operation_of(provider: ResourceProvider, name: str) -> OperationDef | None:
    return next((op for op in provider.operations if op.name == name), None)
