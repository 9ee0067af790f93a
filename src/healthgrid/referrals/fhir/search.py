"""Search parameters of ServiceRequest and Task → one ``ReferralQuery`` of the referrals
service: references to patients, doctors and organisations, status codes of either
resource turned into our statuses, days in the hospitals' time zone, the referral's own
ids (``_id``, ``identifier``, ``focus``), and paging over a service call that does not count."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from ...errors import Unauthorized
from ...fhir import ANY, DateValue, NoMatch, Reference, SearchRequest, SearchResult, Token, any_of, bad_value
from .. import domain as d
from ..desk import ReferralQuery
from .mapping import PRIORITY, REFERRAL_SYSTEM, REQUEST_STATUS, STATUS_SYSTEM, TASK_STATUS

T = TypeVar("T")
MAX_DB_ID = 2**31 - 1
URGENCY_OF = {code: urgency.value for urgency, code in PRIORITY.items()}
REQUEST_STATUS_SYSTEM = "http://hl7.org/fhir/request-status"
TASK_STATUS_SYSTEM = "http://hl7.org/fhir/task-status"
PRIORITY_SYSTEM = "http://hl7.org/fhir/request-priority"
ID_PARAMS = ("_id", "identifier", "focus", "based-on")  # each names referrals by their ids


def who(actor: Any) -> Any:
    if actor is None:
        raise Unauthorized("SEC-100", "log in first (a session cookie or an Authorization: Bearer token)")
    return actor


def db_id(value: str) -> int | None:
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 0 < int(value) <= MAX_DB_ID:
        return None
    return int(value)


def value(request: SearchRequest, name: str) -> Any:
    clause = request.single(name)
    return clause.values[0] if clause else None


def _code_id(token: Token) -> int | None:
    """``[system|]ZZ00000012`` → 12."""
    if token.system not in (None, REFERRAL_SYSTEM) or not token.code:
        return None
    code = token.code
    return db_id(code[2:].lstrip("0") or "0") if code.startswith("ZZ") and code[2:].isdigit() else None


def _request_id(ref: Reference) -> int | None:
    return db_id(ref.id) if ref.type in (None, "ServiceRequest") else None


def referral_ids(request: SearchRequest) -> set[int] | None:
    """The referrals ``_id``, ``identifier`` (the ZZ code), ``focus`` and ``based-on``
    (ServiceRequest/<id>) allow, AND-ed; None when none of them is given."""
    found: set[int] | None = None
    for name, convert in (("_id", db_id), ("identifier", _code_id), ("focus", _request_id),
                          ("based-on", _request_id)):
        allowed = any_of(request, name, convert)
        if allowed is not None:
            found = allowed if found is None else found & allowed
            if not found:
                raise NoMatch(name)
    return found


def by_ids(request: SearchRequest, ids: set[int], read: Callable[[int], dict[str, Any] | None]) -> SearchResult:
    """Referrals named by id: each read (and access-checked) by the service."""
    others = [c.name for c in request.clauses if c.name not in ID_PARAMS]
    if others:
        raise bad_value(others[0], f"cannot be combined with {', '.join(ID_PARAMS)} for {request.resource_type}")
    found = [r for r in (read(i) for i in sorted(ids)) if r is not None]
    return SearchResult(len(found), found[request.offset:request.offset + request.count])


def page(request: SearchRequest, fetch: Callable[[int, int], Sequence[T]]) -> tuple[list[T], int | None, bool]:
    """One page from a service call that pages but does not count: one row past the page
    is read, so the total is known only on the last page (as the scheduling providers do)."""
    rows = list(fetch(request.offset, request.count + 1))
    more = len(rows) > request.count
    rows = rows[:request.count]
    known = not more and (bool(rows) or request.offset == 0)
    return rows, (request.offset + len(rows) if known else None), more


# -- references ---------------------------------------------------------------------------------

def _one_id(ref: Reference | None, name: str) -> int | None:
    if ref is None:
        return None
    found = db_id(ref.id)
    if found is None:
        raise NoMatch(name)  # an id that cannot be one of ours
    return found


def _same(current: int | None, new: int, name: str) -> int:
    if current is not None and current != new:
        raise NoMatch(name)  # two parameters naming different patients
    return new


def apply_references(request: SearchRequest, query: ReferralQuery, performer: str) -> None:
    """patient / subject (for Task), requester, and the receiving organisation (``performer``
    of ServiceRequest, ``owner`` of Task)."""
    for name in ("patient", "subject"):
        found = _one_id(value(request, name), name)
        if found is not None:
            query.patient_id = _same(query.patient_id, found, name)
    ref = value(request, "requester")
    if ref is not None:
        found = _one_id(ref, "requester")
        if ref.type == "Organization":  # the referrals the facility sent, whoever signed them
            query.org_id, query.box = found, "out"
        else:
            query.requester_id = found
    query.performer_org_id = _one_id(value(request, performer), performer)


# -- statuses ------------------------------------------------------------------------------------

def _ours(mapping: dict[d.Status, str], system: str) -> Callable[[Token], Any]:
    """A request-status or task-status code → the set of our statuses it stands for."""
    def convert(token: Token) -> Any:
        if token.system not in (None, system):
            return None
        if token.code is None:
            return ANY
        return frozenset(s.value for s, code in mapping.items() if code == token.code) or None
    return convert


def _exact(token: Token) -> Any:
    if token.system not in (None, STATUS_SYSTEM):
        return None
    if token.code is None:
        return ANY
    return frozenset({token.code}) if token.code in {s.value for s in d.Status} else None


def apply_statuses(request: SearchRequest, query: ReferralQuery, resource: str) -> None:
    """``status`` (request-status or task-status codes, each standing for some of ours) and,
    for Task, ``business-status`` (ours exactly): the statuses every clause allows."""
    mapping, system = ((REQUEST_STATUS, REQUEST_STATUS_SYSTEM) if resource == "ServiceRequest"
                       else (TASK_STATUS, TASK_STATUS_SYSTEM))
    allowed: set[str] | None = None
    for name, convert in (("status", _ours(mapping, system)), ("business-status", _exact)):
        groups = any_of(request, name, convert)
        if groups is None:
            continue
        statuses = set().union(*groups)
        allowed = statuses if allowed is None else allowed & statuses
        if not allowed:
            raise NoMatch(name)
    if allowed is not None:
        query.status = sorted(allowed)


def apply_priority(request: SearchRequest, query: ReferralQuery) -> None:
    found = any_of(request, "priority", lambda t: URGENCY_OF.get(t.code) if t.system in (None, PRIORITY_SYSTEM)
                   else None)
    if found is not None:
        query.urgency = next(iter(found))


# -- dates ---------------------------------------------------------------------------------------

def _days(name: str, given: DateValue) -> tuple[date, date]:
    """The first and last day a date of year, month or day precision covers."""
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


def apply_dates(request: SearchRequest, query: ReferralQuery, name: str, tz: ZoneInfo) -> None:
    """``name`` occurrences AND-ed into ``since`` (inclusive) and ``until`` (exclusive), at
    midnight in the hospitals' time zone."""
    low: date | None = None
    high: date | None = None  # the first day no longer wanted
    for clause in request.of(name):
        first, last = _days(name, clause.values[0])
        lo, hi = {"eq": (first, last + timedelta(days=1)), "ge": (first, None), "gt": (last + timedelta(days=1), None),
                  "le": (None, last + timedelta(days=1)), "lt": (None, first)}[clause.values[0].prefix]
        low = lo if low is None or (lo is not None and lo > low) else low
        high = hi if high is None or (hi is not None and hi < high) else high
    if low is not None and high is not None and low >= high:
        raise NoMatch(name)
    query.since = datetime.combine(low, time(), tz) if low else None
    query.until = datetime.combine(high, time(), tz) if high else None
