"""Scheduling ↔ FHIR R4: ``schedule_to_fhir``, ``slot_to_fhir``, ``appointment_to_fhir`` and
the readers of what clients send (references, the ``$book`` input, the changes a ``PUT``
may make). The mapping decisions are listed in the package docstring
(``scheduling.fhir``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ...errors import Invalid
from ...registry import queries as registry_queries
from .. import domain as d
from .. import schedules, service
from ..queries import AppointmentView, ScheduleView, SlotView

BASE = "https://healthgrid.example/fhir"
DEPARTMENT_SYSTEM = f"{BASE}/CodeSystem/department"  # the registry's department codes
EXAM_KIND_SYSTEM = f"{BASE}/CodeSystem/exam-kind"  # the equipment kind an exam schedule books (CT, MRI, US …)
EXAM_SYSTEM = f"{BASE}/CodeSystem/exam"  # the exam catalogue's codes (exam_rules.json)
KIND_SYSTEM = f"{BASE}/CodeSystem/schedule-kind"
POOL_SYSTEM = f"{BASE}/CodeSystem/booking-pool"
CHANNEL_SYSTEM = f"{BASE}/CodeSystem/booking-channel"
FEE_CLASS_SYSTEM = f"{BASE}/CodeSystem/fee-class"
REFERRAL_SYSTEM = f"{BASE}/NamingSystem/referral"
BOOKING_REQUEST_SYSTEM = f"{BASE}/NamingSystem/booking-request"  # an Idempotency-Key in a $book body
POOL_EXTENSION = f"{BASE}/StructureDefinition/booking-pool"
PLACES_EXTENSION = f"{BASE}/StructureDefinition/slot-places"
CHANNEL_EXTENSION = f"{BASE}/StructureDefinition/booking-channel"
FEE_CLASS_EXTENSION = f"{BASE}/StructureDefinition/fee-class"
FIND_DEFINITION = f"{BASE}/OperationDefinition/Appointment-find"
BOOK_DEFINITION = f"{BASE}/OperationDefinition/Appointment-book"

KIND_LABELS = {"clinic": "门诊", "exam": "检查"}
MAX_DB_ID = 2**31 - 1


def bad(code: str, where: str, message: str) -> Invalid:
    # SCHED-070 a reference or value that cannot be read, SCHED-071 a change a PUT cannot
    # make, SCHED-072 a search combination the scheduling queries cannot answer.
    return Invalid(code, f"{where}: {message}", {"field": where})


def db_id(value: str) -> int | None:
    if not (value.isascii() and value.isdigit()) or len(value) > 10 or not 0 < int(value) <= MAX_DB_ID:
        return None
    return int(value)


def site_id(value: str) -> int | None:
    """The organisation of a registry ``Location/site-<organisation id>``, else None."""
    return db_id(value.removeprefix("site-")) if value.startswith("site-") else None


def _instant(at: datetime | None, tz: ZoneInfo) -> str | None:
    # Local offsets (+08:00): the same instants, readable by the hospital's staff.
    return at.astimezone(tz).isoformat() if at else None


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str | None, display: str | None = None) -> dict[str, Any] | None:
    if not code:
        return None
    return {"coding": [_coding(system, code, display)], "text": display}


def _fee_class(fee_class: str) -> dict[str, Any]:
    label = d.FEE_CLASS_LABELS.get(d.FeeClass(fee_class), (fee_class,))[0]
    return {"url": FEE_CLASS_EXTENSION, "valueCoding": _coding(FEE_CLASS_SYSTEM, fee_class, label)}


def _pool(pool: str) -> dict[str, Any]:
    label = d.POOL_LABELS.get(d.Pool(pool), (pool,))[0]
    return {"url": POOL_EXTENSION, "valueCoding": _coding(POOL_SYSTEM, pool, label)}


def _site(org_id: int, name: str | None) -> dict[str, Any]:
    return {"reference": f"Location/site-{org_id}", "display": name}


def _practitioner(practitioner_id: int | None, name: str | None) -> dict[str, Any] | None:
    return {"reference": f"Practitioner/{practitioner_id}", "display": name} if practitioner_id else None


class Lookups:
    """What a page of slots or schedules needs besides itself — each schedule and each
    department code looked up once."""

    def __init__(self, session: Session, actor: Any):
        self.session, self.actor = session, actor
        self.tz = service.tz_of(session)
        self._schedules: dict[int, ScheduleView] = {}
        self._departments: dict[int, str] = {}

    def schedule(self, schedule_id: int) -> ScheduleView:
        if schedule_id not in self._schedules:
            self._schedules[schedule_id] = schedules.get_schedule(self.session, self.actor, schedule_id)
        return self._schedules[schedule_id]

    def department_code(self, department_id: int | None) -> str | None:
        if department_id is None:
            return None
        if department_id not in self._departments:
            self._departments.update(registry_queries.department_codes(self.session, [department_id]))
        return self._departments.get(department_id)


def _service_elements(view: ScheduleView, look: Lookups) -> dict[str, Any]:
    """serviceCategory (clinic | exam), serviceType (the department, or the exam kind) and
    specialty (the department) shared by a Schedule and its Slots."""
    department = _concept(DEPARTMENT_SYSTEM, look.department_code(view.department_id), view.department_name)
    service_type = _concept(EXAM_KIND_SYSTEM, view.exam_kind, view.exam_kind) if view.kind == "exam" else department
    return {"serviceCategory": [_concept(KIND_SYSTEM, view.kind, KIND_LABELS.get(view.kind))],
            "serviceType": [service_type], "specialty": [department]}


def schedule_to_fhir(view: ScheduleView, look: Lookups) -> dict[str, Any]:
    return {
        "resourceType": "Schedule",
        "id": str(view.id),
        "meta": {"versionId": str(view.version)},
        "extension": [_fee_class(view.fee_class)],
        "active": view.active,
        **_service_elements(view, look),
        "actor": [_practitioner(view.practitioner_id, view.practitioner_name), _site(view.org_id, view.org_name)],
        "comment": view.name,
    }


def slot_status(slot: SlotView) -> str:
    if slot.session_status != "open":
        return "busy-unavailable"  # a stopped session (停诊) or a holiday
    return "free" if slot.booked < slot.capacity else "busy"


def slot_to_fhir(slot: SlotView, look: Lookups) -> dict[str, Any]:
    sched = look.schedule(slot.schedule_id)
    places = {"url": PLACES_EXTENSION, "extension": [{"url": "capacity", "valueUnsignedInt": slot.capacity},
                                                     {"url": "booked", "valueUnsignedInt": slot.booked}]}
    return {
        "resourceType": "Slot",
        "id": str(slot.id),
        "extension": [_pool(slot.pool), places, _fee_class(sched.fee_class)],
        **_service_elements(sched, look),
        "schedule": {"reference": f"Schedule/{slot.schedule_id}", "display": sched.name},
        "status": slot_status(slot),
        "start": _instant(slot.starts_at, look.tz),
        "end": _instant(slot.ends_at, look.tz),
    }


def _participant_status(status: str) -> str:
    # A waitlist offer (proposed) waits for the patient's answer.
    return "needs-action" if status == d.Status.PROPOSED.value else "accepted"


def appointment_to_fhir(view: AppointmentView, tz: ZoneInfo) -> dict[str, Any]:
    who = _participant_status(view.status)
    participants = [
        {"actor": {"reference": f"Patient/{view.patient_id}", "display": view.patient_name},
         "required": "required", "status": who},
        {"actor": _practitioner(view.practitioner_id, view.practitioner_name), "required": "required",
         "status": "accepted"} if view.practitioner_id else None,
        {"actor": _site(view.org_id, view.org_name), "required": "required", "status": "accepted"},
    ]
    channel_label = d.POOL_LABELS.get(d.Pool(view.channel), (view.channel,))[0]
    return {
        "resourceType": "Appointment",
        "id": str(view.id),
        "meta": {"versionId": str(view.version)},
        "extension": [_pool(view.pool), _fee_class(view.fee_class),
                      {"url": CHANNEL_EXTENSION, "valueCoding": _coding(CHANNEL_SYSTEM, view.channel, channel_label)}],
        "status": view.status,
        "cancelationReason": {"text": view.cancel_reason} if view.cancel_reason else None,
        "serviceCategory": [_concept(KIND_SYSTEM, view.kind, KIND_LABELS.get(view.kind))],
        "serviceType": [_concept(EXAM_SYSTEM, view.exam_code, view.exam_code)],
        "specialty": [{"text": view.department_name}] if view.department_name else [],
        "start": _instant(view.starts_at, tz),
        "end": _instant(view.ends_at, tz),
        "created": _instant(view.created_at, tz),
        "slot": [{"reference": f"Slot/{view.slot_id}"}],
        "basedOn": [{"identifier": {"system": REFERRAL_SYSTEM, "value": view.referral_ref}}]
        if view.referral_ref else [],
        "participant": participants,
    }


# -- what clients send ---------------------------------------------------------------------------

def reference_id(value: Any, rtype: str, where: str) -> int:
    """The id of a ``rtype/<id>`` reference given as a Reference, a string or a bare id."""
    text = value.get("reference") if isinstance(value, dict) else value
    if not isinstance(text, str):
        raise bad("SCHED-070", where, f"give a reference to a {rtype} ({rtype}/<id>)")
    found = db_id(text.removeprefix(f"{rtype}/"))
    if found is None or ("/" in text and not text.startswith(f"{rtype}/")):
        raise bad("SCHED-070", where, f"{text!r} is not a reference to a {rtype} ({rtype}/<id>)")
    return found


@dataclass
class BookingIn:
    """The input of ``Appointment/$book``, from Parameters or from a bare Appointment."""

    slot_id: int
    patient_id: int
    channel: str = "web"
    referral_ref: str | None = None
    idempotency_key: str | None = None


def booking_from_appointment(resource: dict[str, Any]) -> BookingIn:
    """A proposed Appointment: ``slot[0]``, the Patient participant, optionally the channel
    extension, a referral in ``basedOn.identifier`` and the request's key as an identifier
    of ``BOOKING_REQUEST_SYSTEM``."""
    slots = resource.get("slot", [])
    if len(slots) != 1:
        raise bad("SCHED-070", "Appointment.slot", "name exactly one Slot to book")
    patients = [p["actor"] for p in resource.get("participant", [])
                if p.get("actor", {}).get("reference", "").startswith("Patient/")]
    if len(patients) != 1:
        raise bad("SCHED-070", "Appointment.participant", "name exactly one Patient participant")
    channels = [e["valueCoding"].get("code") for e in resource.get("extension", [])
                if e.get("url") == CHANNEL_EXTENSION and "valueCoding" in e]
    referrals = [b["identifier"].get("value") for b in resource.get("basedOn", []) if "identifier" in b]
    keys = [i.get("value") for i in resource.get("identifier", []) if i.get("system") == BOOKING_REQUEST_SYSTEM]
    return BookingIn(slot_id=reference_id(slots[0], "Slot", "Appointment.slot"),
                     patient_id=reference_id(patients[0], "Patient", "Appointment.participant"),
                     channel=channels[0] if channels else "web", referral_ref=referrals[0] if referrals else None,
                     idempotency_key=keys[0] if keys else None)


def cancel_reason(resource: dict[str, Any]) -> str:
    reason = resource.get("cancelationReason") or {}
    codings = reason.get("coding", [])
    text = reason.get("text") or next((c.get("display") or c.get("code") for c in codings), None)
    if not text or not text.strip():
        raise bad("SCHED-011", "Appointment.cancelationReason", "give the reason for the cancellation (text)")
    return text


def _refs(resource: dict[str, Any], element: str) -> set[str]:
    items = resource.get(element, [])
    if element == "participant":
        items = [p.get("actor", {}) for p in items]
    return {i.get("reference", "") for i in items}


def _same_instant(a: str, b: str) -> bool:
    try:
        return datetime.fromisoformat(a.replace("Z", "+00:00")) == datetime.fromisoformat(b)
    except ValueError:
        return False


def check_unchanged(body: dict[str, Any], current: dict[str, Any]) -> None:
    """A PUT changes the status (and the reason of a cancellation) only: a new time, slot or
    participant is a new booking. Elements the body leaves out are left as they are."""
    for element in ("start", "end"):
        if element in body and not _same_instant(body[element], current[element]):
            raise bad("SCHED-071", f"Appointment.{element}", "cannot be changed; cancel this appointment and "
                                                            "book another slot ($book)")
    for element in ("slot", "participant"):
        if element in body and _refs(body, element) != _refs(current, element):
            raise bad("SCHED-071", f"Appointment.{element}", "cannot be changed; cancel this appointment and "
                                                            "book another slot ($book)")
