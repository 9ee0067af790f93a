"""Staff pages of scheduling: the doctor's day list (check in, seen), the facility
administrator's schedule editor (create a schedule with its weekly sessions, set the hospital's
or a department's quota policy 预留号源规则, see the coming sessions with their free places per
pool, stop a session 停诊, add a holiday), and the exam booking centre (plan several exams for
a patient, then book them in one step)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ...errors import HealthGridError, Invalid
from ...http import SessionDep
from ...patients import service as patients
from ...registry import queries as registry_queries
from ...security.domain import Actor, Perm
from ...security.http import ActorDep, require
from ...web import page_language
from ...web.i18n import MESSAGES as CATALOGUE
from ...web.notices import error_view
from .. import domain as d
from .. import exam_booking, exams, schedules, service
from .common import fail, find_patients, home_org, parse_day, parse_id, redirect, render, today

router = APIRouter(prefix="/scheduling", include_in_schema=False)
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Param = Annotated[str, Query(max_length=40)]
Text = Annotated[str, Form(max_length=300)]
MANAGE = [Depends(require(Perm.SCHEDULE_MANAGE))]
BOOK = [Depends(require(Perm.APPOINTMENT_BOOK))]
# The rows of the weekly-session grid of a new schedule: every weekday, morning and afternoon.
DEFAULT_TIMES = {"am": ("08:00", "11:30"), "pm": ("13:30", "17:00"), "eve": ("18:00", "21:00")}


# -- the day list ------------------------------------------------------------------------------

@router.get("/day-list", response_class=HTMLResponse, dependencies=BOOK)
def day_list(request: Request, session: SessionDep, actor: ActorDep, day: Param = "",
             schedule: Param = "") -> HTMLResponse:
    chosen_day = parse_day(day) or today(request)
    schedule_id = parse_id(schedule)
    org = home_org(actor)
    options = schedules.list_schedules(session, actor, org_id=org, limit=500) if org else []
    entries, error = None, None
    practitioner = None if schedule_id else actor.practitioner_id
    if schedule_id or practitioner:
        try:
            entries = service.day_list(session, actor, day=chosen_day, practitioner_id=practitioner,
                                       schedule_id=schedule_id)
        except HealthGridError as exc:
            error = error_view(request, exc)
    return render(request, "scheduling/day_list.html", 403 if error else 200, day=chosen_day,
                  schedule_id=schedule_id, options=options, entries=entries, error=error,
                  mine=actor.practitioner_id is not None)


def _day_back(back: str) -> str:
    return back if back.startswith("/scheduling/day-list") and "//" not in back else "/scheduling/day-list"


@router.post("/day-list/{appointment_id}/check-in")
def check_in(request: Request, session: SessionDep, actor: ActorDep, appointment_id: RowId,
             number: Annotated[int, Form(ge=0, le=100_000)] = 0, back: Text = "") -> Response:
    try:
        service.check_in(session, actor, appointment_id)
    except HealthGridError as exc:
        return fail(request, _day_back(back), exc)
    return redirect(request, _day_back(back), m="sched.flash.checked_in", n=number)


@router.post("/day-list/{appointment_id}/seen")
def seen(request: Request, session: SessionDep, actor: ActorDep, appointment_id: RowId,
         number: Annotated[int, Form(ge=0, le=100_000)] = 0, back: Text = "") -> Response:
    try:
        service.complete_appointment(session, actor, appointment_id)
    except HealthGridError as exc:
        return fail(request, _day_back(back), exc)
    return redirect(request, _day_back(back), m="sched.flash.seen", n=number)


# -- the schedule editor -----------------------------------------------------------------------

class ScheduleForm(BaseModel):
    name: str = Field("", max_length=200)
    department_id: str = Field("", max_length=12)
    practitioner_id: str = Field("", max_length=12)
    fee_class: str = Field("general", max_length=10)
    # left empty: the department's quota policy, else the hospital's, else the platform's
    reserve_ratio: str = Field("", max_length=6)
    reserve_lead_days: str = Field("", max_length=4)
    release_back_hours: str = Field("", max_length=4)
    open_days_ahead: str = Field("", max_length=4)
    release_time: str = Field("", max_length=5)
    held: list[str] = Field(default_factory=list, max_length=21)
    row_key: list[str] = Field(default_factory=list, max_length=21)
    row_start: list[str] = Field(default_factory=list, max_length=21)
    row_end: list[str] = Field(default_factory=list, max_length=21)
    row_slot: list[str] = Field(default_factory=list, max_length=21)
    row_per: list[str] = Field(default_factory=list, max_length=21)


def _default_rows() -> list[dict[str, str]]:
    return [{"key": f"{w}-{p}", "weekday": w, "part": p, "start": DEFAULT_TIMES[p][0], "end": DEFAULT_TIMES[p][1],
             "slot": "15", "per": "1", "held": w < 5 and p == "am"} for w in range(7) for p in ("am", "pm")]


def _rows_of(form: ScheduleForm) -> list[dict[str, Any]]:
    rows = []
    for i, key in enumerate(form.row_key):
        w, _, p = key.partition("-")
        if not w.isdigit() or p not in d.PARTS:
            continue

        def at(values: list[str], i: int = i) -> str:
            return values[i].strip() if i < len(values) else ""
        rows.append({"key": key, "weekday": int(w), "part": p, "start": at(form.row_start), "end": at(form.row_end),
                     "slot": at(form.row_slot), "per": at(form.row_per), "held": key in form.held})
    return rows


def _int(value: str, field: str) -> int:
    if not value.strip().lstrip("-").isdigit():
        raise Invalid("SCHED-015", f"{field}: a whole number", {"field": field})
    return int(value)


def _schedule_in(org_id: int, form: ScheduleForm) -> schedules.ScheduleIn:
    templates = [schedules.TemplateIn(weekday=r["weekday"], part=r["part"], start=r["start"], end=r["end"],
                                      slot_minutes=_int(r["slot"], "slot_minutes"), per_slot=_int(r["per"], "per_slot"))
                 for r in _rows_of(form) if r["held"]]
    if not templates:
        raise Invalid("SCHED-016", "tick at least one weekly session", {"field": "templates"})
    return schedules.ScheduleIn(
        org_id=org_id, name=form.name, kind="clinic", fee_class=form.fee_class,
        department_id=parse_id(form.department_id), practitioner_id=parse_id(form.practitioner_id),
        reserve_ratio=_percent(form.reserve_ratio) if form.reserve_ratio.strip() else None,
        reserve_lead_days=_maybe_int(form.reserve_lead_days, "reserve_lead_days"),
        release_back_hours=_maybe_int(form.release_back_hours, "release_back_hours"),
        open_days_ahead=_maybe_int(form.open_days_ahead, "open_days_ahead"), release_time=form.release_time or None,
        templates=templates)


def _maybe_int(value: str, field: str) -> int | None:
    return _int(value, field) if value.strip() else None


def _editor(request: Request, session: Session, actor: Actor, form: ScheduleForm | None = None,
            rows: list[dict[str, Any]] | None = None, error: Any = None, policy_form: PolicyForm | None = None,
            policy_error: Any = None) -> HTMLResponse:
    org = home_org(actor)
    rows_ = schedules.list_schedules(session, actor, org_id=org, limit=500) if org else []
    detail = registry_queries.organization_detail(session, org) if org else None
    departments = detail.departments if detail else []
    policies = _policy_context(session, actor, org, departments, policy_form) if org else {}
    status = (error or policy_error).status if (error or policy_error) else 200
    return render(request, "scheduling/schedules.html", status, org=org,
                  org_name=detail.org.name if detail else "", schedules=rows_, departments=departments,
                  doctors=[p for p, _site in detail.staff] if detail else [],
                  fees=list(d.FeeClass), form=form or ScheduleForm(), rows=rows or _default_rows(), error=error,
                  today=today(request), policy_error=policy_error, **policies)


# -- quota policies (预留号源规则, §3.6) ------------------------------------------------------------

class PolicyForm(BaseModel):
    department_id: str = Field("", max_length=12)  # empty: the whole hospital
    reserve_ratio: str = Field("", max_length=6)  # a percentage
    reserve_lead_days: str = Field("", max_length=4)
    release_back_hours: str = Field("", max_length=4)
    open_days_ahead: str = Field("", max_length=4)
    release_time: str = Field("", max_length=5)


def _percent(value: str) -> float:
    text = value.strip().rstrip("%").strip()
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 100:
        raise Invalid("SCHED-015", "reserve_ratio: a percentage from 0 to 100", {"field": "reserve_ratio"})
    return round(number / 100, 4)


def _policy_in(org_id: int, form: PolicyForm) -> schedules.QuotaPolicyIn:
    department_id = parse_id(form.department_id)
    if form.department_id.strip() and department_id is None:
        raise Invalid("SCHED-015", "department_id: a department of this facility", {"field": "department_id"})
    return schedules.QuotaPolicyIn(
        org_id=org_id, department_id=department_id, reserve_ratio=_percent(form.reserve_ratio),
        reserve_lead_days=_int(form.reserve_lead_days, "reserve_lead_days"),
        release_back_hours=_int(form.release_back_hours, "release_back_hours"),
        open_days_ahead=_int(form.open_days_ahead, "open_days_ahead"), release_time=form.release_time or "08:00")


def _policy_context(session: Session, actor: Actor, org: int, departments: list[Any],
                    form: PolicyForm | None) -> dict[str, Any]:
    """The hospital's policy (else the platform's default) and the departments' own, and the
    form to set one, filled with the hospital's current rules."""
    names = {dep.id: dep.name for dep in departments}
    views = schedules.list_quota_policies(session, actor, org_id=org)
    whole = next((p for p in views if p.department_id is None), None)
    own = sorted((p for p in views if p.department_id is not None), key=lambda p: names.get(p.department_id, ""))
    base = whole or service.settings_of(session)
    form = form or PolicyForm(reserve_ratio=f"{base.reserve_ratio * 100:g}",
                              reserve_lead_days=str(base.reserve_lead_days),
                              release_back_hours=str(base.release_back_hours),
                              open_days_ahead=str(base.open_days_ahead), release_time=d.clock(base.release_minute))
    return {"policy_whole": whole, "policy_default": None if whole else base, "policy_departments": own,
            "department_names": names, "policy_form": form}


