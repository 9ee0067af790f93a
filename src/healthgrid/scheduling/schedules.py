"""Schedule administration: schedules and their weekly templates, materialising sessions
and their quota-split slots ahead of the release, holidays and stop-clinic notices (停诊)
that cancel the booked appointments, tell the patients and offer them another session.

Sessions are materialised ``open_days_ahead + reserve_lead_days`` days ahead (§3.6: the
reserved places open to referrers that long before the session), by ``open_sessions`` —
run by the worker once a day and after a schedule is created or changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from .. import outbox
from ..db import transaction, utcnow
from ..errors import Conflict, Invalid, PreconditionFailed
from ..registry import queries as registry_queries
from ..security import access
from ..security.domain import Actor, AuditAction, Perm
from . import domain as d
from . import queries
from .models import (
    Appointment,
    ClinicSession,
    Closure,
    QuotaPolicy,
    Schedule,
    SessionTemplate,
    Slot,
    WaitlistEntry,
)
from .queries import ScheduleView
from .service import _cancel, settings_of, tz_of


@dataclass
class TemplateIn:
    weekday: int
    part: str
    start: str  # "08:00"
    end: str  # "11:30"
    slot_minutes: int = 15
    per_slot: int = 1

    def spec(self) -> d.TemplateSpec:
        return d.check_template(d.TemplateSpec(self.weekday, self.part, d.parse_clock(self.start, "start"),
                                               d.parse_clock(self.end, "end"), self.slot_minutes, self.per_slot))


@dataclass
class ScheduleIn:
    org_id: int
    name: str
    kind: str = "clinic"
    fee_class: str = "general"
    department_id: int | None = None
    practitioner_id: int | None = None
    equipment_id: int | None = None
    reserve_ratio: float | None = None
    reserve_lead_days: int | None = None
    release_back_hours: int | None = None
    open_days_ahead: int | None = None
    release_time: str | None = None  # "08:00", local
    channel_shares: dict[str, float] | None = None
    templates: list[TemplateIn] = field(default_factory=list)


def _check_refs(session: Session, data: ScheduleIn) -> str | None:
    """The department, doctor and equipment must belong to the organisation; returns the
    equipment kind of an exam schedule."""
    if data.kind not in d.KINDS:
        raise Invalid("SCHED-015", f"kind: one of {list(d.KINDS)}", {"field": "kind"})
    try:
        d.FeeClass(data.fee_class)
    except ValueError as exc:
        raise Invalid("SCHED-015", f"fee_class: one of {[f.value for f in d.FeeClass]}",
                      {"field": "fee_class"}) from exc
    if not (data.name or "").strip() or len(data.name) > 200:
        raise Invalid("SCHED-015", "name: 1 to 200 characters", {"field": "name"})
    if registry_queries.organization_or_none(session, data.org_id) is None:
        raise Invalid("SCHED-015", f"organisation {data.org_id} does not exist", {"field": "org_id"})
    if data.department_id is not None:
        ref = registry_queries.department_ref(session, data.department_id)
        if ref is None or ref[0] != data.org_id:
            raise Invalid("SCHED-015", f"department {data.department_id} is not a department of this organisation",
                          {"field": "department_id"})
    if data.practitioner_id is not None and not registry_queries.practises_at(session, data.practitioner_id,
                                                                               data.org_id):
        raise Invalid("SCHED-015", f"practitioner {data.practitioner_id} does not practise at this organisation",
                      {"field": "practitioner_id"})
    if data.kind == "exam":
        if data.equipment_id is None:
            raise Invalid("SCHED-015", "an exam schedule names its equipment", {"field": "equipment_id"})
        eq = registry_queries.equipment_ref(session, data.equipment_id)
        if eq is None or eq[0] != data.org_id:
            raise Invalid("SCHED-015", f"equipment {data.equipment_id} is not at this organisation",
                          {"field": "equipment_id"})
        return eq[1]
    if data.department_id is None and data.practitioner_id is None:
        raise Invalid("SCHED-015", "a clinic schedule names its department or its doctor", {"field": "department_id"})
    return None


def _number(value, default, lo, hi, name):
    v = default if value is None else value
    if not lo <= v <= hi:
        raise Invalid("SCHED-015", f"{name}: between {lo} and {hi}", {"field": name})
    return v


@dataclass
class QuotaPolicyIn:
    org_id: int
    department_id: int | None = None
    reserve_ratio: float = 0.3
    reserve_lead_days: int = 14
    release_back_hours: int = 48
    open_days_ahead: int = 7
    release_time: str = "08:00"


@dataclass
class QuotaPolicyView:
    id: int
    org_id: int
    department_id: int | None
    reserve_ratio: float
    reserve_lead_days: int
    release_back_hours: int
    open_days_ahead: int
    release_minute: int
    updated_by: str
    updated_at: datetime
    schedules_updated: int = 0


def _scope_key(org_id: int, department_id: int | None) -> str:
    return f"org:{org_id}" if department_id is None else f"org:{org_id}/dept:{department_id}"


def _policy_view(row: QuotaPolicy, updated: int = 0) -> QuotaPolicyView:
    return QuotaPolicyView(row.id, row.org_id, row.department_id, row.reserve_ratio, row.reserve_lead_days,
                           row.release_back_hours, row.open_days_ahead, row.release_minute, row.updated_by,
                           row.updated_at, updated)


def set_quota_policy(session: Session, actor: Actor, data: QuotaPolicyIn) -> QuotaPolicyView:
    """Set a hospital's (or one department's) reserved-quota and release rules (§3.6). The
    schedules it governs take them at once for the sessions opened from now on; sessions
    already opened keep their pools, since patients may have booked them."""
    minute = d.parse_clock(data.release_time, "release_time") % (24 * 60)
    values = dict(reserve_ratio=_number(data.reserve_ratio, None, 0, 1, "reserve_ratio"),
                  reserve_lead_days=_number(data.reserve_lead_days, None, 0, 90, "reserve_lead_days"),
                  release_back_hours=_number(data.release_back_hours, None, 0, 24 * 30, "release_back_hours"),
                  open_days_ahead=_number(data.open_days_ahead, None, 0, 90, "open_days_ahead"),
                  release_minute=minute)
    with transaction(session):
        access.check(session, actor, Perm.SCHEDULE_MANAGE, AuditAction.UPDATE, resource_type="QuotaPolicy",
                     org_id=data.org_id)
        if data.department_id is not None:
            ref = registry_queries.department_ref(session, data.department_id)
            if ref is None or ref[0] != data.org_id:
                raise Invalid("SCHED-015", f"department {data.department_id} is not a department of this"
                              " organisation", {"field": "department_id"})
        key = _scope_key(data.org_id, data.department_id)
        row = session.scalar(select(QuotaPolicy).where(QuotaPolicy.scope_key == key).with_for_update())
        if row is None:
            row = QuotaPolicy(scope_key=key, org_id=data.org_id, department_id=data.department_id, **values,
                              updated_by=actor.username)
            session.add(row)
        else:
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_by = actor.username
        session.flush()
        stmt = select(Schedule).where(Schedule.org_id == data.org_id, Schedule.active.is_(True))
        if data.department_id is not None:
            stmt = stmt.where(Schedule.department_id == data.department_id)
        else:  # departments with a policy of their own keep it
            own = select(QuotaPolicy.department_id).where(QuotaPolicy.org_id == data.org_id,
                                                          QuotaPolicy.department_id.is_not(None))
            stmt = stmt.where((Schedule.department_id.is_(None)) | Schedule.department_id.not_in(own))
        governed = list(session.scalars(stmt))
        for sched in governed:
            for k, v in values.items():
                setattr(sched, k, v)
        session.flush()
        return _policy_view(row, len(governed))


def list_quota_policies(session: Session, actor: Actor, *, org_id: int) -> list[QuotaPolicyView]:
    with transaction(session):
        access.check(session, actor, Perm.REGISTRY_READ, AuditAction.SEARCH, resource_type="QuotaPolicy",
                     audit_success=False)
        rows = session.scalars(select(QuotaPolicy).where(QuotaPolicy.org_id == org_id).order_by(QuotaPolicy.id))
        return [_policy_view(r) for r in rows]


def _quota_defaults(session: Session, org_id: int, department_id: int | None) -> dict:
    """The department's policy, else the hospital's, else the platform settings."""
    keys = [_scope_key(org_id, department_id)] if department_id is not None else []
    keys.append(_scope_key(org_id, None))
    found = {p.scope_key: p for p in session.scalars(select(QuotaPolicy).where(QuotaPolicy.scope_key.in_(keys)))}
    policy = next((found[k] for k in keys if k in found), None)
    source = policy if policy is not None else settings_of(session)
    return {k: getattr(source, k) for k in ("reserve_ratio", "reserve_lead_days", "release_back_hours",
                                            "open_days_ahead", "release_minute")}


def _specs(templates: list[TemplateIn]) -> list[d.TemplateSpec]:
    specs = [t.spec() for t in templates]
    if len({(s.weekday, s.part) for s in specs}) != len(specs):
        raise Invalid("SCHED-016", "one template per weekday and part", {"field": "templates"})
    return specs


def _with_templates(session: Session, actor: Actor, row: Schedule, specs: list[d.TemplateSpec],
                    today: date | None) -> ScheduleView:
    """Write a schedule's weekly templates and open the sessions they make."""
    session.add_all(SessionTemplate(schedule_id=row.id, weekday=s.weekday, part=s.part, start_minute=s.start_minute,
                                    end_minute=s.end_minute, slot_minutes=s.slot_minutes, per_slot=s.per_slot)
                    for s in specs)
    session.flush()
    open_sessions(session, actor, today=today, schedule_ids=[row.id])
    return queries.schedule_views(session, [row], with_templates=True)[0]


