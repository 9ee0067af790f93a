"""Booking use cases: book, cancel, check in, complete; the waitlist; the family members a
resident books for; free places and day lists.

Rush safety (the issue's rule 5) is the database's job:
- a place is taken by ``UPDATE sched_slot SET booked = booked + 1 WHERE id = :id AND booked
  < capacity`` (and a CHECK constraint): two bookings of the last place cannot both succeed;
- the per-patient rules (pending cap, no-show suspension) are checked after taking the
  patient's row lock in ``sched_patient_lock``, so one patient's bookings queue;
- a retried request carries the same ``Idempotency-Key``: the unique key
  ``(idem_owner, idempotency_key)`` turns a second insert into the first answer;
- an acknowledgement is sent only after the commit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from .. import outbox
from ..config import SchedulingSettings
from ..db import in_transaction, transaction, utcnow
from ..errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from ..patients import service as patients
from ..registry import queries as registry_queries
from ..security import ALL_SETTINGS_KEY, access
from ..security.domain import Actor, AuditAction, Perm, ScopeKind
from . import domain as d
from . import queries
from .models import Appointment, ClinicSession, PatientLock, Proxy, Schedule, Slot, WaitlistEntry
from .queries import AppointmentView, SlotView

T = TypeVar("T")
RETRIES = 3


def retrying(fn: Callable[[], T]) -> T:
    """Run a use case again when PostgreSQL chose it as a deadlock victim (40P01) or could not
    serialise it (40001): a cancellation locks the appointment, then its slot, then the next
    waiting patient, while that patient's own booking locks the patient, then the slot. The
    transaction was rolled back whole, so running it again is safe."""
    for attempt in range(RETRIES):
        try:
            return fn()
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) not in ("40P01", "40001") or attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def settings_of(session: Session) -> SchedulingSettings:
    settings = session.info.get(ALL_SETTINGS_KEY)
    return settings.scheduling if settings is not None else SchedulingSettings()


def tz_of(session: Session) -> ZoneInfo:
    settings = session.info.get(ALL_SETTINGS_KEY)
    return ZoneInfo(settings.web.timezone if settings is not None else "Asia/Shanghai")


def local_day(session: Session, at: datetime) -> date:
    return at.astimezone(tz_of(session)).date()


# -- who may book for whom ----------------------------------------------------------------------

def _is_resident(actor: Actor) -> bool:
    return not actor.system and Perm.SELF_RECORD in actor.perms() and Perm.APPOINTMENT_BOOK not in actor.perms()


def _check_patient_access(session: Session, actor: Actor, action: AuditAction, *, patient_id: int,
                          org_id: int, resource_id: object = None) -> str:
    """A resident acts for themself or a family member they registered (就诊人); staff for
    anyone at a facility where they may book (the window, the phone line), or for a patient
    in their care anywhere (a village doctor booking at the county hospital)."""
    where = dict(resource_type="Appointment", resource_id=resource_id, patient_id=patient_id)
    if actor.system:
        return access.check(session, actor, Perm.APPOINTMENT_BOOK, action, org_id=org_id, **where).basis
    if Perm.APPOINTMENT_BOOK in actor.perms() and access.in_scope(session, actor, Perm.APPOINTMENT_BOOK, org_id):
        return access.check(session, actor, Perm.APPOINTMENT_BOOK, action, org_id=org_id, **where).basis
    if Perm.SELF_RECORD in actor.perms():
        return access.check(session, actor, Perm.SELF_RECORD, action, org_id=org_id,
                            person_key=patients.person_key_of(session, patient_id), **where).basis
    # Reading needs what reading the record needs (a care relationship, a population role);
    # changing it what writing the record needs.
    perm = Perm.PATIENT_READ if action in (AuditAction.VIEW, AuditAction.SEARCH) else Perm.PATIENT_WRITE
    return access.check(session, actor, perm, action, org_id=org_id, **where).basis


def _proxy_relationship(session: Session, actor: Actor, patient_id: int) -> str | None:
    """Access source: a resident may act for the family members they registered."""
    if actor.user_id is None or Perm.SELF_RECORD not in actor.perms():
        return None
    found = session.scalar(select(Proxy.id).where(Proxy.user_id == actor.user_id, Proxy.patient_id == patient_id))
    return "proxy" if found is not None else None


def _appointment_relationship(session: Session, actor: Actor, patient_id: int) -> str | None:
    """Access source: staff of a facility where the patient has a live appointment."""
    mine = {g.scope_id for g in actor.grants if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id}
    if not mine:
        return None
    found = session.scalar(select(Appointment.id).where(
        Appointment.patient_id == patient_id, Appointment.org_id.in_(mine),
        Appointment.status.in_([s.value for s in d.LIVE])).limit(1))
    return "appointment" if found is not None else None


def _appointment_orgs(session: Session, patient_id: int) -> set[int]:
    return set(session.scalars(select(Appointment.org_id).where(Appointment.patient_id == patient_id).distinct()))


access.register_relationship_source(_proxy_relationship)
access.register_relationship_source(_appointment_relationship)
access.register_patient_orgs_source(_appointment_orgs)


def own_patient_ids(session: Session, actor: Actor) -> list[int]:
    """The records a resident acts for: their own (found by their ID number) and their
    registered family members."""
    return [p.patient_id for p in own_patients(session, actor)]


@dataclass
class ProxyView:
    id: int
    patient_id: int
    name: str
    relationship: str


def add_proxy(session: Session, actor: Actor, *, name: str, id_number: str, relationship: str) -> ProxyView:
    """Register a family member to book for (添加就诊人): real-name, so the name and the ID
    number must be those of a resident in the patient index."""
    from ..patients.domain import KIN_RELATIONSHIPS

    if relationship not in KIN_RELATIONSHIPS:
        raise Invalid("SCHED-024", f"relationship: one of {sorted(KIN_RELATIONSHIPS)}", {"field": "relationship"})
    with transaction(session):
        # Only a resident's own account registers family members to book for.
        access.check(session, actor, Perm.SELF_RECORD, AuditAction.CREATE, resource_type="Proxy",
                     audit_success=False)
        pid = patients.patient_of_id_number(session, id_number)
        names = patients.patient_names(session, [pid]) if pid is not None else {}
        if pid is None or names.get(pid, "").strip() != name.strip():
            raise Invalid("SCHED-024", "no resident with this name and ID number is registered; check both"
                          " (实名核验未通过)", {"field": "id_number"})
        if session.scalar(select(Proxy.id).where(Proxy.user_id == actor.user_id, Proxy.patient_id == pid)):
            raise Conflict("SCHED-024", "this family member is already on your list", {"field": "id_number"})
        row = Proxy(user_id=actor.user_id, patient_id=pid, relationship=relationship)
        session.add(row)
        session.flush()
        access.check(session, actor, Perm.SELF_RECORD, AuditAction.CREATE, resource_type="Proxy",
                     resource_id=row.id, patient_id=pid)
        return ProxyView(row.id, pid, names[pid], relationship)


def list_proxies(session: Session, actor: Actor) -> list[ProxyView]:
    """The family members a resident registered, in the order added."""
    return [p for p in own_patients(session, actor) if p.relationship != "self"]


def own_patients(session: Session, actor: Actor) -> list[ProxyView]:
    """Whom a resident books for: themself first (relationship ``self``, found by the ID
    number of their account), then their family members; each the record standing now."""
    if actor.user_id is None:
        return []
    from ..security import service as security_service

    with transaction(session):
        number = security_service.own_id_number(session, actor.user_id)
        me = patients.patient_of_id_number(session, number) if number else None
        rows = list(session.scalars(select(Proxy).where(Proxy.user_id == actor.user_id).order_by(Proxy.id)))
        family = [(r.id, patients.resolve_patient_id(session, r.patient_id), r.relationship) for r in rows]
        names = patients.patient_names(session, ([me] if me else []) + [pid for _i, pid, _r in family])
        found = [ProxyView(0, me, names.get(me, ""), "self")] if me is not None else []
        seen = {me}
        for row_id, pid, relationship in family:
            if pid not in seen:
                seen.add(pid)
                found.append(ProxyView(row_id, pid, names.get(pid, ""), relationship))
        return found


# -- booking ------------------------------------------------------------------------------------

def _request_hash(**fields: object) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _owner(actor: Actor) -> str:
    return f"user:{actor.user_id}" if actor.user_id is not None else actor.username


def _replay(session: Session, actor: Actor, key: str, digest: str) -> AppointmentView | None:
    row = session.scalar(select(Appointment).where(Appointment.idem_owner == _owner(actor),
                                                   Appointment.idempotency_key == key))
    if row is None:
        return None
    if row.request_hash != digest:
        raise Conflict("SCHED-013", "this Idempotency-Key was used for a different booking; use a new key"
                       " for a new request", {"field": "Idempotency-Key"})
    view = queries.appointment_views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED))[0]
    view.replayed = True
    return view


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 100 or not key.isprintable():
        raise Invalid("SCHED-013", "Idempotency-Key: 1 to 100 printable characters", {"field": "Idempotency-Key"})
    return key


def book_appointment(session: Session, actor: Actor, *, slot_id: int, patient_id: int, channel: str,
                     idempotency_key: str | None = None, referral_ref: str | None = None,
                     now: datetime | None = None) -> AppointmentView:
    """Book one place for a patient. Retried with the same key, answers the first booking."""
    key = check_key(idempotency_key)
    if referral_ref is not None and not 1 <= len(referral_ref.strip()) <= 60:
        raise Invalid("SCHED-005", "referral_ref: 1 to 60 characters", {"field": "referral_ref"})
    digest = _request_hash(slot=slot_id, patient=patient_id, channel=channel, referral=referral_ref)
    if key is not None:
        with transaction(session):
            found = _replay(session, actor, key, digest)
        if found is not None:
            return found
    def attempt() -> AppointmentView:
        with transaction(session):
            row = _book(session, actor, slot_id=slot_id, patient_id=patient_id, channel=channel, key=key,
                        digest=digest, referral_ref=referral_ref, now=now or utcnow())
            return queries.appointment_views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED))[0]

    try:
        # Inside another context's transaction (a referral's acceptance) the caller retries
        # the whole unit: a deadlock has rolled back more than this booking.
        return attempt() if in_transaction(session) else retrying(attempt)
    except IntegrityError as exc:
        return _after_conflict(session, actor, exc, key, digest)
    except Conflict:
        # A retry that waited on the patient's lock behind its own first attempt meets that
        # booking as "same department, same day" (or the slot it filled as full): answer it.
        found = None
        if key is not None:
            with transaction(session):
                found = _replay(session, actor, key, digest)
        if found is None:
            raise
        return found


def _after_conflict(session: Session, actor: Actor, exc: IntegrityError, key: str | None,
                    digest: str) -> AppointmentView:
    """A unique key stopped the insert: a concurrent retry of the same request (answer it),
    or a second appointment in the same department on the same day."""
    if key is not None:
        with transaction(session):
            found = _replay(session, actor, key, digest)
        if found is not None:
            return found
    text = str(exc.orig)
    if "patient_dept_day" in text or "department_id" in text:
        raise Conflict("SCHED-008", "the patient already has an appointment in this department on this day"
                       " (同一科室同一天限约一次)", {"field": "patient_id"}) from exc
    raise exc


def _lock_patient(session: Session, patient_id: int) -> None:
    """Take the patient's booking lock: the row is created if missing, then locked FOR UPDATE
    until the transaction ends (SQLite serialises every writer anyway)."""
    dialect = session.get_bind().dialect.name
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(PatientLock)
    session.execute(ins.values(patient_id=patient_id).on_conflict_do_nothing())
    session.execute(select(PatientLock.patient_id).where(PatientLock.patient_id == patient_id).with_for_update())


def _check_patient_rules(session: Session, cfg: SchedulingSettings, *, patient_id: int, now: datetime,
                         department_id: int | None, day: date, kind: str) -> None:
    since = now - timedelta(days=cfg.noshow_window_days)
    pending_now = Appointment.status.in_([s.value for s in d.PENDING]) & (Appointment.starts_at > now)
    missed = (Appointment.status == d.Status.NOSHOW.value) & (Appointment.starts_at >= since)
    # One pass over the patient's appointments (the patient index key) for both counts.
    pending, noshows = session.execute(select(
        func.coalesce(func.sum(case((pending_now, 1), else_=0)), 0),
        func.coalesce(func.sum(case((missed, 1), else_=0)), 0)).where(Appointment.patient_id == patient_id)).one()
    if pending >= cfg.max_pending:
        raise Conflict("SCHED-009", f"the patient already has {pending} appointments waiting; at most"
                       f" {cfg.max_pending} may be pending at once", {"pending": pending})
    if d.suspended(noshows, cfg.noshow_limit):
        raise Conflict("SCHED-010", f"booking is suspended: {noshows} missed appointments in the last"
                       f" {cfg.noshow_window_days} days (爽约{cfg.noshow_limit}次暂停预约)", {"noshows": noshows})
    if kind == "clinic" and department_id is not None and session.scalar(select(Appointment.id).where(
            Appointment.patient_id == patient_id, Appointment.department_id == department_id,
            Appointment.day == day, Appointment.kind == "clinic",
            Appointment.status.in_([s.value for s in d.LIVE])).limit(1)) is not None:
        raise Conflict("SCHED-008", "the patient already has an appointment in this department on this day"
                       " (同一科室同一天限约一次)", {"field": "patient_id"})


def _times(cs: ClinicSession) -> d.SessionTimes:
    return d.SessionTimes(cs.starts_at, cs.ends_at, cs.public_release_at, cs.referral_open_at, cs.release_back_at)


def _check_referrer(session: Session, actor: Actor, org_id: int) -> None:
    """§3.6: a reserved place is booked by a referrer in the hospital's alliance."""
    if actor.system:
        return
    if Perm.APPOINTMENT_BOOK not in actor.perms() and Perm.PATIENT_WRITE not in actor.perms():
        raise Forbidden("SCHED-006", "reserved places are booked by the referring doctor, not by the patient")
    mine = [g.scope_id for g in actor.grants if g.scope_kind is ScopeKind.ORGANIZATION and g.scope_id]
    mine += [actor.extra["org_id"]] if actor.extra.get("org_id") else []
    if not any(o == org_id or registry_queries.share_alliance(session, o, org_id) for o in mine):
        raise Forbidden("SCHED-006", "reserved places are for referrers in the hospital's alliance (医联体/医共体)")


