"""FHIR R4 MeasureReport of notifiable-disease case counts: one report per disease, county and
period (a day, or an ISO week), read-only, bound to ``dashboard.case_counts`` /
``dashboard.case_count`` (which check ``surveillance.stats`` on the county and audit).

Why MeasureReport: it is FHIR's resource for aggregate reporting — a count of a population
over a period for a subject, with no individual in it — and the basis of the HL7 public
health aggregate reporting guides (the Measure / MeasureReport pattern of Da Vinci DEQM, the
HL7 aggregate case-reporting and CDC's Situational Awareness reports). Individual cases are
Conditions (``condition``); counts are not a bundle of those but a report about them.

Mapping decisions:

- id ``cases-<disease>-<county>-<YYYY-MM-DD>`` for a day, ``cases-<disease>-<county>-<YYYY>-W<ww>``
  for an ISO week (Monday to Sunday): stable, computed, no table behind it. A read answers
  any disease of the catalogue, county in the reader's scope and past or current period,
  with a count of 0 where there was no case (零病例报告); a search lists the periods with
  at least one case.
- status ``complete`` for a period that has ended (local day, Asia/Shanghai), ``pending``
  for one still running (today, this week): more cards may come.
- type ``summary`` (R4: a summary report of a population count, no individual data).
- measure: the canonical ``…/Measure/cases-<disease>`` (the Measure "notified cases of the
  disease"; this server does not serve Measure resources, the URL names the measure).
- subject: the county as ``Location/div-<county code>``, the registry's jurisdiction
  Location (physicalType jdn). R4's MeasureReport.subject takes a Location but not an
  Organization, and the count is about the people living in the county (the card's current
  address, 属地化管理), not about an organisation. The reporter is the county CDC
  (县级疾控) as ``Organization/<id>`` when the registry has one: it reviews the county's
  cards and answers for its counts (传染病信息报告管理规范). R4's reporter takes an
  Organization.
- period: start and end as dates (the day itself, or Monday and Sunday).
- group: one, the disease: code in our NIDRIS code system (the card's disease code, with
  its Chinese name) and its ICD-10 codes; population ``initial-population`` with the count
  of cards not deleted whose local day of diagnosis is in the period and whose current
  address is in the county; measureScore the same count (unit ``{cases}``).
- Search: ``period`` (dates YYYY, YYYY-MM or YYYY-MM-DD with eq, ge, gt, le, lt; a lower
  bound is required, the upper defaults to today; a week matches when it overlaps the
  range, as R4's ranges do; at most 1,100 days), ``subject`` (Location/div-<county>),
  ``reporter`` (Organization/<id>: the county whose CDC it is), ``measure``
  (Measure/cases-<disease>, or cases-<disease>; a comma list allowed), ``interval`` (day |
  week; this server's parameter, day by default), ``_id``. Ordered by period, county,
  disease; paged with ``_count`` / ``_offset``, with the total.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ...errors import Invalid, Unauthorized
from ...fhir import (
    ID_PARAM,
    DateValue,
    FhirRegistry,
    NoMatch,
    ParamType,
    ResourceProvider,
    SearchParamDef,
    SearchRequest,
    SearchResult,
    any_of,
    bad_value,
)
from .. import dashboard
from ..catalogue import load_catalogue
from ..dashboard_counts import CHINA, CaseCount

BASE = "https://healthgrid.example/fhir"
MEASURE = f"{BASE}/Measure/cases-"
DISEASE_SYSTEM = f"{BASE}/CodeSystem/nidris-disease"  # the report card's disease codes (catalogue.json)
ICD10 = "http://hl7.org/fhir/sid/icd-10"
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
_ID = re.compile(r"^cases-([0-9A-Z]{4})-([0-9]{6})-([0-9]{4})-(?:([0-9]{2})-([0-9]{2})|W([0-9]{2}))$")


def report_id(row: CaseCount, weekly: bool) -> str:
    if weekly:
        year, week, _ = row.start.isocalendar()
        return f"cases-{row.disease}-{row.county_code}-{year}-W{week:02d}"
    return f"cases-{row.disease}-{row.county_code}-{row.start.isoformat()}"


def parse_report_id(value: str) -> tuple[str, str, date, bool] | None:
    """(disease, county, first day, weekly) of a report id; None if it cannot be one."""
    m = _ID.match(value)
    if m is None:
        return None
    disease, county, year = m.group(1), m.group(2), int(m.group(3))
    try:
        if m.group(6):
            return disease, county, date.fromisocalendar(year, int(m.group(6)), 1), True
        return disease, county, date(year, int(m.group(4)), int(m.group(5))), False
    except ValueError:
        return None


def to_fhir(row: CaseCount, *, weekly: bool, county_name: str, reporter: dashboard.Reporter | None,
            today: date) -> dict[str, Any]:
    """One count as a MeasureReport (see the module docstring)."""
    cat = load_catalogue()
    disease = cat.find(row.disease, row.end) or cat.versions(row.disease)[-1]
    codings = [{"system": DISEASE_SYSTEM, "code": row.disease, "display": disease.zh}]
    codings += [{"system": ICD10, "code": code} for code in disease.icd10]
    return {
        "resourceType": "MeasureReport",
        "id": report_id(row, weekly),
        "status": "pending" if row.end >= today else "complete",
        "type": "summary",
        "measure": f"{MEASURE}{row.disease}",
        "subject": {"reference": f"Location/div-{row.county_code}", "display": county_name},
        "reporter": {"reference": f"Organization/{reporter.org_id}", "display": reporter.name} if reporter else None,
        "period": {"start": row.start.isoformat(), "end": row.end.isoformat()},
        "group": [{
            "code": {"coding": codings, "text": f"{disease.zh} {disease.en}"},
            "population": [{"code": {"coding": [{"system": POPULATION, "code": "initial-population",
                                                 "display": "Initial Population"}]},
                            "count": row.count}],
            "measureScore": {"value": row.count, "unit": "cases", "system": "http://unitsofmeasure.org",
                             "code": "{cases}"},
        }],
    }


def _today() -> date:
    return datetime.now(CHINA).date()


def _who(actor: Any) -> Any:
    if actor is None:
        raise Unauthorized("SEC-100", "log in first (a session cookie or an Authorization: Bearer token)")
    return actor


def _days(given: DateValue) -> tuple[date, date]:
    """The first and last day a date of year, month or day precision covers."""
    text = given.value
    if len(text) == 4:
        return date(int(text), 1, 1), date(int(text), 12, 31)
    if len(text) == 7:
        year, month = int(text[:4]), int(text[5:])
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    day = given.full_date()
    if day is None:
        raise bad_value("period", f"{text!r}: give a date (YYYY-MM-DD, YYYY-MM or YYYY); times are not searchable")
    return day, day


def period_range(request: SearchRequest, today: date) -> tuple[date, date]:
    """The days the ``period`` clauses (AND-ed) leave; a lower bound is required."""
    low: date | None = None
    high: date | None = None
    for clause in request.of("period"):
        first, last = _days(clause.values[0])
        lo, hi = {"eq": (first, last), "ge": (first, None), "gt": (last + timedelta(days=1), None),
                  "le": (None, last), "lt": (None, first - timedelta(days=1))}[clause.values[0].prefix]
        low = lo if low is None or (lo is not None and lo > low) else low
        high = hi if high is None or (hi is not None and hi < high) else high
    if low is None:
        raise bad_value("period", "give a lower bound (e.g. period=ge2026-03-01); the upper one defaults to today")
    high = high or today
    if low > high:
        raise NoMatch("period")
    return low, high


def _county(request: SearchRequest, session: Session) -> str | None:
    """The county ``subject`` and ``reporter`` name (the same one if both)."""
    found: set[str] | None = None
    for name, convert in (("subject", _subject_county), ("reporter", lambda r: _reporter_county(session, r))):
        allowed = any_of(request, name, convert)
        if allowed is not None:
            found = allowed if found is None else found & allowed
            if not found:
                raise NoMatch(name)
    return next(iter(found)) if found else None


def _subject_county(ref) -> str | None:
    m = re.match(r"^div-([0-9]{6})$", ref.id)
    return m.group(1) if m else None


def _reporter_county(session: Session, ref) -> str | None:
    return dashboard.reporter_county(session, int(ref.id)) if ref.id.isdigit() and len(ref.id) <= 10 else None


def _disease(ref) -> str | None:
    code = ref.id.removeprefix("cases-")
    return code if load_catalogue().versions(code) else None


class MeasureReportProvider(ResourceProvider):
    resource_type = "MeasureReport"
    documentation = ("Notified cases per disease, county and day or ISO week (type summary): subject the county "
                     "(Location/div-<code>), reporter its CDC, measure …/Measure/cases-<disease>, one group with "
                     "the count as initial-population and measureScore. Read-only; ids cases-<disease>-<county>-"
                     "<YYYY-MM-DD> or cases-<disease>-<county>-<YYYY>-W<ww>. Needs surveillance statistics on the "
                     "county.")
    search_params = (
        ID_PARAM,
        SearchParamDef("period", ParamType.DATE, "Days the report's period overlaps (YYYY, YYYY-MM, YYYY-MM-DD; eq, "
                       "ge, gt, le, lt); a lower bound is required, the upper defaults to today.",
                       multiple_or=False, prefixes=("eq", "ge", "gt", "le", "lt")),
        SearchParamDef("subject", ParamType.REFERENCE, "The county: Location/div-<county code>.",
                       targets=("Location",), multiple_or=False, repeatable=False),
        SearchParamDef("reporter", ParamType.REFERENCE, "The county CDC: Organization/<id>.",
                       targets=("Organization",), multiple_or=False, repeatable=False),
        SearchParamDef("measure", ParamType.REFERENCE, "The disease: Measure/cases-<disease code>.",
                       targets=("Measure",), repeatable=False),
        SearchParamDef("interval", ParamType.TOKEN, "day (default) | week (ISO weeks, Monday to Sunday).",
                       codes=("day", "week"), multiple_or=False, repeatable=False),
    )

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        parsed = parse_report_id(resource_id)
        today = _today()
        if parsed is None or parsed[2] > today or not load_catalogue().versions(parsed[0]):
            return None
        disease, county, start, weekly = parsed
        try:
            found = dashboard.case_count(session, _who(actor), disease=disease, county=county, start=start,
                                         weekly=weekly)
        except Invalid:  # no such county, or a day outside the years served: no such report
            return None
        return self._map(found, weekly, today)[0]

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        actor = _who(request.actor)
        ids = any_of(request, "_id", lambda v: v)
        if ids is not None:
            if len(request.clauses) > len(request.of("_id")):
                raise bad_value("_id", "cannot be combined with other parameters for MeasureReport")
            found = [r for r in (self.read(session, i, actor) for i in sorted(ids)) if r is not None]
            return SearchResult(len(found), found[request.offset:request.offset + request.count])
        today = _today()
        since, until = period_range(request, today)
        diseases = any_of(request, "measure", _disease)
        weekly = (request.single("interval").values[0].code == "week") if request.single("interval") else False
        found = dashboard.case_counts(session, actor, county=_county(request, session),
                                      diseases=sorted(diseases) if diseases is not None else None, since=since,
                                      until=until, weekly=weekly, offset=request.offset, limit=request.count)
        return SearchResult(found.total, self._map(found, weekly, today),
                            request.offset + len(found.rows) < found.total)

    @staticmethod
    def _map(found: dashboard.CaseCounts, weekly: bool, today: date) -> list[dict[str, Any]]:
        return [to_fhir(r, weekly=weekly, county_name=found.county_names.get(r.county_code, r.county_code),
                        reporter=found.reporters.get(r.county_code), today=today) for r in found.rows]


def register(fhir: FhirRegistry) -> None:
    fhir.register(MeasureReportProvider())
