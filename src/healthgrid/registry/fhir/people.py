"""FHIR Practitioner and PractitionerRole (practising sites, incl. multi-site practice 多点执业)."""

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
    COMPOUND_SURNAMES,
    DEPARTMENT_SYSTEM,
    GENDERS,
    LICENCE_SYSTEM,
    NAME_DOC,
    SEXES,
    SITE_ROLE_SYSTEM,
    SITE_ROLES,
    TITLE_SYSTEM,
    code_of,
    concept,
    db_id,
    ref_id,
    reference_param,
    sorted_or_none,
    string_param,
)

# --- Practitioner ---------------------------------------------------------------------


class PractitionerProvider(ResourceProvider):
    resource_type = "Practitioner"
    search_params = (
        ID_PARAM,
        string_param("name", NAME_DOC, "exact", "contains"),
        SearchParamDef("identifier", ParamType.TOKEN, f"Licence number (system {LICENCE_SYSTEM})."),
        SearchParamDef("gender", ParamType.TOKEN, "male or female (other and unknown match nobody).",
                       codes=("male", "female", "other", "unknown")),
    )

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        name = request.single("name")
        sexes = any_of(request, "gender", lambda t: SEXES.get(t.code))
        page = q.search_practitioners(
            session, ids=sorted_or_none(any_of(request, "_id", db_id)),
            name=name.values[0] if name else None, name_exact=bool(name and name.modifier == "exact"),
            licence_nos=sorted_or_none(any_of(request, "identifier", code_of(LICENCE_SYSTEM))),
            sexes=sorted_or_none(sexes), offset=request.offset, limit=request.count)
        return SearchResult(page.total, [practitioner_to_fhir(p) for p in page.items])


def human_name(name: str) -> dict[str, Any]:
    """Chinese names are written surname first with no space; a compound surname (复姓)
    takes two characters. A name with spaces is taken as given names then surname."""
    if " " in name.strip():
        *given, family = name.split()
    else:
        cut = 2 if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else 1
        family, given = name[:cut], [name[cut:]] if name[cut:] else []
    return {"use": "official", "text": name, "family": family, "given": given}


def practitioner_to_fhir(prac: Any) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": str(prac.id),
        "identifier": [{"use": "official", "system": LICENCE_SYSTEM, "value": prac.licence_no}],
        "active": prac.active,
        "name": [human_name(prac.name)],
        "gender": GENDERS.get(prac.sex, "unknown"),
        "birthDate": f"{prac.birth_year:04d}" if prac.birth_year and prac.birth_year > 0 else None,
        "qualification": [{"code": concept(TITLE_SYSTEM, prac.title, d.PRACTITIONER_TITLES)}],
    }


# --- PractitionerRole -----------------------------------------------------------------


class PractitionerRoleProvider(ResourceProvider):
    resource_type = "PractitionerRole"
    search_params = (
        ID_PARAM,
        reference_param("practitioner", "The practitioner.", "Practitioner"),
        reference_param("organization", "The organisation practised at.", "Organization"),
        SearchParamDef("specialty", ParamType.TOKEN, f"Department code ({DEPARTMENT_SYSTEM}) of the site "
                                                     f"or of the practitioner."),
    )
    documentation = ("One role per practising site; `code` tells the primary site (主要执业机构) from "
                     f"multi-site practice (多点执业), system {SITE_ROLE_SYSTEM}.")

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        page = q.search_practice_sites(
            session, ids=sorted_or_none(any_of(request, "_id", db_id)),
            practitioner_ids=sorted_or_none(any_of(request, "practitioner", ref_id)),
            org_ids=sorted_or_none(any_of(request, "organization", ref_id)),
            specialty_codes=sorted_or_none(any_of(request, "specialty", code_of(DEPARTMENT_SYSTEM))),
            offset=request.offset, limit=request.count)
        return SearchResult(page.total, [practitioner_role_to_fhir(row) for row in page.items])


def practitioner_role_to_fhir(row: Any) -> dict[str, Any]:
    site, prac = row.site, row.practitioner
    specialties = dict.fromkeys(c for c in (row.department_code, prac.specialty_code) if c)
    return {
        "resourceType": "PractitionerRole",
        "id": str(site.id),
        "active": prac.active,
        "period": {"start": site.since.isoformat()} if site.since else None,
        "practitioner": {"reference": f"Practitioner/{prac.id}", "display": prac.name},
        "organization": {"reference": f"Organization/{site.org_id}"},
        "code": [concept(TITLE_SYSTEM, prac.title, d.PRACTITIONER_TITLES),
                 concept(SITE_ROLE_SYSTEM, "primary" if site.is_primary else "multi-site", SITE_ROLES)],
        "specialty": [concept(DEPARTMENT_SYSTEM, code, d.DEPARTMENTS) for code in specialties],
    }