# (session, referral_ref, patient_id, org_id) -> None, or raises: is this a live referral of
# this patient to this hospital? The referrals context registers it (§3.6: a reserved place
# is booked for a referral that is submitted or accepted).
ReferralCheck = Callable[[Session, str, int, int], None]
REFERRAL_CHECKS: list[ReferralCheck] = []


def register_referral_check(fn: ReferralCheck) -> None:
    if fn not in REFERRAL_CHECKS:
        REFERRAL_CHECKS.append(fn)


def _book(session: Session, actor: Actor, *, slot_id: int, patient_id: int, channel: str, key: str | None,
          digest: str, referral_ref: str | None, now: datetime, status: str = "booked",
          exam_code: str | None = None, exam_booking_id: int | None = None,
          offer_expires_at: datetime | None = None, checked: bool = False) -> Appointment:
    # The slot, its session and its schedule in one statement: this is the rush's hot path.
    found = session.execute(select(Slot, ClinicSession, Schedule)
                            .join(ClinicSession, ClinicSession.id == Slot.session_id)
                            .join(Schedule, Schedule.id == ClinicSession.schedule_id)
                            .where(Slot.id == slot_id)).first()
    if found is None:
        raise NotFound("SCHED-001", f"slot {slot_id} not found")
    slot, cs, sched = found
    try:
        patient_id = patients.resolve_patient_id(session, patient_id)
    except NotFound as exc:
        raise NotFound("SCHED-014", f"patient {patient_id} is not in the patient index (实名预约)",
                       {"field": "patient_id"}) from exc
    if not checked:
        _check_patient_access(session, actor, AuditAction.CREATE, patient_id=patient_id, org_id=cs.org_id)
        if _is_resident(actor) and channel not in ("web", "kiosk"):
            raise Forbidden("SCHED-007", "residents book by web/app or at a kiosk", {"field": "channel"})
    if cs.status != "open" or not sched.active:
        raise Conflict("SCHED-004", f"this session is closed ({cs.stop_reason or 'stopped'})")
    d.check_pool_open(slot.pool, now, _times(cs), released_back=cs.released_back)
    if not (slot.pool == d.Pool.RESERVED.value and cs.released_back) and status != "proposed":
        d.check_channel(slot.pool, channel, referral=referral_ref is not None)
    if slot.pool == d.Pool.RESERVED.value and not cs.released_back and status != "proposed":
        _check_referrer(session, actor, cs.org_id)
        for check in REFERRAL_CHECKS:
            check(session, referral_ref or "", patient_id, cs.org_id)
    _lock_patient(session, patient_id)
    _check_patient_rules(session, settings_of(session), patient_id=patient_id, now=now,
                         department_id=cs.department_id, day=cs.day, kind=sched.kind)
    taken = session.execute(update(Slot).where(Slot.id == slot_id, Slot.booked < Slot.capacity)
                            .values(booked=Slot.booked + 1)).rowcount
    if taken != 1:
        raise Conflict("SCHED-002", f"slot {slot_id} is full; choose another time or join the waitlist",
                       {"slot_id": slot_id, "session_id": cs.id})
    row = Appointment(slot_id=slot_id, session_id=cs.id, schedule_id=cs.schedule_id, org_id=cs.org_id,
                      department_id=cs.department_id, practitioner_id=cs.practitioner_id, kind=sched.kind,
                      day=cs.day, starts_at=slot.starts_at, ends_at=slot.ends_at, patient_id=patient_id,
                      booked_by=actor.username, channel=channel, pool=slot.pool, status=status,
                      fee_class=sched.fee_class, referral_ref=referral_ref, exam_code=exam_code,
                      exam_booking_id=exam_booking_id, idem_owner=_owner(actor) if key else None,
                      idempotency_key=key, request_hash=digest if key else None,
                      offer_expires_at=offer_expires_at)
    session.add(row)
    session.flush()
    if status == "booked":
        outbox.publish(session, "scheduling.appointment_booked", {"appointment_id": row.id})
    return row


