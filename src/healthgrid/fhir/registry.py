"""``FhirRegistry``: the registered providers and the transport-free FHIR interactions.

read, search-type and capabilities are plain methods here (parse → provider → validate →
Bundle); ``router`` only adapts HTTP to them. Contexts register their providers at start-up
(``app.py`` lists them); a misdeclared provider fails then, not at the first request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from ..config import FhirSettings
from .bundle import searchset
from .capability import capability_statement
from .outcome import BAD_VALUE, RESOURCE_NOT_FOUND, UNKNOWN_TYPE, FhirError
from .output import prune
from .provider import ResourceProvider, SearchResult
from .search import ID_PATTERN, ID_RULE, NoMatch, ParamType, parse_search
from .validation import OutputValidator, model_class


class FhirRegistry:
    def __init__(self, settings: FhirSettings):
        self.settings = settings
        self.validator = OutputValidator(settings.validate_output)
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self._providers: dict[str, ResourceProvider] = {}

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
        return self.validator.check(capability_statement(self._providers.values(), base=base,
                                                         date=self.started))

    def read(self, session: Session, resource_type: str, resource_id: str, actor: Any = None) -> dict[str, Any]:
        provider = self.provider(resource_type)
        if not ID_PATTERN.match(resource_id):
            raise FhirError(BAD_VALUE, f"{resource_id!r} {ID_RULE}", issue="value",
                            detail={"id": resource_id})
        try:
            found = provider.read(session, resource_id, actor)
        except NoMatch:  # e.g. an id that cannot be one of the provider's keys
            found = None
        if found is None:
            raise FhirError(RESOURCE_NOT_FOUND, f"{resource_type}/{resource_id} is not known", status=404,
                            issue="not-found", detail={"resource_type": resource_type, "id": resource_id})
        return self.validator.check(prune(found))

    def search(self, session: Session, resource_type: str, items: Iterable[tuple[str, str]],
               base: str, actor: Any = None) -> dict[str, Any]:
        provider = self.provider(resource_type)
        request = parse_search(resource_type, items, provider.search_params,
                               default_count=self.settings.default_count, max_count=self.settings.max_count)
        request = replace(request, actor=actor)
        try:
            result = provider.search(session, request)
        except NoMatch:
            result = SearchResult(total=0)
        resources = [self.validator.check(prune(r)) for r in result.resources]
        return searchset(base, request, result.total, resources)


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

