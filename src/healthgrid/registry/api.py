"""REST API of the registry under ``/api/registry``: parse, one service/query call, render."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from ..http import SessionDep
from ..security.domain import Perm
from ..security.http import ActorDep, require
from . import queries, service

# Reading the directory needs a log-in with registry.read (every role has it); writes are
# checked against the actor's scope in the service.
router = APIRouter(dependencies=[Depends(require(Perm.REGISTRY_READ))])
# Bounded: an offset beyond any table is a client error, not a database overflow (found by
# schemathesis: SQLite refuses integers past 2**63).
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip")]
Limit = Annotated[int, Query(ge=0, le=500, description="page size")]
# Row ids are 32-bit on both databases; anything larger cannot exist (and would overflow
# SQLite's integers): a 422, never a 500.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class DivisionIn(BaseModel):
    code: str = Field(description="GB/T 2260 (6 digits) or statistical code (12 digits)")
    name: str
    level: str = Field(description="province | city | county | township | village")
    parent_code: str | None = None


class DivisionOut(_Out):
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None


class DivisionList(BaseModel):
    total: int
    items: list[DivisionOut]


class OrganizationIn(BaseModel):
    code: str
    name: str
    level: str = Field(description="L0 village … L5 national")
    org_type: str
    division_code: str
    grade_level: int | None = Field(None, description="1, 2 or 3 (一/二/三级)")
    grade_class: str | None = Field(None, description="A 甲, B 乙, C 丙, S 特 (三级 only)")
    parent_org_code: str | None = None
    address: str | None = None
    phone: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class OrganizationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    level: str | None = None
    org_type: str | None = None
    grade_level: int | None = None
    grade_class: str | None = None
    division_code: str | None = None
    address: str | None = None
    phone: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    active: bool | None = None


class OrganizationOut(_Out):
    id: int
    code: str
    name: str
    level: str
    org_type: str
    grade_level: int | None
    grade_class: str | None
    division_id: int
    parent_org_id: int | None
    address: str | None
    phone: str | None
    latitude: float | None
    longitude: float | None
    active: bool
    version: int


class OrganizationList(BaseModel):
    total: int
    items: list[OrganizationOut]


class DepartmentIn(BaseModel):
    code: str = Field(description="《医疗机构诊疗科目名录》 code, e.g. 03.03")
    name: str | None = None


class DepartmentOut(_Out):
    id: int
    org_id: int
    code: str
    name: str


class ServiceIn(BaseModel):
    kind: str
    name: str | None = None
    department_code: str | None = None


class ServiceOut(_Out):
    id: int
    org_id: int
    kind: str
    name: str
    department_id: int | None


class EquipmentIn(BaseModel):
    kind: str
    quantity: int = 1
    model: str | None = None
    department_code: str | None = None


class EquipmentOut(_Out):
    id: int
    org_id: int
    kind: str
    quantity: int
    model: str | None


class KeySpecialtyIn(BaseModel):
    department_code: str
    level: str = Field(description="national | provincial | city | county")
    year: int | None = None


class KeySpecialtyOut(_Out):
    id: int
    org_id: int
    department_code: str
    level: str
    year: int | None


class AllianceIn(BaseModel):
    code: str
    name: str
    kind: str = Field(
        description="urban_group | county_community | specialty_alliance | telemedicine_network")
    lead_org_code: str
    member_org_codes: list[str] = []
    division_code: str | None = None
    specialty_code: str | None = None


class AllianceOut(_Out):
    id: int
    code: str
    name: str
    kind: str
    lead_org_id: int
    division_id: int | None
    specialty_code: str | None


class MemberIn(BaseModel):
    org_code: str
    joined_on: date | None = None


class MemberOut(_Out):
    org_id: int
    role: str
    joined_on: date | None


class AllianceDetailOut(AllianceOut):
    members: list[MemberOut]


class AllianceList(BaseModel):
    total: int
    items: list[AllianceOut]


class PractitionerIn(BaseModel):
    licence_no: str
    name: str
    sex: str = Field(description="M | F")
    title: str
    specialty_code: str | None = None
    birth_year: int | None = None


class PractitionerOut(_Out):
    id: int
    licence_no: str
    name: str
    sex: str
    title: str
    specialty_code: str | None
    active: bool


class PractitionerList(BaseModel):
    total: int
    items: list[PractitionerOut]


class SiteIn(BaseModel):
    org_id: int
    department_code: str | None = None
    is_primary: bool = False
    since: date | None = None


class SiteOut(_Out):
    id: int
    practitioner_id: int
    org_id: int
    department_id: int | None
    is_primary: bool
    since: date | None


@router.get("/divisions", response_model=DivisionList)
def list_divisions(session: SessionDep, parent_code: str | None = None, level: str | None = None,
                   name: str | None = None, offset: Offset = 0, limit: Limit = 50) -> Any:
    return queries.search_divisions(session, parent_code=parent_code, level=level, name=name,
                                    offset=offset, limit=limit)


@router.post("/divisions", response_model=DivisionOut, status_code=status.HTTP_201_CREATED)
def create_division(body: DivisionIn, session: SessionDep, actor: ActorDep) -> Any:
    return service.create_division(session, actor, **body.model_dump())


@router.get("/divisions/{code}", response_model=DivisionOut)
def get_division(code: str, session: SessionDep) -> Any:
    return queries.division_by_code(session, code)


@router.get("/divisions/{code}/organizations", response_model=OrganizationList)
def division_subtree(code: str, session: SessionDep, level: Annotated[list[str] | None, Query()] = None,
                     org_type: Annotated[list[str] | None, Query()] = None,
                     offset: Offset = 0, limit: Limit = 50) -> Any:
    """Organisations anywhere in the division's subtree."""
    f = queries.OrgFilter(division_code=code, levels=level, types=org_type)
    return queries.search_organizations(session, f, offset=offset, limit=limit)