# -- after booking --------------------------------------------------------------------------------

def _load_for_change(session: Session, actor: Actor, appointment_id: int, action: AuditAction) -> Appointment:
    row = queries.appointment(session, appointment_id, for_update=True)
    _check_patient_access(session, actor, action, patient_id=row.patient_id, org_id=row.org_id,
                          resource_id=row.id)
    return row


def _check_version(row: Appointment, expected_version: int | None) -> None:
    if expected_version is not None and row.version != expected_version:
        raise PreconditionFailed("SCHED-028", f"appointment {row.id} is at version {row.version}, not"
                                 f" {expected_version}; read it again", {"version": row.version})


def _release_place(session: Session, row: Appointment) -> None:
    session.execute(update(Slot).where(Slot.id == row.slot_id, Slot.booked > 0).values(booked=Slot.booked - 1))


def cancel_appointment(session: Session, actor: Actor, appointment_id: int, *, reason: str,
                       expected_version: int | None = None, now: datetime | None = None) -> AppointmentView:
    """Cancel (退号) up to the deadline; the freed place goes to the first on the waitlist."""
    now = now or utcnow()
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("SCHED-011", "give the reason for the cancellation", {"field": "reason"})
    return retrying(lambda: _cancel_once(session, actor, appointment_id, reason=reason,
                                         expected_version=expected_version, now=now))


