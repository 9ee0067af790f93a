"""FHIR R4 providers of the registry: Organization, Location, Practitioner,
PractitionerRole and HealthcareService — read and search, mapped from registry.queries.

Locations are of two kinds sharing one id space: administrative divisions as
jurisdictions (``div-<division code>``, physicalType ``jdn``) and the sites of facilities
(``site-<organisation id>``, physicalType ``bu``). A search lists matching divisions first
(by code), then matching sites (in the organisation order), and pages across both.

Our own code systems and naming systems live under ``https://healthgrid.example/fhir``;
displays are in Chinese, the language of the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from ..errors import NotFound
from ..fhir import (
    ANY,
    ID_PARAM,
    FhirRegistry,
    NoMatch,
    ParamType,
    Reference,
    ResourceProvider,
    SearchParamDef,
    SearchRequest,
    SearchResult,
    Token,
    any_of,
    bad_value,
)
from . import domain as d
from . import queries as q

BASE = "https://healthgrid.example/fhir"
ORG_CODE_SYSTEM = f"{BASE}/NamingSystem/org-code"
DIVISION_CODE_SYSTEM = f"{BASE}/NamingSystem/division-code"
LICENCE_SYSTEM = f"{BASE}/NamingSystem/practitioner-licence"
ORG_TYPE_SYSTEM = f"{BASE}/CodeSystem/org-type"
ORG_LEVEL_SYSTEM = f"{BASE}/CodeSystem/org-level"
GRADE_SYSTEM = f"{BASE}/CodeSystem/hospital-grade"
DEPARTMENT_SYSTEM = f"{BASE}/CodeSystem/department"
SERVICE_TYPE_SYSTEM = f"{BASE}/CodeSystem/service-type"
TITLE_SYSTEM = f"{BASE}/CodeSystem/practitioner-title"
SITE_ROLE_SYSTEM = f"{BASE}/CodeSystem/practice-site-role"
GRADE_EXTENSION = f"{BASE}/StructureDefinition/hospital-grade"
PHYSICAL_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/location-physical-type"

SITE_ROLES = {"primary": ("主要执业机构", "Primary practice site"),
              "multi-site": ("多点执业", "Additional practice site")}
GENDERS = {"M": "male", "F": "female"}
SEXES = {gender: sex for sex, gender in GENDERS.items()}
# 复姓: the common two-character surnames; any other name's surname is its first character.
COMPOUND_SURNAMES = frozenset([
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "司徒", "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "申屠",
    "百里", "呼延", "澹台", "太史", "闻人", "万俟", "赫连", "拓跋", "钟离", "宗政",
])
MAX_DB_ID = 2**31 - 1  # our primary keys are 32-bit integers

NAME_DOC = "Name contains the value (any part of a Chinese name); `:exact` matches the whole name."


def _string(name: str, doc: str, *modifiers: str) -> SearchParamDef:
    # The registry's queries take one string per field: no OR list, no repetition.
    return SearchParamDef(name, ParamType.STRING, doc, modifiers=modifiers or ("contains",),
                          multiple_or=False, repeatable=False)


def _reference(name: str, doc: str, target: str, **kw: Any) -> SearchParamDef:
    return SearchParamDef(name, ParamType.REFERENCE, doc, targets=(target,), **kw)


# --- shared value helpers -------------------------------------------------------------


def db_id(value: str) -> int | None:
    """An id that can be one of our integer keys, or None (it then matches nothing)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 0 < int(value) <= MAX_DB_ID:
        return None
    return int(value)


def _ref_id(ref: Reference) -> int | None:
    return db_id(ref.id)


def _code_of(system: str):
    """Converter for ``any_of``: the code of a token in ``system`` (or with no system)."""
    def convert(token: Token) -> Any:
        if token.system not in (None, system):
            return None
        return ANY if token.code is None else token.code
    return convert


def _sorted(values: set[Any] | None) -> list[Any] | None:
    return None if values is None else sorted(values)


def _concept(system: str, code: str, labels: dict) -> dict[str, Any]:
    display = labels[code][0] if code in labels else None
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _address(chain: Sequence[Any], text: str | None = None) -> dict[str, Any]:
    """Address from a division chain (root first): province → state, city → city,
    county → district; the text is the street address or else the division path."""
    parts = {div.level: div.name for div in chain}
    return {"use": "work", "type": "physical", "text": text or "".join(div.name for div in chain),
            "district": parts.get("county"), "city": parts.get("city"), "state": parts.get("province"),
            "country": "CN"}