@router.get("/organizations", response_model=OrganizationList)
def list_organizations(session: SessionDep, name: str | None = None,
                       level: Annotated[list[str] | None, Query()] = None,
                       org_type: Annotated[list[str] | None, Query()] = None,
                       division_code: str | None = None, alliance_id: int | None = None,
                       offset: Offset = 0, limit: Limit = 50) -> Any:
    f = queries.OrgFilter(name=name, levels=level, types=org_type, division_code=division_code,
                          alliance_id=alliance_id)
    return queries.search_organizations(session, f, offset=offset, limit=limit)


@router.post("/organizations", response_model=OrganizationOut, status_code=status.HTTP_201_CREATED)
def create_organization(body: OrganizationIn, session: SessionDep, actor: ActorDep) -> Any:
    return service.create_organization(session, actor, **body.model_dump())


@router.get("/organizations/{org_id}", response_model=OrganizationOut)
def get_organization(org_id: RowId, session: SessionDep) -> Any:
    return queries.organization_by_id(session, org_id)


@router.patch("/organizations/{org_id}", response_model=OrganizationOut)
def update_organization(org_id: RowId, body: OrganizationPatch, session: SessionDep, actor: ActorDep) -> Any:
    return service.update_organization(session, actor, org_id, body.model_dump(exclude_unset=True))


@router.post("/organizations/{org_id}/departments", response_model=DepartmentOut, status_code=201)
def add_department(org_id: RowId, body: DepartmentIn, session: SessionDep, actor: ActorDep) -> Any:
    return service.add_department(session, actor, org_id=org_id, **body.model_dump())


@router.post("/organizations/{org_id}/services", response_model=ServiceOut, status_code=201)
def add_service(org_id: RowId, body: ServiceIn, session: SessionDep, actor: ActorDep) -> Any:
    return service.add_service(session, actor, org_id=org_id, **body.model_dump())


@router.post("/organizations/{org_id}/equipment", response_model=EquipmentOut, status_code=201)
def add_equipment(org_id: RowId, body: EquipmentIn, session: SessionDep, actor: ActorDep) -> Any:
    return service.add_equipment(session, actor, org_id=org_id, **body.model_dump())


@router.post("/organizations/{org_id}/key-specialties", response_model=KeySpecialtyOut, status_code=201)
def designate_key_specialty(org_id: RowId, body: KeySpecialtyIn, session: SessionDep, actor: ActorDep) -> Any:
    return service.designate_key_specialty(session, actor, org_id=org_id, **body.model_dump())


@router.get("/alliances", response_model=AllianceList)
def list_alliances(session: SessionDep, kind: str | None = None, division_code: str | None = None,
                   offset: Offset = 0, limit: Limit = 50) -> Any:
    return queries.search_alliances(session, kind=kind, division_code=division_code,
                                    offset=offset, limit=limit)


@router.post("/alliances", response_model=AllianceOut, status_code=201)
def create_alliance(body: AllianceIn, session: SessionDep, actor: ActorDep) -> Any:
    return service.create_alliance(session, actor, **body.model_dump())


@router.get("/alliances/{alliance_id}", response_model=AllianceDetailOut)
def get_alliance(alliance_id: RowId, session: SessionDep) -> Any:
    detail = queries.alliance_detail(session, alliance_id)
    base = AllianceOut.model_validate(detail.alliance).model_dump()
    return AllianceDetailOut(**base, members=[MemberOut.model_validate(m) for _, m in detail.members])


@router.post("/alliances/{alliance_id}/members", response_model=MemberOut, status_code=201)
def add_alliance_member(alliance_id: RowId, body: MemberIn, session: SessionDep, actor: ActorDep) -> Any:
    return service.add_alliance_member(session, actor, alliance_id=alliance_id, **body.model_dump())


@router.get("/practitioners", response_model=PractitionerList)
def list_practitioners(session: SessionDep, name: str | None = None, org_id: int | None = None,
                       offset: Offset = 0, limit: Limit = 50) -> Any:
    return queries.search_practitioners(session, name=name, org_id=org_id, offset=offset, limit=limit)


@router.post("/practitioners", response_model=PractitionerOut, status_code=201)
def create_practitioner(body: PractitionerIn, session: SessionDep, actor: ActorDep) -> Any:
    return service.create_practitioner(session, actor, **body.model_dump())


@router.post("/practitioners/{practitioner_id}/sites", response_model=SiteOut, status_code=201)
def add_practice_site(practitioner_id: RowId, body: SiteIn, session: SessionDep, actor: ActorDep) -> Any:
    return service.add_practice_site(session, actor, practitioner_id=practitioner_id, **body.model_dump())
