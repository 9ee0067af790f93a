"""A patient's results across the region's facilities, as the doctor reads them: reports
grouped by report day (报告日期, China time) and issuing facility (机构), each with its
observations, units, reference ranges and flags, and its images; and the numeric trends
(HbA1c, creatinine, glucose …) across facilities with the reference band. Checked as a read
of the patient's record and audited (``queries.check_read``: relationship, population
scope or break-the-glass; the resident's own), once per page or trend.

Also the patient timeline's share (``patients.service.register_timeline_source``): one
entry per report, shown on the patient's page among registrations, appointments and
referrals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import transaction
from ..errors import Invalid
from ..patients import queries as patient_queries
from ..patients import service as patients
from ..patients.queries import TimelineEntry
from ..security.domain import Actor, AuditAction, Perm, mask_name
from . import queries, views
from .domain import CN_TZ
from .models import Observation, Report
from .queries import ResultQuery
from .reference import catalogue_of
from .trends import Measured, Trend, analyte_of, build_trend, find_analyte, rank_keys
from .views import ReportView

CATEGORIES = ("LAB", "RAD", "EC", "PAT")
NOT_SHOWN = ("cancelled", "entered-in-error")  # statuses a trend leaves out
MAX_REPORTS = 500
MAX_TREND_POINTS = 1000


@dataclass
class FacilityGroup:
    org_id: int
    name: str
    reports: list[ReportView] = field(default_factory=list)

    @property
    def abnormal(self) -> int:
        return sum(1 for r in self.reports for o in r.observations if o.flag and o.flag != "N")


@dataclass
class DayGroup:
    day: date
    facilities: list[FacilityGroup] = field(default_factory=list)


@dataclass
class Timeline:
    patient_id: int
    patient_name: str | None
    days: list[DayGroup]
    trends: list[Trend]  # the charts shown, preferred analytes first
    other_trends: list[tuple[str, str, str]]  # (key, zh, en) of further analytes with a trend
    reports: int
    truncated: bool  # more reports than shown


def _check(session: Session, actor: Actor, patient_id: int, resource_type: str, detail: dict) -> tuple[int, set[int]]:
    target = patients.resolve_patient_id(session, patient_id)
    queries.check_read(session, actor, patient_id=target, issuer_org_id=None, action=AuditAction.VIEW,
                       resource_type=resource_type, resource_id=target, detail=detail)
    return target, patient_queries.merged_family(session, target)


def _categories(categories: Sequence[str] | None) -> list[str] | None:
    bad = [c for c in categories or () if c not in CATEGORIES]
    if bad:
        raise Invalid("RES-153", f"category: {bad[0]!r} is not one of {', '.join(CATEGORIES)}",
                      {"field": "category"})
    return list(categories) if categories else None


def _period(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise Invalid("RES-154", "until: must be after since", {"field": "until"})


def patient_results(session: Session, actor: Actor, patient_id: int, *, since: datetime | None = None,
                    until: datetime | None = None, categories: Sequence[str] | None = None,
                    limit: int = 200, charts: int = 6, trend: str | None = None) -> Timeline:
    """The results timeline of a patient (and the records merged into theirs), newest day
    first, with up to ``charts`` trend charts (``trend`` first when given)."""
    cats = _categories(categories)
    _period(since, until)
    with transaction(session):
        target, family = _check(session, actor, patient_id, "ResultTimeline",
                                {"categories": cats or "all", "trend": trend})
        q = ResultQuery(categories=cats, issued_since=since, issued_until=until)
        stmt = queries.report_filter(select(Report), q, family, None)
        rows = list(session.scalars(stmt.order_by(Report.issued_at.desc(), Report.id.desc())
                                    .limit(min(limit, MAX_REPORTS) + 1)))
        truncated = len(rows) > min(limit, MAX_REPORTS)
        reports = views.report_views(session, rows[:min(limit, MAX_REPORTS)],
                                     unmasked=actor.can(Perm.PII_UNMASKED))
        counts, series = _series(session, family, since, until)
        keys = rank_keys(counts)
        if trend:
            keys = [trend] + [k for k in keys if k != trend]
        catalogue = catalogue_of(session)
        trends = [t for t in (_trend(catalogue, k, series.get(k, [])) for k in keys[:charts]) if t and t.points]
        shown = {t.key for t in trends}
        others = [(k, *_names(catalogue, k)) for k in keys if k not in shown]
        name = reports[0].patient_name if reports else _patient_name(session, actor, target)
        return Timeline(target, name, group(reports), trends, others, len(reports), truncated)


def patient_trend(session: Session, actor: Actor, patient_id: int, key: str, *, since: datetime | None = None,
                  until: datetime | None = None) -> Trend:
    """One analyte's values across facilities (RES-155 when the catalogue has no such analyte)."""
    _period(since, until)
    catalogue = catalogue_of(session)
    found = find_analyte(catalogue, key)
    if found is None:
        raise Invalid("RES-155", f"item: {key!r} is neither a numeric catalogue item nor an analyte of one",
                      {"field": "item"})
    with transaction(session):
        _, family = _check(session, actor, patient_id, "ResultTrend", {"item": key})
        _, series = _series(session, family, since, until)
        return build_trend(*found, series.get(found[1].code, []))