def _cancel_once(session: Session, actor: Actor, appointment_id: int, *, reason: str,
                 expected_version: int | None, now: datetime) -> AppointmentView:
    with transaction(session):
        row = _load_for_change(session, actor, appointment_id, AuditAction.UPDATE)
        _check_version(row, expected_version)
        d.check_transition(row.status, d.Status.CANCELLED)
        cfg = settings_of(session)
        if row.status == d.Status.BOOKED.value and not actor.system:
            deadline = d.cancel_deadline(row.starts_at, cfg.cancel_before_hours if _is_resident(actor) else 0)
            if now > deadline:
                raise Conflict("SCHED-011", f"appointments can be cancelled until {deadline.isoformat()}",
                               {"deadline": deadline.isoformat()})
        _cancel(session, row, reason=reason[:300], now=now)
        return queries.appointment_views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED))[0]


def _cancel(session: Session, row: Appointment, *, reason: str, now: datetime, offer: bool = True) -> None:
    was = row.status
    row.status = d.Status.CANCELLED.value
    row.cancel_reason = reason
    row.cancelled_at = now
    _release_place(session, row)
    session.flush()
    if was == d.Status.PROPOSED.value:
        session.execute(update(WaitlistEntry).where(WaitlistEntry.appointment_id == row.id)
                        .values(status="expired"))
    else:
        outbox.publish(session, "scheduling.appointment_cancelled", {"appointment_id": row.id})
    if offer:
        offer_next(session, row.slot_id, now=now)


