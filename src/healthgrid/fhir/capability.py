"""The CapabilityStatement, generated from the registered providers.

Only elements of R4 (4.0.1) appear: fhirclient parses /metadata with strict R4 models
before anything else and fails on any element it does not know.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import __version__
from .provider import ResourceProvider, interactions
from .search import SearchParamDef

FHIR_VERSION = "4.0.1"
PAGING_NOTE = ("Paging: `_count` (page size) and `_offset` (matches skipped) — follow Bundle.link "
               "next/previous. `_count=0` or `_summary=count` returns only Bundle.total.")


def capability_statement(providers: Iterable[ResourceProvider], *, base: str, date: str,
                         system_interactions: Iterable[str] = ()) -> dict[str, Any]:
    """``system_interactions``: transaction / batch when a Bundle handler is registered."""
    return {
        "resourceType": "CapabilityStatement",
        "id": "healthgrid",
        "name": "HealthGrid",
        "title": "HealthGrid FHIR R4 server",
        "status": "active",
        "date": date,
        "publisher": "HealthGrid",
        "kind": "instance",
        "software": {"name": "HealthGrid", "version": __version__},
        "implementation": {"description": "HealthGrid regional health information platform", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "documentation": PAGING_NOTE,
            "resource": [_resource(p) for p in sorted(providers, key=lambda p: p.resource_type)],
            "interaction": [{"code": code} for code in system_interactions],
        }],
    }


def _resource(provider: ResourceProvider) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": provider.resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{provider.resource_type}",
        "interaction": [{"code": code} for code in interactions(provider)],
        "versioning": provider.versioning,
        "readHistory": False,
        "updateCreate": False,
        "searchParam": [_search_param(p) for p in provider.search_params],
    }
    if provider.includes:
        entry["searchInclude"] = [f"{provider.resource_type}:{i.name}" for i in provider.includes]
    if provider.operations:
        entry["operation"] = [{"name": op.name, "definition": op.definition, "documentation": op.documentation}
                              if op.documentation else {"name": op.name, "definition": op.definition}
                              for op in provider.operations]
    if provider.documentation:
        entry["documentation"] = provider.documentation
    return entry


def _search_param(param: SearchParamDef) -> dict[str, Any]:
    notes = [param.documentation]
    if param.modifiers:
        notes.append("Modifiers: " + ", ".join(f"`:{m}`" for m in param.modifiers) + ".")
    if not param.multiple_or:
        notes.append("One value (no comma-separated alternatives).")
    if not param.repeatable:
        notes.append("May be given once.")
    if param.prefixes is not None:
        notes.append("Prefixes: " + ", ".join(f"`{p}`" for p in param.prefixes) + ".")
    return {"name": param.name, "type": param.type.value, "documentation": " ".join(notes)}
