"""FHIR Organization: facilities with type, level, grade and their place in the division tree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from ...fhir import (
    ANY,
    ID_PARAM,
    NoMatch,
    ParamType,
    ResourceProvider,
    SearchParamDef,
    SearchRequest,
    SearchResult,
    Token,
    any_of,
    bad_value,
)
from .. import domain as d
from .. import queries as q
from .common import (
    GRADE_EXTENSION,
    GRADE_SYSTEM,
    NAME_DOC,
    ORG_CODE_SYSTEM,
    ORG_LEVEL_SYSTEM,
    ORG_TYPE_SYSTEM,
    address_of,
    code_of,
    concept,
    db_id,
    division_chains,
    ref_id,
    reference_param,
    sorted_or_none,
    string_param,
)

# --- Organization ---------------------------------------------------------------------


class OrganizationProvider(ResourceProvider):
    resource_type = "Organization"
    search_params = (
        ID_PARAM,
        string_param("name", NAME_DOC, "exact", "contains"),
        SearchParamDef("identifier", ParamType.TOKEN, f"Organisation code (system {ORG_CODE_SYSTEM})."),
        SearchParamDef("type", ParamType.TOKEN, f"Type ({ORG_TYPE_SYSTEM}) or level L0-L5 "
                                                f"({ORG_LEVEL_SYSTEM}); the alternatives of one occurrence "
                                                f"are of one kind."),
        reference_param("partof", "The parent organisation.", "Organization"),
        string_param("address", "Street address or the name of the organisation's own division contains "
                           "the value."),
        SearchParamDef("active", ParamType.TOKEN, "true or false.", codes=("true", "false")),
    )

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        page = q.search_organizations(session, org_filter(request), offset=request.offset,
                                      limit=request.count)
        chains = division_chains(session, [org.division for org in page.items])
        return SearchResult(page.total, [organization_to_fhir(o, chains[o.division_id]) for o in page.items])

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        org_id = db_id(resource_id)
        org = q.organization_or_none(session, org_id) if org_id is not None else None
        if org is None:
            return None
        return organization_to_fhir(org, division_chains(session, [org.division])[org.division_id])


def org_filter(request: SearchRequest) -> q.OrgFilter:
    name, address = request.single("name"), request.single("address")
    types, levels = _types_and_levels(request)
    active = any_of(request, "active", lambda t: t.code == "true")
    return q.OrgFilter(
        ids=sorted_or_none(any_of(request, "_id", db_id)),
        name=name.values[0] if name else None, name_exact=bool(name and name.modifier == "exact"),
        codes=sorted_or_none(any_of(request, "identifier", code_of(ORG_CODE_SYSTEM))),
        types=sorted_or_none(types), levels=sorted_or_none(levels),
        parent_org_ids=sorted_or_none(any_of(request, "partof", ref_id)),
        address=address.values[0] if address else None,
        active=next(iter(active)) if active is not None and len(active) == 1 else None,
    )


def _type_code(token: Token) -> tuple[str, Any] | None:
    """(field, code) of a ``type`` token: the organisation type or the level."""
    kinds = {ORG_TYPE_SYSTEM: ("type", d.OrgType), ORG_LEVEL_SYSTEM: ("level", d.OrgLevel)}
    candidates = [kinds[token.system]] if token.system in kinds else (
        list(kinds.values()) if token.system is None else [])
    for field, enum in candidates:
        if token.code is None:
            return field, ANY
        if token.code in {member.value for member in enum}:
            return field, token.code
    return None


def _types_and_levels(request: SearchRequest) -> tuple[set[str] | None, set[str] | None]:
    found: dict[str, set[str] | None] = {"type": None, "level": None}
    for clause in request.of("type"):
        parsed = [p for p in map(_type_code, clause.values) if p is not None]
        if not parsed:
            raise NoMatch("type")
        fields = {field for field, _ in parsed}
        if len(fields) > 1:
            raise bad_value("type", "one occurrence cannot mix organisation types and levels; "
                                    "give them as two type parameters")
        field, codes = fields.pop(), {code for _, code in parsed}
        if ANY in codes:
            continue
        found[field] = codes if found[field] is None else found[field] & codes
        if not found[field]:
            raise NoMatch("type")
    return found["type"], found["level"]


def organization_to_fhir(org: Any, chain: Sequence[Any]) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": str(org.id),
        "meta": {"lastUpdated": _instant(org.updated_at)},
        "extension": [_grade_extension(org.grade_level, org.grade_class)],
        "identifier": [{"use": "official", "system": ORG_CODE_SYSTEM, "value": org.code}],
        "active": org.active,
        # Two concepts, not two codings of one: a type and a level are different facts.
        "type": [concept(ORG_TYPE_SYSTEM, org.org_type, d.ORG_TYPE_LABELS),
                 concept(ORG_LEVEL_SYSTEM, org.level, d.ORG_LEVEL_LABELS)],
        "name": org.name,
        "telecom": [{"system": "phone", "value": org.phone, "use": "work"}] if org.phone else [],
        "address": [address_of(chain, org.address)],
        "partOf": {"reference": f"Organization/{org.parent_org_id}"} if org.parent_org_id else None,
    }


def _instant(moment: Any) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment else None


def _grade_extension(grade_level: int | None, grade_class: str | None) -> dict[str, Any] | None:
    if grade_level is None:
        return None
    label = d.grade_label(grade_level, grade_class)
    code = f"{grade_level}{grade_class or ''}"
    return {"url": GRADE_EXTENSION, "valueCodeableConcept": {
        "coding": [{"system": GRADE_SYSTEM, "code": code, "display": label}], "text": label}}
