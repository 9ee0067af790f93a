"""The contract between the FHIR core and a context: ``ResourceProvider``.

A provider binds one resource type: it declares its search parameters once and answers a
typed ``SearchRequest`` with a page of resources (plain dicts in R4 JSON shape) plus the
total. It only binds — it calls its context's service/queries, which own the transactions
and the storage (the HAPI "resource provider" split). Reading by id defaults to a search
on ``_id``, so every provider must declare ``_id``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from .search import SearchParamDef, SearchRequest


@dataclass
class SearchResult:
    total: int
    resources: list[dict[str, Any]] = field(default_factory=list)


class ResourceProvider(ABC):
    resource_type: ClassVar[str]
    search_params: ClassVar[tuple[SearchParamDef, ...]]
    # Markdown shown as rest.resource.documentation in the CapabilityStatement.
    documentation: ClassVar[str | None] = None

    @abstractmethod
    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        """Resources matching ``request``, ``request.count`` of them from ``request.offset``
        in a stable order, and the total; with ``count`` 0 only the total."""

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        found = self.search(session, SearchRequest.for_id(self.resource_type, resource_id, actor))
        return found.resources[0] if found.resources else None