def create_schedule(session: Session, actor: Actor, data: ScheduleIn, *, today: date | None = None) -> ScheduleView:
    """A new schedule (排班) with its weekly templates; its sessions are opened at once."""
    specs = _specs(data.templates)
    with transaction(session):
        access.check(session, actor, Perm.SCHEDULE_MANAGE, AuditAction.CREATE, resource_type="Schedule",
                     org_id=data.org_id)
        exam_kind = _check_refs(session, data)
        cfg = _quota_defaults(session, data.org_id, data.department_id)
        row = Schedule(
            org_id=data.org_id, department_id=data.department_id, practitioner_id=data.practitioner_id,
            equipment_id=data.equipment_id, kind=data.kind, exam_kind=exam_kind, name=data.name.strip(),
            fee_class=data.fee_class,
            reserve_ratio=_number(data.reserve_ratio, cfg["reserve_ratio"], 0, 1, "reserve_ratio"),
            reserve_lead_days=_number(data.reserve_lead_days, cfg["reserve_lead_days"], 0, 90,
                                      "reserve_lead_days"),
            release_back_hours=_number(data.release_back_hours, cfg["release_back_hours"], 0, 24 * 30,
                                       "release_back_hours"),
            open_days_ahead=_number(data.open_days_ahead, cfg["open_days_ahead"], 0, 90, "open_days_ahead"),
            release_minute=(d.parse_clock(data.release_time, "release_time") if data.release_time
                            else cfg["release_minute"]) % (24 * 60),
            channel_shares=d.check_shares(data.channel_shares or d.DEFAULT_CHANNEL_SHARES), active=True)
        session.add(row)
        session.flush()
        return _with_templates(session, actor, row, specs, today)


