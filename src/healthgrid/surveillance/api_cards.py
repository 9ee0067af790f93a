"""REST API of the notifiable-disease report card under ``/api/surveillance/cards``: parse,
one service call (``reporting``), render. Access, validation, the clocks, the audit and the
outbox are the service's.

- ``POST /cards`` — a first report (初次报告); ``Idempotency-Key`` header: a retry answers the
  first card (200 instead of 201). A duplicate of a live card (SURV-302) is refused unless
  ``new_episode`` is true. Every card problem comes back at once (422, SURV-200,
  ``detail.problems``: code, field, zh, en).
- ``GET /cards`` — the cards in the reader's scope, filtered; ``overdue=review`` is the county
  CDC's review-overdue list, ``overdue=report`` the cards reported late.
- ``GET /cards/prefill`` — a card filled from the patient index and an ICD-10 diagnosis (the
  one click); SURV-308 when the code is not notifiable.
- ``GET /cards/{id}``; ``POST /cards/{id}/correction`` (订正: only the fields sent change),
  ``/deletion`` (删除), ``/review`` (审核: approve or return) — each with the
  ``expected_version`` it was read at (SURV-303 when someone changed the card meanwhile).

Times on the card (``diagnosed_at``) are China Standard Time as written on the card; a time
with an offset is converted. Text fields refuse control characters (422 here, never a 500
from the database).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..http import SessionDep
from ..security.http import ActorDep
from . import card_fields as cf
from . import card_supplement as supp
from . import reporting
from .card_queries import CST, OVERDUE, STATUSES, CardView
from .catalogue import CASE_CLASSES

router = APIRouter(prefix="/cards")
MAX_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
OptId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=100)]
Version = Annotated[int | None, Field(None, ge=1, le=MAX_ID)]
PLAIN = r"^[^\x00-\x1f\x7f]*$"  # no control characters
NOTE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # line breaks allowed
Day = Annotated[date, Field(ge=date(1890, 1, 1), le=date(2100, 12, 31))]
Code = Annotated[str, Field(pattern=r"^[0-9A-Za-z]{1,10}$")]


def _text(n: int) -> Any:
    return Annotated[str | None, Field(None, max_length=n, pattern=PLAIN)]


def _card_time(value: datetime) -> datetime:
    """A diagnosis time as written on the card: China Standard Time, no offset."""
    local = value.astimezone(CST).replace(tzinfo=None) if value.tzinfo is not None else value
    if not 1890 <= local.year <= 2100:
        raise ValueError("a diagnosis time between 1890 and 2100")
    return local


def _codes(table: dict) -> Any:
    return Literal[tuple(table)]


CardTime = Annotated[datetime, AfterValidator(_card_time)]


class SupplementIn(BaseModel):
    """附卡: the AIDS/STI card's or the HFMD card's items (card_supplement.py)."""

    model_config = ConfigDict(extra="forbid")
    contact_history: list[_codes(supp.AIDS_CONTACT)] | None = Field(None, max_length=len(supp.AIDS_CONTACT))
    std_history: _codes(supp.STD_HISTORY) | None = None
    route: _codes(supp.AIDS_ROUTE) | None = None
    sample_source: _codes(supp.AIDS_SAMPLE) | None = None
    lab_conclusion: _codes(supp.AIDS_LAB) | None = None
    lab_positive_date: Day | None = None
    lab_unit: _text(50) = None
    lab_result: _codes(supp.HFMD_LAB) | None = None
    severe: _codes(supp.YES_NO) | None = None

    def to_service(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        if "lab_positive_date" in data:
            data["lab_positive_date"] = data["lab_positive_date"].isoformat()
        return data


class CardFields(BaseModel):
    """The card's fields as the reporter fills them (2019 national card). The platform sets
    the number, the report type and the reporting unit and area."""

    model_config = ConfigDict(extra="forbid")
    patient_name: _text(40) = None
    parent_name: _text(40) = None
    id_type: _codes(cf.ID_TYPES) | None = "resident_id"
    id_number: _text(30) = None
    id_holder: Literal["self", "parent"] = "self"
    sex: _codes(cf.SEXES) | None = Field(None, description="GB/T 2261.1: 1 male, 2 female")
    birth_date: Day | None = None
    age: int | None = Field(None, ge=0, le=150)
    age_unit: _codes(cf.AGE_UNITS) | None = None
    work_unit: _text(100) = None
    school_class: _text(50) = None
    phone: _text(30) = None
    belongs_to: int | None = Field(None, ge=1, le=6, description="病人属于: 1 this county … 6 foreign national")
    current_address: _text(100) = None
    current_address_code: str | None = Field(None, pattern=r"^[0-9]{6,12}$")
    household_address: _text(100) = None
    household_address_code: str | None = Field(None, pattern=r"^[0-9]{6,12}$")
    population_group: _codes(cf.POPULATION_GROUPS) | None = None
    population_group_other: _text(30) = None
    case_class: _codes(CASE_CLASSES) | None = None
    case_class2: _codes(cf.CASE_CLASSES_2) | None = None
    onset_date: Day | None = None
    diagnosed_at: CardTime | None = Field(None, description="to the hour, China Standard Time")
    death_date: Day | None = None
    disease: Code | None = Field(None, description="NIDRIS disease code (catalogue.json)")
    subtype: Code | None = None
    other_disease_name: _text(30) = None
    supplementary_card: bool = False
    ethnicity: str | None = Field(None, pattern=r"^[0-9]{2}$", description="GB/T 3304")
    marital_status: _codes(cf.MARITAL) | None = None
    education: _codes(cf.EDUCATION) | None = None
    doctor: _text(40) = None
    fill_date: Day | None = None
    remarks: _text(100) = None
    outbreak: bool = False

    def to_card(self) -> cf.CardIn:
        return cf.CardIn(**self.model_dump(exclude={"supplementary", "report_org_id", "patient_id", "source", "icd10",
                                                    "new_episode"}))


class CardIn(CardFields):
    report_org_id: Id
    patient_id: Id | None = None
    source: str | None = Field(None, max_length=70, pattern=PLAIN, description="referral:<id> | manual | import:<ref>")
    icd10: str | None = Field(None, max_length=20, pattern=PLAIN, description="the diagnosis it was raised from")
    new_episode: bool = Field(False, description="not a duplicate: a new episode of the same disease")
    supplementary: SupplementIn | None = None


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changes: CardFields = Field(description="only the fields sent change")
    reason: str = Field(min_length=1, max_length=500, pattern=NOTE)
    supplementary: SupplementIn | None = None
    expected_version: Version


class DeletionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delete_type: _codes(cf.DELETE_TYPES)
    reason: str = Field(min_length=1, max_length=500, pattern=NOTE)
    expected_version: Version


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "return"]
    note: str | None = Field(None, max_length=500, pattern=NOTE, description="required to return a card")
    expected_version: Version


class EventOut(BaseModel):
    at: datetime
    actor: str
    kind: str
    note: str | None
    detail: dict[str, Any]


class CardOut(BaseModel):
    id: int
    card_number: str
    status: str
    report_type: str
    patient_id: int | None
    report_org_id: int | None
    report_org_name: str
    card: dict[str, Any] = Field(description="the card as written; ID number and phone masked unless pii.unmasked")
    supplementary: dict[str, Any]
    icd10: str | None
    county_code: str | None
    diagnosed_at: datetime
    reported_at: datetime
    report_due_at: datetime = Field(description="diagnosis + 2 h / 24 h (§5.2)")
    review_due_at: datetime
    reviewed_at: datetime | None
    reviewed_by: str | None
    review_note: str | None
    deleted_at: datetime | None
    late_minutes: int = Field(description="how late the network report was; 0 in time")
    review_overdue: bool
    source_kind: str | None
    source_ref: str | None
    created_by: str
    version: int
    masked: bool
    events: list[EventOut]


class CardList(BaseModel):
    items: list[CardOut]
    more: bool


def _out(view: CardView) -> CardOut:
    data = {f.name: getattr(view, f.name) for f in dataclasses.fields(view) if f.name in CardOut.model_fields}
    data.update(card=dataclasses.asdict(view.card), events=[dataclasses.asdict(e) for e in view.events],
                late_minutes=view.late_minutes, review_overdue=view.review_overdue(datetime.now(CST)))
    return CardOut(**data)


@router.post("", response_model=CardOut, status_code=status.HTTP_201_CREATED)
def report(body: CardIn, response: Response, session: SessionDep, actor: ActorDep, key: IdemKey = None):
    view = reporting.report_card(session, actor, body.to_card(), report_org_id=body.report_org_id,
                                 patient_id=body.patient_id, source=body.source, icd10=body.icd10,
                                 supplementary=body.supplementary.to_service() if body.supplementary else None,
                                 new_episode=body.new_episode, idempotency_key=key)
    if view.replayed:
        response.status_code = status.HTTP_200_OK
    return _out(view)


@router.get("", response_model=CardList)
def search(session: SessionDep, actor: ActorDep,
           status_: Annotated[list[_codes(STATUSES)] | None, Query(alias="status", max_length=4)] = None,
           disease: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z]{1,10}$")] = None,
           county_code: Annotated[str | None, Query(pattern=r"^[0-9]{6}$")] = None, report_org_id: OptId = None,
           patient_id: OptId = None, since: date | None = None, until: date | None = None,
           date_kind: Literal["reported", "diagnosed", "onset"] = "reported",
           overdue: _codes(dict.fromkeys(OVERDUE)) | None = None,
           offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
           limit: Annotated[int, Query(ge=0, le=500)] = 50):
    q = reporting.CardQuery(status=list(status_ or []), disease=disease, county_code=county_code,
                            report_org_id=report_org_id, patient_id=patient_id, since=since, until=until,
                            date_kind=date_kind, overdue=overdue)
    found = reporting.search_cards(session, actor, q, offset=offset, limit=limit + 1)
    return {"items": [_out(v) for v in found[:limit]], "more": len(found) > limit}


@router.get("/prefill", response_model=dict[str, Any])
def prefill(session: SessionDep, actor: ActorDep, patient_id: Annotated[int, Query(ge=1, le=MAX_ID)],
            icd10: Annotated[str, Query(min_length=1, max_length=20, pattern=PLAIN)],
            org_id: Annotated[int, Query(ge=1, le=MAX_ID)]):
    """The card as the one click fills it: patient index + the disease of the diagnosis."""
    return dataclasses.asdict(reporting.card_prefill(session, actor, patient_id=patient_id, icd10=icd10,
                                                     org_id=org_id))


@router.get("/{card_id}", response_model=CardOut)
def read(card_id: RowId, session: SessionDep, actor: ActorDep):
    return _out(reporting.get_card(session, actor, card_id))


@router.post("/{card_id}/correction", response_model=CardOut)
def correct(card_id: RowId, body: CorrectionIn, session: SessionDep, actor: ActorDep):
    """订正报告: the fields sent in ``changes`` change (the disease too), with the reason."""
    changes = body.changes.model_dump(include=body.changes.model_fields_set)
    return _out(reporting.correct_card(
        session, actor, card_id, changes=changes, reason=body.reason, expected_version=body.expected_version,
        supplementary=body.supplementary.to_service() if body.supplementary else None))


@router.post("/{card_id}/deletion", response_model=CardOut)
def delete(card_id: RowId, body: DeletionIn, session: SessionDep, actor: ActorDep):
    return _out(reporting.delete_card(session, actor, card_id, delete_type=body.delete_type, reason=body.reason,
                                      expected_version=body.expected_version))


@router.post("/{card_id}/review", response_model=CardOut)
def review(card_id: RowId, body: ReviewIn, session: SessionDep, actor: ActorDep):
    """审核 by the county CDC: approve, or return with a note for the reporter to correct."""
    return _out(reporting.review_card(session, actor, card_id, decision=body.decision, note=body.note,
                                      expected_version=body.expected_version))