def _ancestor_ids(div: Any) -> list[int]:
    return [i for i in (div.province_id, div.city_id, div.county_id, div.township_id)
            if i is not None and i != div.id]


def division_chains(session: Session, divisions: Iterable[Any]) -> dict[int, list[Any]]:
    """Each division with its ancestors, root first — one query for a whole page."""
    known = {div.id: div for div in divisions}
    wanted = sorted({a for div in known.values() for a in _ancestor_ids(div)} - set(known))
    if wanted:
        found = q.search_divisions(session, ids=wanted, limit=len(wanted)).items
        known.update((div.id, div) for div in found)
    return {div.id: [known[a] for a in _ancestor_ids(div) if a in known] + [div]
            for div in list(known.values())}


# --- Organization ---------------------------------------------------------------------


class OrganizationProvider(ResourceProvider):
    resource_type = "Organization"
    search_params = (
        ID_PARAM,
        _string("name", NAME_DOC, "exact", "contains"),
        SearchParamDef("identifier", ParamType.TOKEN, f"Organisation code (system {ORG_CODE_SYSTEM})."),
        SearchParamDef("type", ParamType.TOKEN, f"Type ({ORG_TYPE_SYSTEM}) or level L0-L5 "
                                                f"({ORG_LEVEL_SYSTEM}); the alternatives of one occurrence "
                                                f"are of one kind."),
        _reference("partof", "The parent organisation.", "Organization"),
        _string("address", "Street address or the name of the organisation's own division contains "
                           "the value."),
        SearchParamDef("active", ParamType.TOKEN, "true or false.", codes=("true", "false")),
    )

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        page = q.search_organizations(session, org_filter(request), offset=request.offset,
                                      limit=request.count)
        chains = division_chains(session, [org.division for org in page.items])
        return SearchResult(page.total, [organization_to_fhir(o, chains[o.division_id]) for o in page.items])


