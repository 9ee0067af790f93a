"""Read-only listings of the registry for the API, FHIR, web and (later) analytics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from ..errors import NotFound
from . import domain as d
from .models import (
    Alliance,
    AllianceMember,
    Department,
    Division,
    Equipment,
    HealthcareService,
    KeySpecialty,
    Organization,
    PracticeSite,
    Practitioner,
)


@dataclass
class Page:
    total: int
    items: list[Any]


def _page(session: Session, stmt: Select, offset: int, limit: int, order_by) -> Page:
    """One page and the total. The page is read first: when it is the first page and not
    full, its length is the total and the COUNT query is skipped (most searches and every
    read by id end there)."""
    rows: list[Any] = []
    if limit > 0:
        rows = list(session.scalars(stmt.order_by(*order_by).offset(offset).limit(limit)).unique().all())
        if offset == 0 and len(rows) < limit:
            return Page(len(rows), rows)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    return Page(total, rows)


def _like(text: str) -> str:
    """A contains-pattern (matched with ILIKE: case-insensitive for Latin letters on both
    databases) with LIKE's own wildcards escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def subtree_division_ids(division: Division) -> Select:
    """ids of a division and everything under it (one indexed equality)."""
    if division.level == "village":
        return select(Division.id).where(Division.id == division.id)
    return select(Division.id).where(getattr(Division, f"{division.level}_id") == division.id)


def division_by_code(session: Session, code: str) -> Division:
    div = session.scalar(select(Division).where(Division.code == code))
    if div is None:
        raise NotFound("REG-001", f"unknown division code {code!r}", {"field": "division_code"})
    return div


def divisions_by_ids(session: Session, ids: Sequence[int]) -> list[Division]:
    if not ids:
        return []
    return list(session.scalars(select(Division).where(Division.id.in_(ids))))


def organization_or_none(session: Session, org_id: int) -> Organization | None:
    return session.get(Organization, org_id)


