"""REST API of a patient's shared results and images under ``/api/results``: the timeline
(reports by day and facility, with trends), one analyte's trend, one report, one imaging
study with its viewer link and rendered preview, and indexing a study from a PACS.
Parse, one service call, render; access, masking and the audit are the services'
(``results.timeline``, ``results.queries``, ``results.imaging``)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from ..http import SessionDep
from ..security.http import ActorDep
from . import imaging, queries, timeline
from .domain import CN_TZ
from .trends import Trend
from .views import ObservationView, ReportView, StudyView

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Day = Annotated[date | None, Query(description="A day in China time (YYYY-MM-DD), inclusive")]
Category = Literal["LAB", "RAD", "EC", "PAT"]


class ResultObservationOut(BaseModel):
    id: int
    seq: int
    item: str | None
    code_system: str | None
    code: str
    display: str
    value_num: float | None
    value_text: str | None
    unit: str | None
    ref_low: float | None
    ref_high: float | None
    ref_text: str | None
    flag: str | None = Field(description="HL7 0078: H, L, HH, LL, A, N")
    status: str
    effective_at: datetime | None


class ImagingStudyOut(BaseModel):
    id: int
    study_uid: str
    report_id: int | None
    patient_id: int
    issuer_org_id: int
    issuer_name: str
    accession_number: str | None
    modality: str | None
    body_site: str | None
    description: str | None
    started_at: datetime | None
    series_count: int | None
    instance_count: int | None
    dicomweb_base: str | None
    viewer_url: str | None = Field(description="The PACS's own viewer (Orthanc Explorer), reached on the intranet")
    preview_url: str = Field(description="The first frame rendered by the PACS, served through the platform")


class ResultReportOut(BaseModel):
    id: int
    patient_id: int
    patient_name: str | None
    issuer_org_id: int
    issuer_name: str
    filler_number: str
    placer_number: str | None
    category: str
    item: str | None
    code: str
    display: str
    status: str
    mark: str | None
    effective_at: datetime | None
    issued_at: datetime
    conclusion: str | None
    observations: list[ResultObservationOut]
    studies: list[ImagingStudyOut]


class ResultFacilityOut(BaseModel):
    org_id: int
    name: str
    reports: list[ResultReportOut]


class ResultDayOut(BaseModel):
    day: date
    facilities: list[ResultFacilityOut]


class TrendPointOut(BaseModel):
    at: datetime
    value: float = Field(description="In the trend's unit")
    reported: str = Field(description="As reported, with its unit")
    flag: str | None
    abnormal: bool
    issuer_org_id: int
    issuer_name: str
    observation_id: int
    report_id: int


class ResultTrendOut(BaseModel):
    key: str
    item: str
    name: str
    name_en: str
    unit: str
    band_low: float | None
    band_high: float | None
    points: list[TrendPointOut]
    not_plotted: list[int] = Field(description="Observations whose unit does not convert to the trend's")


class ResultTimelineOut(BaseModel):
    patient_id: int
    patient_name: str | None
    reports: int
    truncated: bool
    days: list[ResultDayOut]
    trends: list[ResultTrendOut]
    other_trends: list[str]


class ImagingStudyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dicomweb_base: str = Field(min_length=8, max_length=300, description="The PACS's DICOMweb root")
    study_uid: str = Field(min_length=1, max_length=64)
    report_id: int | None = Field(None, ge=1, le=2**31 - 1)
    patient_id: int | None = Field(None, ge=1, le=2**31 - 1)
    issuer_org_id: int | None = Field(None, ge=1, le=2**31 - 1)


def _study(s: StudyView) -> ImagingStudyOut:
    return ImagingStudyOut(**{k: getattr(s, k) for k in ImagingStudyOut.model_fields if hasattr(s, k)},
                    viewer_url=imaging.viewer_url(s), preview_url=f"/api/results/imaging/{s.id}/preview")


def _observation(o: ObservationView) -> ResultObservationOut:
    return ResultObservationOut(**{k: getattr(o, k) for k in ResultObservationOut.model_fields})


def _report(r: ReportView) -> ResultReportOut:
    fields = {k: getattr(r, k) for k in ResultReportOut.model_fields if k not in ("observations", "studies")}
    return ResultReportOut(**fields, observations=[_observation(o) for o in r.observations],
                     studies=[_study(s) for s in r.studies])


def _trend(t: Trend) -> ResultTrendOut:
    low, high = t.band or (None, None)
    return ResultTrendOut(key=t.key, item=t.item, name=t.zh, name_en=t.en, unit=t.unit, band_low=low, band_high=high,
                    points=[TrendPointOut(at=p.at, value=p.value, reported=p.reported, flag=p.flag, abnormal=p.abnormal,
                                     issuer_org_id=p.issuer_org_id, issuer_name=p.issuer_name,
                                     observation_id=p.observation_id, report_id=p.report_id) for p in t.points],
                    not_plotted=[m.observation_id for m in t.not_plotted])


def _bounds(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    return (datetime.combine(since, time(), CN_TZ) if since else None,
            datetime.combine(until + timedelta(days=1), time(), CN_TZ) if until else None)


@router.get("/patients/{patient_id}/timeline", response_model=ResultTimelineOut)
def patient_timeline(session: SessionDep, actor: ActorDep, patient_id: RowId, since: Day = None, until: Day = None,
                     category: Annotated[list[Category] | None, Query()] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 200,
                     charts: Annotated[int, Query(ge=0, le=20)] = 6) -> ResultTimelineOut:
    """A patient's results across facilities, newest day first (报告日期, then 机构), with trends."""
    start, end = _bounds(since, until)
    found = timeline.patient_results(session, actor, patient_id, since=start, until=end, categories=category,
                                     limit=limit, charts=charts)
    return ResultTimelineOut(patient_id=found.patient_id, patient_name=found.patient_name, reports=found.reports,
                       truncated=found.truncated,
                       days=[ResultDayOut(day=d.day, facilities=[ResultFacilityOut(org_id=f.org_id, name=f.name,
                                                                       reports=[_report(r) for r in f.reports])
                                                           for f in d.facilities]) for d in found.days],
                       trends=[_trend(t) for t in found.trends], other_trends=[k for k, _, _ in found.other_trends])


