"""Search-parameter readers shared by the scheduling providers: paging over service calls
that do not count, date ranges on a day column, ``actor`` references and ``service-type``
tokens turned into the arguments of the scheduling queries."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from ...errors import Unauthorized
from ...fhir import DateValue, NoMatch, Reference, SearchRequest, SearchResult, Token, bad_value
from ...registry import queries as registry_queries
from .mapping import DEPARTMENT_SYSTEM, EXAM_KIND_SYSTEM, bad, db_id, site_id

T = TypeVar("T")
Fetch = Callable[[int, int], Sequence[T]]


def who(actor: Any) -> Any:
    if actor is None:
        raise Unauthorized("SEC-100", "log in first (a session cookie or an Authorization: Bearer token)")
    return actor


def value(request: SearchRequest, name: str) -> Any:
    clause = request.single(name)
    return clause.values[0] if clause else None


def page(request: SearchRequest, fetch: Fetch) -> tuple[list[T], int | None, bool]:
    """One page from a service call that pages but does not count: it reads one row past
    the page, so the total is known only on the last page (as the Patient provider does)."""
    rows = list(fetch(request.offset, request.count + 1))
    more = len(rows) > request.count
    rows = rows[:request.count]
    known = not more and (bool(rows) or request.offset == 0)
    return rows, (request.offset + len(rows) if known else None), more


def by_ids(request: SearchRequest, ids: set[int], read: Callable[[int], dict[str, Any] | None]) -> SearchResult:
    """``_id`` alone: each resource read (and access-checked) by the service."""
    if any(c.name != "_id" for c in request.clauses):
        raise bad_value("_id", f"cannot be combined with other search parameters for {request.resource_type}")
    found = [r for r in (read(i) for i in sorted(ids)) if r is not None]
    return SearchResult(len(found), found[request.offset:request.offset + request.count])


def _bounds(name: str, given: DateValue) -> tuple[date, date]:
    """The first and last day a date of year, month or day precision covers."""
    text = given.value
    try:
        if len(text) == 4:
            return date(int(text), 1, 1), date(int(text), 12, 31)
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:])
            return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:
        pass
    day = given.full_date()
    if day is None:
        raise bad_value(name, f"{text!r}: give a date (YYYY-MM-DD, YYYY-MM or YYYY); times of day are not "
                              f"searchable here")
    return day, day


def day_range(request: SearchRequest, name: str) -> tuple[date | None, date | None]:
    """The days the occurrences of a date parameter allow, AND-ed (``ge2026-11-01&le...``)."""
    low: date | None = None
    high: date | None = None
    for clause in request.of(name):
        given = clause.values[0]
        first, last = _bounds(name, given)
        lo, hi = {"eq": (first, last), "ge": (first, None), "gt": (last + timedelta(days=1), None),
                  "le": (None, last), "lt": (None, first - timedelta(days=1))}[given.prefix]
        low = lo if low is None or (lo is not None and lo > low) else low
        high = hi if high is None or (hi is not None and hi < high) else high
    if low is not None and high is not None and low > high:
        raise NoMatch(name)
    return low, high


def actor_ref(ref: Reference | None) -> tuple[str, int] | None:
    """``Practitioner/<id>`` → ("practitioner", id), ``Patient/<id>`` → ("patient", id),
    ``Location/site-<organisation>`` → ("org", id); NoMatch for anything else."""
    if ref is None:
        return None
    if ref.type == "Location":
        found = site_id(ref.id)
        kind = "org"
    else:
        found = db_id(ref.id)
        kind = (ref.type or "").lower()
    if found is None or kind not in ("org", "practitioner", "patient"):
        raise NoMatch("actor")  # e.g. a jurisdiction (Location/div-…): it has no schedules
    return kind, found


def service_type(token: Token | None) -> tuple[str, str] | None:
    """("department", code) or ("exam", kind). Without a system a code that starts with a
    digit is a department code (《医疗机构诊疗科目名录》: 03, 03.03 …), else an exam kind (CT)."""
    if token is None:
        return None
    if token.code is None or token.system not in (None, "", DEPARTMENT_SYSTEM, EXAM_KIND_SYSTEM):
        raise NoMatch("service-type")
    if token.system == DEPARTMENT_SYSTEM or (not token.system and token.code[:1].isdigit()):
        return "department", token.code
    return "exam", token.code


def department_at(session: Session, org_id: int | None, code: str, where: str) -> int:
    """The department with ``code`` at ``org_id`` (department codes repeat across hospitals)."""
    if org_id is None:
        raise bad("SCHED-072", where, "a department code is searchable together with the organisation "
                                      "(actor=Location/site-<organisation id>, or organization in $find)")
    found = [dep.id for dep in registry_queries.departments_of(session, org_id) if dep.code == code]
    if not found:
        raise NoMatch(where)
    return found[0]
