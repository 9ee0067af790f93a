"""``Appointment/$find`` (free places → a searchset of Slots) and ``Appointment/$book`` (one
booking through ``service.book_appointment`` → the Appointment)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ...fhir import OperationDef, OperationRequest, Token, Written, entry, searchset_bundle
from ...fhir.operation import bad_parameter
from .. import domain as d
from .. import service
from .mapping import (
    BookingIn,
    Lookups,
    appointment_to_fhir,
    booking_from_appointment,
    reference_id,
    slot_to_fhir,
)
from .search import department_at, service_type, who

FIND_DAYS = 14  # days searched when $find is given no end
MAX_FIND_DAYS = 92
POOLS = tuple(p.value for p in d.Pool)
BOOK_PARAMS = ("slot", "patient", "channel", "referral", "idempotency-key")


def _text(op: OperationRequest, name: str, *, max_length: int) -> str | None:
    found = op.one(name)
    if found is None:
        return None
    if not isinstance(found, str) or not 1 <= len(found.strip()) <= max_length:
        raise bad_parameter(op.name, f"parameter '{name}' is text of 1 to {max_length} characters")
    return found.strip()


def _day(op: OperationRequest, name: str) -> date | None:
    found = op.one(name)
    if found is None:
        return None
    if isinstance(found, str) and len(found) == 10:
        try:
            return date.fromisoformat(found)
        except ValueError:
            pass
    raise bad_parameter(op.name, f"parameter '{name}' is a date (YYYY-MM-DD)")


def _ref(op: OperationRequest, name: str, rtype: str) -> int | None:
    found = op.one(name)
    return None if found is None else reference_id(found, rtype, name)


def _token(op: OperationRequest, name: str) -> tuple[str, str] | None:
    """service-type as ``system|code`` or a code (GET, valueString/valueCode) or a valueCoding."""
    found = op.one(name)
    if found is None:
        return None
    if isinstance(found, dict) and isinstance(found.get("code"), str):
        return service_type(Token(found.get("system"), found["code"]))
    if isinstance(found, str) and found:
        system, _, code = found.rpartition("|")
        return service_type(Token(system or None, code))
    raise bad_parameter(op.name, f"parameter '{name}' is a code, system|code or a Coding")


class Operations:
    """The two operations, bound to the clock of their provider (tests fix it)."""

    def __init__(self, clock: Callable[[], datetime]):
        self.clock = clock

    def definitions(self, find_url: str, book_url: str) -> tuple[OperationDef, ...]:
        return (
            OperationDef("find", find_url, self.find, ("start", "end", "organization", "practitioner", "schedule",
                                                       "service-type", "channel", "count"), get=True,
                         documentation="Free places: a searchset of Slots with status free, soonest first. "
                                       "`start`/`end` (dates, default today and 14 days on, at most 92 days), "
                                       "`organization`, `practitioner`, `schedule`, `service-type` (department "
                                       "code with `organization`, or equipment kind), `channel` (web, phone, "
                                       "kiosk, window — the pool it books from — or reserved), `count` (≤200)."),
            OperationDef("book", book_url, self.book, BOOK_PARAMS + ("appointment",), resource_param="appointment",
                         documentation="Book one place: Parameters with `slot` and `patient` (references), "
                                       "`channel` (default web), `referral` (for reserved places) and "
                                       "`idempotency-key` (a retry with the same key answers the first booking); "
                                       "or an Appointment with one slot and one Patient participant. Answers the "
                                       "Appointment (200; the platform answers operations with 200). A full "
                                       "slot is 409 SCHED-002."),
        )

    def find(self, session: Session, op: OperationRequest) -> dict[str, Any]:
        actor = who(op.actor)
        now = self.clock()
        start = _day(op, "start") or service.local_day(session, now)
        end = _day(op, "end") or start + timedelta(days=FIND_DAYS - 1)
        if end < start or (end - start).days >= MAX_FIND_DAYS:
            raise bad_parameter(op.name, f"'end' is on or after 'start' and at most {MAX_FIND_DAYS} days later")
        channel = _text(op, "channel", max_length=10)
        if channel is not None and channel not in POOLS:
            raise bad_parameter(op.name, f"parameter 'channel' is one of {', '.join(POOLS)}")
        query = service.SlotQuery(org_id=_ref(op, "organization", "Organization"), day_from=start, day_to=end,
                                  practitioner_id=_ref(op, "practitioner", "Practitioner"),
                                  schedule_id=_ref(op, "schedule", "Schedule"), pool=channel, free_only=True)
        wanted = _token(op, "service-type")
        if wanted and wanted[0] == "department":
            query.department_id = department_at(session, query.org_id, wanted[1], "service-type")
        elif wanted:
            query.exam_kind = wanted[1]
        count = op.integer("count", 20, minimum=1, maximum=200)
        slots = service.find_slots(session, actor, query, now=now, limit=count + 1)
        look = Lookups(session, actor)
        entries = [entry(op.base, slot_to_fhir(s, look)) for s in slots[:count]]
        return searchset_bundle(None if len(slots) > count else len(entries), entries)

    def book(self, session: Session, op: OperationRequest) -> Written:
        """201 with the new Appointment; 200 with the first one when a retry carries the same
        key (the ``Idempotency-Key`` header, or the ``idempotency-key`` parameter)."""
        actor = who(op.actor)
        booking = self._booking(op)
        if booking.channel not in d.CHANNELS:
            raise bad_parameter(op.name, f"parameter 'channel' is one of {', '.join(d.CHANNELS)}")
        key = booking.idempotency_key or op.header("idempotency-key")
        view = service.book_appointment(session, actor, slot_id=booking.slot_id, patient_id=booking.patient_id,
                                        channel=booking.channel, referral_ref=booking.referral_ref,
                                        idempotency_key=key, now=self.clock())
        return Written(appointment_to_fhir(view, service.tz_of(session)), created=not view.replayed)

    @staticmethod
    def _booking(op: OperationRequest) -> BookingIn:
        if op.values("appointment"):
            if any(op.values(name) for name in BOOK_PARAMS):
                raise bad_parameter(op.name, "give either an appointment or slot and patient, not both")
            return booking_from_appointment(op.resource("appointment", "Appointment"))
        slot, patient = _ref(op, "slot", "Slot"), _ref(op, "patient", "Patient")
        if slot is None or patient is None:
            raise bad_parameter(op.name, "parameters 'slot' and 'patient' are required")
        return BookingIn(slot_id=slot, patient_id=patient, channel=_text(op, "channel", max_length=10) or "web",
                         referral_ref=_text(op, "referral", max_length=60),
                         idempotency_key=_text(op, "idempotency-key", max_length=100))
