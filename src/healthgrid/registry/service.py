"""Registry use cases: one function per thing a user does, one transaction each.

Every write takes the ``Actor`` and is checked and audited by ``security.access.check``:
the regional structure (divisions, organisations, alliances, key specialties) needs
``registry.region.write`` on a division in scope, a facility's own data (departments,
services, equipment, staff sites) ``registry.facility.write`` on that facility.

Uniqueness (organisation code, licence number, one membership per alliance, …) is checked
here for a clear message and enforced again by the database's unique keys, so a race
between two writers still ends in one row and a ``Conflict`` for the other.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import outbox
from ..db import transaction
from ..errors import Conflict, Invalid, NotFound
from ..security import access
from ..security.domain import Actor, AuditAction, Perm
from . import domain as d
from . import queries
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


def _flush_unique(session: Session, code: str, message: str) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(code, message) from exc


# Lookups that raise the coded NotFound live in queries; other contexts call them here.
get_division = queries.division_by_code
get_organization = queries.organization_by_id
get_organization_by_code = queries.organization_by_code


def create_division(
    session: Session, actor: Actor, *, code: str, name: str, level: str, parent_code: str | None = None
) -> Division:
    with transaction(session):
        lvl = d.parse_enum(d.DivisionLevel, level, "REG-005", "level")
        if not name.strip():
            raise Invalid("REG-006", "division name must not be empty", {"field": "name"})
        parent = get_division(session, parent_code) if parent_code else None
        # A top-level division is the region itself: only the platform creates one.
        access.check(session, actor, Perm.REGION_WRITE, AuditAction.CREATE, resource_type="Division",
                     resource_id=code, division_id=parent.id if parent else -1)
        if parent is not None and d.child_level(d.DivisionLevel(parent.level)) is not lvl:
            raise Invalid("REG-004", f"a {lvl} cannot sit under a {parent.level}",
                          {"field": "parent_code"})
        d.check_division_code(code, lvl, parent.code if parent else None)
        if session.scalar(select(Division.id).where(Division.code == code)):
            raise Conflict("REG-002", f"division code {code} already exists", {"field": "code"})
        div = Division(code=code, name=name.strip(), level=lvl.value,
                       parent_id=parent.id if parent else None)
        for anc in ("province_id", "city_id", "county_id", "township_id"):
            setattr(div, anc, getattr(parent, anc) if parent else None)
        session.add(div)
        _flush_unique(session, "REG-002", f"division code {code} already exists")
        if lvl is not d.DivisionLevel.VILLAGE:
            setattr(div, f"{lvl.value}_id", div.id)
        return div


ORG_FIELDS = ("name", "level", "org_type", "grade_level", "grade_class", "address", "phone",
              "latitude", "longitude", "active")


def create_organization(
    session: Session, actor: Actor, *, code: str, name: str, level: str, org_type: str, division_code: str,
    grade_level: int | None = None, grade_class: str | None = None,
    parent_org_code: str | None = None, address: str | None = None, phone: str | None = None,
    latitude: float | None = None, longitude: float | None = None,
) -> Organization:
    with transaction(session):
        d.check_org_code(code)
        division = get_division(session, division_code)
        access.check(session, actor, Perm.REGION_WRITE, AuditAction.CREATE, resource_type="Organization",
                     resource_id=code, division_id=division.id)
        org = Organization(code=code, division_id=division.id, version=1)
        _apply_org(org, dict(name=name, level=level, org_type=org_type, grade_level=grade_level,
                             grade_class=grade_class, address=address, phone=phone,
                             latitude=latitude, longitude=longitude, active=True))
        if parent_org_code:
            org.parent_org_id = get_organization_by_code(session, parent_org_code).id
        if session.scalar(select(Organization.id).where(Organization.code == code)):
            raise Conflict("REG-002", f"organisation code {code} already exists", {"field": "code"})
        session.add(org)
        _flush_unique(session, "REG-002", f"organisation code {code} already exists")
        outbox.publish(session, "registry.organization_created", {"org_id": org.id, "code": code})
        return org


def update_organization(session: Session, actor: Actor, org_id: int, changes: dict[str, Any]) -> Organization:
    """Partial update; ``division_code`` moves the organisation to another division."""
    with transaction(session):
        org = get_organization(session, org_id)
        access.check(session, actor, Perm.FACILITY_WRITE, AuditAction.UPDATE, resource_type="Organization",
                     resource_id=org_id, org_id=org_id, detail={"fields": sorted(changes)})
        unknown = set(changes) - set(ORG_FIELDS) - {"division_code"}
        if unknown:
            raise Invalid("REG-014", f"cannot update field(s) {', '.join(sorted(unknown))}",
                          {"fields": sorted(unknown)})
        nulled = sorted(f for f in ("name", "level", "org_type", "active", "division_code")
                        if f in changes and changes[f] is None)
        if nulled:
            raise Invalid("REG-015", f"field(s) {', '.join(nulled)} cannot be emptied", {"fields": nulled})
        if "division_code" in changes:
            target = get_division(session, changes.pop("division_code"))
            access.check(session, actor, Perm.REGION_WRITE, AuditAction.UPDATE, resource_type="Organization",
                         resource_id=org_id, division_id=target.id, detail={"moved_to": target.code})
            org.division_id = target.id
        merged = {f: getattr(org, f) for f in ORG_FIELDS} | changes
        _apply_org(org, merged)
        org.version += 1
        outbox.publish(session, "registry.organization_updated", {"org_id": org.id})
        return org


def _apply_org(org: Organization, values: dict[str, Any]) -> None:
    lvl = d.parse_enum(d.OrgLevel, values["level"], "REG-011", "level")
    typ = d.parse_enum(d.OrgType, values["org_type"], "REG-015", "org_type")
    d.check_org_level(typ, lvl)
    d.check_grade(values["grade_level"], values["grade_class"])
    if not (values["name"] or "").strip():
        raise Invalid("REG-016", "organisation name must not be empty", {"field": "name"})
    for f in ORG_FIELDS:
        setattr(org, f, values[f])
    org.name, org.level, org.org_type = values["name"].strip(), lvl.value, typ.value


def create_alliance(
    session: Session, actor: Actor, *, code: str, name: str, kind: str, lead_org_code: str,
    member_org_codes: list[str] = (), division_code: str | None = None,
    specialty_code: str | None = None,
) -> Alliance:
    with transaction(session):
        d.check_org_code(code)
        knd = d.parse_enum(d.AllianceKind, kind, "REG-040", "kind")
        if knd is d.AllianceKind.SPECIALTY_ALLIANCE:
            if not specialty_code:
                raise Invalid("REG-041", "a specialty alliance names its specialty",
                              {"field": "specialty_code"})
            d.check_department_code(specialty_code)
        lead = get_organization_by_code(session, lead_org_code)
        access.check(session, actor, Perm.REGION_WRITE, AuditAction.CREATE, resource_type="Alliance",
                     resource_id=code, org_id=lead.id)
        if session.scalar(select(Alliance.id).where(Alliance.code == code)):
            raise Conflict("REG-002", f"alliance code {code} already exists", {"field": "code"})
        alliance = Alliance(code=code, name=name.strip(), kind=knd.value, lead_org_id=lead.id,
                            specialty_code=specialty_code,
                            division_id=get_division(session, division_code).id if division_code else None)
        session.add(alliance)
        _flush_unique(session, "REG-002", f"alliance code {code} already exists")
        session.add(AllianceMember(alliance_id=alliance.id, org_id=lead.id, role="lead"))
        for member in dict.fromkeys(member_org_codes):
            if member != lead_org_code:
                add_alliance_member(session, actor, alliance_id=alliance.id, org_code=member)
        return alliance


def add_alliance_member(
    session: Session, actor: Actor, *, alliance_id: int, org_code: str, joined_on: date | None = None
) -> AllianceMember:
    with transaction(session):
        if session.get(Alliance, alliance_id) is None:
            raise NotFound("REG-042", f"alliance {alliance_id} not found", {"field": "alliance_id"})
        org = get_organization_by_code(session, org_code)
        access.check(session, actor, Perm.REGION_WRITE, AuditAction.UPDATE, resource_type="Alliance",
                     resource_id=alliance_id, org_id=org.id, detail={"member": org_code})
        member = AllianceMember(alliance_id=alliance_id, org_id=org.id, role="member", joined_on=joined_on)
        session.add(member)
        _flush_unique(session, "REG-043", f"{org_code} is already a member of alliance {alliance_id}")
        return member


def add_department(session: Session, actor: Actor, *, org_id: int, code: str,
                   name: str | None = None) -> Department:
    with transaction(session):
        get_organization(session, org_id)
        access.check(session, actor, Perm.FACILITY_WRITE, AuditAction.CREATE, resource_type="Department",
                     resource_id=code, org_id=org_id)
        d.check_department_code(code)
        dept = Department(org_id=org_id, code=code, name=(name or d.DEPARTMENTS[code][0]).strip())
        session.add(dept)
        _flush_unique(session, "REG-021", f"organisation {org_id} already has department {code}")
        return dept


def _department_of(session: Session, org_id: int, department_code: str | None) -> int | None:
    if department_code is None:
        return None
    dept_id = session.scalar(select(Department.id).where(
        Department.org_id == org_id, Department.code == department_code))
    if dept_id is None:
        raise NotFound("REG-022", f"organisation {org_id} has no department {department_code}",
                       {"field": "department_code"})
    return dept_id


def add_service(
    session: Session, actor: Actor, *, org_id: int, kind: str, name: str | None = None,
    department_code: str | None = None,
) -> HealthcareService:
    with transaction(session):
        get_organization(session, org_id)
        access.check(session, actor, Perm.FACILITY_WRITE, AuditAction.CREATE, resource_type="HealthcareService",
                     resource_id=kind, org_id=org_id)
        d.check_choice(kind, d.SERVICE_KINDS, "REG-050", "kind")
        svc = HealthcareService(org_id=org_id, kind=kind, name=name or d.SERVICE_KINDS[kind][0],
                                department_id=_department_of(session, org_id, department_code),
                                active=True)
        session.add(svc)
        _flush_unique(session, "REG-051", f"organisation {org_id} already offers {svc.name}")
        return svc


def add_equipment(
    session: Session, actor: Actor, *, org_id: int, kind: str, quantity: int = 1, model: str | None = None,
    department_code: str | None = None,
) -> Equipment:
    with transaction(session):
        get_organization(session, org_id)
        access.check(session, actor, Perm.FACILITY_WRITE, AuditAction.CREATE, resource_type="Equipment",
                     resource_id=kind, org_id=org_id)
        d.check_choice(kind, d.EQUIPMENT_KINDS, "REG-052", "kind")
        if quantity < 1:
            raise Invalid("REG-053", "equipment quantity must be at least 1", {"field": "quantity"})
        eq = Equipment(org_id=org_id, kind=kind, quantity=quantity, model=model,
                       department_id=_department_of(session, org_id, department_code))
        session.add(eq)
        session.flush()
        return eq


def create_practitioner(
    session: Session, actor: Actor, *, licence_no: str, name: str, sex: str, title: str,
    specialty_code: str | None = None, birth_year: int | None = None,
) -> Practitioner:
    with transaction(session):
        access.check(session, actor, Perm.FACILITY_WRITE, AuditAction.CREATE, resource_type="Practitioner",
                     resource_id=licence_no)
        d.check_licence(licence_no)
        d.check_choice(title, d.PRACTITIONER_TITLES, "REG-031", "title")
        if sex not in ("M", "F"):
            raise Invalid("REG-032", f"sex must be M or F, not {sex!r}", {"field": "sex"})
        if specialty_code is not None:
            d.check_department_code(specialty_code)
        if not name.strip():
            raise Invalid("REG-033", "practitioner name must not be empty", {"field": "name"})
        if session.scalar(select(Practitioner.id).where(Practitioner.licence_no == licence_no)):
            raise Conflict("REG-034", f"licence number {licence_no} is already registered",
                           {"field": "licence_no"})
        prac = Practitioner(licence_no=licence_no, name=name.strip(), sex=sex, title=title,
                            specialty_code=specialty_code, birth_year=birth_year, active=True)
        session.add(prac)
        _flush_unique(session, "REG-034", f"licence number {licence_no} is already registered")
        return prac


def add_practice_site(
    session: Session, actor: Actor, *, practitioner_id: int, org_id: int, department_code: str | None = None,
    is_primary: bool = False, since: date | None = None,
) -> PracticeSite:
    """Register a practising site; a practitioner has at most one primary site
    (主要执业机构); the others are multi-site practice (多点执业)."""
    with transaction(session):
        if session.get(Practitioner, practitioner_id) is None:
            raise NotFound("REG-035", f"practitioner {practitioner_id} not found",
                           {"field": "practitioner_id"})
        get_organization(session, org_id)
        access.check(session, actor, Perm.FACILITY_WRITE, AuditAction.CREATE, resource_type="PracticeSite",
                     resource_id=practitioner_id, org_id=org_id)
        if is_primary and session.scalar(select(PracticeSite.id).where(
                PracticeSite.practitioner_id == practitioner_id, PracticeSite.is_primary)):
            raise Conflict("REG-036", f"practitioner {practitioner_id} already has a primary site",
                           {"field": "is_primary"})
        site = PracticeSite(practitioner_id=practitioner_id, org_id=org_id, is_primary=is_primary,
                            department_id=_department_of(session, org_id, department_code), since=since)
        session.add(site)
        _flush_unique(session, "REG-037", f"practitioner {practitioner_id} already practises at {org_id}")
        return site


def designate_key_specialty(
    session: Session, actor: Actor, *, org_id: int, department_code: str, level: str, year: int | None = None
) -> KeySpecialty:
    with transaction(session):
        get_organization(session, org_id)
        access.check(session, actor, Perm.REGION_WRITE, AuditAction.CREATE, resource_type="KeySpecialty",
                     resource_id=department_code, org_id=org_id)
        d.check_department_code(department_code)
        lvl = d.parse_enum(d.SpecialtyLevel, level, "REG-060", "level")
        ks = KeySpecialty(org_id=org_id, department_code=department_code, level=lvl.value, year=year)
        session.add(ks)
        _flush_unique(session, "REG-061", f"organisation {org_id} already holds a {lvl} key "
                                          f"specialty in {department_code}")
        return ks