def division_ancestors(session: Session, division: Division) -> list[Division]:
    ids = [i for i in (division.province_id, division.city_id, division.county_id, division.township_id)
           if i is not None and i != division.id]
    rows = {x.id: x for x in session.scalars(select(Division).where(Division.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def division_children(session: Session, division: Division | None) -> list[Division]:
    cond = Division.parent_id.is_(None) if division is None else Division.parent_id == division.id
    return list(session.scalars(select(Division).where(cond).order_by(Division.code)))


def search_divisions(
    session: Session, *, name: str | None = None, code: str | None = None,
    level: str | None = None, parent_code: str | None = None, ids: Sequence[int] | None = None,
    offset: int = 0, limit: int = 20,
) -> Page:
    stmt = select(Division)
    if name:
        stmt = stmt.where(Division.name.ilike(_like(name), escape="\\"))
    if code:
        stmt = stmt.where(Division.code == code)
    if level:
        stmt = stmt.where(Division.level == level)
    if ids is not None:
        stmt = stmt.where(Division.id.in_(ids))
    if parent_code:
        stmt = stmt.where(Division.parent_id == division_by_code(session, parent_code).id)
    return _page(session, stmt, offset, limit, [Division.code])


@dataclass
class OrgFilter:
    ids: Sequence[int] | None = None
    name: str | None = None
    name_exact: bool = False
    codes: Sequence[str] | None = None
    types: Sequence[str] | None = None
    levels: Sequence[str] | None = None
    division_code: str | None = None
    parent_org_ids: Sequence[int] | None = None
    address: str | None = None
    active: bool | None = None
    alliance_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def search_organizations(session: Session, f: OrgFilter, *, offset: int = 0, limit: int = 20) -> Page:
    stmt = select(Organization)
    if f.ids is not None:
        stmt = stmt.where(Organization.id.in_(f.ids))
    if f.name:
        stmt = stmt.where(Organization.name == f.name if f.name_exact
                          else Organization.name.ilike(_like(f.name), escape="\\"))
    if f.codes is not None:
        stmt = stmt.where(Organization.code.in_(f.codes))
    if f.types is not None:
        stmt = stmt.where(Organization.org_type.in_(f.types))
    if f.levels is not None:
        stmt = stmt.where(Organization.level.in_(f.levels))
    if f.division_code:
        div = division_by_code(session, f.division_code)
        stmt = stmt.where(Organization.division_id.in_(subtree_division_ids(div)))
    if f.parent_org_ids is not None:
        stmt = stmt.where(Organization.parent_org_id.in_(f.parent_org_ids))
    if f.address:
        pat = _like(f.address)
        stmt = stmt.join(Division, Division.id == Organization.division_id).where(
            or_(Organization.address.ilike(pat, escape="\\"), Division.name.ilike(pat, escape="\\")))
    if f.active is not None:
        stmt = stmt.where(Organization.active.is_(f.active))
    if f.alliance_id is not None:
        stmt = stmt.where(Organization.id.in_(select(AllianceMember.org_id).where(
            AllianceMember.alliance_id == f.alliance_id)))
    return _page(session, stmt, offset, limit, [Organization.level.desc(), Organization.code])


def organization_by_id(session: Session, org_id: int) -> Organization:
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound("REG-013", f"organisation {org_id} not found", {"field": "org_id"})
    return org


def organization_by_code(session: Session, code: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.code == code))
    if org is None:
        raise NotFound("REG-013", f"organisation code {code!r} not found", {"field": "org_code"})
    return org


def organization_counts_by_level(session: Session, division: Division | None) -> dict[str, int]:
    stmt = select(Organization.level, func.count()).group_by(Organization.level)
    if division is not None:
        stmt = stmt.where(Organization.division_id.in_(subtree_division_ids(division)))
    return dict(session.execute(stmt).all())


@dataclass
class OrgDetail:
    org: Organization
    parent: Organization | None
    ancestors: list[Division]
    departments: list[Department]
    services: list[HealthcareService]
    equipment: list[Equipment]
    staff: list[tuple[Practitioner, PracticeSite]]
    alliances: list[tuple[Alliance, str]]
    key_specialties: list[KeySpecialty]
    staff_total: int


def organization_detail(session: Session, org_id: int, *, staff_limit: int = 200) -> OrgDetail:
    org = organization_by_id(session, org_id)
    parent = session.get(Organization, org.parent_org_id) if org.parent_org_id else None
    staff_stmt = (select(Practitioner, PracticeSite).join(PracticeSite, PracticeSite.practitioner_id
                  == Practitioner.id).where(PracticeSite.org_id == org_id))
    staff_total = session.scalar(select(func.count()).select_from(staff_stmt.subquery())) or 0
    # Primary-site staff first, then multi-site (多点执业); each by seniority of title (the
    # order of PRACTITIONER_TITLES), then name — in SQL, so the first page is the right one.
    seniority = case({code: i for i, code in enumerate(d.PRACTITIONER_TITLES)},
                     value=Practitioner.title, else_=len(d.PRACTITIONER_TITLES))
    staff = [tuple(r) for r in session.execute(staff_stmt.order_by(
        PracticeSite.is_primary.desc(), seniority, Practitioner.name, Practitioner.id).limit(staff_limit))]
    return OrgDetail(
        org=org, parent=parent,
        ancestors=division_ancestors(session, org.division) + [org.division],
        departments=list(session.scalars(select(Department).where(Department.org_id == org_id)
                                         .order_by(Department.code))),
        services=list(session.scalars(select(HealthcareService).where(HealthcareService.org_id == org_id)
                                      .order_by(HealthcareService.kind))),
        equipment=list(session.scalars(select(Equipment).where(Equipment.org_id == org_id)
                                       .order_by(Equipment.kind))),
        staff=staff, staff_total=staff_total,
        alliances=[tuple(r) for r in session.execute(
            select(Alliance, AllianceMember.role).join(AllianceMember, AllianceMember.alliance_id
                                                       == Alliance.id)
            .where(AllianceMember.org_id == org_id).order_by(Alliance.kind))],
        key_specialties=list(session.scalars(select(KeySpecialty).where(KeySpecialty.org_id == org_id)
                                             .order_by(KeySpecialty.level))),
    )


@dataclass
class AllianceDetail:
    alliance: Alliance
    lead: Organization
    members: list[tuple[Organization, AllianceMember]]


def alliance_detail(session: Session, alliance_id: int) -> AllianceDetail:
    alliance = session.get(Alliance, alliance_id)
    if alliance is None:
        raise NotFound("REG-042", f"alliance {alliance_id} not found", {"field": "alliance_id"})
    members = [tuple(r) for r in session.execute(
        select(Organization, AllianceMember).join(AllianceMember, AllianceMember.org_id == Organization.id)
        .where(AllianceMember.alliance_id == alliance_id)
        .order_by(AllianceMember.role, Organization.level.desc(), Organization.code))]
    return AllianceDetail(alliance, session.get(Organization, alliance.lead_org_id), members)


def search_alliances(session: Session, *, kind: str | None = None, division_code: str | None = None,
                     offset: int = 0, limit: int = 50) -> Page:
    stmt = select(Alliance)
    if kind:
        stmt = stmt.where(Alliance.kind == kind)
    if division_code:
        div = division_by_code(session, division_code)
        stmt = stmt.where(Alliance.division_id.in_(subtree_division_ids(div)))
    return _page(session, stmt, offset, limit, [Alliance.kind, Alliance.code])


def search_practitioners(
    session: Session, *, ids: Sequence[int] | None = None, name: str | None = None,
    name_exact: bool = False, licence_nos: Sequence[str] | None = None,
    sexes: Sequence[str] | None = None, org_id: int | None = None, offset: int = 0, limit: int = 20,
) -> Page:
    stmt = select(Practitioner)
    if ids is not None:
        stmt = stmt.where(Practitioner.id.in_(ids))
    if name:
        stmt = stmt.where(Practitioner.name == name if name_exact
                          else Practitioner.name.ilike(_like(name), escape="\\"))
    if licence_nos is not None:
        stmt = stmt.where(Practitioner.licence_no.in_(licence_nos))
    if sexes is not None:
        stmt = stmt.where(Practitioner.sex.in_(sexes))
    if org_id is not None:
        stmt = stmt.where(Practitioner.id.in_(select(PracticeSite.practitioner_id)
                                              .where(PracticeSite.org_id == org_id)))
    return _page(session, stmt, offset, limit, [Practitioner.id])


def practitioner_by_id(session: Session, practitioner_id: int) -> Practitioner:
    prac = session.get(Practitioner, practitioner_id)
    if prac is None:
        raise NotFound("REG-035", f"practitioner {practitioner_id} not found", {"field": "practitioner_id"})
    return prac


@dataclass
class SiteRow:
    site: PracticeSite
    practitioner: Practitioner
    department_code: str | None


def search_practice_sites(
    session: Session, *, ids: Sequence[int] | None = None, practitioner_ids: Sequence[int] | None = None,
    org_ids: Sequence[int] | None = None, specialty_codes: Sequence[str] | None = None,
    offset: int = 0, limit: int = 20,
) -> Page:
    stmt = (select(PracticeSite, Practitioner, Department.code)
            .join(Practitioner, Practitioner.id == PracticeSite.practitioner_id)
            .outerjoin(Department, Department.id == PracticeSite.department_id))
    if ids is not None:
        stmt = stmt.where(PracticeSite.id.in_(ids))
    if practitioner_ids is not None:
        stmt = stmt.where(PracticeSite.practitioner_id.in_(practitioner_ids))
    if org_ids is not None:
        stmt = stmt.where(PracticeSite.org_id.in_(org_ids))
    if specialty_codes is not None:
        stmt = stmt.where(or_(Department.code.in_(specialty_codes),
                              Practitioner.specialty_code.in_(specialty_codes)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(PracticeSite.id).offset(offset).limit(max(limit, 0))).all()
    return Page(total, [SiteRow(s, p, c) for s, p, c in rows] if limit > 0 else [])


def search_services(
    session: Session, *, ids: Sequence[int] | None = None, org_ids: Sequence[int] | None = None,
    kinds: Sequence[str] | None = None, name: str | None = None, offset: int = 0, limit: int = 20,
) -> Page:
    stmt = select(HealthcareService)
    if ids is not None:
        stmt = stmt.where(HealthcareService.id.in_(ids))
    if org_ids is not None:
        stmt = stmt.where(HealthcareService.org_id.in_(org_ids))
    if kinds is not None:
        stmt = stmt.where(HealthcareService.kind.in_(kinds))
    if name:
        stmt = stmt.where(HealthcareService.name.ilike(_like(name), escape="\\"))
    return _page(session, stmt, offset, limit, [HealthcareService.id])


def department_codes(session: Session, department_ids: Sequence[int]) -> dict[int, str]:
    if not department_ids:
        return {}
    return dict(session.execute(select(Department.id, Department.code)
                                .where(Department.id.in_(set(department_ids)))).all())


def region_summary(session: Session) -> dict[str, int]:
    def count(model) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0
    return {"divisions": count(Division), "organizations": count(Organization),
            "alliances": count(Alliance), "practitioners": count(Practitioner),
            "departments": count(Department), "practice_sites": count(PracticeSite)}


# --- Web views ------------------------------------------------------------------------
# One call per page for registry/web.py, so the adapter stays "parse, one query, render".
# Composed only of the queries above.


@dataclass
class DivisionOverview:
    division: Division | None  # None: the whole region, whose children are the top-level divisions
    ancestors: list[Division]
    children: list[Division]
    counts_by_level: dict[str, int]
    organizations: Page


def division_overview(
    session: Session, code: str | None, *, levels: Sequence[str] | None = None,
    types: Sequence[str] | None = None, offset: int = 0, limit: int = 20,
) -> DivisionOverview:
    """A division (or the whole region), its ancestors and children, its subtree's
    organisation counts by level, and one page of the subtree's organisations."""
    division = division_by_code(session, code) if code else None
    return DivisionOverview(
        division=division,
        ancestors=division_ancestors(session, division) if division is not None else [],
        children=division_children(session, division),
        counts_by_level=organization_counts_by_level(session, division),
        organizations=search_organizations(
            session, OrgFilter(division_code=code, levels=levels, types=types), offset=offset, limit=limit),
    )


# --- FHIR views -----------------------------------------------------------------------
# For registry/fhir.py (Location): read-only, composed of the tables above.


def organization_ids_in_division(session: Session, division_code: str) -> list[int]:
    """ids of the organisations attached to this very division (not its subtree), for
    FHIR ``Location?partof=``; [] for an unknown code, since a search that names a
    division nobody has matches nothing rather than failing."""
    division_id = session.scalar(select(Division.id).where(Division.code == division_code))
    if division_id is None:
        return []
    return list(session.scalars(select(Organization.id).where(Organization.division_id == division_id)
                                .order_by(Organization.id)))


# --- placement, for the security context's scope decisions ------------------------------


def division_lineage(session: Session, division_id: int) -> set[int]:
    """The division and all its ancestors' ids; empty for an unknown id."""
    div = session.get(Division, division_id)
    if div is None:
        return set()
    return {i for i in (div.province_id, div.city_id, div.county_id, div.township_id, div.id) if i}


def organization_placement(session: Session, org_id: int) -> tuple[set[int], set[int]] | None:
    """(division lineage, alliance ids) of an organisation; None if there is no such one."""
    division_id = session.scalar(select(Organization.division_id).where(Organization.id == org_id))
    if division_id is None:
        return None
    alliances = set(session.scalars(select(AllianceMember.alliance_id).where(AllianceMember.org_id == org_id)))
    alliances |= set(session.scalars(select(Alliance.id).where(Alliance.lead_org_id == org_id)))
    return division_lineage(session, division_id), alliances


def alliance_lead(session: Session, alliance_id: int) -> int | None:
    return session.scalar(select(Alliance.lead_org_id).where(Alliance.id == alliance_id))


def organizations_in_scope(session: Session, *, division_ids: Sequence[int] = (),
                           alliance_ids: Sequence[int] = (), org_ids: Sequence[int] = ()) -> set[int]:
    """Every organisation in any of the division subtrees or alliances, plus ``org_ids``."""
    found = set(org_ids)
    for div in divisions_by_ids(session, list(division_ids)):
        found |= set(session.scalars(select(Organization.id)
                                     .where(Organization.division_id.in_(subtree_division_ids(div)))))
    if alliance_ids:
        found |= set(session.scalars(select(AllianceMember.org_id)
                                     .where(AllianceMember.alliance_id.in_(alliance_ids))))
        found |= set(session.scalars(select(Alliance.lead_org_id).where(Alliance.id.in_(alliance_ids))))
    return found


def practitioner_exists(session: Session, practitioner_id: int) -> bool:
    return session.get(Practitioner, practitioner_id) is not None


def root_division_id(session: Session) -> int | None:
    """The region's top division (the one without a parent; the lowest id if several)."""
    return session.scalar(select(Division.id).where(Division.parent_id.is_(None)).order_by(Division.id).limit(1))


def village_places(conn) -> list[tuple[int, int, str]]:
    """(village id, township id, county code) of every village / community, for generating
    residents (a Connection or a Session)."""
    county = Division.__table__.alias("county")
    rows = conn.execute(select(Division.id, Division.township_id, county.c.code)
                        .join(county, county.c.id == Division.county_id)
                        .where(Division.level == "village").order_by(Division.id)).all()
    return [(r[0], r[1], r[2][:6]) for r in rows]


def primary_facility_by_division(conn, division_ids: Sequence[int]) -> dict[int, int]:
    """The village clinic or community station of each division (the lowest-id one)."""
    out: dict[int, int] = {}
    rows = conn.execute(select(Organization.division_id, Organization.id)
                        .where(Organization.level == "L0").order_by(Organization.id)).all()
    wanted = set(division_ids)
    for div, org in rows:
        if div in wanted:
            out.setdefault(div, org)
    return out


def hospital_ids(session: Session) -> list[int]:
    """Hospitals (level L2 and above) that see outpatients."""
    return list(session.scalars(select(Organization.id).where(
        Organization.level.in_(["L2", "L3", "L4", "L5"]),
        Organization.org_type.in_(["general_hospital", "tcm_hospital", "mch_hospital"])).order_by(Organization.id)))


# -- references other contexts check and show (scheduling) --------------------------------------

def department_ref(session: Session, department_id: int) -> tuple[int, str, str] | None:
    """(organisation id, code, name) of a department, or None."""
    row = session.execute(select(Department.org_id, Department.code, Department.name)
                          .where(Department.id == department_id)).first()
    return tuple(row) if row else None


def equipment_ref(session: Session, equipment_id: int) -> tuple[int, str, int | None] | None:
    """(organisation id, kind, department id) of a piece of equipment, or None."""
    row = session.execute(select(Equipment.org_id, Equipment.kind, Equipment.department_id)
                          .where(Equipment.id == equipment_id)).first()
    return tuple(row) if row else None


def practises_at(session: Session, practitioner_id: int, org_id: int) -> bool:
    return session.scalar(select(PracticeSite.id).where(PracticeSite.practitioner_id == practitioner_id,
                                                        PracticeSite.org_id == org_id)) is not None


def names_of(session: Session, *, orgs: Sequence[int] = (), departments: Sequence[int] = (),
             practitioners: Sequence[int] = ()) -> dict[str, dict[int, str]]:
    """Display names by id, in one query per kind."""
    out: dict[str, dict[int, str]] = {"org": {}, "department": {}, "practitioner": {}}
    if orgs:
        out["org"] = dict(session.execute(select(Organization.id, Organization.name)
                                          .where(Organization.id.in_(set(orgs)))).all())
    if departments:
        out["department"] = dict(session.execute(select(Department.id, Department.name)
                                                 .where(Department.id.in_(set(departments)))).all())
    if practitioners:
        out["practitioner"] = dict(session.execute(select(Practitioner.id, Practitioner.name)
                                                   .where(Practitioner.id.in_(set(practitioners)))).all())
    return out


def departments_of(session: Session, org_id: int) -> list[Department]:
    return list(session.scalars(select(Department).where(Department.org_id == org_id).order_by(Department.code)))


def practitioner_titles(session: Session, practitioner_ids: Sequence[int]) -> dict[int, str]:
    if not practitioner_ids:
        return {}
    return dict(session.execute(select(Practitioner.id, Practitioner.title)
                                .where(Practitioner.id.in_(set(practitioner_ids)))).all())


def share_alliance(session: Session, org_a: int, org_b: int) -> bool:
    a, b = organization_placement(session, org_a), organization_placement(session, org_b)
    return bool(a and b and a[1] & b[1])


# -- what the scheduling synth builds schedules from (a Connection or a Session) -------------------

OUTPATIENT_TYPES = ("general_hospital", "tcm_hospital", "mch_hospital", "specialty_hospital",
                    "township_health_centre", "community_health_centre")


def outpatient_facilities(conn) -> list[tuple[int, str, str, int | None, int | None]]:
    """(id, level, type, county id, township id) of the active hospitals and primary care
    centres that hold clinics; the county and township are those of the facility's division."""
    rows = conn.execute(select(Organization.id, Organization.level, Organization.org_type, Division.id,
                               Division.level, Division.county_id, Division.township_id)
                        .join(Division, Division.id == Organization.division_id)
                        .where(Organization.active.is_(True), Organization.org_type.in_(OUTPATIENT_TYPES))
                        .order_by(Organization.id)).all()
    return [(r[0], r[1], r[2], r[3] if r[4] == "county" else r[5], r[3] if r[4] == "township" else r[6])
            for r in rows]


def facility_resources(conn, org_ids: Sequence[int]) -> dict[str, list[tuple]]:
    """Departments (id, org, code, name), doctors by practice site (practitioner, org,
    department, title, name, is primary site) and equipment (id, org, kind, department,
    quantity) of these facilities, in id order."""
    wanted = list(org_ids)
    depts = conn.execute(select(Department.id, Department.org_id, Department.code, Department.name)
                         .where(Department.org_id.in_(wanted)).order_by(Department.id)).all()
    doctors = conn.execute(select(PracticeSite.practitioner_id, PracticeSite.org_id, PracticeSite.department_id,
                                  Practitioner.title, Practitioner.name, PracticeSite.is_primary)
                           .join(Practitioner, Practitioner.id == PracticeSite.practitioner_id)
                           .where(PracticeSite.org_id.in_(wanted), Practitioner.active.is_(True),
                                  Practitioner.specialty_code.is_not(None))
                           .order_by(PracticeSite.id)).all()
    equipment = conn.execute(select(Equipment.id, Equipment.org_id, Equipment.kind, Equipment.department_id,
                                    Equipment.quantity)
                             .where(Equipment.org_id.in_(wanted)).order_by(Equipment.id)).all()
    return {"departments": [tuple(r) for r in depts], "doctors": [tuple(r) for r in doctors],
            "equipment": [tuple(r) for r in equipment]}


def village_counties(conn) -> dict[int, int]:
    """County id of every village / community."""
    return dict(conn.execute(select(Division.id, Division.county_id).where(Division.level == "village")).all())


@dataclass(frozen=True)
class DivisionChoice:
    id: int
    name: str
    level: str
    depth: int  # 0 the given division, 1 its children, 2 theirs


def division_choices(session: Session, division_ids: Sequence[int], *, below: int = 2) -> list[DivisionChoice]:
    """Each given division and its sub-divisions down to ``below`` levels under a province or
    city (a measures page's choice of province, cities, counties), in code order."""
    out: list[DivisionChoice] = []

    def walk(division, depth: int) -> None:  # noqa: ANN001
        out.append(DivisionChoice(division.id, division.name, division.level, depth))
        if depth < below and division.level in ("province", "city"):
            for child in division_children(session, division):
                walk(child, depth + 1)

    for division in sorted(divisions_by_ids(session, list(division_ids)), key=lambda x: x.code):
        walk(division, 0)
    return out
