"""``ScheduleProvider``, ``SlotProvider`` and ``AppointmentProvider``: the scheduling
interactions of the FHIR surface, each one parse → one ``service``/``schedules`` call →
map. Access, masking, audit and the booking rules are the service's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ...db import utcnow
from ...errors import NotFound
from ...fhir import (
    ID_PARAM,
    VERSION_CONFLICT,
    FhirError,
    NoMatch,
    ParamType,
    ResourceProvider,
    SearchParamDef,
    SearchRequest,
    SearchResult,
    Token,
    Written,
    any_of,
)
from .. import domain as d
from .. import schedules, service
from .mapping import (
    BOOK_DEFINITION,
    DEPARTMENT_SYSTEM,
    EXAM_KIND_SYSTEM,
    FIND_DEFINITION,
    KIND_SYSTEM,
    Lookups,
    appointment_to_fhir,
    bad,
    cancel_reason,
    check_unchanged,
    db_id,
    schedule_to_fhir,
    slot_to_fhir,
)
from .operations import Operations
from .search import actor_ref, by_ids, day_range, department_at, page, service_type, value, who

Clock = Callable[[], datetime]
STATUSES = tuple(s.value for s in d.Status)
SERVICE_TYPE_DOC = (f"The department (`{DEPARTMENT_SYSTEM}|03.03`) or, for exam rooms, the equipment kind "
                    f"(`{EXAM_KIND_SYSTEM}|CT`); without a system a code starting with a digit is a department.")
DATE_PREFIXES = ("eq", "ge", "gt", "le", "lt")


def _single(name: str, type_: ParamType, doc: str, **kw: Any) -> SearchParamDef:
    # The scheduling queries take one value per criterion: no OR list, no repetition.
    return SearchParamDef(name, type_, doc, multiple_or=False, repeatable=False, **kw)


def _days(name: str, doc: str) -> SearchParamDef:
    return SearchParamDef(name, ParamType.DATE, doc + " Dates (YYYY, YYYY-MM, YYYY-MM-DD) in the hospital's time "
                          "zone; repeat for a range (`ge2026-12-01&lt2026-12-08`).", multiple_or=False,
                          prefixes=DATE_PREFIXES)


def _category(token: Token | None) -> str | None:
    if token is None:
        return None
    if token.system not in (None, "", KIND_SYSTEM):
        raise NoMatch("service-category")
    return token.code


class ScheduleProvider(ResourceProvider):
    resource_type = "Schedule"
    versioning = "versioned"
    documentation = ("Bookable schedules (排班): a doctor's clinic, a department's clinic or an exam room. actor: "
                     "the Practitioner and the hospital's site (Location/site-<organisation id>); the fee class "
                     "(普通号/专家号/特需号) is an extension. A closed schedule is inactive.")
    search_params = (
        ID_PARAM,
        _single("actor", ParamType.REFERENCE, "Practitioner/<id>, or the hospital as Location/site-<organisation "
                "id>.", targets=("Practitioner", "Location")),
        _single("active", ParamType.TOKEN, "true: schedules still offered; false: closed ones.",
                codes=("true", "false")),
        _single("service-type", ParamType.TOKEN, SERVICE_TYPE_DOC + " A department code needs the hospital as "
                "actor."),
        _single("service-category", ParamType.TOKEN, f"clinic | exam ({KIND_SYSTEM}).", codes=("clinic", "exam")),
    )

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        sid = db_id(resource_id)
        if sid is None:
            return None
        try:
            view = schedules.get_schedule(session, who(actor), sid)
        except NotFound:
            return None
        return schedule_to_fhir(view, Lookups(session, actor))

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        actor = who(request.actor)
        ids = any_of(request, "_id", db_id)
        if ids is not None:
            return by_ids(request, ids, lambda i: self.read(session, str(i), actor))
        active = value(request, "active")
        filters: dict[str, Any] = {"kind": _category(value(request, "service-category")),
                                   "active": None if active is None else active.code == "true"}
        who_ = actor_ref(value(request, "actor"))
        if who_ is not None:
            if who_[0] not in ("org", "practitioner"):
                raise NoMatch("actor")
            filters["org_id" if who_[0] == "org" else "practitioner_id"] = who_[1]
        wanted = service_type(value(request, "service-type"))
        if wanted and wanted[0] == "department":
            filters["department_id"] = department_at(session, filters.get("org_id"), wanted[1], "service-type")
        elif wanted:
            if filters["kind"] == "clinic":
                raise NoMatch("service-type")  # an equipment kind is an exam schedule's
            filters["kind"], filters["exam_kind"] = "exam", wanted[1]
        rows, total, more = page(request, lambda off, lim: schedules.list_schedules(
            session, actor, offset=off, limit=lim, **filters))
        look = Lookups(session, actor)
        return SearchResult(total, [schedule_to_fhir(v, look) for v in rows], more)


class SlotProvider(ResourceProvider):
    resource_type = "Slot"
    documentation = ("Places of one start time in one quota pool of a session. The pool (转诊预留/网站APP/电话/自助机/"
                     "窗口) is the booking-pool extension, capacity and booked places the slot-places extension; "
                     "status is busy once booked reaches capacity, busy-unavailable when the session is stopped "
                     "(停诊). Search lists the slots of open sessions that have not started; read any by id. "
                     "Book with Appointment/$book; find free places with Appointment/$find.")
    search_params = (
        ID_PARAM,
        _single("schedule", ParamType.REFERENCE, "The Schedule the slot belongs to.", targets=("Schedule",)),
        _single("status", ParamType.TOKEN, "free | busy (busy-unavailable slots are not listed).",
                codes=("free", "busy", "busy-unavailable")),
        _days("start", "The day the slot starts."),
        _single("service-type", ParamType.TOKEN, f"The equipment kind of exam slots (`{EXAM_KIND_SYSTEM}|CT`); "
                f"department slots are found with Appointment/$find (which takes the organisation)."),
        _single("service-category", ParamType.TOKEN, f"clinic | exam ({KIND_SYSTEM}).", codes=("clinic", "exam")),
    )

    def __init__(self, clock: Clock = utcnow):
        self.clock = clock

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        sid = db_id(resource_id)
        if sid is None:
            return None
        try:
            slot = service.get_slot(session, who(actor), sid)
        except NotFound:
            return None
        return slot_to_fhir(slot, Lookups(session, actor))

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        actor = who(request.actor)
        ids = any_of(request, "_id", db_id)
        if ids is not None:
            return by_ids(request, ids, lambda i: self.read(session, str(i), actor))
        query = service.SlotQuery(free_only=False, kind=_category(value(request, "service-category")))
        schedule = value(request, "schedule")
        if schedule is not None:
            query.schedule_id = db_id(schedule.id)
            if query.schedule_id is None:
                raise NoMatch("schedule")
        wanted = service_type(value(request, "service-type"))
        if wanted and wanted[0] == "department":
            raise bad("SCHED-072", "service-type", "Slot search takes exam kinds; find a department's slots with "
                                                   "Appointment/$find?organization=…&service-type=…")
        query.exam_kind = wanted[1] if wanted else None
        query.day_from, query.day_to = day_range(request, "start")
        self._status_filter(request, query)
        rows, total, more = page(request, lambda off, lim: service.find_slots(
            session, actor, query, now=self.clock(), offset=off, limit=lim))
        look = Lookups(session, actor)
        return SearchResult(total, [slot_to_fhir(s, look) for s in rows], more)

    @staticmethod
    def _status_filter(request: SearchRequest, query: service.SlotQuery) -> None:
        status = value(request, "status")
        if status is None:
            return
        if status.code == "busy-unavailable":
            raise NoMatch("status")  # stopped sessions are not listed
        query.free_only, query.full_only = status.code == "free", status.code == "busy"


class AppointmentProvider(ResourceProvider):
    resource_type = "Appointment"
    versioning = "versioned-update"
    documentation = ("Appointments (预约). Book with `$book`, find free places with `$find`. Update (PUT) changes "
                     "the status only: `cancelled` with cancelationReason.text cancels (退号, the place goes to the "
                     "waitlist), `arrived` checks the patient in (签到, on the day), `fulfilled` completes the "
                     "visit; send `If-Match: W/\"<version>\"`"
                     ". A new time or slot is a new booking.")
    search_params = (
        ID_PARAM,
        _single("patient", ParamType.REFERENCE, "The patient.", targets=("Patient",)),
        _single("practitioner", ParamType.REFERENCE, "The doctor.", targets=("Practitioner",)),
        _single("actor", ParamType.REFERENCE, "Patient/<id>, Practitioner/<id> or the hospital as Location/site-"
                "<organisation id>.", targets=("Patient", "Practitioner", "Location")),
        _single("location", ParamType.REFERENCE, "The hospital, Location/site-<organisation id>.",
                targets=("Location",)),
        _single("status", ParamType.TOKEN, " | ".join(STATUSES) + ".", codes=STATUSES),
        _days("date", "The day of the appointment."),
        _single("slot", ParamType.REFERENCE, "The booked Slot.", targets=("Slot",)),
    )

    def __init__(self, clock: Clock = utcnow):
        self.clock = clock
        self.operations = Operations(clock).definitions(FIND_DEFINITION, BOOK_DEFINITION)

    def read(self, session: Session, resource_id: str, actor: Any = None) -> dict[str, Any] | None:
        aid = db_id(resource_id)
        if aid is None:
            return None
        try:
            view = service.get_appointment(session, who(actor), aid)
        except NotFound:
            return None
        return appointment_to_fhir(view, service.tz_of(session))

    def search(self, session: Session, request: SearchRequest) -> SearchResult:
        actor = who(request.actor)
        ids = any_of(request, "_id", db_id)
        if ids is not None:
            return by_ids(request, ids, lambda i: self.read(session, str(i), actor))
        query = _appointment_query(request)
        rows, total, more = page(request, lambda off, lim: service.search_appointments(
            session, actor, query, offset=off, limit=lim))
        tz = service.tz_of(session)
        return SearchResult(total, [appointment_to_fhir(v, tz) for v in rows], more)

    def update(self, session: Session, resource_id: str, resource: dict[str, Any], actor: Any = None, *,
               if_match: str | None = None) -> Written:
        aid = db_id(resource_id)
        current = self.read(session, resource_id, actor) if aid is not None else None
        if current is None:
            raise NotFound("SCHED-025", f"appointment {resource_id} not found")
        expected = _version(if_match)
        check_unchanged(resource, current)
        status = resource["status"]
        if status == current["status"]:
            _check_version(expected, current)
            return Written(current, created=False)
        view = self._change(session, who(actor), aid, status, resource, expected, current)
        return Written(appointment_to_fhir(view, service.tz_of(session)), created=False)

    def _change(self, session: Session, actor: Any, aid: int, status: str, resource: dict[str, Any],
                expected: int | None, current: dict[str, Any]) -> Any:
        """One status change, one service call: cancel (退号), check in (签到) or complete (接诊完成)."""
        if status == d.Status.CANCELLED.value:
            return service.cancel_appointment(session, actor, aid, reason=cancel_reason(resource),
                                              expected_version=expected, now=self.clock())
        if status not in (d.Status.ARRIVED.value, d.Status.FULFILLED.value):
            raise bad("SCHED-071", "Appointment.status", f"{current['status']} → {status} is not made here; an "
                                                         f"update cancels (cancelled), checks the patient in "
                                                         f"(arrived) or completes the visit (fulfilled)")
        if status == d.Status.ARRIVED.value:
            return service.check_in(session, actor, aid, expected_version=expected, now=self.clock())
        return service.complete_appointment(session, actor, aid, expected_version=expected)


def _check_version(expected: int | None, current: dict[str, Any]) -> None:
    version = current["meta"]["versionId"]
    if expected is not None and str(expected) != version:
        raise FhirError(VERSION_CONFLICT, f"Appointment/{current['id']} is at version {version}; read it again",
                        status=412, issue="conflict", detail={"version": version})


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    if not (if_match.isascii() and if_match.isdigit() and len(if_match) < 10):
        raise FhirError(VERSION_CONFLICT, f"If-Match names version {if_match!r}; Appointment versions are numbers",
                        status=412, issue="conflict")
    return int(if_match)


def _appointment_query(request: SearchRequest) -> service.AppointmentQuery:
    query = service.AppointmentQuery()
    for name, kind in (("patient", "patient"), ("practitioner", "practitioner"), ("actor", None),
                       ("location", "org")):
        ref = actor_ref(value(request, name))
        if ref is None:
            continue
        if kind is not None and ref[0] != kind:
            raise NoMatch(name)
        field = {"patient": "patient_id", "practitioner": "practitioner_id", "org": "org_id"}[ref[0]]
        if getattr(query, field) not in (None, ref[1]):
            raise NoMatch(name)  # two parameters naming different people or places
        setattr(query, field, ref[1])
    status = value(request, "status")
    query.status = status.code if status is not None else None
    slot = value(request, "slot")
    if slot is not None:
        query.slot_id = db_id(slot.id)
        if query.slot_id is None:
            raise NoMatch("slot")
    query.day_from, query.day_to = day_range(request, "date")
    return query
