"""FHIR HealthcareService: what a facility offers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ...fhir import (
    ID_PARAM,
    ParamType,
    ResourceProvider,
    SearchParamDef,
    SearchRequest,
    SearchResult,
    any_of,
)
from .. import domain as d
from .. import queries as q
from .common import (
    DEPARTMENT_SYSTEM,
    SERVICE_TYPE_SYSTEM,
    code_of,
    concept,
    db_id,
    ref_id,
    reference_param,
    sorted_or_none,
    string_param,
)

# --- HealthcareService ----------------------------------------------------------------


class HealthcareServiceProvider(ResourceProvider):
    resource_type = "HealthcareService"
    search_params = (
        ID_PARAM,
        reference_param("organization", "The organisation providing the service.", "Organization"),
        SearchParamDef("service-type", ParamType.TOKEN, f"Kind of service ({SERVICE_TYPE_SYSTEM})."),
        string_param("name", "Name contains the value."),
    )

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        name = request.single("name")
        page = q.search_services(
            session, ids=sorted_or_none(any_of(request, "_id", db_id)),
            org_ids=sorted_or_none(any_of(request, "organization", ref_id)),
            kinds=sorted_or_none(any_of(request, "service-type", code_of(SERVICE_TYPE_SYSTEM))),
            name=name.values[0] if name else None, offset=request.offset, limit=request.count)
        departments = q.department_codes(session, [s.department_id for s in page.items if s.department_id])
        return SearchResult(page.total, [service_to_fhir(s, departments.get(s.department_id))
                                         for s in page.items])


def service_to_fhir(svc: Any, department_code: str | None) -> dict[str, Any]:
    return {
        "resourceType": "HealthcareService",
        "id": str(svc.id),
        "active": svc.active,
        "providedBy": {"reference": f"Organization/{svc.org_id}"},
        "type": [concept(SERVICE_TYPE_SYSTEM, svc.kind, d.SERVICE_KINDS)],
        "specialty": [concept(DEPARTMENT_SYSTEM, department_code, d.DEPARTMENTS)] if department_code else [],
        "name": svc.name,
    }