@router.post("/quota-policies", response_class=HTMLResponse, dependencies=MANAGE)
def set_policy(request: Request, session: SessionDep, actor: ActorDep,
               form: Annotated[PolicyForm, Form()]) -> Response:
    org = home_org(actor)
    try:
        if org is None:
            raise Invalid("SCHED-015", "your account is not attached to a facility", {"field": "org_id"})
        data = _policy_in(org, form)
        out = schedules.set_quota_policy(session, actor, data)
    except HealthGridError as exc:
        return _editor(request, session, actor, policy_form=form, policy_error=error_view(request, exc))
    scope = CATALOGUE.get("sched.policy.whole", page_language(request)) if data.department_id is None else \
        registry_queries.names_of(session, departments=[data.department_id])["department"].get(data.department_id, "")
    return redirect(request, "/scheduling/schedules#policy", m="sched.flash.policy", scope=scope,
                    n=out.schedules_updated)


@router.get("/schedules", response_class=HTMLResponse, dependencies=MANAGE)
def schedule_list(request: Request, session: SessionDep, actor: ActorDep) -> HTMLResponse:
    return _editor(request, session, actor)


@router.post("/schedules", response_class=HTMLResponse, dependencies=MANAGE)
def create(request: Request, session: SessionDep, actor: ActorDep,
           form: Annotated[ScheduleForm, Form()]) -> Response:
    org = home_org(actor)
    try:
        if org is None:
            raise Invalid("SCHED-015", "your account is not attached to a facility", {"field": "org_id"})
        made = schedules.create_schedule(session, actor, _schedule_in(org, form))
    except HealthGridError as exc:
        return _editor(request, session, actor, form, _rows_of(form), error_view(request, exc))
    return redirect(request, f"/scheduling/schedules/{made.id}", m="sched.flash.created")