def set_templates(session: Session, actor: Actor, schedule_id: int, templates: list[TemplateIn], *,
                  expected_version: int | None = None, today: date | None = None) -> ScheduleView:
    """Replace a schedule's weekly templates. Sessions already opened keep their places
    (patients may have booked them); days not yet opened follow the new templates."""
    specs = _specs(templates)
    with transaction(session):
        row = queries.schedule(session, schedule_id)
        access.check(session, actor, Perm.SCHEDULE_MANAGE, AuditAction.UPDATE, resource_type="Schedule",
                     resource_id=row.id, org_id=row.org_id)
        if expected_version is not None and expected_version != row.version:
            raise PreconditionFailed("SCHED-028", f"schedule {row.id} is at version {row.version}",
                                     {"version": row.version})
        session.execute(delete(SessionTemplate).where(SessionTemplate.schedule_id == row.id))
        return _with_templates(session, actor, row, specs, today)


def list_schedules(session: Session, actor: Actor, *, org_id: int | None = None, department_id: int | None = None,
                   practitioner_id: int | None = None, kind: str | None = None, exam_kind: str | None = None,
                   active: bool | None = True, offset: int = 0, limit: int = 100) -> list[ScheduleView]:
    """Schedules by place, doctor, kind or equipment kind; active ones unless asked (None: all)."""
    with transaction(session):
        access.check(session, actor, Perm.REGISTRY_READ, AuditAction.SEARCH, resource_type="Schedule",
                     audit_success=False)
        stmt = select(Schedule)
        for column, value in ((Schedule.org_id, org_id), (Schedule.department_id, department_id),
                              (Schedule.practitioner_id, practitioner_id), (Schedule.kind, kind),
                              (Schedule.exam_kind, exam_kind), (Schedule.active, active)):
            if value is not None:
                stmt = stmt.where(column == value)
        rows = list(session.scalars(stmt.order_by(Schedule.id).offset(offset).limit(limit)))
        return queries.schedule_views(session, rows)


