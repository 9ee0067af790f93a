"""Referrals' share of the synthetic region: a year of two-way referrals (双向转诊), made from
the scheduling history and written in bulk (no service calls), deterministic for a seed.

Every reserved place (预留号源) the scheduling history booked with a referral reference
becomes the up-referral that booked it, and the booking's reference becomes the referral's
code (through ``link_places``: scheduling writes its own table). Around them, referrals
that never held a place. Behaviour (shares of the place-bound up-referrals unless said):
- senders: the patient's township health centre (55 %) or village clinic, whichever is
  below the receiver; the doctor is one practising there;
- urgency: half of the places taken within three days are urgent, the rest routine;
  acceptance is within the service level (§3.5: urgent 2 h, routine 24 h; routine median
  about 3 h, p90 about 12 h), because the SLA job expires what is not answered in time:
  those are the expired ones below, escalated to the alliance's referral centre;
- the place decides the rest: fulfilled -> arrived, in care, completed (35 % of clinic
  patients admitted, discharged 2-14 days later); 60 % of outpatients and 85 % of
  inpatients referred back (回转) to the sender, received there within 3 days, followed up
  within 14 days (80 %), late (12 %) or not yet (8 %), then mostly closed; no-show ->
  NO_SHOW; cancelled -> CANCELLED with the booking's reason (a stop-clinic notice says so);
- without a place: rejected 6 % (with reasons), expired 2.5 % (escalated), emergencies 4 %
  (accepted implicitly, arrived by 120 within hours, mostly admitted), direct down-referrals
  15 % from hospitals to primary care (rehabilitation, stable chronic disease);
- no timestamp passes ``now``: a chain stops at its first step still to come, so the
  latest referrals are in flight (submitted, in care, awaiting follow-up).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from ..config import ReferralSettings
from ..db import utcnow
from ..scheduling import queries as scheduling_queries
from ..security import ALL_SETTINGS_KEY
from . import criteria
from . import domain as d
from .models import FollowUpTask, Referral, ReferralEvent
from .synth_region import DIAGNOSES, DOWNS, EMERGENCIES, FALLBACK, OUTCOMES, PLANS, REJECT_REASONS, World, bulk_insert

Progress = Callable[[str, int, int], None]
Link = Callable[[Connection, dict[int, str]], int]
S = d.Status
SYNTH_USER = "system:synth"
WORKER = "system:referrals-worker"
BATCH = 20_000
SHARES = {"rejected": 0.06, "expired": 0.025, "emergency": 0.04, "down": 0.15}


def generate(conn: Connection, *, size: str, seed: int, info: dict[str, Any], now: datetime | None = None,
             progress: Progress | None = None, link_places: Link | None = None) -> dict[str, Any]:
    """Referrals, their events and follow-up tasks for the generated region; ``link_places``
    (scheduling's ``link_referrals``) points each place's referral reference at its code."""
    settings = info.get(ALL_SETTINGS_KEY)
    cfg = settings.referrals if settings is not None else ReferralSettings()
    bookings = scheduling_queries.referral_bookings(conn)
    with Session(bind=conn) as session:
        world = World(conn, session)
    gen = _Builder(conn, world, random.Random(seed * 7919 + 11), now or utcnow(), cfg)
    for i, booking in enumerate(bookings):
        gen.from_booking(booking)
        if progress and i % 5000 == 0:
            progress("referrals", i, len(bookings))
    gen.extras()
    gen.write()
    if link_places is not None:
        link_places(conn, gen.links)
    return gen.report()


ALLOWED = frozenset((a.value, b.value) for a, targets in d.TRANSITIONS.items() for b in targets)
STAMPS = {s: (s.value, d.STAMP[s]) for s in d.STAMP}  # plain strings: enum lookups cost a fifth of the build


def _facts_dict(facts: criteria.Facts) -> dict[str, Any]:
    """``Facts.as_dict`` without ``dataclasses.asdict``'s deep copy (a third of the build time)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(facts).items()}


def _hours(rng: random.Random, lo: float, hi: float) -> timedelta:
    return timedelta(hours=rng.uniform(lo, hi))


class _Builder:
    """Rows with ids given here; every transition is an event, as ``service._move`` writes it."""

    def __init__(self, conn: Connection, world: World, rng: random.Random, now: datetime, cfg: ReferralSettings):
        self.conn, self.world, self.rng, self.now, self.cfg = conn, world, rng, now, cfg
        self.ids = {m: conn.scalar(select(func.max(m.id))) or 0 for m in (Referral, ReferralEvent, FollowUpTask)}
        self.columns = [c.name for c in Referral.__table__.columns]
        self.refs: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        self.links: dict[int, str] = {}
        self.placed: list[dict[str, Any]] = []

    def next_id(self, model: type) -> int:
        self.ids[model] += 1
        return self.ids[model]

    # -- a referral and its transitions -------------------------------------------------------------
    def new(self, *, direction: str, urgency: str, patient: int, sender: int, receiver: int,
            to_department: int | None, to_practitioner: int | None, diagnosis: tuple[str, str],
            clinical: dict[str, Any], at: datetime, from_doctor: tuple[int | None, int | None] | None = None,
            **extra: Any) -> dict[str, Any]:
        """A DRAFT written at ``at``; the sender's doctor is one practising there."""
        rng, w = self.rng, self.world
        pid, dept = from_doctor or (rng.choice(w.doctors[sender]) if w.doctors.get(sender) else (None, None))
        facts = criteria.facts_from(clinical)
        route = criteria.Route(direction, urgency, w.level.get(sender, "L0"), w.level.get(receiver, "L2"),
                               w.same_alliance(sender, receiver))
        row = dict.fromkeys(self.columns)
        village = w.home.get(patient, (None, None))[0]
        row.update(id=self.next_id(Referral), direction=direction, urgency=urgency, status=S.DRAFT.value,
                   patient_id=patient, from_org_id=sender, from_department_id=dept, from_practitioner_id=pid,
                   to_org_id=receiver, to_department_id=to_department, to_practitioner_id=to_practitioner,
                   diagnoses=[{"code": diagnosis[0], "name": diagnosis[1]}], attachments=[],
                   clinical=_facts_dict(facts), findings=[f.as_dict() for f in criteria.evaluate(route, facts)],
                   insurance_type="employee" if rng.random() < 0.18 else "resident",
                   insurance_region=w.region_code.get(village), created_by=SYNTH_USER, created_at=at,
                   updated_at=at, version=1, **extra)
        self.refs.append(row)
        self._event(row, None, S.DRAFT.value, at, SYNTH_USER, None)
        return row

    def _event(self, row: dict, was: str | None, to: str, at: datetime, actor: str, note: str | None) -> None:
        self.ids[ReferralEvent] += 1
        self.events.append({"id": self.ids[ReferralEvent], "referral_id": row["id"], "at": at, "actor": actor,
                            "from_status": was, "to_status": to, "note": note})

    def step(self, row: dict, to: S, at: datetime, note: str | None = None, actor: str = SYNTH_USER) -> bool:
        """Move to ``to`` at ``at`` unless that is still to come (the chain stops there)."""
        if at > self.now:
            return False
        value, stamp = STAMPS[to]
        was = row["status"]
        if (was, value) not in ALLOWED:
            d.check_transition(was, value)  # raises: the synth broke the state machine
        self._event(row, was, value, at, actor, note)
        row["status"], row[stamp], row["updated_at"] = value, at, at
        return True

    def submit(self, row: dict, at: datetime) -> bool:
        row["accept_due_at"] = d.accept_due(at, row["urgency"], d.Sla(self.cfg.urgent_accept_hours,
                                                                     self.cfg.routine_accept_hours))
        return self.step(row, S.SUBMITTED, at)

    def accept_delay(self, urgency: str) -> timedelta:
        """Within the service level: the late ones expired instead (the SLA job)."""
        limit = self.cfg.urgent_accept_hours if urgency == d.Urgency.URGENT.value else self.cfg.routine_accept_hours
        typical = 0.5 if urgency == d.Urgency.URGENT.value else 3.0
        hours = self.rng.lognormvariate(0, 1.0) * typical
        return timedelta(hours=min(hours, limit * 0.98))

    def diagnosis(self, department: int | None) -> tuple[str, str]:
        code = self.world.dept_code.get(department or 0, "")
        return self.rng.choice(DIAGNOSES.get(code) or DIAGNOSES.get(code.split(".")[0]) or FALLBACK)

    def clinical(self, code: str) -> dict[str, Any]:
        rng = self.rng
        if code.startswith("I1"):
            return {"sbp": rng.randint(150, 176), "dbp": rng.randint(90, 106), "uncontrolled_visits": 2}
        if code.startswith("E11"):
            return {"fpg": round(rng.uniform(9.0, 15.5), 1), "uncontrolled_visits": 2}
        return {}

    # -- the place-bound up-referrals ----------------------------------------------------------------
    def from_booking(self, b: scheduling_queries.ReferralBooking) -> None:
        rng = self.rng
        sender = self.world.sender(rng, b.patient_id, b.org_id)
        if sender is None or b.created_at > self.now:
            return
        urgency = "urgent" if b.starts_at - b.created_at <= timedelta(days=3) and rng.random() < 0.5 else "routine"
        submitted = b.created_at - self.accept_delay(urgency)
        dx = self.diagnosis(b.department_id)
        row = self.new(direction="up", urgency=urgency, patient=b.patient_id, sender=sender, receiver=b.org_id,
                       to_department=b.department_id, to_practitioner=b.practitioner_id, diagnosis=dx,
                       clinical=self.clinical(dx[0]), at=submitted - timedelta(minutes=rng.uniform(2, 30)),
                       slot_id=b.slot_id, appointment_id=b.id, scheduled_for=b.starts_at,
                       reason_text="两次随访控制不满意" if dx[0][:3] in ("I10", "E11") else "需专科进一步诊治")
        self.submit(row, submitted)
        self.step(row, S.ACCEPTED, b.created_at)
        self.step(row, S.SCHEDULED, b.created_at, note=f"appointment {b.id}")
        self.links[b.id] = d.ref_code(row["id"])
        self.placed.append(row)
        if b.status == "noshow":
            self.step(row, S.NO_SHOW, b.updated_at, "missed the appointment", WORKER)
        elif b.status == "cancelled" and b.cancelled_at is not None:
            stop = b.cancel_reason and b.cancel_reason.startswith("stop_clinic:")
            reason = (f"医生停诊（{b.cancel_reason.split(':', 1)[1].strip()}），转诊取消" if stop
                      else f"患者取消：{b.cancel_reason or '个人原因'}")
            row["cancel_reason"] = reason
            self.step(row, S.CANCELLED, b.cancelled_at, reason)
        elif b.status in ("arrived", "fulfilled"):
            self.care(row, b.checked_in_at or b.starts_at, admitted=b.kind == "clinic" and rng.random() < 0.35)

    def care(self, row: dict, arrived: datetime, *, admitted: bool) -> None:
        """Arrived, seen, completed (discharged), then referred back or closed."""
        rng = self.rng
        seen = arrived + timedelta(minutes=rng.uniform(5, 50))
        done = seen + (timedelta(days=rng.uniform(2, 14)) if admitted else timedelta(minutes=rng.uniform(10, 90)))
        if not (self.step(row, S.ARRIVED, arrived) and self.step(row, S.IN_CARE, seen)
                and self.step(row, S.COMPLETED, done)):
            return
        if rng.random() < (0.85 if admitted else 0.6):
            self.back(row, done + _hours(rng, 0.2, 8), admitted)
        elif rng.random() < 0.9:
            self.step(row, S.CLOSED, done + _hours(rng, 1, 72), "诊治结束，无需回转")

    def back(self, row: dict, at: datetime, admitted: bool) -> None:
        """回转 to the sender with the back-referral form and primary care's follow-up task."""
        rng = self.rng
        name = row["diagnoses"][0]["name"]
        row.update(back_diagnosis=f"{name}，病情稳定",
                   back_results="主要检查结果见出院小结" if admitted else "门诊检查结果已共享",
                   back_treatment="住院综合治疗" if admitted else "门诊调整治疗方案", back_plan=rng.choice(PLANS),
                   back_rehab="规律作息，适度活动，定期复查",
                   back_inpatient_no=f"ZY{row['id']:08d}" if admitted else None,
                   back_to_org_id=row["from_org_id"], back_to_practitioner_id=row["from_practitioner_id"])
        if not self.step(row, S.BACK_REFERRED, at):
            return
        task = dict(id=self.next_id(FollowUpTask), referral_id=row["id"], kind="followup", patient_id=row["patient_id"],
                    org_id=row["back_to_org_id"], practitioner_id=row["back_to_practitioner_id"],
                    due_at=d.followup_due(at, d.Sla(followup_days=self.cfg.followup_days)), done_at=None,
                    done_by=None, outcome=None, created_at=at)
        self.tasks.append(task)
        roll = rng.random()
        days = rng.uniform(1, 13.5) if roll < 0.8 else rng.uniform(15, 40) if roll < 0.92 else None
        received = at + timedelta(days=rng.uniform(0.05, min(3.0, (days or 6) / 2)))
        if not self.step(row, S.RECEIVED_BY_PRIMARY, received) or days is None:
            return
        outcome = rng.choice(OUTCOMES)
        if self.step(row, S.FOLLOWED_UP, at + timedelta(days=days), outcome):
            row["followup_note"] = outcome
            task.update(done_at=row["followed_up_at"], done_by=SYNTH_USER, outcome=outcome)
            if rng.random() < 0.85:
                self.step(row, S.CLOSED, row["followed_up_at"] + timedelta(days=rng.uniform(0, 10)))

    # -- referrals without a place --------------------------------------------------------------------
    def extras(self) -> None:
        if not self.placed:
            return
        self.first = min(r["created_at"] for r in self.placed)
        for kind, share in SHARES.items():
            for _ in range(round(len(self.placed) * share)):
                getattr(self, kind)(self.rng.choice(self.placed))

    def _when(self, template: dict) -> datetime:
        at = template["submitted_at"] + timedelta(days=self.rng.uniform(-15, 15))
        return max(self.first, min(at, self.now - timedelta(hours=1)))

    def _neighbour(self, template: dict) -> int:
        township = self.world.home.get(template["patient_id"], (None, None))[1]
        return self.rng.choice(self.world.neighbours.get(township) or [template["patient_id"]])

    def _up(self, template: dict, urgency: str = "routine") -> tuple[dict, datetime] | None:
        patient = self._neighbour(template)
        sender = self.world.sender(self.rng, patient, template["to_org_id"])
        if sender is None:
            return None
        at = self._when(template)
        dx = self.diagnosis(template["to_department_id"])
        row = self.new(direction="up", urgency=urgency, patient=patient, sender=sender,
                       receiver=template["to_org_id"], to_department=template["to_department_id"],
                       to_practitioner=template["to_practitioner_id"], diagnosis=dx, clinical=self.clinical(dx[0]),
                       at=at - timedelta(minutes=self.rng.uniform(2, 30)), reason_text="需专科进一步诊治")
        self.submit(row, at)
        return row, at

    def rejected(self, template: dict) -> None:
        made = self._up(template)
        if made is not None:
            row, at = made
            row["reject_reason"] = self.rng.choice(REJECT_REASONS)
            self.step(row, S.REJECTED, at + _hours(self.rng, 0.3, 20), row["reject_reason"])

    def expired(self, template: dict) -> None:
        made = self._up(template, "urgent" if self.rng.random() < 0.3 else "routine")
        if made is None:
            return
        row, _at = made
        due = row["accept_due_at"]
        if self.step(row, S.EXPIRED, due + timedelta(minutes=self.rng.uniform(1, 15)),
                     "not answered within the service level", WORKER):
            why = f"{row['urgency']} referral not answered by {due.isoformat(timespec='minutes')}"
            row.update(escalated_at=row["expired_at"], escalation_note=why,
                       escalated_to_org_id=self.world.referral_centre(row["from_org_id"], row["to_org_id"]))
            self._event(row, S.EXPIRED.value, S.EXPIRED.value, row["expired_at"], "system:referrals",
                        f"escalated: {why}")

    def emergency(self, template: dict) -> None:
        """Through 120 to the hospital's emergency department: accepted implicitly (§3.5)."""
        receiver = template["to_org_id"]
        if self.world.level.get(receiver) in ("L0", "L1"):
            return
        patient, rng = self._neighbour(template), self.rng
        sender = self.world.sender(rng, patient, receiver)
        if sender is None:
            return
        code, name, flag = rng.choice(EMERGENCIES)
        at = self._when(template)
        clinical = {"sbp": rng.randint(182, 210), "dbp": rng.randint(100, 124), "red_flags": [flag]}
        row = self.new(direction="up", urgency="emergency", patient=patient, sender=sender, receiver=receiver,
                       to_department=self.world.dept_of.get((receiver, "20")), to_practitioner=None,
                       diagnosis=(code, name), clinical=clinical, at=at, reason_text="病情危重，经120紧急转诊")
        if self.submit(row, at) and self.step(row, S.ACCEPTED, at, "emergency: accepted implicitly (120)"):
            self.care(row, at + timedelta(minutes=rng.uniform(25, 150)), admitted=rng.random() < 0.8)

    def down(self, template: dict) -> None:
        """下转 from a hospital department to the patient's primary care; its follow-up is the
        patient's first visit there."""
        hospital, rng = template["to_org_id"], self.rng
        patient = self._neighbour(template)
        village, township = self.world.home.get(patient, (None, None))
        options = [o for o in (self.world.centre.get(township), self.world.clinic.get(village))
                   if self.world.below(o, hospital)]
        if not options:
            return
        receiver = options[0] if rng.random() < 0.6 else options[-1]
        code, name, reason = rng.choice(DOWNS)
        plan = rng.choice(PLANS)
        at = self._when(template)
        row = self.new(direction="down", urgency="routine", patient=patient, sender=hospital, receiver=receiver,
                       to_department=None, to_practitioner=None, diagnosis=(code, name), at=at,
                       clinical={"condition_stable": True, "diagnosis_confirmed": True, "care_plan": plan},
                       from_doctor=(template["to_practitioner_id"], template["to_department_id"]),
                       reason_code=reason, reason_text="病情稳定，转基层继续治疗与康复", treatment=plan)
        accepted = at + self.accept_delay("routine")
        if not (self.submit(row, at) and self.step(row, S.ACCEPTED, accepted)):
            return
        roll = rng.random()
        if roll >= 0.9:
            return  # not seen in primary care yet
        arrived = at + timedelta(days=rng.uniform(1, 13.5) if roll < 0.8 else rng.uniform(15, 30))
        self.care_primary(row, max(arrived, accepted + timedelta(minutes=30)))

    def care_primary(self, row: dict, arrived: datetime) -> None:
        rng = self.rng
        seen = arrived + timedelta(minutes=rng.uniform(0, 20))
        done = seen + timedelta(minutes=rng.uniform(15, 60))
        if self.step(row, S.ARRIVED, arrived) and self.step(row, S.IN_CARE, seen) \
                and self.step(row, S.COMPLETED, done) and rng.random() < 0.85:
            self.step(row, S.CLOSED, done + timedelta(days=rng.uniform(0, 7)), "转入基层长期管理")

    # -- writing ------------------------------------------------------------------------------------------
    def write(self) -> None:
        for model, rows in ((Referral, self.refs), (ReferralEvent, self.events), (FollowUpTask, self.tasks)):
            for start in range(0, len(rows), BATCH):
                bulk_insert(self.conn, model.__table__, rows[start:start + BATCH])
        if self.conn.dialect.name == "postgresql":
            for model in (Referral, ReferralEvent, FollowUpTask):
                table = model.__tablename__
                self.conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                                       f" GREATEST((SELECT MAX(id) FROM {table}), 1))"))
                self.conn.execute(text(f"ANALYZE {table}"))

    def report(self) -> dict[str, Any]:
        by = Counter((r["direction"], r["status"]) for r in self.refs)
        down = sum(n for (direction, _s), n in by.items() if direction == "down")
        return {"ref_referrals": len(self.refs), "ref_events": len(self.events), "ref_followup_tasks": len(self.tasks),
                "referrals_up": len(self.refs) - down, "referrals_down": down + len(self.tasks)}