@router.get("/schedules/{schedule_id}", response_class=HTMLResponse, dependencies=MANAGE)
def schedule_page(request: Request, session: SessionDep, actor: ActorDep, schedule_id: RowId) -> HTMLResponse:
    sched = schedules.get_schedule(session, actor, schedule_id)
    start = today(request)
    sessions = schedules.sessions_of(session, actor, schedule_id=schedule_id, day_from=start,
                                     day_to=start + timedelta(days=sched.open_days_ahead + sched.reserve_lead_days))
    return render(request, "scheduling/schedule.html", schedule=sched, sessions=sessions,
                  pools=[p.value for p in d.Pool])


@router.post("/schedules/{schedule_id}/stop")
def stop(request: Request, session: SessionDep, actor: ActorDep, schedule_id: RowId,
         day: Annotated[str, Form(max_length=10)] = "", part: Annotated[str, Form(max_length=4)] = "",
         reason: Text = "") -> Response:
    back = f"/scheduling/schedules/{schedule_id}"
    try:
        sched = schedules.get_schedule(session, actor, schedule_id)
        out = schedules.add_closure(session, actor, org_id=sched.org_id, day=_day(day), kind="stop",
                                    reason=reason, schedule_id=schedule_id, part=part or None)
    except HealthGridError as exc:
        return fail(request, back, exc)
    return redirect(request, back, m="sched.flash.stopped", n=out.cancelled_appointments)