def offer_next(session: Session, slot_id: int, *, now: datetime) -> int | None:
    """Offer a freed place to the first patient waiting for its session: the place is held
    for them as a ``proposed`` appointment until the offer expires. Returns its id."""
    slot = session.get(Slot, slot_id, populate_existing=True)
    cs = session.get(ClinicSession, slot.session_id)
    if cs.status != "open" or now >= cs.starts_at or slot.booked >= slot.capacity:
        return None
    if slot.pool == d.Pool.RESERVED.value and not cs.released_back:
        return None  # a reserved place stays for referrals until it is released back
    cfg = settings_of(session)
    for entry in session.scalars(select(WaitlistEntry).where(WaitlistEntry.session_id == cs.id,
                                                             WaitlistEntry.status == "waiting")
                                 .order_by(WaitlistEntry.id).with_for_update()):
        try:
            with session.begin_nested():
                row = _book(session, Actor.system_actor("waitlist"), slot_id=slot_id, patient_id=entry.patient_id,
                            channel=entry.channel, key=None, digest="", referral_ref=None, now=now,
                            status=d.Status.PROPOSED.value, checked=True,
                            offer_expires_at=min(cs.starts_at, now + timedelta(minutes=cfg.waitlist_offer_minutes)))
        except (Conflict, IntegrityError):
            entry.status = "withdrawn"  # the patient booked elsewhere that day, or is suspended
            continue
        entry.status, entry.appointment_id = "offered", row.id
        outbox.publish(session, "scheduling.waitlist_offered", {"appointment_id": row.id,
                                                                "until": row.offer_expires_at.isoformat()})
        return row.id
    return None


def _rebookable(old: Appointment, today: date) -> None:
    refusal = d.rebook_refusal(old.status, old.cancel_reason, old.rebooked_as, old.day, today)
    if refusal is not None:
        raise Conflict("SCHED-030", refusal, {"rebooked_as": old.rebooked_as} if old.rebooked_as else {})


def rebook_appointment(session: Session, actor: Actor, appointment_id: int, *, slot_id: int,
                       idempotency_key: str | None = None, now: datetime | None = None) -> AppointmentView:
    """改约 after a stop-clinic notice: the same patient, by the same channel, on another
    place of the same department (or schedule), once. The stopped appointment's row lock
    makes two rebookings of it queue; the second meets ``rebooked_as`` (or, retried with the
    same key, answers the first)."""
    now = now or utcnow()
    key = check_key(idempotency_key)
    digest = _request_hash(rebook=appointment_id, slot=slot_id)

    def attempt() -> AppointmentView:
        with transaction(session):
            old = queries.appointment(session, appointment_id, for_update=True)
            _check_patient_access(session, actor, AuditAction.UPDATE, patient_id=old.patient_id,
                                  org_id=old.org_id, resource_id=old.id)
            found = _replay(session, actor, key, digest) if key is not None else None
            if found is not None:
                return found
            _rebookable(old, local_day(session, now))
            target = queries.get_slot(session, slot_id)
            if (target.department_id, target.schedule_id)[0 if old.department_id else 1] != (
                    old.department_id or old.schedule_id):
                raise Invalid("SCHED-030", "rebook onto a place of the same department", {"field": "slot_id"})
            channel = old.channel if target.pool in (old.channel, d.Pool.RESERVED.value) else target.pool
            row = _book(session, actor, slot_id=slot_id, patient_id=old.patient_id, channel=channel, key=key,
                        digest=digest, referral_ref=old.referral_ref, now=now, checked=True)
            old.rebooked_as = row.id
            return queries.appointment_views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED))[0]

    try:
        # Inside another context's transaction (a referral's acceptance) the caller retries
        # the whole unit: a deadlock has rolled back more than this booking.
        return attempt() if in_transaction(session) else retrying(attempt)
    except IntegrityError as exc:
        return _after_conflict(session, actor, exc, key, digest)


def rebooking_slots(session: Session, appointment_id: int, *, now: datetime | None = None,
                    limit: int = 5) -> list[queries.SlotView]:
    """Free places offered after a stop-clinic: the same department (or schedule), on the
    following days; none once the appointment is rebooked or the window has closed."""
    now = now or utcnow()
    appt = queries.appointment(session, appointment_id)
    try:
        _rebookable(appt, local_day(session, now))
    except Conflict:
        return []
    stmt = queries.slot_select().where(ClinicSession.status == "open", ClinicSession.starts_at > now,
                                       Slot.booked < Slot.capacity, Slot.pool == appt.channel,
                                       ClinicSession.public_release_at <= now)
    if appt.department_id is not None:
        stmt = stmt.where(ClinicSession.department_id == appt.department_id)
    else:
        stmt = stmt.where(ClinicSession.schedule_id == appt.schedule_id)
    return queries.slot_rows(session, stmt.order_by(Slot.starts_at).limit(limit))


def rebooking_choices(session: Session, actor: Actor, appointment_id: int, *, now: datetime | None = None
                      ) -> list[SlotView]:
    with transaction(session):
        appt = queries.appointment(session, appointment_id)
        _check_patient_access(session, actor, AuditAction.VIEW, patient_id=appt.patient_id, org_id=appt.org_id,
                              resource_id=appt.id)
        return rebooking_slots(session, appointment_id, now=now)


