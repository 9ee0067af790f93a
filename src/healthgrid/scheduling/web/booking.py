"""The resident's booking flow (facility → department → doctor → day → time → confirm) and
the same flow for staff booking for a patient at the window or on the phone; joining the
waitlist of a full session.

Every step is a GET of ``/booking`` with the choices so far in the query, so the browser's
back button and a shared link work. The confirmation form carries a one-time token sent as
the booking's idempotency key: a double click, or a form sent again after a time-out, books
once and shows the same appointment.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from ...errors import HealthGridError, Invalid
from ...http import SessionDep
from ...registry import queries as registry_queries
from ...security.domain import Actor
from ...security.http import ActorDep
from .. import schedules, service
from .common import booked_notice, fail, find_patients, is_staff, parse_day, parse_id, redirect, render

router = APIRouter(include_in_schema=False)
STAFF_CHANNELS = ("window", "phone", "kiosk")
Param = Annotated[str, Query(max_length=40)]


def _channel(actor: Actor, wanted: str) -> str:
    """Residents book by web (the app); staff choose the line they answer."""
    if not is_staff(actor):
        return "web"
    return wanted if wanted in STAFF_CHANNELS else "window"


# -- the steps ----------------------------------------------------------------------------------

def _facilities(session: Session, actor: Actor, q: str) -> list[tuple[int, str]]:
    if q.strip():
        found = registry_queries.search_organizations(session, registry_queries.OrgFilter(name=q.strip()), limit=30)
        return [(o.id, o.name) for o in found.items]
    rows = schedules.list_schedules(session, actor, kind="clinic", limit=500)
    return list(dict.fromkeys((s.org_id, s.org_name) for s in rows))


def _departments(rows: list[Any]) -> list[dict[str, Any]]:
    groups: dict[int, dict[str, Any]] = {}
    for s in rows:
        group = groups.setdefault(s.department_id or 0, {"id": s.department_id or 0, "name": s.department_name,
                                                         "schedules": []})
        group["schedules"].append(s)
    return sorted(groups.values(), key=lambda g: (g["id"] == 0, g["name"] or ""))


@dataclass
class DayOption:
    day: Any
    free: int = 0
    opens_at: datetime | None = None  # set while no place of the day is released


@dataclass
class SessionOption:
    id: int
    part: str
    starts_at: datetime
    public_release_at: datetime
    slots: list[Any] = field(default_factory=list)

    @property
    def free(self) -> int:
        return sum(s.free for s in self.slots)


def _slots(session: Session, actor: Actor, schedule: Any, channel: str, day_from, day_to) -> list[Any]:
    q = service.SlotQuery(schedule_id=schedule.id, day_from=day_from, day_to=day_to, pool=channel, free_only=False)
    return service.find_slots(session, actor, q, limit=2000)


def _days(slots: list[Any], now: datetime) -> list[DayOption]:
    days: dict[Any, DayOption] = {}
    for s in slots:
        option = days.setdefault(s.day, DayOption(s.day))
        if s.public_release_at <= now:
            option.free += s.free
        elif option.free == 0 and (option.opens_at is None or s.public_release_at < option.opens_at):
            option.opens_at = s.public_release_at
    for option in days.values():
        if option.free:
            option.opens_at = None
    return sorted(days.values(), key=lambda o: o.day)


def _sessions(slots: list[Any]) -> list[SessionOption]:
    found: dict[int, SessionOption] = {}
    for s in slots:
        found.setdefault(s.session_id, SessionOption(s.session_id, s.part, s.starts_at, s.public_release_at)
                         ).slots.append(s)
    return sorted(found.values(), key=lambda o: o.starts_at)


def _step_context(session: Session, actor: Actor, org: int | None, dept: int | None, schedule_id: int | None,
                  day, channel: str) -> dict[str, Any]:
    """What the page shows for the choices made so far; the deepest step decides."""
    ctx: dict[str, Any] = {"org": org, "dept": dept, "schedule": None, "day": day, "step": "facility"}
    if schedule_id is not None:
        sched = schedules.get_schedule(session, actor, schedule_id)
        ctx.update(schedule=sched, org=sched.org_id, dept=sched.department_id or 0, org_name=sched.org_name)
        start = today_of(session)
        if day is not None:
            ctx.update(step="time", sessions=_sessions(_slots(session, actor, sched, channel, day, day)))
        else:
            horizon = start + timedelta(days=sched.open_days_ahead + 14)
            ctx.update(step="date", days=_days(_slots(session, actor, sched, channel, start, horizon),
                                               datetime.now(UTC)))
        return ctx
    if org is not None:
        rows = schedules.list_schedules(session, actor, org_id=org, kind="clinic", limit=500)
        ctx["org_name"] = registry_queries.organization_by_id(session, org).name
        groups = _departments(rows)
        if dept is not None:
            chosen = next((g for g in groups if g["id"] == dept), None)
            ctx.update(step="doctor", doctors=chosen["schedules"] if chosen else [],
                       dept_name=chosen["name"] if chosen else None)
        else:
            ctx.update(step="department", departments=groups)
    return ctx


def today_of(session: Session):
    return datetime.now(service.tz_of(session)).date()


@router.get("/booking", response_class=HTMLResponse)
def booking(request: Request, session: SessionDep, actor: ActorDep, q: Param = "", org: Param = "",
            dept: Param = "", schedule: Param = "", day: Param = "", channel: Param = "") -> HTMLResponse:
    chan = _channel(actor, channel)
    dept_id = int(dept) if dept.strip().isdigit() else None
    ctx = _step_context(session, actor, parse_id(org), dept_id, parse_id(schedule), parse_day(day), chan)
    if ctx["step"] == "facility":
        ctx["facilities"] = _facilities(session, actor, q)
    waiting_for = _own_patients(session, actor) if ctx["step"] == "time" and not is_staff(actor) else []
    return render(request, "scheduling/booking.html", q=q, channel=chan, staff=is_staff(actor),
                  channels=STAFF_CHANNELS, now_at=datetime.now(UTC), waiting_for=waiting_for, **ctx)


# -- confirming --------------------------------------------------------------------------------

def _own_patients(session: Session, actor: Actor) -> list[tuple[int, str, str]]:
    """(patient id, name, relationship) of the records a resident books for: themself first."""
    return [(p.patient_id, p.name, p.relationship) for p in service.own_patients(session, actor)]


def _confirm_page(request: Request, session: Session, actor: Actor, slot_id: int, channel: str, name: str = "",
                  rid: str = "") -> HTMLResponse:
    slot = service.get_slot(session, actor, slot_id)
    sched = schedules.get_schedule(session, actor, slot.schedule_id)
    ctx: dict[str, Any] = {"slot": slot, "schedule": sched, "channel": channel, "staff": is_staff(actor),
                           "channels": STAFF_CHANNELS, "key": secrets.token_urlsafe(18), "name": name, "rid": rid,
                           "rules": service.settings_of(session), "found": None, "search_error": None,
                           "patients": []}
    if is_staff(actor):
        ctx["found"], error = find_patients(session, actor, name, rid)
        ctx["search_error"] = error
    else:
        ctx["patients"] = _own_patients(session, actor)
    return render(request, "scheduling/confirm.html", **ctx)


@router.get("/booking/confirm", response_class=HTMLResponse)
def confirm(request: Request, session: SessionDep, actor: ActorDep, slot: Param = "", channel: Param = "",
            name: Annotated[str, Query(max_length=60)] = "", rid: Annotated[str, Query(max_length=20)] = ""
            ) -> Response:
    slot_id = parse_id(slot)
    if slot_id is None:
        return redirect(request, "/booking")
    return _confirm_page(request, session, actor, slot_id, _channel(actor, channel), name, rid)


@router.post("/booking/confirm")
def book(request: Request, session: SessionDep, actor: ActorDep, slot_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
         patient_id: Annotated[str, Form(max_length=12)] = "", channel: Annotated[str, Form(max_length=10)] = "",
         key: Annotated[str, Form(max_length=100)] = "") -> Response:
    chan = _channel(actor, channel)
    back = f"/booking/confirm?slot={slot_id}&channel={chan}"
    pid = parse_id(patient_id)
    if pid is None:
        return fail(request, back, Invalid("HG-422", "choose the patient (就诊人)", {"field": "patient_id"}))
    try:
        appt = service.book_appointment(session, actor, slot_id=slot_id, patient_id=pid, channel=chan,
                                        idempotency_key=key or None)
    except HealthGridError as exc:
        if exc.code in ("SCHED-002", "SCHED-004"):
            slot = service.get_slot(session, actor, slot_id)
            back = f"/booking?schedule={slot.schedule_id}&day={slot.day.isoformat()}&channel={chan}"
        return fail(request, back, exc)
    return redirect(request, f"/appointments/{appt.id}", m="sched.flash.booked", **booked_notice(request, appt))


@router.post("/booking/waitlist")
def join_waitlist(request: Request, session: SessionDep, actor: ActorDep,
                  session_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
                  patient_id: Annotated[str, Form(max_length=12)] = "",
                  back: Annotated[str, Form(max_length=200)] = "/booking") -> Response:
    back = back if back.startswith("/booking") else "/booking"
    pid = parse_id(patient_id)
    try:
        if pid is None:
            raise Invalid("HG-422", "choose the patient (就诊人)", {"field": "patient_id"})
        entry = service.join_waitlist(session, actor, session_id=session_id, patient_id=pid,
                                      channel=_channel(actor, ""))
    except HealthGridError as exc:
        return fail(request, back, exc)
    return redirect(request, "/appointments", m="sched.flash.waitlisted", n=entry.position)