def org_filter(request: SearchRequest) -> q.OrgFilter:
    name, address = request.single("name"), request.single("address")
    types, levels = _types_and_levels(request)
    active = any_of(request, "active", lambda t: t.code == "true")
    return q.OrgFilter(
        ids=_sorted(any_of(request, "_id", db_id)),
        name=name.values[0] if name else None, name_exact=bool(name and name.modifier == "exact"),
        codes=_sorted(any_of(request, "identifier", _code_of(ORG_CODE_SYSTEM))),
        types=_sorted(types), levels=_sorted(levels),
        parent_org_ids=_sorted(any_of(request, "partof", _ref_id)),
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
        "type": [_concept(ORG_TYPE_SYSTEM, org.org_type, d.ORG_TYPE_LABELS),
                 _concept(ORG_LEVEL_SYSTEM, org.level, d.ORG_LEVEL_LABELS)],
        "name": org.name,
        "telecom": [{"system": "phone", "value": org.phone, "use": "work"}] if org.phone else [],
        "address": [_address(chain, org.address)],
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


# --- Location -------------------------------------------------------------------------

JURISDICTION = {"coding": [{"system": PHYSICAL_TYPE_SYSTEM, "code": "jdn", "display": "Jurisdiction"}]}
BUILDING = {"coding": [{"system": PHYSICAL_TYPE_SYSTEM, "code": "bu", "display": "Building"}]}


def _division_code(value: str) -> str | None:
    return value.removeprefix("div-") if value.startswith("div-") and len(value) > 4 else None


def _site_id(value: str) -> int | None:
    return db_id(value.removeprefix("site-")) if value.startswith("site-") else None


def _kind_of_ids(request: SearchRequest, name: str, convert) -> set | None:
    """``any_of`` for one kind of Location id; an empty set when none of that kind can match."""
    try:
        return any_of(request, name, convert)
    except NoMatch:
        return set()


class LocationProvider(ResourceProvider):
    resource_type = "Location"
    search_params = (
        ID_PARAM,
        _string("name", "Name contains the value."),
        _string("address", "Sites: street address or division name contains the value; jurisdictions: "
                           "the division name does. Cannot be combined with name when jurisdictions "
                           "may match."),
        _reference("partof", "The jurisdiction (Location/div-<code>) directly containing the location.",
                   "Location", multiple_or=False, repeatable=False),
        _reference("organization", "Organisation managing the site (jurisdictions have none).",
                   "Organization"),
    )
    documentation = ("Jurisdictions (`div-<division code>`, physicalType jdn) and facility sites "
                     "(`site-<organisation id>`, physicalType bu); jurisdictions are listed first.")

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        divisions = _division_search(session, request)
        sites = _site_filter(session, request)
        div_page = (q.search_divisions(session, **divisions, offset=request.offset, limit=request.count)
                    if divisions is not None else q.Page(0, []))
        site_page = (q.search_organizations(session, sites, offset=max(0, request.offset - div_page.total),
                                            limit=request.count - len(div_page.items))
                     if sites is not None else q.Page(0, []))
        chains = division_chains(session, list(div_page.items) + [o.division for o in site_page.items])
        resources = ([division_to_fhir(x, chains[x.id]) for x in div_page.items]
                     + [site_to_fhir(o, chains[o.division_id]) for o in site_page.items])
        return SearchResult(div_page.total + site_page.total, resources)


def _division_search(session: Session, request: SearchRequest) -> dict[str, Any] | None:
    """Keyword arguments of queries.search_divisions, or None when no jurisdiction can match."""
    codes = _kind_of_ids(request, "_id", _division_code)
    if codes == set() or request.of("organization"):
        return None
    name, address = request.single("name"), request.single("address")
    if name and address:
        raise bad_value("address", "cannot be combined with name in a Location search that may match "
                                   "jurisdictions (add organization= to search sites only)")
    kwargs: dict[str, Any] = {"name": (name or address).values[0] if (name or address) else None}
    if codes is not None:
        kwargs["ids"] = _division_ids(session, codes)
    parent = _partof_division(request)
    if parent is not None:
        if not _division_ids(session, {parent}):
            return None  # an unknown parent matches nothing (search_divisions would refuse it)
        kwargs["parent_code"] = parent
    return kwargs


def _division_ids(session: Session, codes: Iterable[str]) -> list[int]:
    ids = []
    for code in sorted(codes):
        try:
            ids.append(q.division_by_code(session, code).id)
        except NotFound:
            continue
    return ids


def _partof_division(request: SearchRequest) -> str | None:
    clause = request.single("partof")
    if clause is None:
        return None
    code = _division_code(clause.values[0].id)
    if code is None:
        raise NoMatch("partof")  # only jurisdictions contain locations
    return code


def _site_filter(session: Session, request: SearchRequest) -> q.OrgFilter | None:
    """The organisations whose sites match, or None when no site can match."""
    constraints = [_kind_of_ids(request, "_id", _site_id), _kind_of_ids(request, "organization", _ref_id)]
    try:
        parent = _partof_division(request)
    except NoMatch:
        return None
    if parent is not None:
        constraints.append(set(q.organization_ids_in_division(session, parent)))
    ids: set[int] | None = None
    for allowed in constraints:
        if allowed is not None:
            ids = allowed if ids is None else ids & allowed
    if ids == set():
        return None
    name, address = request.single("name"), request.single("address")
    return q.OrgFilter(ids=_sorted(ids), name=name.values[0] if name else None,
                       address=address.values[0] if address else None)


def division_to_fhir(div: Any, chain: Sequence[Any]) -> dict[str, Any]:
    parent = div.parent
    return {
        "resourceType": "Location",
        "id": f"div-{div.code}",
        "identifier": [{"system": DIVISION_CODE_SYSTEM, "value": div.code}],
        "status": "active",
        "name": div.name,
        "description": d.DIVISION_LABELS[div.level][0] if div.level in d.DIVISION_LABELS else None,
        "mode": "instance",
        "physicalType": JURISDICTION,
        "address": _address(chain),
        "partOf": {"reference": f"Location/div-{parent.code}", "display": parent.name} if parent else None,
    }


def site_to_fhir(org: Any, chain: Sequence[Any]) -> dict[str, Any]:
    has_position = org.latitude is not None and org.longitude is not None
    return {
        "resourceType": "Location",
        "id": f"site-{org.id}",
        "status": "active" if org.active else "inactive",
        "name": org.name,
        "mode": "instance",
        "physicalType": BUILDING,
        "telecom": [{"system": "phone", "value": org.phone, "use": "work"}] if org.phone else [],
        "address": _address(chain, org.address),
        "position": {"longitude": org.longitude, "latitude": org.latitude} if has_position else None,
        "managingOrganization": {"reference": f"Organization/{org.id}", "display": org.name},
        "partOf": {"reference": f"Location/div-{org.division.code}", "display": org.division.name},
    }


# --- Practitioner ---------------------------------------------------------------------


class PractitionerProvider(ResourceProvider):
    resource_type = "Practitioner"
    search_params = (
        ID_PARAM,
        _string("name", NAME_DOC, "exact", "contains"),
        SearchParamDef("identifier", ParamType.TOKEN, f"Licence number (system {LICENCE_SYSTEM})."),
        SearchParamDef("gender", ParamType.TOKEN, "male or female (other and unknown match nobody).",
                       codes=("male", "female", "other", "unknown")),
    )

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        name = request.single("name")
        sexes = any_of(request, "gender", lambda t: SEXES.get(t.code))
        page = q.search_practitioners(
            session, ids=_sorted(any_of(request, "_id", db_id)),
            name=name.values[0] if name else None, name_exact=bool(name and name.modifier == "exact"),
            licence_nos=_sorted(any_of(request, "identifier", _code_of(LICENCE_SYSTEM))),
            sexes=_sorted(sexes), offset=request.offset, limit=request.count)
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
        "qualification": [{"code": _concept(TITLE_SYSTEM, prac.title, d.PRACTITIONER_TITLES)}],
    }