def _day(value: str):
    found = parse_day(value)
    if found is None:
        raise Invalid("SCHED-017", "day: a date YYYY-MM-DD", {"field": "day"})
    return found


@router.post("/holidays")
def holiday(request: Request, session: SessionDep, actor: ActorDep, day: Annotated[str, Form(max_length=10)] = "",
            reason: Text = "") -> Response:
    try:
        org = home_org(actor)
        if org is None:
            raise Invalid("SCHED-017", "your account is not attached to a facility", {"field": "org_id"})
        out = schedules.add_closure(session, actor, org_id=org, day=_day(day), kind="holiday", reason=reason)
    except HealthGridError as exc:
        return fail(request, "/scheduling/schedules", exc)
    return redirect(request, "/scheduling/schedules", m="sched.flash.holiday", s=out.stopped_sessions,
                    n=out.cancelled_appointments)


# -- the exam booking centre -------------------------------------------------------------------

def _exam_patient(session: Session, actor: Actor, patient: int | None, name: str, rid: str) -> dict[str, Any]:
    """The patient chosen (by id) or the search for one."""
    if patient is not None:
        return {"patient": patient, "patient_name": patients.patient_names(session, [patient]).get(patient, ""),
                "found": None, "search_error": None}
    found, error = find_patients(session, actor, name, rid)
    return {"patient": None, "patient_name": "", "found": found, "search_error": error}


@router.get("/exams", response_class=HTMLResponse, dependencies=BOOK)
def exam_centre(request: Request, session: SessionDep, actor: ActorDep, patient: Param = "",
                name: Annotated[str, Query(max_length=60)] = "", rid: Annotated[str, Query(max_length=20)] = "",
                items: Annotated[list[str], Query(max_length=6)] = (), plan: Param = "") -> HTMLResponse:
    org = home_org(actor)
    chosen = _exam_patient(session, actor, parse_id(patient), name, rid)
    codes = [c for c in items if c in exams.catalogue().items]
    proposal, error = None, None
    if plan and org is not None:
        try:
            proposal = exam_booking.plan_exam_booking(session, actor, org_id=org, codes=codes,
                                                      lang=page_language(request))
        except HealthGridError as exc:
            error = error_view(request, exc)
    org_name = registry_queries.organization_by_id(session, org).name if org else ""
    return render(request, "scheduling/exams.html", 422 if error else 200, org=org, org_name=org_name,
                  catalogue=exams.catalogue(), codes=codes, proposal=proposal, error=error, name=name, rid=rid,
                  key=secrets.token_urlsafe(18), now_at=datetime.now(UTC), **chosen)


@router.post("/exams")
def book_exams(request: Request, session: SessionDep, actor: ActorDep,
               patient_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
               items: Annotated[list[str], Form(max_length=6)] = (), key: Annotated[str, Form(max_length=100)] = ""
               ) -> Response:
    back = f"/scheduling/exams?patient={patient_id}&" + "&".join(f"items={c}" for c in items if c.isprintable())
    try:
        org = home_org(actor)
        if org is None:
            raise Invalid("SCHED-023", "your account is not attached to a facility", {"field": "org_id"})
        out = exam_booking.book_exams(session, actor, patient_id=patient_id, org_id=org, codes=list(items),
                                      idempotency_key=key or None)
    except HealthGridError as exc:
        return fail(request, back, exc)
    return redirect(request, f"/scheduling/exams?patient={patient_id}", m="sched.flash.exams",
                    n=len(out.appointments), trips=out.trips)