def get_schedule(session: Session, actor: Actor, schedule_id: int) -> ScheduleView:
    with transaction(session):
        access.check(session, actor, Perm.REGISTRY_READ, AuditAction.VIEW, resource_type="Schedule",
                     audit_success=False)
        return queries.schedule_views(session, [queries.schedule(session, schedule_id)], with_templates=True)[0]


def sessions_of(session: Session, actor: Actor, *, schedule_id: int, day_from: date, day_to: date
                ) -> list[queries.SessionSummary]:
    with transaction(session):
        access.check(session, actor, Perm.REGISTRY_READ, AuditAction.SEARCH, resource_type="Schedule",
                     audit_success=False)
        rows = list(session.scalars(select(ClinicSession).where(
            ClinicSession.schedule_id == schedule_id, ClinicSession.day >= day_from, ClinicSession.day <= day_to)
            .order_by(ClinicSession.starts_at)))
        return queries.session_summaries(session, rows)


# -- materialising sessions ------------------------------------------------------------------------

def _closed(closures: list[Closure], schedule_id: int, day: date, part: str) -> Closure | None:
    for c in closures:
        if c.day == day and (c.part is None or c.part == part) and (c.schedule_id in (None, schedule_id)):
            return c
    return None


def open_sessions(session: Session, actor: Actor, *, today: date | None = None,
                  schedule_ids: list[int] | None = None) -> int:
    """Create the sessions (and their slots) of the coming days that do not exist yet;
    idempotent, so the worker may run it as often as it likes. Returns how many were made."""
    tz = tz_of(session)
    today = today or utcnow().astimezone(tz).date()
    made = 0
    with transaction(session):
        stmt = select(Schedule).where(Schedule.active.is_(True))
        if schedule_ids is not None:
            stmt = stmt.where(Schedule.id.in_(schedule_ids))
        for sched in session.scalars(stmt.order_by(Schedule.id)).all():
            made += _open_for(session, sched, today, tz)
    return made


def _open_for(session: Session, sched: Schedule, today: date, tz) -> int:
    horizon = today + timedelta(days=sched.open_days_ahead + sched.reserve_lead_days)
    templates = [d.TemplateSpec(t.weekday, t.part, t.start_minute, t.end_minute, t.slot_minutes, t.per_slot)
                 for t in queries.templates_of(session, sched.id)]
    if not templates:
        return 0
    have = set(session.execute(select(ClinicSession.day, ClinicSession.part).where(
        ClinicSession.schedule_id == sched.id, ClinicSession.day >= today)).all())
    closures = list(session.scalars(select(Closure).where(Closure.org_id == sched.org_id, Closure.day >= today,
                                                          Closure.day <= horizon)))
    rule = d.ReleaseRule(sched.open_days_ahead, sched.release_minute, sched.reserve_lead_days,
                         sched.release_back_hours)
    made = 0
    day = today
    while day <= horizon:
        for spec in templates:
            if spec.weekday != day.weekday() or (day, spec.part) in have or _closed(closures, sched.id, day, spec.part):
                continue
            _make_session(session, sched, day, spec, d.session_times(day, spec, rule, tz))
            made += 1
        day += timedelta(days=1)
    return made


