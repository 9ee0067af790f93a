"""The worker's share of scheduling: outbox handlers that notify patients, and the periodic
jobs — open the coming days' sessions, release unbooked reserved places back to the public
(§3.6 ``release_back_hours``), mark no-shows, expire waitlist offers, remind the day before.

Every job is idempotent and safe to run from several workers at once: each step is a
conditional update or takes row locks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import outbox
from ..db import transaction, utcnow
from ..notifications import service as notifications
from ..security.domain import Actor
from . import domain as d
from . import queries
from .models import Appointment, ClinicSession, Slot, WaitlistEntry
from .schedules import open_sessions
from .service import _cancel, offer_next, rebooking_slots, settings_of, tz_of

SYSTEM = Actor.system_actor("scheduling-worker")


def _when(session: Session, at: datetime) -> str:
    return at.astimezone(tz_of(session)).strftime("%Y-%m-%d %H:%M")


def _describe(session: Session, appt: Appointment) -> tuple[str, str]:
    view = queries.appointment_views(session, [appt], unmasked=True)[0]
    where_zh = " ".join(x for x in (view.org_name, view.department_name, view.practitioner_name) if x)
    return f"{where_zh} {_when(session, appt.starts_at)}", f"{where_zh}, {_when(session, appt.starts_at)}"


def _note(session: Session, topic: str, appt: Appointment, title: tuple[str, str], body: tuple[str, str],
          suffix: str = "") -> None:
    notifications.notify(session, notifications.Note(
        recipient_kind="patient", recipient_id=appt.patient_id, topic=topic,
        title={"zh": title[0], "en": title[1]}, body={"zh": body[0], "en": body[1]},
        link=f"/appointments/{appt.id}", dedupe_key=f"{topic}:{appt.id}{suffix}"))


def _appointment(session: Session, payload: dict[str, Any]) -> Appointment | None:
    return session.get(Appointment, payload.get("appointment_id"))


def on_booked(session: Session, payload: dict[str, Any]) -> None:
    appt = _appointment(session, payload)
    if appt is None:
        return
    zh, en = _describe(session, appt)
    _note(session, "scheduling.appointment_booked", appt, ("预约成功", "Appointment booked"),
          (f"您已预约 {zh}，请按时就诊并签到。", f"You are booked: {en}. Please check in on time."))
    if appt.practitioner_id is not None:
        notifications.notify(session, notifications.Note(
            recipient_kind="practitioner", recipient_id=appt.practitioner_id, topic="scheduling.appointment_booked",
            title={"zh": "新预约", "en": "New appointment"},
            body={"zh": f"新增预约 {_when(session, appt.starts_at)}",
                  "en": f"New booking {_when(session, appt.starts_at)}"},
            link=f"/scheduling/day-list?day={appt.day.isoformat()}",
            dedupe_key=f"scheduling.appointment_booked:{appt.id}:doctor"))


def on_cancelled(session: Session, payload: dict[str, Any]) -> None:
    appt = _appointment(session, payload)
    if appt is None or d.stop_reason(appt.cancel_reason) is not None:
        return  # a stop-clinic notice says more (on_stopped)
    zh, en = _describe(session, appt)
    _note(session, "scheduling.appointment_cancelled", appt, ("预约已取消", "Appointment cancelled"),
          (f"{zh} 的预约已取消。", f"Your appointment {en} is cancelled."))


def on_stopped(session: Session, payload: dict[str, Any]) -> None:
    appt = _appointment(session, payload)
    if appt is None:
        return
    zh, en = _describe(session, appt)
    options = rebooking_slots(session, appt.id)
    alt_zh = "；".join(_when(session, s.starts_at) for s in options) or "暂无，可稍后再查"
    alt_en = "; ".join(_when(session, s.starts_at) for s in options) or "none yet, please look again later"
    reason = payload.get("reason", "")
    _note(session, "scheduling.session_stopped", appt, ("停诊通知", "Clinic cancelled"),
          (f"因{reason}，{zh} 停诊，您的预约已取消。可改约：{alt_zh}。",
           f"{en} is cancelled ({reason}); your appointment is cancelled. Other times: {alt_en}."))


def on_offered(session: Session, payload: dict[str, Any]) -> None:
    appt = _appointment(session, payload)
    if appt is None or "until" not in payload:
        return
    zh, en = _describe(session, appt)
    until = _when(session, datetime.fromisoformat(payload["until"]))
    _note(session, "scheduling.waitlist_offered", appt, ("候补成功，请确认", "A place is free: confirm it"),
          (f"{zh} 有空余号源为您保留至 {until}，请及时确认。",
           f"A place at {en} is held for you until {until}; confirm it."))


def on_reminder(session: Session, payload: dict[str, Any]) -> None:
    appt = _appointment(session, payload)
    if appt is None or appt.status != d.Status.BOOKED.value:
        return
    zh, en = _describe(session, appt)
    _note(session, "scheduling.reminder", appt, ("就诊提醒", "Appointment tomorrow"),
          (f"明天 {zh} 有您的预约，如不能前往请提前取消。",
           f"Tomorrow: {en}. Please cancel in time if you cannot come."))


def on_exams_booked(session: Session, payload: dict[str, Any]) -> None:
    lines = payload.get("instructions", {})
    notifications.notify(session, notifications.Note(
        recipient_kind="patient", recipient_id=payload["patient_id"], topic="scheduling.exams_booked",
        title={"zh": "检查预约及准备事项", "en": "Exams booked: how to prepare"},
        body={"zh": "\n".join(lines.get("zh", [])), "en": "\n".join(lines.get("en", []))},
        link="/appointments", dedupe_key=f"scheduling.exams_booked:{payload['exam_booking_id']}"))


HANDLERS = {
    "scheduling.appointment_booked": [on_booked],
    "scheduling.appointment_cancelled": [on_cancelled],
    "scheduling.session_stopped": [on_stopped],
    "scheduling.waitlist_offered": [on_offered],
    "scheduling.reminder_due": [on_reminder],
    "scheduling.exams_booked": [on_exams_booked],
}


# -- periodic jobs -----------------------------------------------------------------------------------

def release_back(session: Session, now: datetime) -> int:
    """Unbooked reserved places go to the public pools ``release_back_hours`` before the
    session (§3.6); waiting patients are offered them."""
    with transaction(session):
        due = list(session.scalars(select(ClinicSession.id).where(
            ClinicSession.released_back.is_(False), ClinicSession.release_back_at <= now,
            ClinicSession.starts_at > now, ClinicSession.status == "open").limit(5000)))
        if not due:
            return 0
        session.execute(update(ClinicSession).where(ClinicSession.id.in_(due)).values(released_back=True))
        waiting = set(session.scalars(select(WaitlistEntry.session_id).where(
            WaitlistEntry.session_id.in_(due), WaitlistEntry.status == "waiting")))
        for sid in waiting:
            for slot_id in session.scalars(select(Slot.id).where(Slot.session_id == sid,
                                                                 Slot.pool == d.Pool.RESERVED.value,
                                                                 Slot.booked < Slot.capacity)).all():
                while offer_next(session, slot_id, now=now) is not None:
                    pass
        return len(due)


def mark_no_shows(session: Session, now: datetime) -> int:
    """Booked and never checked in by the end of the session plus a grace period: 爽约."""
    grace = timedelta(minutes=settings_of(session).noshow_grace_minutes)
    with transaction(session):
        rows = list(session.scalars(
            select(Appointment).join(ClinicSession, ClinicSession.id == Appointment.session_id)
            .where(Appointment.status == d.Status.BOOKED.value, ClinicSession.ends_at < now - grace)
            .limit(5000).with_for_update(of=Appointment, skip_locked=True)))
        for appt in rows:
            appt.status = d.Status.NOSHOW.value
        return len(rows)


def expire_offers(session: Session, now: datetime) -> int:
    with transaction(session):
        rows = list(session.scalars(select(Appointment).where(
            Appointment.status == d.Status.PROPOSED.value, Appointment.offer_expires_at < now).limit(1000)
            .with_for_update(skip_locked=True)))
        for appt in rows:
            _cancel(session, appt, reason="waitlist offer expired", now=now)
        return len(rows)


def send_reminders(session: Session, now: datetime) -> int:
    """The day before, from the configured local time: one reminder per appointment."""
    tz = tz_of(session)
    local = now.astimezone(tz)
    if local.hour * 60 + local.minute < settings_of(session).reminder_minute:
        return 0
    tomorrow = local.date() + timedelta(days=1)
    with transaction(session):
        rows = list(session.scalars(select(Appointment).where(
            Appointment.day == tomorrow, Appointment.status == d.Status.BOOKED.value,
            Appointment.reminded_at.is_(None)).limit(5000).with_for_update(skip_locked=True)))
        for appt in rows:
            appt.reminded_at = now
            outbox.publish(session, "scheduling.reminder_due", {"appointment_id": appt.id})
        return len(rows)


_last_opened: dict[str, object] = {}


def tick(session: Session, now: datetime | None = None) -> dict[str, int]:
    """One round of the periodic jobs (``healthgrid worker`` runs it every poll)."""
    now = now or utcnow()
    today = now.astimezone(tz_of(session)).date()
    done = {}
    if _last_opened.get("day") != today:
        done["sessions_opened"] = open_sessions(session, SYSTEM, today=today)
        _last_opened["day"] = today
    done["released_back"] = release_back(session, now)
    done["no_shows"] = mark_no_shows(session, now)
    done["offers_expired"] = expire_offers(session, now)
    done["reminders"] = send_reminders(session, now)
    return done