def accept_offer(session: Session, actor: Actor, appointment_id: int, *, now: datetime | None = None
                 ) -> AppointmentView:
    now = now or utcnow()
    with transaction(session):
        row = _load_for_change(session, actor, appointment_id, AuditAction.UPDATE)
        d.check_transition(row.status, d.Status.BOOKED)
        if row.offer_expires_at is not None and now > row.offer_expires_at:
            raise Conflict("SCHED-020", "this waitlist offer has expired")
        row.status = d.Status.BOOKED.value
        row.offer_expires_at = None
        session.execute(update(WaitlistEntry).where(WaitlistEntry.appointment_id == row.id).values(status="booked"))
        session.flush()
        outbox.publish(session, "scheduling.appointment_booked", {"appointment_id": row.id})
        return queries.appointment_views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED))[0]


def check_in(session: Session, actor: Actor, appointment_id: int, *, expected_version: int | None = None,
             now: datetime | None = None) -> AppointmentView:
    """签到: on the day of the appointment, until its session ends."""
    now = now or utcnow()
    with transaction(session):
        row = _load_for_change(session, actor, appointment_id, AuditAction.UPDATE)
        _check_version(row, expected_version)
        d.check_transition(row.status, d.Status.ARRIVED)
        cs = session.get(ClinicSession, row.session_id)
        if local_day(session, now) != row.day or now > cs.ends_at:
            raise Conflict("SCHED-021", f"check-in is on {row.day.isoformat()}, before the session ends")
        row.status, row.checked_in_at = d.Status.ARRIVED.value, now
        session.flush()
        return queries.appointment_views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED))[0]


def complete_appointment(session: Session, actor: Actor, appointment_id: int, *,
                         expected_version: int | None = None) -> AppointmentView:
    """The doctor has seen the patient (接诊完成)."""
    with transaction(session):
        row = queries.appointment(session, appointment_id, for_update=True)
        _check_version(row, expected_version)
        access.check(session, actor, Perm.APPOINTMENT_BOOK, AuditAction.UPDATE, resource_type="Appointment",
                     resource_id=row.id, org_id=row.org_id, patient_id=row.patient_id)
        d.check_transition(row.status, d.Status.FULFILLED)
        row.status = d.Status.FULFILLED.value
        session.flush()
        return queries.appointment_views(session, [row], unmasked=actor.can(Perm.PII_UNMASKED))[0]


def get_appointment(session: Session, actor: Actor, appointment_id: int) -> AppointmentView:
    with transaction(session):
        row = queries.appointment(session, appointment_id)
        basis = _check_patient_access(session, actor, AuditAction.VIEW, patient_id=row.patient_id,
                                      org_id=row.org_id, resource_id=row.id)
        # A resident sees their own and their family members' names in full.
        own = basis in ("self", "relationship:proxy")
        return queries.appointment_views(session, [row], unmasked=own or actor.can(Perm.PII_UNMASKED))[0]


# -- the waitlist -----------------------------------------------------------------------------------

@dataclass
class WaitlistView:
    id: int
    session_id: int
    patient_id: int
    status: str
    position: int
    appointment_id: int | None


def join_waitlist(session: Session, actor: Actor, *, session_id: int, patient_id: int, channel: str,
                  now: datetime | None = None) -> WaitlistView:
    """候补: when a session's public places are all taken."""
    now = now or utcnow()
    if channel not in d.CHANNELS:
        raise Invalid("SCHED-007", f"channel: one of {list(d.CHANNELS)}", {"field": "channel"})
    with transaction(session):
        cs = queries.clinic_session(session, session_id)
        patient_id = patients.resolve_patient_id(session, patient_id)
        _check_patient_access(session, actor, AuditAction.CREATE, patient_id=patient_id, org_id=cs.org_id)
        if cs.status != "open" or now >= cs.starts_at:
            raise Conflict("SCHED-004", "this session is closed or has started")
        d.check_pool_open(channel, now, _times(cs), released_back=cs.released_back)
        # Only places the patient could book by this channel count: window places left do not
        # keep a web user off the waitlist.
        bookable = (Slot.pool == channel) | (Slot.pool == d.Pool.RESERVED.value) if cs.released_back else (
            Slot.pool == channel)
        free = session.scalar(select(func.sum(Slot.capacity - Slot.booked)).where(
            Slot.session_id == cs.id, bookable)) or 0
        if free > 0:
            raise Conflict("SCHED-018", f"{free} places of this session are still free; book one instead")
        _lock_patient(session, patient_id)
        if session.scalar(select(WaitlistEntry.id).where(WaitlistEntry.session_id == cs.id,
                                                         WaitlistEntry.patient_id == patient_id,
                                                         WaitlistEntry.status.in_(["waiting", "offered"]))):
            raise Conflict("SCHED-019", "the patient is already on this session's waitlist")
        entry = WaitlistEntry(session_id=cs.id, patient_id=patient_id, requested_by=actor.username,
                              channel=channel, status="waiting")
        session.add(entry)
        session.flush()
        return _waitlist_view(session, entry)


