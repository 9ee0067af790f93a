"""The worker's share of referrals: notify the patient and both doctors at each step, expire
and escalate referrals not answered in time (§3.5 SLAs), and follow the booked place (the
patient checked in, missed it, or was rebooked after a stop-clinic notice).

Each job is idempotent and safe with several workers: rows are taken ``FOR UPDATE SKIP
LOCKED`` and every change is a transition the state machine allows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..notifications import service as notifications
from ..scheduling import service as scheduling
from ..security.domain import Actor
from . import domain as d
from . import queries
from .models import Referral
from .service import _move, escalate

SYSTEM = Actor.system_actor("referrals-worker")
Status = d.Status

# What each party is told when a referral enters a status: (zh, en) title.
TITLES: dict[Status, tuple[str, str]] = {
    Status.SUBMITTED: ("收到转诊申请", "Referral received"),
    Status.ACCEPTED: ("转诊已接收", "Referral accepted"),
    Status.SCHEDULED: ("转诊已预约号源", "Referral appointment booked"),
    Status.REJECTED: ("转诊被拒收", "Referral rejected"),
    Status.CANCELLED: ("转诊已取消", "Referral cancelled"),
    Status.EXPIRED: ("转诊超时未接收", "Referral not answered in time"),
    Status.NO_SHOW: ("转诊患者未到诊", "Referred patient did not come"),
    Status.ARRIVED: ("转诊患者已到诊", "Referred patient arrived"),
    Status.COMPLETED: ("转诊诊治完成", "Referral care completed"),
    Status.BACK_REFERRED: ("患者已回转", "Patient referred back"),
    Status.RECEIVED_BY_PRIMARY: ("基层已接收回转患者", "Primary care received the patient"),
    Status.FOLLOWED_UP: ("回转随访已完成", "Follow-up done"),
    Status.CLOSED: ("转诊已结案", "Referral closed"),
}
# The patient hears of every step; the submission in their own words.
PATIENT_TITLES = {**TITLES, Status.SUBMITTED: ("转诊申请已发出", "Referral sent")}


def _when(session: Session, at: datetime | None) -> str:
    return at.astimezone(scheduling.tz_of(session)).strftime("%Y-%m-%d %H:%M") if at else ""


def _body(session: Session, view: queries.ReferralView, status: Status) -> tuple[str, str]:
    zh = f"{view.code} {view.from_org_name} → {view.to_org_name} {view.to_department_name or ''}".strip()
    en = zh
    if status is Status.SCHEDULED:
        zh += f"，就诊时间 {_when(session, view.scheduled_for)}，请按时到诊并携带转诊单。"
        en += f", appointment {_when(session, view.scheduled_for)}; please bring the referral form."
    elif status is Status.REJECTED:
        zh += f"，原因：{view.form['reject_reason']}"
        en += f", reason: {view.form['reject_reason']}"
    elif status is Status.CANCELLED:
        zh += f"，原因：{view.form['cancel_reason']}"
        en += f", reason: {view.form['cancel_reason']}"
    elif status is Status.BACK_REFERRED and view.followup_due_at:
        zh += f"，请于 {_when(session, view.followup_due_at)} 前完成随访。"
        en += f"; follow up by {_when(session, view.followup_due_at)}."
    return zh, en


def on_status_changed(session: Session, payload: dict[str, Any]) -> None:
    row = session.get(Referral, payload.get("referral_id"))
    if row is None:
        return
    try:
        status = Status(payload.get("to"))
    except ValueError:
        return
    if status not in TITLES:
        return
    view = queries.views(session, [row], unmasked=True)[0]
    title = TITLES[status]
    zh, en = _body(session, view, status)
    link = f"/referrals/{row.id}"
    recipients: list[tuple[str, int]] = [("patient", row.patient_id)]
    if row.from_practitioner_id and status is not Status.SUBMITTED:  # the sender knows they sent it
        recipients.append(("practitioner", row.from_practitioner_id))
    if row.to_practitioner_id:
        recipients.append(("practitioner", row.to_practitioner_id))
    elif status is Status.SUBMITTED:
        recipients.append(("org", row.to_org_id))  # the receiving desk (转诊办)
    if status is Status.BACK_REFERRED:
        if row.back_to_practitioner_id:
            recipients.append(("practitioner", row.back_to_practitioner_id))
        if row.back_to_org_id and row.back_to_org_id != row.from_org_id:
            recipients.append(("org", row.back_to_org_id))
    for kind, rid in dict.fromkeys(recipients):
        words = PATIENT_TITLES[status] if kind == "patient" else title
        notifications.notify(session, notifications.Note(
            recipient_kind=kind, recipient_id=rid, topic=f"referrals.{status.value}",
            title={"zh": words[0], "en": words[1]}, body={"zh": zh, "en": en}, link=link,
            dedupe_key=f"referrals:{row.id}:{status.value}:{kind}:{rid}"))


def on_escalated(session: Session, payload: dict[str, Any]) -> None:
    row = session.get(Referral, payload.get("referral_id"))
    if row is None or row.escalated_to_org_id is None:
        return
    view = queries.views(session, [row], unmasked=True)[0]
    notifications.notify(session, notifications.Note(
        recipient_kind="org", recipient_id=row.escalated_to_org_id, topic="referrals.escalated",
        title={"zh": "转诊需协调", "en": "Referral needs the referral centre"},
        body={"zh": f"{view.code} {view.from_org_name} → {view.to_org_name}：{row.escalation_note}",
              "en": f"{view.code} {view.from_org_name} → {view.to_org_name}: {row.escalation_note}"},
        link=f"/referrals/{row.id}", dedupe_key=f"referrals:{row.id}:escalated"))


HANDLERS = {"referrals.status_changed": [on_status_changed], "referrals.escalated": [on_escalated]}


def expire_unanswered(session: Session, now: datetime) -> int:
    """SUBMITTED past the acceptance deadline: EXPIRED, and escalated to the referral centre."""
    with transaction(session):
        rows = list(session.scalars(select(Referral).where(
            Referral.status == Status.SUBMITTED.value, Referral.accept_due_at < now)
            .order_by(Referral.id).limit(1000).with_for_update(skip_locked=True)))
        for row in rows:
            _move(session, SYSTEM, row, Status.EXPIRED, now=now, note="not answered within the service level")
            escalate(session, row, now=now, why=f"{row.urgency} referral not answered by"
                     f" {row.accept_due_at.isoformat(timespec='minutes')}")
        return len(rows)


def follow_places(session: Session, now: datetime) -> dict[str, int]:
    """SCHEDULED referrals whose appointment moved: checked in -> ARRIVED, missed -> NO_SHOW,
    rebooked after a stop-clinic notice -> the new appointment."""
    done = {"arrived": 0, "no_show": 0, "rebooked": 0}
    with transaction(session):
        rows = list(session.scalars(select(Referral).where(
            Referral.status == Status.SCHEDULED.value, Referral.appointment_id.is_not(None))
            .order_by(Referral.id).limit(5000).with_for_update(skip_locked=True)))
        states = scheduling.appointment_states(session, [r.appointment_id for r in rows])
        for row in rows:
            status, rebooked_as, _start = states.get(row.appointment_id, (None, None, None))
            if status in ("arrived", "fulfilled"):
                _move(session, SYSTEM, row, Status.ARRIVED, now=now, note="checked in at the appointment")
                done["arrived"] += 1
            elif status == "noshow":
                _move(session, SYSTEM, row, Status.NO_SHOW, now=now, note="missed the appointment")
                done["no_show"] += 1
            elif status == "cancelled" and rebooked_as is not None:
                new = scheduling.appointment_states(session, [rebooked_as]).get(rebooked_as)
                if new is not None:
                    row.appointment_id, row.scheduled_for = rebooked_as, new[2]
                    done["rebooked"] += 1
        return done


def tick(session: Session, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    done = {"referrals_expired": expire_unanswered(session, now)}
    done.update({f"referrals_{k}": v for k, v in follow_places(session, now).items()})
    return done