def _make_session(session: Session, sched: Schedule, day: date, spec: d.TemplateSpec, times: d.SessionTimes) -> None:
    starts = spec.starts()
    positions = len(starts) * spec.per_slot
    pools = d.split_pools(positions, sched.reserve_ratio, sched.channel_shares)
    result = session.execute(insert(ClinicSession).values(
        schedule_id=sched.id, org_id=sched.org_id, department_id=sched.department_id,
        practitioner_id=sched.practitioner_id, day=day, part=spec.part, starts_at=times.starts_at,
        ends_at=times.ends_at, public_release_at=times.public_release_at, referral_open_at=times.referral_open_at,
        release_back_at=times.release_back_at, released_back=False, status="open", capacity=positions,
    ).returning(ClinicSession.id))
    session_id = result.scalar_one()
    counts: dict[tuple[int, str], int] = {}
    for i, pool in enumerate(pools):
        minute = starts[i // spec.per_slot]
        counts[(minute, pool)] = counts.get((minute, pool), 0) + 1
    base = datetime(day.year, day.month, day.day, tzinfo=times.starts_at.tzinfo)
    session.execute(insert(Slot), [dict(
        session_id=session_id, starts_at=base + timedelta(minutes=minute),
        ends_at=base + timedelta(minutes=minute + spec.slot_minutes), pool=pool, capacity=n, booked=0)
        for (minute, pool), n in sorted(counts.items())])


# -- holidays and stop-clinic notices ---------------------------------------------------------------

@dataclass
class ClosureOut:
    id: int
    org_id: int
    schedule_id: int | None
    day: date
    part: str | None
    kind: str
    reason: str
    stopped_sessions: int
    cancelled_appointments: int


def add_closure(session: Session, actor: Actor, *, org_id: int, day: date, kind: str, reason: str,
                schedule_id: int | None = None, part: str | None = None, now: datetime | None = None) -> ClosureOut:
    """A public holiday (the whole organisation) or a stop-clinic notice (停诊, one schedule).
    Sessions already opened on that day are stopped: their appointments are cancelled, the
    patients notified with an offer to rebook, the waitlist closed."""
    now = now or utcnow()
    if kind not in ("holiday", "stop"):
        raise Invalid("SCHED-017", "kind: holiday or stop", {"field": "kind"})
    if kind == "stop" and schedule_id is None:
        raise Invalid("SCHED-017", "a stop-clinic notice names the schedule", {"field": "schedule_id"})
    if part is not None and part not in d.PARTS:
        raise Invalid("SCHED-017", f"part: one of {list(d.PARTS)}", {"field": "part"})
    reason = (reason or "").strip()
    if not 2 <= len(reason) <= 300:
        raise Invalid("SCHED-017", "reason: 2 to 300 characters", {"field": "reason"})
    with transaction(session):
        access.check(session, actor, Perm.SCHEDULE_MANAGE, AuditAction.CREATE, resource_type="Closure",
                     org_id=org_id)
        if schedule_id is not None and queries.schedule(session, schedule_id).org_id != org_id:
            raise Invalid("SCHED-017", f"schedule {schedule_id} is not of organisation {org_id}",
                          {"field": "schedule_id"})
        if day < now.astimezone(tz_of(session)).date():
            raise Invalid("SCHED-017", "the day is in the past", {"field": "day"})
        row = Closure(org_id=org_id, schedule_id=schedule_id, day=day, part=part, kind=kind, reason=reason,
                      created_by=actor.username)
        session.add(row)
        session.flush()
        stmt = select(ClinicSession).where(ClinicSession.org_id == org_id, ClinicSession.day == day,
                                           ClinicSession.status == "open")
        if schedule_id is not None:
            stmt = stmt.where(ClinicSession.schedule_id == schedule_id)
        if part is not None:
            stmt = stmt.where(ClinicSession.part == part)
        stopped = cancelled = 0
        for cs in session.scalars(stmt.with_for_update()).all():
            cancelled += _stop(session, cs, reason=reason, now=now)
            stopped += 1
        return ClosureOut(row.id, org_id, schedule_id, day, part, kind, reason, stopped, cancelled)


def _stop(session: Session, cs: ClinicSession, *, reason: str, now: datetime) -> int:
    cs.status, cs.stop_reason = "stopped", reason
    session.flush()
    live = list(session.scalars(select(Appointment).where(
        Appointment.session_id == cs.id, Appointment.status.in_([s.value for s in d.PENDING])).with_for_update()))
    for appt in live:
        _cancel(session, appt, reason=f"{d.STOP_PREFIX}{reason}", now=now, offer=False)
        outbox.publish(session, "scheduling.session_stopped", {"appointment_id": appt.id, "reason": reason})
    session.execute(update(WaitlistEntry).where(WaitlistEntry.session_id == cs.id,
                                                WaitlistEntry.status == "waiting").values(status="expired"))
    return len(live)


def close_schedule(session: Session, actor: Actor, schedule_id: int) -> None:
    """Stop offering a schedule: no new sessions; opened ones stay until stopped one by one."""
    with transaction(session):
        row = queries.schedule(session, schedule_id)
        access.check(session, actor, Perm.SCHEDULE_MANAGE, AuditAction.UPDATE, resource_type="Schedule",
                     resource_id=row.id, org_id=row.org_id)
        if not row.active:
            raise Conflict("SCHED-026", f"schedule {schedule_id} is already closed")
        row.active = False