def _waitlist_view(session: Session, entry: WaitlistEntry) -> WaitlistView:
    ahead = session.scalar(select(func.count()).select_from(WaitlistEntry).where(
        WaitlistEntry.session_id == entry.session_id, WaitlistEntry.status == "waiting",
        WaitlistEntry.id < entry.id)) or 0
    return WaitlistView(entry.id, entry.session_id, entry.patient_id, entry.status, ahead + 1, entry.appointment_id)


def leave_waitlist(session: Session, actor: Actor, entry_id: int) -> None:
    with transaction(session):
        entry = session.get(WaitlistEntry, entry_id, with_for_update=True)
        if entry is None:
            raise NotFound("SCHED-019", f"waitlist entry {entry_id} not found")
        cs = queries.clinic_session(session, entry.session_id)
        _check_patient_access(session, actor, AuditAction.UPDATE, patient_id=entry.patient_id, org_id=cs.org_id)
        if entry.status != "waiting":
            raise Conflict("SCHED-019", f"this waitlist entry is {entry.status}")
        entry.status = "withdrawn"


def waitlist_of(session: Session, actor: Actor, *, patient_ids: list[int]) -> list[WaitlistView]:
    with transaction(session):
        rows = session.scalars(select(WaitlistEntry).where(WaitlistEntry.patient_id.in_(patient_ids or [-1]),
                                                           WaitlistEntry.status.in_(["waiting", "offered"]))
                               .order_by(WaitlistEntry.id))
        return [_waitlist_view(session, e) for e in rows]


# -- reading ----------------------------------------------------------------------------------------

def my_appointments(session: Session, actor: Actor, *, upcoming_only: bool = False,
                    now: datetime | None = None, limit: int = 100) -> list[AppointmentView]:
    """A resident's appointments and those of the family members they book for."""
    with transaction(session):
        ids = own_patient_ids(session, actor)
        if not ids:
            return []
        access.check(session, actor, Perm.SELF_RECORD, AuditAction.SEARCH, resource_type="Appointment",
                     detail={"patients": len(ids)})
        stmt = select(Appointment).where(Appointment.patient_id.in_(ids))
        if upcoming_only:
            stmt = stmt.where(Appointment.starts_at >= (now or utcnow()) - timedelta(hours=12))
        rows = list(session.scalars(stmt.order_by(Appointment.starts_at.desc()).limit(limit)))
        return queries.appointment_views(session, rows, unmasked=True)


def patient_appointments(session: Session, actor: Actor, patient_id: int, *, limit: int = 100
                         ) -> list[AppointmentView]:
    with transaction(session):
        pid = patients.resolve_patient_id(session, patient_id)
        access.check(session, actor, Perm.PATIENT_READ, AuditAction.SEARCH, resource_type="Appointment",
                     patient_id=pid)
        rows = list(session.scalars(select(Appointment).where(Appointment.patient_id == pid)
                                    .order_by(Appointment.starts_at.desc()).limit(limit)))
        return queries.appointment_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED))


@dataclass
class AppointmentQuery:
    patient_id: int | None = None
    org_id: int | None = None
    practitioner_id: int | None = None
    schedule_id: int | None = None
    status: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    slot_id: int | None = None


def search_appointments(session: Session, actor: Actor, q: AppointmentQuery, *, offset: int = 0,
                        limit: int = 50) -> list[AppointmentView]:
    """Staff search (FHIR Appointment?...): by patient (care relationship checked), or by
    facility, practitioner or schedule within the actor's booking scope."""
    with transaction(session):
        stmt = select(Appointment)
        if q.patient_id is not None:
            pid = patients.resolve_patient_id(session, q.patient_id)
            access.check(session, actor, Perm.PATIENT_READ, AuditAction.SEARCH, resource_type="Appointment",
                         patient_id=pid)
            stmt = stmt.where(Appointment.patient_id == pid)
        else:
            access.check(session, actor, Perm.APPOINTMENT_BOOK, AuditAction.SEARCH, resource_type="Appointment",
                         org_id=q.org_id)
            scope = access.scope_org_ids(session, actor, Perm.APPOINTMENT_BOOK)
            if scope is not None:
                stmt = stmt.where(Appointment.org_id.in_(scope or {-1}))
        for column, value in ((Appointment.org_id, q.org_id), (Appointment.practitioner_id, q.practitioner_id),
                              (Appointment.schedule_id, q.schedule_id), (Appointment.status, q.status),
                              (Appointment.slot_id, q.slot_id)):
            if value is not None:
                stmt = stmt.where(column == value)
        if q.day_from is not None:
            stmt = stmt.where(Appointment.day >= q.day_from)
        if q.day_to is not None:
            stmt = stmt.where(Appointment.day <= q.day_to)
        rows = list(session.scalars(stmt.order_by(Appointment.starts_at, Appointment.id).offset(offset).limit(limit)))
        return queries.appointment_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED))


@dataclass
class DayListEntry:
    number: int  # the patient's queue number in the session (就诊序号)
    appointment: AppointmentView


