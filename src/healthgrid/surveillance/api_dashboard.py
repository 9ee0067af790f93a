"""REST API of the CDC dashboard under ``/api/surveillance/dashboard``: the signals by status
and the top diseases (``summary``), an epidemic curve with its threshold and signals
(``curve``), the schematic county map (``map``) and the response and reporting KPIs
(``kpis``). Parse, one call, render; ``surveillance.stats``, the scope and the audit are the
dashboard's, the definitions in its modules (dashboard, dashboard_curve, dashboard_map,
kpis). Counts only: no patient data.

Parameters are bounded: days from 2004-01-01 to 2100-12-31 and at most 1,100 of them
(SURV-603 / SURV-604), a county as its 6-digit code (SURV-601 when there is none), a stream
``case:<disease code>`` or ``<feed>:<metric>``, or ``disease`` for ``case:<disease>`` (SURV-602).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ..errors import Invalid
from ..http import SessionDep
from ..security.http import ActorDep
from . import dashboard, kpis
from .dashboard_curve import epidemic_curve
from .dashboard_map import county_map

router = APIRouter(prefix="/dashboard")
County = Annotated[str | None, Query(min_length=1, max_length=12, description="a county's 6-digit code")]
Stream = Annotated[str, Query(min_length=3, max_length=60, description="case:<disease code> | <feed>:<metric>")]
Disease = Annotated[str | None, Query(min_length=1, max_length=10, description="a disease code (catalogue.json)")]


class StreamCount(BaseModel):
    stream: str
    signals: int
    open: int


class DiseaseWeekOut(BaseModel):
    disease: str
    cases: int
    last_year: int


class SummaryOut(BaseModel):
    since: date
    until: date
    total: int
    open_now: int
    by_status: dict[str, int]
    by_stream: list[StreamCount]
    by_method: dict[str, int]
    top_diseases: list[DiseaseWeekOut]  # the 7 days up to ``until`` against the same days a year earlier


@router.get("/summary", response_model=SummaryOut)
def summary(session: SessionDep, actor: ActorDep, since: date, until: date, county: County = None):
    """Signals detected in the period by status, stream and method; the signals open now; the
    top diseases of the 7 days up to ``until`` against last year."""
    s = dashboard.signal_summary(session, actor, county=county, since=since, until=until)
    top = dashboard.top_diseases(session, actor, county=county, until=until)
    return SummaryOut(since=s.since, until=s.until, total=s.total, open_now=s.open_now, by_status=s.by_status,
                      by_stream=[StreamCount(stream=k, signals=n, open=o) for k, n, o in s.by_stream],
                      by_method=s.by_method,
                      top_diseases=[DiseaseWeekOut(disease=t.disease, cases=t.cases, last_year=t.last_year)
                                    for t in top])


class PointOut(BaseModel):
    start: date
    end: date
    count: int
    total: int | None
    statistic: float | None
    threshold: float | None
    alarm: bool
    signals: list[int]


class CurveOut(BaseModel):
    stream: str
    county: str | None
    counties: list[str]
    since: date
    until: date
    weekly: bool
    method: str
    percentile: int | None
    points: list[PointOut]


@router.get("/curve", response_model=CurveOut)
def curve(session: SessionDep, actor: ActorDep, since: date, until: date, stream: Stream | None = None,
          disease: Disease = None, county: County = None, weekly: bool = False):
    """Counts per day (or ISO week) of a disease or feed metric, the detector's threshold on the
    same series, and the signals raised. ``disease=3500`` is short for ``stream=case:3500``."""
    if (stream is None) == (disease is None):
        raise Invalid("SURV-602", "stream: give a stream or a disease, one of them", {"field": "stream"})
    c = epidemic_curve(session, actor, stream=stream or f"case:{disease}", county=county, since=since, until=until,
                       weekly=weekly)
    return CurveOut(stream=c.stream, county=c.county, counties=c.counties, since=c.since, until=c.until,
                    weekly=c.weekly, method=c.method, percentile=c.percentile,
                    points=[PointOut(start=p.start, end=p.end, count=p.count, total=p.total, statistic=p.statistic,
                                     threshold=p.threshold, alarm=p.alarm, signals=list(p.signals))
                            for p in c.points])


class MapCountyOut(BaseModel):
    code: str
    name: str
    in_scope: bool
    centre: tuple[float, float] | None  # longitude, latitude
    cell: list[tuple[float, float]] | None  # the schematic Voronoi cell, longitude and latitude
    open_signals: int | None
    signals: int | None
    cases: int | None


class MapOut(BaseModel):
    since: date
    until: date
    box: tuple[float, float, float, float] | None  # lon min, lon max, lat min, lat max
    counties: list[MapCountyOut]


@router.get("/map", response_model=MapOut)
def county_map_out(session: SessionDep, actor: ActorDep, since: date, until: date, county: County = None):
    """Every county of the region as a schematic cell with, in scope, its open signals and the
    signals and cases of the period."""
    m = county_map(session, actor, since=since, until=until, county=county)
    return MapOut(since=m.since, until=m.until, box=m.box, counties=[MapCountyOut(
        code=c.code, name=c.name, in_scope=c.in_scope, centre=c.centre, cell=c.cell, open_signals=c.open_signals,
        signals=c.signals, cases=c.cases) for c in m.counties])


class RatioOut(BaseModel):
    numerator: int
    denominator: int
    value: float | None


class KpisOut(BaseModel):
    since: date
    until: date
    signals: int
    response_rate: RatioOut
    within_24h_rate: RatioOut
    median_response_hours: float | None
    suspected_rate: RatioOut
    cards: int
    report_timeliness: RatioOut
    review_timeliness: RatioOut


def _ratio(r: kpis.Ratio) -> RatioOut:
    return RatioOut(numerator=r.numerator, denominator=r.denominator, value=r.value)


@router.get("/kpis", response_model=KpisOut)
def kpis_out(session: SessionDep, actor: ActorDep, since: date, until: date, county: County = None):
    """Signal response (rate, within 24 h, median hours, suspected events) and card timeliness."""
    k = kpis.response_kpis(session, actor, county=county, since=since, until=until)
    return KpisOut(since=k.since, until=k.until, signals=k.signals, response_rate=_ratio(k.response_rate),
                   within_24h_rate=_ratio(k.within_24h_rate), median_response_hours=k.median_response_hours,
                   suspected_rate=_ratio(k.suspected_rate), cards=k.cards,
                   report_timeliness=_ratio(k.report_timeliness), review_timeliness=_ratio(k.review_timeliness))
