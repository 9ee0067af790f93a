"""REST API of the feeds, signals and warning products under ``/api/surveillance``: parse,
one service call, render. Permissions, scope, the lifecycle and the audit are the services'.

- ``POST /feeds/{feed}`` (JSON rows) and ``POST /feeds/{feed}/csv`` (a ``text/csv`` body or
  a multipart upload named ``file``): all rows or none; a refused batch answers 422
  SURV-520 with the whole report in ``detail.report``.
- ``POST /signals/{id}/{action}`` with ``expected_version``: assign, verify, investigate,
  conclude, close, note (SURV-401 names the allowed next states).
- ``POST /detection/run?day=``: a past day's detection by hand (idempotent).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from ..errors import Invalid
from ..http import SessionDep
from ..security.http import ActorDep
from . import detection, feeds, products, signal_queries, signals
from .feed_domain import parse_feed_csv

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Limit = Annotated[int, Query(ge=0, le=500)]
FeedName = Literal["fever", "ed", "pharmacy", "school", "lab"]
StatusName = Literal["generated", "notified", "verified_excluded", "suspected", "field_investigation", "confirmed",
                     "excluded", "closed"]
Method = Literal["fixed", "mpm", "ears_c3", "cusum", "scan"]
Count = Annotated[int, Field(ge=-(10**9), le=10**9)]
MAX_CSV_BYTES = 10 * 1024 * 1024
CSV_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string", "description": "header: source,division_code,date,metric,count,total"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


class FeedRowIn(BaseModel):
    """One day's count of one metric from one source; checked by the service (coded errors
    per row: SURV-501…SURV-512)."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(max_length=200, description="the reporting unit; a school's is '<school>/<class>'")
    division_code: str = Field(max_length=20, description="county (6 digits) or township/village (12 digits)")
    date: str = Field(max_length=20, description="YYYY-MM-DD, not in the future")
    metric: str = Field(max_length=60, description="a metric of the feed (GET /api/surveillance/feeds)")
    count: Count
    total: Count | None = Field(None, description="visits, tests, enrolled pupils or all units sold")


class FeedBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[FeedRowIn] = Field(min_length=1, max_length=20_000)


class FeedReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    batch_id: int | None
    feed: str
    status: str
    rows: int
    created: int
    updated: int
    ignored: int
    errors: list[dict[str, Any]]
    errors_by_code: dict[str, int]
    filename: str | None
    received_at: datetime
    received_by: str


class BatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    feed: str
    received_at: datetime
    received_by: str
    filename: str | None
    report: dict[str, Any]


@router.get("/feeds", response_model=list[dict[str, Any]])
def feed_vocabulary(session: SessionDep, actor: ActorDep):
    """The feeds and their metrics, with what ``count`` and ``total`` mean."""
    return feeds.feed_vocabulary(session, actor)


@router.get("/feeds/batches", response_model=list[BatchOut])
def feed_batches(session: SessionDep, actor: ActorDep, feed: FeedName | None = None, offset: Offset = 0,
                 limit: Limit = 50):
    return feeds.list_batches(session, actor, feed=feed, offset=offset, limit=limit)


@router.post("/feeds/{feed}", response_model=FeedReportOut, status_code=status.HTTP_201_CREATED)
def send_feed(feed: FeedName, body: FeedBatchIn, session: SessionDep, actor: ActorDep):
    return feeds.ingest_feed(session, actor, feed=feed, rows=[r.model_dump() for r in body.rows])