def day_list(session: Session, actor: Actor, *, day: date, practitioner_id: int | None = None,
             schedule_id: int | None = None, org_id: int | None = None) -> list[DayListEntry]:
    """The doctor's list for a day: live appointments in time order, numbered per session."""
    if practitioner_id is None and schedule_id is None:
        raise Invalid("SCHED-029", "give a practitioner or a schedule", {"field": "practitioner_id"})
    with transaction(session):
        stmt = select(Appointment).where(Appointment.day == day, Appointment.status.in_(
            [d.Status.BOOKED.value, d.Status.ARRIVED.value, d.Status.FULFILLED.value, d.Status.NOSHOW.value]))
        if practitioner_id is not None:
            stmt = stmt.where(Appointment.practitioner_id == practitioner_id)
        if schedule_id is not None:
            stmt = stmt.where(Appointment.schedule_id == schedule_id)
        if org_id is not None:
            stmt = stmt.where(Appointment.org_id == org_id)
        rows = list(session.scalars(stmt.order_by(Appointment.starts_at, Appointment.id)))
        orgs = {r.org_id for r in rows}
        if not actor.system and not orgs and actor.practitioner_id != practitioner_id:
            access.check(session, actor, Perm.APPOINTMENT_BOOK, AuditAction.SEARCH, resource_type="Appointment",
                         org_id=org_id)
        for o in sorted(orgs):
            access.check(session, actor, Perm.APPOINTMENT_BOOK, AuditAction.SEARCH, resource_type="Appointment",
                         org_id=o, detail={"day_list": day.isoformat()})
        views = queries.appointment_views(session, rows, unmasked=actor.can(Perm.PII_UNMASKED))
        numbers: dict[int, int] = {}
        out = []
        for v in views:
            numbers[v.session_id] = numbers.get(v.session_id, 0) + 1
            out.append(DayListEntry(numbers[v.session_id], v))
        return out


@dataclass
class SlotQuery:
    org_id: int | None = None
    department_id: int | None = None
    practitioner_id: int | None = None
    schedule_id: int | None = None
    session_id: int | None = None
    exam_kind: str | None = None
    kind: str | None = None
    day_from: date | None = None
    day_to: date | None = None
    pool: str | None = None  # a channel, or "reserved"
    free_only: bool = True
    full_only: bool = False  # only places all taken (FHIR Slot?status=busy)


def find_slots(session: Session, actor: Actor, q: SlotQuery, *, now: datetime | None = None, offset: int = 0,
               limit: int = 200) -> list[SlotView]:
    """Places by facility, department, doctor, equipment kind and date (号源查询); public
    information, open to every user who is logged in."""
    now = now or utcnow()
    with transaction(session):
        access.check(session, actor, Perm.REGISTRY_READ, AuditAction.SEARCH, resource_type="Slot",
                     audit_success=False)
        # Nothing is booked once its session has started (domain.check_pool_open): a later
        # time of a morning in progress is not offered either.
        stmt = queries.slot_select().where(ClinicSession.status == "open", ClinicSession.starts_at > now)
        if q.kind or q.exam_kind:
            stmt = stmt.join(Schedule, Schedule.id == ClinicSession.schedule_id)
            if q.kind:
                stmt = stmt.where(Schedule.kind == q.kind)
            if q.exam_kind:
                stmt = stmt.where(Schedule.exam_kind == q.exam_kind)
        for column, value in ((ClinicSession.org_id, q.org_id), (ClinicSession.department_id, q.department_id),
                              (ClinicSession.practitioner_id, q.practitioner_id),
                              (ClinicSession.schedule_id, q.schedule_id), (ClinicSession.id, q.session_id)):
            if value is not None:
                stmt = stmt.where(column == value)
        if q.day_from is not None:
            stmt = stmt.where(ClinicSession.day >= q.day_from)
        if q.day_to is not None:
            stmt = stmt.where(ClinicSession.day <= q.day_to)
        if q.pool is not None:
            stmt = stmt.where(Slot.pool == q.pool) if q.pool == d.Pool.RESERVED.value else stmt.where(
                (Slot.pool == q.pool) | ((Slot.pool == d.Pool.RESERVED.value) & ClinicSession.released_back))
        if q.free_only:
            stmt = stmt.where(Slot.booked < Slot.capacity)
        if q.full_only:
            stmt = stmt.where(Slot.booked >= Slot.capacity)
        return queries.slot_rows(session, stmt.order_by(Slot.starts_at, Slot.id).offset(offset).limit(limit))


def appointment_states(session: Session, appointment_ids: list[int]) -> dict[int, tuple[str, int | None, datetime]]:
    """(status, rebooked_as, starts_at) by appointment id: what another context (a referral
    following its place) needs to know, without reading the patient's data."""
    if not appointment_ids:
        return {}
    rows = session.execute(select(Appointment.id, Appointment.status, Appointment.rebooked_as, Appointment.starts_at)
                           .where(Appointment.id.in_(set(appointment_ids))))
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def get_slot(session: Session, actor: Actor, slot_id: int) -> SlotView:
    with transaction(session):
        access.check(session, actor, Perm.REGISTRY_READ, AuditAction.VIEW, resource_type="Slot",
                     audit_success=False)
        return queries.get_slot(session, slot_id)


def timeline_entries(session: Session, actor: Actor, family: set[int]):
    """The patient timeline's share: appointments, newest first."""
    from ..patients.queries import TimelineEntry

    rows = session.scalars(select(Appointment).where(Appointment.patient_id.in_(family))
                           .order_by(Appointment.starts_at.desc()).limit(100))
    return [TimelineEntry(a.starts_at, "appointment", a.org_id, a.patient_id,
                          {"status": a.status, "kind": a.kind, "appointment_id": a.id}) for a in rows]


patients.register_timeline_source(timeline_entries)
