"""A resident's appointments (coming and past, with cancel and "take the offered place"),
one appointment's page, their waitlist entries, and the family members they book for
(添加就诊人, real-name: checked against the patient index)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from ...errors import HealthGridError
from ...http import SessionDep
from ...patients import service as patients
from ...patients.domain import KIN_RELATIONSHIPS
from ...security.http import ActorDep
from ...web.i18n import MESSAGES as CATALOGUE
from .. import domain as d
from .. import service
from ..web_messages import CANCEL_REASONS
from .common import error_view, fail, is_staff, redirect, render

router = APIRouter(include_in_schema=False)
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
Text = Annotated[str, Form(max_length=300)]
COMING = frozenset({d.Status.PROPOSED.value, d.Status.BOOKED.value, d.Status.ARRIVED.value})


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
    return render(request, "scheduling/appointments.html", upcoming=upcoming, past=past, waiting=waiting,
                  reasons=CANCEL_REASONS, staff=is_staff(actor))


@router.get("/appointments/{appointment_id}", response_class=HTMLResponse)
def detail(request: Request, session: SessionDep, actor: ActorDep, appointment_id: RowId) -> HTMLResponse:
    appt = service.get_appointment(session, actor, appointment_id)
    if not is_staff(actor) and appt.patient_id in service.own_patient_ids(session, actor):
        # A resident reads their own and their family members' names in full, as on the list
        # (service.my_appointments); get_appointment masks for every reader without pii.unmasked.
        names = {p.patient_id: p.name for p in service.list_proxies(session, actor)}
        appt = dataclasses.replace(appt, patient_name=names.get(appt.patient_id) or _own_name(session, appt))
    return render(request, "scheduling/appointment.html", a=appt, reasons=CANCEL_REASONS, coming=COMING)


def _own_name(session, appt) -> str:
    return patients.patient_names(session, [appt.patient_id]).get(appt.patient_id, appt.patient_name)


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