async def csv_upload(request: Request) -> tuple[bytes, str | None]:
    """The file's bytes and name: a multipart field ``file``, or the whole body (text/csv)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5, max_part_size=MAX_CSV_BYTES)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise Invalid("SURV-524", "file: attach the CSV file as the form field 'file'", {"field": "file"})
        data, name = await upload.read(MAX_CSV_BYTES + 1), upload.filename
    else:
        data, name = await request.body(), None
    if len(data) > MAX_CSV_BYTES:
        raise Invalid("SURV-524", f"file: at most {MAX_CSV_BYTES // 1024 // 1024} MB", {"field": "file"})
    return data, name


@router.post("/feeds/{feed}/csv", response_model=FeedReportOut, status_code=status.HTTP_201_CREATED,
             openapi_extra=CSV_BODY)
def send_feed_csv(feed: FeedName, actor: ActorDep,
                  upload: Annotated[tuple[bytes, str | None], Depends(csv_upload)], session: SessionDep):
    # The actor first: FastAPI solves dependencies in the order of the parameters, and an
    # anonymous caller's upload is not to be read (up to 10 MB) before the 401.
    data, name = upload
    rows = parse_feed_csv(data)
    return feeds.ingest_feed(session, actor, feed=feed, rows=rows, filename=name)


# -- signals ------------------------------------------------------------------------------------------

class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    actor: str
    from_status: str | None
    to_status: str | None
    note: str | None


class CurveOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    days: list[date]
    counts: list[float | None]
    totals: list[float | None]
    statistic: list[float | None]
    threshold: list[float | None]
    statistic_kind: str


class SignalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    stream: str = Field(description="case:<disease code> or <feed>:<metric>")
    stream_zh: str
    stream_en: str
    disease: str | None
    county_code: str
    county_name: str
    method: str
    detected_on: date
    observed: float
    threshold: float | None
    status: str
    responsible: str | None
    generated_at: datetime
    verify_due_at: datetime
    notified_at: datetime | None
    verified_at: datetime | None
    verification: str | None
    investigation_at: datetime | None
    concluded_at: datetime | None
    conclusion: str | None
    closed_at: datetime | None
    overdue: bool = Field(description="not verified 24 hours after generation")
    actions: list[str] = Field(description="what may be done next")
    detail: dict[str, Any]
    version: int


class SignalDetailOut(SignalOut):
    events: list[EventOut]
    card_ids: list[int] = Field(description="the report cards behind a case signal (ids only)")
    curve: CurveOut | None


class SignalList(BaseModel):
    items: list[SignalOut]


@router.get("/signals", response_model=SignalList)
def list_signals(session: SessionDep, actor: ActorDep,
                 status_: Annotated[list[StatusName] | None, Query(alias="status")] = None,
                 stream: Annotated[str | None, Query(max_length=60)] = None,
                 disease: Annotated[str | None, Query(max_length=10)] = None,
                 county_code: Annotated[str | None, Query(max_length=6)] = None, method: Method | None = None,
                 since: date | None = None, until: date | None = None, overdue: bool = False,
                 open_only: bool = False, offset: Offset = 0, limit: Limit = 50):
    q = signal_queries.SignalQuery(status=list(status_ or []), stream=stream, disease=disease, county_code=county_code,
                                   method=method, since=since, until=until, overdue=overdue, open_only=open_only)
    return {"items": signal_queries.list_signals(session, actor, q, offset=offset, limit=limit)}


@router.get("/signals/{signal_id}", response_model=SignalDetailOut)
def read_signal(signal_id: RowId, session: SessionDep, actor: ActorDep):
    return signal_queries.get_signal(session, actor, signal_id)


# -- warning products -----------------------------------------------------------------------------------

class WarningOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    signal_id: int
    product: str
    product_zh: str
    product_en: str
    title: str
    body: str
    audience: str
    status: str
    created_by: str
    created_at: datetime
    issued_by: str | None
    issued_at: datetime | None
    issuer_name: str | None


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: Literal["risk_notice", "notification", "decision_advice"]


class EditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=200)
    body: str = Field(max_length=20_000)


@router.post("/signals/{signal_id}/warnings", response_model=WarningOut, status_code=status.HTTP_201_CREATED)
def draft_warning(signal_id: RowId, body: DraftIn, session: SessionDep, actor: ActorDep):
    return products.draft_warning(session, actor, signal_id, product=body.product)


@router.get("/signals/{signal_id}/warnings", response_model=list[WarningOut])
def signal_warnings(signal_id: RowId, session: SessionDep, actor: ActorDep):
    return products.list_warnings(session, actor, signal_id)


@router.get("/warnings/{warning_id}", response_model=WarningOut)
def read_warning(warning_id: RowId, session: SessionDep, actor: ActorDep):
    return products.get_warning(session, actor, warning_id)


@router.patch("/warnings/{warning_id}", response_model=WarningOut)
def edit_warning(warning_id: RowId, body: EditIn, session: SessionDep, actor: ActorDep):
    return products.edit_warning(session, actor, warning_id, title=body.title, body=body.body)


@router.post("/warnings/{warning_id}/issue", response_model=WarningOut)
def issue_warning(warning_id: RowId, session: SessionDep, actor: ActorDep):
    return products.issue_warning(session, actor, warning_id)


@router.post("/detection/run", response_model=dict[str, Any])
def run_detection(session: SessionDep, actor: ActorDep, day: date):
    """Run a past day's detection now (the worker runs yesterday every morning); answers the
    first run's report, ``skipped: true``, when the day was run already."""
    return detection.run_detection(session, actor, day)


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: int | None = Field(None, ge=1, le=2**31 - 1)
    outcome: Literal["excluded", "suspected", "confirmed"] | None = Field(
        None, description="verify: excluded | suspected; conclude: confirmed | excluded")
    note: str | None = Field(None, max_length=2000)
    responsible: str | None = Field(None, max_length=100, description="assign: a username (default: you)")


# Last: ``/signals/{id}/warnings`` above must match before this catch-all of the actions.
@router.post("/signals/{signal_id}/{action}", response_model=SignalDetailOut)
def act(signal_id: RowId, action: Literal["assign", "verify", "investigate", "conclude", "close", "note"],
        body: ActionIn, session: SessionDep, actor: ActorDep):
    return signals.act_on_signal(session, actor, signal_id, action=action, **body.model_dump())
