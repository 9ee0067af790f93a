"""Search parameters of DiagnosticReport, Observation and ImagingStudy → one ``ResultQuery``:
the patient (``patient`` / ``subject``), the issuing organisation (``performer``), codes
(LOINC, the catalogue's items, a facility's local codes), categories, statuses, days in
China's time zone, identifiers and ids; and paging over a counted search."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ...errors import NotFound, Unauthorized
from ...fhir import ANY, DateValue, NoMatch, Reference, SearchRequest, SearchResult, Token, any_of, bad_value
from ...registry import queries as registry_queries
from ..catalogue import Catalogue
from ..domain import CN_TZ
from ..queries import LOINC, LOINC_SYSTEMS, CodeFilter, Page, ResultQuery
from .mapping import BASE, CATEGORY, DICOM_UID, ITEM_SYSTEM, OBSERVATION_CATEGORY, V2_0074

MAX_DB_ID = 2**31 - 1
DATE_PREFIXES = ("eq", "ge", "gt", "le", "lt")
LOCAL_PREFIX = f"{BASE}/NamingSystem/"
REPORT_STATUS_SYSTEM = "http://hl7.org/fhir/diagnostic-report-status"
OBSERVATION_STATUS_SYSTEM = "http://hl7.org/fhir/observation-status"


def who(actor: Any) -> Any:
    if actor is None:
        raise Unauthorized("SEC-100", "log in first (a session cookie or an Authorization: Bearer token)")
    return actor


def db_id(value: str) -> int | None:
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 0 < int(value) <= MAX_DB_ID:
        return None
    return int(value)


def _one_ref(request: SearchRequest, name: str) -> int | None:
    clause = request.single(name)
    if clause is None:
        return None
    ref: Reference = clause.values[0]
    found = db_id(ref.id)
    if found is None:
        raise NoMatch(name)
    return found


def apply_references(request: SearchRequest, q: ResultQuery) -> None:
    for name in ("patient", "subject"):
        found = _one_ref(request, name)
        if found is not None:
            if q.patient_id is not None and q.patient_id != found:
                raise NoMatch(name)
            q.patient_id = found
    q.performer_org_id = _one_ref(request, "performer")


def apply_ids(request: SearchRequest, q: ResultQuery) -> None:
    ids = any_of(request, "_id", db_id)
    if ids is not None:
        q.ids = ids


# -- categories and statuses ---------------------------------------------------------------------

def _category(token: Token) -> Any:
    """A v2-0074 section (LAB, RAD …) or an observation-category (laboratory, imaging …) →
    the report categories it stands for."""
    if token.code is None:
        return ANY if token.system in (V2_0074, OBSERVATION_CATEGORY) else None
    ours = frozenset(c for c, (_, obs) in CATEGORY.items()
                     if (token.system in (None, V2_0074) and token.code == c)
                     or (token.system in (None, OBSERVATION_CATEGORY) and token.code == obs))
    return ours or None


def apply_categories(request: SearchRequest, q: ResultQuery) -> None:
    groups = any_of(request, "category", _category)
    if groups is not None:
        q.categories = sorted(set().union(*groups))


def apply_statuses(request: SearchRequest, q: ResultQuery, system: str) -> None:
    found = any_of(request, "status", lambda t: (ANY if t.code is None else t.code)
                   if t.system in (None, system) else None)
    if found is not None:
        q.statuses = sorted(found)


# -- codes ---------------------------------------------------------------------------------------

def loinc_items(catalogue: Catalogue, loinc: str, *, observation: bool) -> frozenset[str]:
    """Catalogue items whose rows stand for ``loinc``: a report's item by its own LOINC; an
    observation's single-analyte item by its analyte's."""
    found = set()
    for item in catalogue.items.values():
        if observation:
            if len(item.analytes) == 1 and item.analytes[0].loinc == loinc:
                found.add(item.code)
        elif item.loinc == loinc:
            found.add(item.code)
    return frozenset(found)


def code_filter(session: Session, catalogue: Catalogue, token: Token, *, observation: bool) -> CodeFilter | None:
    """One ``code`` alternative; None when it cannot match."""
    system, code = token.system, token.code
    if system is None:
        return CodeFilter(code=code, items=loinc_items(catalogue, code, observation=observation))
    if system == LOINC:
        items = loinc_items(catalogue, code, observation=observation) if code else frozenset()
        return CodeFilter(code=code, systems=LOINC_SYSTEMS, items=items)
    if system == ITEM_SYSTEM:  # ``system|`` alone: every row mapped to an item
        return CodeFilter(items=frozenset({code} if code else catalogue.items), by_code=False)
    if system.startswith(LOCAL_PREFIX) and system.endswith("-lab"):
        org = _org_by_code(session, system[len(LOCAL_PREFIX):-len("-lab")])
        return CodeFilter(code=code, local=True, issuer_org_id=org) if org is not None else None
    if system == "":
        return CodeFilter(code=code, local=True)
    return CodeFilter(code=code, systems=(system,))


def _org_by_code(session: Session, code: str) -> int | None:
    try:
        return registry_queries.organization_by_code(session, code).id
    except NotFound:  # a facility the region does not have
        return None


def apply_codes(session: Session, request: SearchRequest, q: ResultQuery, catalogue: Catalogue, *,
                observation: bool) -> None:
    """Each ``code`` occurrence is an OR of alternatives; several occurrences (AND) are not
    supported (the parameter is declared once)."""
    clause = request.single("code")
    if clause is None:
        return
    filters = [f for f in (code_filter(session, catalogue, t, observation=observation) for t in clause.values) if f]
    if not filters:
        raise NoMatch("code")
    q.codes = filters


# -- identifiers ---------------------------------------------------------------------------------

def apply_report_identifiers(session: Session, request: SearchRequest, q: ResultQuery) -> None:
    clause = request.single("identifier")
    if clause is None:
        return
    found: list[tuple[int | None, str]] = []
    for token in clause.values:
        if token.code is None:
            raise bad_value("identifier", "give the report number (system|value or value)")
        if token.system is None:
            found.append((None, token.code))
        elif token.system.startswith(LOCAL_PREFIX) and token.system.endswith("-report"):
            org = _org_by_code(session, token.system[len(LOCAL_PREFIX):-len("-report")])
            if org is not None:
                found.append((org, token.code))
    if not found:
        raise NoMatch("identifier")
    q.fillers = found


def apply_study_identifiers(request: SearchRequest, q: ResultQuery) -> None:
    clause = request.single("identifier")
    if clause is None:
        return
    uids, accessions = [], []
    for token in clause.values:
        value = token.code or ""
        if token.system in (None, DICOM_UID) and value.startswith("urn:oid:"):
            uids.append(value[len("urn:oid:"):])
        elif token.system is None or (token.system.startswith(LOCAL_PREFIX) and token.system.endswith("-accession")):
            accessions.append(value)
    if not uids and not accessions:
        raise NoMatch("identifier")
    if uids and accessions:
        raise bad_value("identifier", "give study UIDs (urn:oid:…) or accession numbers, not both")
    q.study_uids, q.accession_numbers = (uids or None), (accessions or None)


def apply_modalities(request: SearchRequest, q: ResultQuery) -> None:
    found = any_of(request, "modality", lambda t: (ANY if t.code is None else t.code)
                   if t.system in (None, "http://dicom.nema.org/resources/ontology/DCM") else None)
    if found is not None:
        q.modalities = sorted(found)


# -- dates ---------------------------------------------------------------------------------------

def _days(name: str, given: DateValue) -> tuple[date, date]:
    text = given.value
    if len(text) == 4:
        return date(int(text), 1, 1), date(int(text), 12, 31)
    if len(text) == 7:
        year, month = int(text[:4]), int(text[5:])
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    day = given.full_date()
    if day is None:
        raise bad_value(name, f"{text!r}: give a date (YYYY-MM-DD, YYYY-MM or YYYY); times of day are not "
                              f"searchable here")
    return day, day


def date_bounds(request: SearchRequest, name: str) -> tuple[datetime | None, datetime | None]:
    """``name`` occurrences AND-ed into [since, until) at midnight, China time."""
    low: date | None = None
    high: date | None = None
    for clause in request.of(name):
        first, last = _days(name, clause.values[0])
        lo, hi = {"eq": (first, last + timedelta(days=1)), "ge": (first, None), "gt": (last + timedelta(days=1), None),
                  "le": (None, last + timedelta(days=1)), "lt": (None, first)}[clause.values[0].prefix]
        low = lo if low is None or (lo is not None and lo > low) else low
        high = hi if high is None or (hi is not None and hi < high) else high
    if low is not None and high is not None and low >= high:
        raise NoMatch(name)
    return (datetime.combine(low, time(), CN_TZ) if low else None,
            datetime.combine(high, time(), CN_TZ) if high else None)


# -- paging --------------------------------------------------------------------------------------

def page(request: SearchRequest, fetch: Callable[[int, int], Page],
         render: Callable[[list[Any]], list[dict[str, Any]]]) -> SearchResult:
    """One counted page: the Bundle has its total and a last link."""
    found = fetch(request.offset, request.count)
    total = found.total or 0
    return SearchResult(total, render(found.items), more=request.offset + request.count < total)


def require_available(request: SearchRequest) -> None:
    """Every indexed study is ``available``: that status matches all, any other none."""
    any_of(request, "status", lambda t: ANY if t.system in (None, "http://hl7.org/fhir/imagingstudy-status")
           and t.code in (None, "available") else None)