@router.get("/patients/{patient_id}/trends", response_model=ResultTrendOut)
def patient_trend(session: SessionDep, actor: ActorDep, patient_id: RowId,
                  item: Annotated[str, Query(min_length=1, max_length=40, description="HBA1C, CREA, GLU, HGB …")],
                  since: Day = None, until: Day = None) -> ResultTrendOut:
    """One analyte's values across facilities, in one unit, with the reference band."""
    start, end = _bounds(since, until)
    return _trend(timeline.patient_trend(session, actor, patient_id, item, since=start, until=end))


@router.get("/reports/{report_id}", response_model=ResultReportOut)
def get_report(session: SessionDep, actor: ActorDep, report_id: RowId) -> ResultReportOut:
    return _report(queries.get_report(session, actor, report_id))


@router.get("/imaging/{study_id}", response_model=ImagingStudyOut)
def get_study(session: SessionDep, actor: ActorDep, study_id: RowId) -> ImagingStudyOut:
    return _study(queries.get_study(session, actor, study_id))


@router.get("/imaging/{study_id}/preview", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "The first frame, rendered by the PACS"}})
def study_preview(session: SessionDep, actor: ActorDep, study_id: RowId) -> Response:
    body, media = imaging.preview(session, actor, study_id)
    return Response(body, media_type=media, headers={"Cache-Control": "private, no-store"})


@router.post("/imaging", response_model=ImagingStudyOut, status_code=201)
def index_study(session: SessionDep, actor: ActorDep, body: ImagingStudyIn) -> ImagingStudyOut:
    """The PACS integration of the issuing facility indexes a study it holds (read by QIDO-RS)."""
    return _study(imaging.index_study(session, actor, **body.model_dump()))
