"""FHIR R4 Schedule, Slot and Appointment of the scheduling context: read and search, the
type-level ``Appointment/$find`` and ``Appointment/$book``, and cancellation (and check-in)
by a status update. Bound to ``service`` and ``schedules``, which check access, mask and
audit and own the booking rules; this package only maps: ``mapping`` (views ↔ FHIR),
``search`` (search parameters → the scheduling queries), ``provider`` (the three
providers) and ``operations`` ($find, $book). Mapping decisions, made once here:

- references: a doctor is ``Practitioner/<id>``, a hospital its registry site
  ``Location/site-<organisation id>`` — R4 allows no Organization as Schedule.actor or
  Appointment.participant.actor — and the patient ``Patient/<id>`` (the name masked for
  readers without ``pii.unmasked``, as the service returns it).
- Schedule: serviceCategory ``clinic | exam``; serviceType the department (the registry's
  department code system) or, for an exam room, the equipment kind (``exam-kind``: CT, MRI,
  US …); specialty the department; comment the schedule's name; the fee class (普通号 /
  专家号 / 特需号) an extension (``fee-class``) — R4 has no element for a price class and it
  is shown, not settled, here. meta.versionId is the schedule's version.
- Slot: one row per start time and quota pool. The pool (reserved / web / phone / kiosk /
  window) is the ``booking-pool`` extension and not serviceCategory or appointmentType:
  those describe the care (clinic or exam; routine, follow-up …), while a pool says who
  may book the place and through which channel — reusing them would make a client that
  filters by service type miss places or mistake a channel for a kind of visit. Capacity
  and booked places are the ``slot-places`` extension (R4's Slot holds one appointment;
  ours holds ``per_slot``). status ``free`` while places remain, ``busy`` once booked
  reaches capacity, ``busy-unavailable`` when the session is stopped (停诊).
- Appointment: status is ours unchanged (proposed — a waitlist offer —, booked, arrived,
  fulfilled, cancelled, noshow are R4 codes); participants the patient (``needs-action``
  while an offer waits), the doctor and the hospital's site; slot, start, end, created,
  cancelationReason.text; the referral as ``basedOn.identifier``; pool, channel and fee
  class as extensions. meta.versionId / ETag is the row's version.
- Times are instants with the hospital's offset (+08:00). Date search parameters
  (Slot ``start``, Appointment ``date``) match the day in the hospital's time zone.
- Searches page with ``_count``/``_offset``; the scheduling queries do not count, so the
  Bundle has a total only on the last page (follow ``next``), as for Patient.
- ``$find`` is a GET-able operation answering a searchset of free Slots; ``$book`` takes a
  Parameters (slot, patient, channel — default web —, referral, idempotency-key) or a bare
  Appointment (one slot, one Patient participant, the channel extension, the referral in
  basedOn and an ``identifier`` of ``booking-request`` as the key) and answers the
  Appointment. The platform passes no request headers to operations and answers them with
  200, so the ``Idempotency-Key`` *header* is not seen here (the key travels in the body)
  and a new booking is 200, not 201.
- Update (PUT) changes the status only: ``cancelled`` (with cancelationReason) →
  ``cancel_appointment`` with If-Match as the expected version; ``arrived`` →
  ``check_in`` and ``fulfilled`` → ``complete_appointment`` (If-Match as the expected
  version); another status
  (``noshow`` is the worker's), or a new time, slot or participant, is refused (422
  SCHED-071). Elements the body omits are left as they are.
- Every search parameter is a filter of the scheduling queries (Slot ``status=busy`` is
  ``SlotQuery.full_only``, Schedule ``service-type`` of an equipment kind is
  ``exam_kind``, ``active=false`` lists closed schedules).
- Codes of this adapter: SCHED-070 an unreadable reference in a $book body, SCHED-071 a
  change an update cannot make, SCHED-072 a search the scheduling queries cannot answer.
"""

from collections.abc import Callable
from datetime import datetime

from ...db import utcnow
from ...fhir import FhirRegistry
from .mapping import (
    BOOKING_REQUEST_SYSTEM,
    CHANNEL_EXTENSION,
    EXAM_KIND_SYSTEM,
    FEE_CLASS_EXTENSION,
    PLACES_EXTENSION,
    POOL_EXTENSION,
    appointment_to_fhir,
    schedule_to_fhir,
    slot_to_fhir,
)
from .provider import AppointmentProvider, ScheduleProvider, SlotProvider

__all__ = ["BOOKING_REQUEST_SYSTEM", "CHANNEL_EXTENSION", "EXAM_KIND_SYSTEM", "FEE_CLASS_EXTENSION",
           "PLACES_EXTENSION", "POOL_EXTENSION", "AppointmentProvider", "ScheduleProvider", "SlotProvider",
           "appointment_to_fhir", "register", "schedule_to_fhir", "slot_to_fhir"]


def register(registry: FhirRegistry, *, clock: Callable[[], datetime] = utcnow) -> None:
    """``clock``: the time booking rules are checked at (tests fix it)."""
    for provider in (ScheduleProvider(), SlotProvider(clock), AppointmentProvider(clock)):
        registry.register(provider)