def _series(session: Session, family: set[int], since: datetime | None,
            until: datetime | None) -> tuple[dict[str, int], dict[str, list[Measured]]]:
    """The patient's numeric observations by analyte code."""
    stmt = (select(Observation, Report.issued_at).join(Report, Report.id == Observation.report_id)
            .where(Observation.patient_id.in_(family), Observation.value_num.is_not(None),
                   Observation.status.not_in(NOT_SHOWN)))
    if since is not None:
        stmt = stmt.where(Report.issued_at >= since)
    if until is not None:
        stmt = stmt.where(Report.issued_at < until)
    rows = session.execute(stmt.order_by(Report.issued_at.desc()).limit(MAX_TREND_POINTS * 5)).all()
    catalogue = catalogue_of(session)
    names = views.org_names(session, {o.issuer_org_id for o, _ in rows})
    series: dict[str, list[Measured]] = {}
    for o, issued in rows:
        found = analyte_of(catalogue, o.item, o.code_system, o.code, queries.LOINC_SYSTEMS)
        if found is None:
            continue
        series.setdefault(found[1].code, []).append(Measured(
            o.id, o.report_id, o.effective_at or issued, o.value_num, o.unit, o.flag, o.ref_low, o.ref_high,
            o.issuer_org_id, names.get(o.issuer_org_id, "")))
    return {k: len(v) for k, v in series.items()}, series


def _trend(catalogue, key: str, measured: list[Measured]) -> Trend | None:  # noqa: ANN001
    found = find_analyte(catalogue, key)
    return build_trend(*found, measured[:MAX_TREND_POINTS]) if found else None


def _names(catalogue, key: str) -> tuple[str, str]:  # noqa: ANN001
    found = find_analyte(catalogue, key)
    return (found[1].zh, found[1].en) if found else (key, key)


def _patient_name(session: Session, actor: Actor, patient_id: int) -> str | None:
    name = patients.patient_names(session, [patient_id]).get(patient_id)
    return name if actor.can(Perm.PII_UNMASKED) else mask_name(name)


def group(reports: Sequence[ReportView]) -> list[DayGroup]:
    """Reports (newest first) by report day in China, then by issuing facility in the order
    they first appear."""
    days: dict[date, dict[int, FacilityGroup]] = {}
    for r in reports:
        day = r.issued_at.astimezone(CN_TZ).date()
        facilities = days.setdefault(day, {})
        facilities.setdefault(r.issuer_org_id, FacilityGroup(r.issuer_org_id, r.issuer_name)).reports.append(r)
    return [DayGroup(day, list(facilities.values())) for day, facilities in days.items()]


# -- the patient page's timeline -----------------------------------------------------------------

def timeline_entries(session: Session, actor: Actor, family: set[int]) -> list[TimelineEntry]:
    """One entry per report (the caller checked and audited the read of the record). The
    report's name rides in ``detail["kind"]``, which the patient page prints in its text."""
    rows = session.execute(select(Report.id, Report.issued_at, Report.issuer_org_id, Report.patient_id,
                                  Report.category, Report.display, Report.status)
                           .where(Report.patient_id.in_(family), Report.status.not_in(NOT_SHOWN))
                           .order_by(Report.issued_at.desc()).limit(100)).all()
    return [TimelineEntry(r.issued_at, "result", r.issuer_org_id, r.patient_id,
                          {"kind": r.display, "report_id": r.id, "category": r.category, "status": r.status})
            for r in rows]


patients.register_timeline_source(timeline_entries)
