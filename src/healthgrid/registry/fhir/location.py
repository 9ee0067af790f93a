"""FHIR Location of two kinds sharing one id space: administrative divisions as
jurisdictions (``div-<division code>``, physicalType ``jdn``) and the sites of facilities
(``site-<organisation id>``, physicalType ``bu``). A search lists matching divisions first
(by code), then matching sites (in the organisation order), and pages across both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from ...errors import NotFound
from ...fhir import (
    ID_PARAM,
    NoMatch,
    ResourceProvider,
    SearchRequest,
    SearchResult,
    any_of,
    bad_value,
)
from .. import domain as d
from .. import queries as q
from .common import (
    DIVISION_CODE_SYSTEM,
    PHYSICAL_TYPE_SYSTEM,
    address_of,
    db_id,
    division_chains,
    ref_id,
    reference_param,
    sorted_or_none,
    string_param,
)

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
        string_param("name", "Name contains the value."),
        string_param("address", "Sites: street address or division name contains the value; jurisdictions: "
                           "the division name does. Cannot be combined with name when jurisdictions "
                           "may match."),
        reference_param("partof", "The jurisdiction (Location/div-<code>) directly containing the location.",
                   "Location", multiple_or=False, repeatable=False),
        reference_param("organization", "Organisation managing the site (jurisdictions have none).",
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
    constraints = [_kind_of_ids(request, "_id", _site_id), _kind_of_ids(request, "organization", ref_id)]
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
    return q.OrgFilter(ids=sorted_or_none(ids), name=name.values[0] if name else None,
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
        "address": address_of(chain),
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
        "address": address_of(chain, org.address),
        "position": {"longitude": org.longitude, "latitude": org.latitude} if has_position else None,
        "managingOrganization": {"reference": f"Organization/{org.id}", "display": org.name},
        "partOf": {"reference": f"Location/div-{org.division.code}", "display": org.division.name},
    }
