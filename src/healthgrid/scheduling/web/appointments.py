"""A resident's appointments (coming and past, with cancel and "take the offered place"),
one appointment's page, their waitlist entries, rebooking after a stop-clinic notice (停诊改约:
the free places of the same department offered as buttons), and the family members they book
for (添加就诊人, real-name: checked against the patient index)."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from ...errors import HealthGridError
from ...http import SessionDep
from ...patients.domain import KIN_RELATIONSHIPS
from ...registry import queries as registry_queries
from ...security.domain import Actor
from ...security.http import ActorDep
from ...web.i18n import MESSAGES as CATALOGUE
from ...web.notices import error_view
from .. import domain as d
from .. import service
from ..web_messages import CANCEL_REASONS
from .common import booked_notice, fail, is_staff, redirect, render, stop_reason, today

router = APIRouter(include_in_schema=False)
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Text = Annotated[str, Form(max_length=300)]
COMING = frozenset({d.Status.PROPOSED.value, d.Status.BOOKED.value, d.Status.ARRIVED.value})
# A stop-clinic notice offers other times until two weeks after the day it cancelled.


def _back(value: str, default: str = "/appointments") -> str:
    return value if value.startswith(("/appointments", "/scheduling/")) and "//" not in value else default


@router.get("/appointments", response_class=HTMLResponse)
def mine(request: Request, session: SessionDep, actor: ActorDep) -> HTMLResponse:
    rows = service.my_appointments(session, actor)
    # Coming: still to happen (or today's, until a while after its end).
    cutoff = datetime.now(UTC) - timedelta(hours=2)
    upcoming = sorted((a for a in rows if a.status in COMING and a.ends_at >= cutoff), key=lambda a: a.starts_at)
    past = [a for a in rows if a not in upcoming]
    ids = service.own_patient_ids(session, actor)
    waiting = service.waitlist_of(session, actor, patient_ids=ids) if ids else []
    offers = {a.id: offer for a in past if (offer := _offer(session, actor, a, rows, today(request)))}
    return render(request, "scheduling/appointments.html", upcoming=upcoming, past=past, waiting=waiting,
                  reasons=CANCEL_REASONS, staff=is_staff(actor), offers=offers)


@router.get("/appointments/{appointment_id}", response_class=HTMLResponse)
def detail(request: Request, session: SessionDep, actor: ActorDep, appointment_id: RowId) -> HTMLResponse:
    appt = service.get_appointment(session, actor, appointment_id)  # unmasked for the resident's own
    offer = None
    if stop_reason(appt.cancel_reason) is not None and appt.status == d.Status.CANCELLED.value:
        others = [] if is_staff(actor) else service.my_appointments(session, actor)
        offer = _offer(session, actor, appt, others, today(request))
    return render(request, "scheduling/appointment.html", a=appt, reasons=CANCEL_REASONS, coming=COMING,
                  offer=offer)


@router.post("/appointments/{appointment_id}/cancel")
def cancel(request: Request, session: SessionDep, actor: ActorDep, appointment_id: RowId, reason: Text = "",
           other: Text = "", back: Text = "") -> Response:
    target = _back(back)
    # A listed reason is stored as its Chinese text: the record is read by the hospital's staff.
    text = other.strip() if reason == "other" or reason not in CANCEL_REASONS else \
        CATALOGUE.get(f"sched.cancel.reason.{reason}", "zh")
    try:
        service.cancel_appointment(session, actor, appointment_id, reason=text)
    except HealthGridError as exc:
        return fail(request, target, exc)
    return redirect(request, target, m="sched.flash.cancelled", id=appointment_id)


# -- rebooking after a stop-clinic notice ---------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RebookOffer:
    """Other times for an appointment the hospital cancelled: the free places of the same
    department, each a button; one token for all of them, sent as the idempotency key, so a
    double click (or a second button) books once."""

    reason: str
    choices: list[Any]
    doctors: dict[int, str]
    key: str


def _place(a: Any) -> tuple[str, int | None]:
    return ("department", a.department_id) if a.department_id else ("schedule", a.schedule_id)


def _rebooked(appt: Any, rows: list[Any]) -> bool:
    """The patient has booked again in the same department since the stop-clinic notice."""
    return any(o.id != appt.id and o.patient_id == appt.patient_id and o.status in COMING
               and _place(o) == _place(appt) and o.created_at >= appt.updated_at for o in rows)


def _offer(session: Session, actor: Actor, appt: Any, rows: list[Any], day: date) -> RebookOffer | None:
    reason = stop_reason(appt.cancel_reason)
    if (reason is None or d.rebook_refusal(appt.status, appt.cancel_reason, appt.rebooked_as, appt.day, day)
            or _rebooked(appt, rows)):
        return None
    choices = service.rebooking_choices(session, actor, appt.id)
    doctors = registry_queries.names_of(session, practitioners=[c.practitioner_id for c in choices
                                                                if c.practitioner_id])["practitioner"]
    return RebookOffer(reason, choices, doctors, secrets.token_urlsafe(18))


@router.post("/appointments/{appointment_id}/rebook")
def rebook(request: Request, session: SessionDep, actor: ActorDep, appointment_id: RowId,
           slot_id: Annotated[int, Form(ge=1, le=2**31 - 1)], key: Annotated[str, Form(max_length=100)] = "",
           back: Text = "") -> Response:
    target = _back(back, f"/appointments/{appointment_id}")
    try:
        appt = service.rebook_appointment(session, actor, appointment_id, slot_id=slot_id,
                                          idempotency_key=key or None)
    except HealthGridError as exc:
        return fail(request, target, exc)
    return redirect(request, f"/appointments/{appt.id}", m="sched.flash.rebooked", **booked_notice(request, appt))


@router.post("/appointments/{appointment_id}/accept")
def accept(request: Request, session: SessionDep, actor: ActorDep, appointment_id: RowId,
           back: Text = "") -> Response:
    target = _back(back)
    try:
        service.accept_offer(session, actor, appointment_id)
    except HealthGridError as exc:
        return fail(request, target, exc)
    return redirect(request, target, m="sched.flash.accepted", id=appointment_id)


@router.post("/appointments/waitlist/{entry_id}/leave")
def leave(request: Request, session: SessionDep, actor: ActorDep, entry_id: RowId) -> Response:
    try:
        service.leave_waitlist(session, actor, entry_id)
    except HealthGridError as exc:
        return fail(request, "/appointments", exc)
    return redirect(request, "/appointments", m="sched.flash.left")


# -- family members -----------------------------------------------------------------------------

@router.get("/account/family", response_class=HTMLResponse)
def family(request: Request, session: SessionDep, actor: ActorDep) -> HTMLResponse:
    return render(request, "scheduling/family.html", proxies=service.list_proxies(session, actor),
                  relationships=list(KIN_RELATIONSHIPS),
                  form={"name": "", "id_number": "", "relationship": "child"}, error=None)


@router.post("/account/family", response_class=HTMLResponse)
def add_family(request: Request, session: SessionDep, actor: ActorDep,
               name: Annotated[str, Form(max_length=60)] = "", id_number: Annotated[str, Form(max_length=20)] = "",
               relationship: Annotated[str, Form(max_length=20)] = "") -> Response:
    try:
        added = service.add_proxy(session, actor, name=name.strip(), id_number=id_number.strip(),
                                  relationship=relationship)
    except HealthGridError as exc:
        return render(request, "scheduling/family.html", exc.status, proxies=service.list_proxies(session, actor),
                      relationships=list(KIN_RELATIONSHIPS), error=error_view(request, exc),
                      form={"name": name, "id_number": id_number, "relationship": relationship})
    return redirect(request, "/account/family", m="sched.flash.family", name=added.name)