# --- PractitionerRole -----------------------------------------------------------------


class PractitionerRoleProvider(ResourceProvider):
    resource_type = "PractitionerRole"
    search_params = (
        ID_PARAM,
        _reference("practitioner", "The practitioner.", "Practitioner"),
        _reference("organization", "The organisation practised at.", "Organization"),
        SearchParamDef("specialty", ParamType.TOKEN, f"Department code ({DEPARTMENT_SYSTEM}) of the site "
                                                     f"or of the practitioner."),
    )
    documentation = ("One role per practising site; `code` tells the primary site (主要执业机构) from "
                     f"multi-site practice (多点执业), system {SITE_ROLE_SYSTEM}.")

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        page = q.search_practice_sites(
            session, ids=_sorted(any_of(request, "_id", db_id)),
            practitioner_ids=_sorted(any_of(request, "practitioner", _ref_id)),
            org_ids=_sorted(any_of(request, "organization", _ref_id)),
            specialty_codes=_sorted(any_of(request, "specialty", _code_of(DEPARTMENT_SYSTEM))),
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
        "code": [_concept(TITLE_SYSTEM, prac.title, d.PRACTITIONER_TITLES),
                 _concept(SITE_ROLE_SYSTEM, "primary" if site.is_primary else "multi-site", SITE_ROLES)],
        "specialty": [_concept(DEPARTMENT_SYSTEM, code, d.DEPARTMENTS) for code in specialties],
    }


# --- HealthcareService ----------------------------------------------------------------


class HealthcareServiceProvider(ResourceProvider):
    resource_type = "HealthcareService"
    search_params = (
        ID_PARAM,
        _reference("organization", "The organisation providing the service.", "Organization"),
        SearchParamDef("service-type", ParamType.TOKEN, f"Kind of service ({SERVICE_TYPE_SYSTEM})."),
        _string("name", "Name contains the value."),
    )

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        name = request.single("name")
        page = q.search_services(
            session, ids=_sorted(any_of(request, "_id", db_id)),
            org_ids=_sorted(any_of(request, "organization", _ref_id)),
            kinds=_sorted(any_of(request, "service-type", _code_of(SERVICE_TYPE_SYSTEM))),
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
        "type": [_concept(SERVICE_TYPE_SYSTEM, svc.kind, d.SERVICE_KINDS)],
        "specialty": [_concept(DEPARTMENT_SYSTEM, department_code, d.DEPARTMENTS)] if department_code else [],
        "name": svc.name,
    }


def register(registry: FhirRegistry) -> None:
    for provider in (OrganizationProvider(), LocationProvider(), PractitionerProvider(),
                     PractitionerRoleProvider(), HealthcareServiceProvider()):
        registry.register(provider)
