"""REST API of mutual recognition under ``/api/results``: parse, one service call, render.
Permissions, scope, the rules, staleness and the audit are the services'.

- ``POST /recognition/check`` — the prior results of an item for an order (201, the logged
  decision: final at once, or ``pending`` with the recognisable results offered);
  ``GET /recognition/{id}``; ``POST /recognition/{id}/decision`` — the doctor's answer:
  ``accept_report_id`` (recognised, no repeat) or ``override`` (reason, text, patient_informed).
- ``GET /eqa``, ``POST /eqa`` (JSON records), ``POST /eqa/csv`` (a ``text/csv`` body or a
  multipart ``file``): a QC centre's list, all or none (RES-100 carries the report).
- ``GET /local-codes?org_id=``, ``PUT /local-codes``: a facility's map (the whole map unless
  ``replace`` is false).
- ``GET /measures``: per facility and month (definitions: results/measures.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from ..errors import Invalid
from ..http import SessionDep
from ..security.http import ActorDep
from . import measures, ordering, reference

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
OptId = Annotated[int | None, Query(ge=1, le=2**31 - 1)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Limit = Annotated[int, Query(ge=0, le=500)]
ItemCode = Annotated[str, Field(min_length=1, max_length=40, description="a catalogue item code, e.g. GLU, CT-HEAD")]
MAX_CSV_BYTES = 5 * 1024 * 1024
CSV_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string", "description": "header: lab_code,item,year,result[,provider]"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


# -- the decision at order time ------------------------------------------------------------------

class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: Id
    item: ItemCode
    ordering_org_id: Id


class OverrideIn(BaseModel):
    """Repeat although recognisable (§4.3): one of the six national reasons (changed_condition,
    fast_changing, pre_major_procedure, emergency, forensic_appraisal, other) or an enabled local
    one; ``other`` needs ``text``; ``patient_informed`` true (false only in an emergency)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=40)
    text: str | None = Field(None, max_length=500)
    patient_informed: bool | None = None


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accept_report_id: Id | None = None
    override: OverrideIn | None = None


class ValueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    display: str
    value: str
    unit: str | None
    flag: str | None
    ref: str | None


class OfferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    report_id: int
    org_id: int
    org_name: str
    level: str
    category: str | None
    display: str | None
    reported_at: datetime
    mark: str | None
    age_days: int
    validity_days: int | None
    valid_until: date | None
    values: list[ValueOut]
    imaging: dict[str, Any] | None


class RejectedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    report_id: int
    org_id: int
    org_name: str
    level: str | None
    reported_at: datetime
    reasons: list[dict[str, Any]]


class DecisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    patient_id: int
    item: str
    item_zh: str | None
    item_en: str | None
    ordering_org_id: int
    ordering_org_name: str
    outcome: str = Field(description="pending | recognised | repeat_with_reason | repeat_no_prior |"
                                     " repeat_not_recognisable | not_applicable")
    pending: bool
    decided_at: datetime
    physician: str
    candidates: list[OfferOut]
    rejections: list[RejectedOut]
    order_reasons: list[dict[str, Any]]
    recognised_report_id: int | None
    override_reason: str | None
    override_text: str | None
    patient_informed: bool | None
    price_cny: float | None
    catalogue_version: str


@router.post("/recognition/check", response_model=DecisionOut, status_code=status.HTTP_201_CREATED)
def check(body: CheckIn, session: SessionDep, actor: ActorDep):
    return ordering.check_prior_results(session, actor, patient_id=body.patient_id, item=body.item,
                                        ordering_org_id=body.ordering_org_id)


@router.get("/recognition/{decision_id}", response_model=DecisionOut)
def read_decision(decision_id: RowId, session: SessionDep, actor: ActorDep):
    return ordering.get_decision(session, actor, decision_id)


@router.post("/recognition/{decision_id}/decision", response_model=DecisionOut)
def answer(decision_id: RowId, body: AnswerIn, session: SessionDep, actor: ActorDep):
    override = (ordering.RepeatIn(body.override.reason, body.override.patient_informed, body.override.text)
                if body.override is not None else None)
    return ordering.record_decision(session, actor, decision_id=decision_id, accept=body.accept_report_id,
                                    override=override)


# -- EQA results and local codes --------------------------------------------------------------------

class EqaRecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lab_org_id: Id | None = None
    lab_code: str | None = Field(None, max_length=40, description="the lab's organisation code (instead of its id)")
    item: str = Field(max_length=40)
    year: int = Field(ge=0, le=9999)
    passed: bool | None = None
    result: str | None = Field(None, max_length=20, description="passed | failed | 合格 | 不合格 (instead of passed)")
    provider: str | None = Field(None, max_length=200)


class EqaImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str | None = Field(None, max_length=200, description="the QC centre, for records that name none")
    records: list[EqaRecordIn] = Field(min_length=1, max_length=reference.MAX_EQA_ROWS)


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    status: str
    rows: int
    created: int
    updated: int
    ignored: int
    deleted: int
    errors: list[dict[str, Any]]
    errors_by_code: dict[str, int]


class EqaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    lab_org_id: int
    lab_name: str
    item: str
    year: int
    passed: bool
    provider: str | None
    recorded_by: str
    recorded_at: datetime


@router.get("/eqa", response_model=list[EqaOut])
def list_eqa(session: SessionDep, actor: ActorDep, lab_org_id: OptId = None,
             item: Annotated[str | None, Query(max_length=40)] = None,
             year: Annotated[int | None, Query(ge=2000, le=2100)] = None, offset: Offset = 0, limit: Limit = 100):
    return reference.list_eqa(session, actor, lab_org_id=lab_org_id, item=item, year=year, offset=offset,
                              limit=limit)


@router.post("/eqa", response_model=ReportOut, status_code=status.HTTP_201_CREATED)
def import_eqa(body: EqaImportIn, session: SessionDep, actor: ActorDep):
    records = [r.model_dump(exclude_none=True) for r in body.records]
    return reference.import_eqa(session, actor, records=records, provider=body.provider)


async def csv_upload(request: Request) -> bytes:
    """The file's bytes: a multipart field ``file``, or the whole body (text/csv)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5, max_part_size=MAX_CSV_BYTES)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Invalid("RES-108", "file: attach the CSV file as the form field 'file'", {"field": "file"})
        data = await upload.read(MAX_CSV_BYTES + 1)
    else:
        data = await request.body()
    if len(data) > MAX_CSV_BYTES:
        raise Invalid("RES-108", f"file: at most {MAX_CSV_BYTES // 1024 // 1024} MB", {"field": "file"})
    return data


@router.post("/eqa/csv", response_model=ReportOut, status_code=status.HTTP_201_CREATED, openapi_extra=CSV_BODY)
def import_eqa_csv(actor: ActorDep, data: Annotated[bytes, Depends(csv_upload)], session: SessionDep,
                   provider: Annotated[str | None, Query(max_length=200)] = None):
    # The actor first: FastAPI solves dependencies in the order of the parameters, and an
    # anonymous caller's upload is not to be read (up to 5 MB) before the 401.
    rows = reference.parse_eqa_csv(data)
    if not rows:
        raise Invalid("RES-101", "records: the file holds a header and no record", {"field": "file"})
    return reference.import_eqa(session, actor, records=rows, provider=provider)


class LocalCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    local_code: str = Field(max_length=200)
    item: str = Field(max_length=40)


class LocalCodesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: Id
    codes: list[LocalCodeIn] = Field(max_length=reference.MAX_LOCAL_CODES)
    replace: bool = Field(True, description="true: the list is the whole map (codes not listed are removed)")


class LocalCodeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    local_code: str
    item: str
    updated_by: str
    updated_at: datetime


@router.get("/local-codes", response_model=list[LocalCodeOut])
def list_local_codes(org_id: Annotated[int, Query(ge=1, le=2**31 - 1)], session: SessionDep, actor: ActorDep):
    return reference.list_local_codes(session, actor, org_id=org_id)


@router.put("/local-codes", response_model=ReportOut)
def put_local_codes(body: LocalCodesIn, session: SessionDep, actor: ActorDep):
    return reference.set_local_codes(session, actor, org_id=body.org_id,
                                     codes=[(c.local_code, c.item) for c in body.codes], replace=body.replace)


# -- measures -----------------------------------------------------------------------------------------

class MeasureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    org_id: int | None
    org_name: str
    level: str | None
    month: str | None
    orders: int
    with_recognisable: int
    recognised: int
    repeat_with_reason: int
    repeat_not_recognisable: int
    repeat_no_prior: int
    not_applicable: int
    awaiting: int
    cost_avoided_cny: float
    by_reason: dict[str, int]
    recognisable_share: float | None
    recognition_rate: float | None


class MeasuresOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    since: date
    until: date
    division_id: int | None
    months: list[str]
    rows: list[MeasureOut]
    facilities: list[MeasureOut]
    monthly: list[MeasureOut]
    total: MeasureOut


@router.get("/measures", response_model=MeasuresOut)
def recognition_measures(session: SessionDep, actor: ActorDep, since: date, until: date, division_id: OptId = None,
                         org_id: Annotated[list[Annotated[int, Query(ge=1, le=2**31 - 1)]] | None,
                                           Query(max_length=200)] = None):
    """Per ordering facility and month: orders, the share with a recognisable result, repeats
    avoided, repeats with reason (by reason), without prior, estimated cost avoided."""
    return measures.recognition_measures(session, actor, division_id=division_id, org_ids=org_id, since=since,
                                         until=until)
