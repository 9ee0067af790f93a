"""REST API of the master patient index under ``/api/patients``: parse, one service call,
render. Permissions, scope, masking and audit are decided in the service.

A registration retried by a client is safe without an Idempotency-Key: the retry finds the
first one (by its identifiers, or as a certain probabilistic match) and links to it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ..http import SessionDep
from ..security.http import ActorDep
from . import merging, service

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Limit = Annotated[int, Query(ge=0, le=200)]


class KinIn(BaseModel):
    name: str = Field(max_length=60)
    relationship: str = Field("other", description="spouse | parent | child | sibling | grandparent | grandchild"
                                                   " | other")
    phone: str | None = Field(None, max_length=20)


class PatientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=60, description="姓名, Chinese characters (or Latin letters for a foreigner)")
    name_pinyin: str | None = Field(None, max_length=200, description="optional; tone marks or digits allowed")
    sex: str | None = Field(None, max_length=8, description="M | F | U, or GB/T 2261.1 1 | 2 | 0 | 9")
    birth_date: date | None = None
    resident_id: str | None = Field(None, max_length=20, description="18 digits (GB 11643) or a legacy 15")
    health_card: str | None = Field(None, max_length=64, description="电子健康卡 ID")
    insurance: str | None = Field(None, max_length=32, description="医保 number")
    mrn: str | None = Field(None, max_length=40, description="the registering facility's record number")
    phone: str | None = Field(None, max_length=20)
    division_id: int | None = Field(None, ge=1, le=2**31 - 1, description="village / community division id")
    address_line: str | None = Field(None, max_length=200)
    kin: list[KinIn] = Field(default_factory=list, max_length=5)

    def to_service(self) -> service.PatientIn:
        fields = self.model_dump(exclude={"kin", "org_id", "expected_version"})
        return service.PatientIn(**fields, kin=[service.KinIn(**k.model_dump()) for k in self.kin])


class RegistrationIn(PatientIn):
    org_id: int | None = Field(None, ge=1, le=2**31 - 1, description="the registering facility")


class UpdateIn(RegistrationIn):
    expected_version: int | None = Field(None, ge=1, le=2**31 - 1, description="refuse (412) if changed since")


class IdentifierOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    assigner: int
    value: str


class KinOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    relationship: str
    phone: str | None


class PatientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    name_pinyin: str
    sex: str
    birth_date: date | None
    phone: str | None
    division_id: int | None
    division_path: list[str]
    address_line: str | None
    identifiers: list[IdentifierOut]
    kin: list[KinOut]
    registered_org_id: int | None
    active: bool
    replaced_by: int | None
    replaces: list[int]
    version: int
    masked: bool
    created_at: datetime
    updated_at: datetime


class RegistrationOut(BaseModel):
    outcome: Literal["created", "linked", "review"]
    matched_by: str | None
    probability: float | None
    reviews: list[int]
    patient: PatientOut


class PatientSummaryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    sex: str
    birth_date: date | None
    resident_id: str | None
    phone: str | None
    division_path: list[str]


class PatientList(BaseModel):
    total: int
    items: list[PatientSummaryOut]


class MatchOut(BaseModel):
    patient: PatientSummaryOut
    probability: float
    grade: str


class TimelineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    kind: str
    org_id: int | None
    patient_id: int
    detail: dict


class ReviewRowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    status: str
    source: str
    probability: float
    patient_id: int
    candidate_id: int
    left_name: str
    right_name: str


class ReviewList(BaseModel):
    total: int
    items: list[ReviewRowOut]


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    status: str
    source: str
    probability: float
    weight: float
    levels: dict[str, str]
    weights: dict[str, float]
    left: PatientOut
    right: PatientOut
    decided_by: str | None
    note: str | None


class DecisionIn(BaseModel):
    decision: Literal["merge", "distinct"]
    note: str = Field(max_length=500)
    survivor_id: int | None = Field(None, ge=1, le=2**31 - 1)


class MergeIn(BaseModel):
    survivor_id: int = Field(ge=1, le=2**31 - 1)
    loser_id: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(max_length=500)


class UnmergeIn(BaseModel):
    reason: str = Field(max_length=500)


class MergeOut(BaseModel):
    merge_id: int | None


@router.post("", response_model=RegistrationOut, status_code=status.HTTP_201_CREATED)
def register_patient(body: RegistrationIn, session: SessionDep, actor: ActorDep, response: Response):
    """Register a resident: linked to the existing record (200) or created (201)."""
    reg = service.register_patient(session, actor, org_id=body.org_id, data=body.to_service())
    if reg.outcome == "linked":
        response.status_code = status.HTTP_200_OK
    return RegistrationOut(outcome=reg.outcome, matched_by=reg.matched_by, probability=reg.probability,
                           reviews=reg.reviews, patient=PatientOut.model_validate(reg.patient))


@router.get("", response_model=PatientList)
def search_patients(session: SessionDep, actor: ActorDep, identifier_kind: str | None = Query(None, max_length=20),
                    identifier: str | None = Query(None, max_length=64), name: str | None = Query(None, max_length=60),
                    birth_date: date | None = None, sex: str | None = Query(None, max_length=8),
                    phone: str | None = Query(None, max_length=20),
                    division_id: int | None = Query(None, ge=1, le=2**31 - 1), offset: Offset = 0, limit: Limit = 20):
    query = service.PatientQuery(identifier_kind, identifier, name, birth_date, sex, phone, division_id)
    page = service.search_patients(session, actor, query, offset=offset, limit=limit)
    return PatientList(total=page.total, items=[PatientSummaryOut.model_validate(p) for p in page.items])


@router.post("/match", response_model=list[MatchOut])
def match_patients(body: RegistrationIn, session: SessionDep, actor: ActorDep,
                   count: int = Query(10, ge=1, le=50)):
    """Scored candidates for a described patient (nothing is registered)."""
    ranked = service.match_patients(session, actor, body.to_service(), org_id=body.org_id, count=count)
    return [MatchOut(patient=PatientSummaryOut.model_validate(s), probability=p, grade=g) for s, p, g in ranked]


@router.get("/reviews", response_model=ReviewList)
def list_reviews(session: SessionDep, actor: ActorDep, status_: str = Query("open", alias="status",
                 pattern="^(open|merged|distinct)$"), offset: Offset = 0, limit: Limit = 20):
    total, rows = merging.list_reviews(session, actor, status=status_, offset=offset, limit=limit)
    return ReviewList(total=total, items=[ReviewRowOut.model_validate(r) for r in rows])


@router.get("/reviews/{review_id}", response_model=ReviewOut)
def get_review(review_id: RowId, session: SessionDep, actor: ActorDep):
    return ReviewOut.model_validate(merging.get_review(session, actor, review_id))


@router.post("/reviews/{review_id}/decision", response_model=MergeOut)
def decide_review(review_id: RowId, body: DecisionIn, session: SessionDep, actor: ActorDep):
    merge_id = merging.decide_review(session, actor, review_id, decision=body.decision, note=body.note,
                                     survivor_id=body.survivor_id)
    return MergeOut(merge_id=merge_id)


@router.post("/merges", response_model=MergeOut, status_code=status.HTTP_201_CREATED)
def merge_patients(body: MergeIn, session: SessionDep, actor: ActorDep):
    return MergeOut(merge_id=merging.merge_patients(session, actor, survivor_id=body.survivor_id,
                                                    loser_id=body.loser_id, reason=body.reason))


@router.post("/merges/{merge_id}/unmerge", response_model=MergeOut)
def unmerge_patients(merge_id: RowId, body: UnmergeIn, session: SessionDep, actor: ActorDep):
    merging.unmerge_patients(session, actor, merge_id=merge_id, reason=body.reason)
    return MergeOut(merge_id=merge_id)


@router.get("/{patient_id}", response_model=PatientOut)
def get_patient(patient_id: RowId, session: SessionDep, actor: ActorDep):
    """The record standing for this id now (a merged-away id answers with its survivor)."""
    return PatientOut.model_validate(service.get_patient(session, actor, patient_id))


@router.put("/{patient_id}", response_model=PatientOut)
def update_patient(patient_id: RowId, body: UpdateIn, session: SessionDep, actor: ActorDep):
    view = service.update_patient(session, actor, patient_id, data=body.to_service(), org_id=body.org_id,
                                  expected_version=body.expected_version)
    return PatientOut.model_validate(view)


@router.get("/{patient_id}/timeline", response_model=list[TimelineOut])
def patient_timeline(patient_id: RowId, session: SessionDep, actor: ActorDep):
    return [TimelineOut.model_validate(e) for e in service.patient_timeline(session, actor, patient_id)]
