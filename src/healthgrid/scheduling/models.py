"""Tables of the scheduling context (prefix ``sched_``): schedules and their weekly session
templates, closures (holidays and stop-clinic notices, 停诊), materialised sessions, slots
split into quota pools, appointments, the waitlist, the booking locks of patients and the
family members a resident books for (就诊人).

The invariants that must hold under a rush live here, in the database:
- ``sched_slot``: ``booked <= capacity`` is a CHECK constraint, and a booking is the
  conditional ``UPDATE ... SET booked = booked + 1 WHERE booked < capacity``;
- ``sched_appointment``: one live clinic appointment per patient, department and day is a
  partial unique index; a retried request meets the unique ``(idem_owner, idempotency_key)``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow

# Appointment statuses that hold a place (FHIR Appointment.status values).
LIVE = ("proposed", "booked", "arrived", "fulfilled")
_LIVE_SQL = "status IN ('proposed', 'booked', 'arrived', 'fulfilled')"


class Schedule(Base):
    """A bookable resource: a practitioner's clinic, a department's general clinic, or a
    piece of equipment (an exam room)."""

    __tablename__ = "sched_schedule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("reg_department.id"), index=True)
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("reg_practitioner.id"), index=True)
    equipment_id: Mapped[int | None] = mapped_column(ForeignKey("reg_equipment.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # clinic | exam
    exam_kind: Mapped[str | None] = mapped_column(String(10))  # equipment kind (CT, US ...)
    name: Mapped[str] = mapped_column(String(200))
    fee_class: Mapped[str] = mapped_column(String(10))  # general | expert | special
    reserve_ratio: Mapped[float] = mapped_column(Float)
    reserve_lead_days: Mapped[int] = mapped_column(SmallInteger)
    release_back_hours: Mapped[int] = mapped_column(SmallInteger)
    open_days_ahead: Mapped[int] = mapped_column(SmallInteger)
    release_minute: Mapped[int] = mapped_column(SmallInteger)  # local minute of the day
    channel_shares: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}


class SessionTemplate(Base):
    __tablename__ = "sched_template"
    __table_args__ = (UniqueConstraint("schedule_id", "weekday", "part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("sched_schedule.id"), index=True)
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 Monday .. 6 Sunday
    part: Mapped[str] = mapped_column(String(3))  # am | pm | eve
    start_minute: Mapped[int] = mapped_column(SmallInteger)  # local minute of the day
    end_minute: Mapped[int] = mapped_column(SmallInteger)
    slot_minutes: Mapped[int] = mapped_column(SmallInteger)
    per_slot: Mapped[int] = mapped_column(SmallInteger)


class Closure(Base):
    """A day (or half day) without clinic: a public holiday for the whole organisation, or a
    stop-clinic notice (停诊) for one schedule."""

    __tablename__ = "sched_closure"
    __table_args__ = (Index("ix_sched_closure_org_day", "org_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"))
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("sched_schedule.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    part: Mapped[str | None] = mapped_column(String(3))  # None: the whole day
    kind: Mapped[str] = mapped_column(String(10))  # holiday | stop
    reason: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClinicSession(Base):
    """One half day of one schedule, materialised from its template with its release times."""

    __tablename__ = "sched_session"
    __table_args__ = (
        UniqueConstraint("schedule_id", "day", "part"),
        Index("ix_sched_session_org_day", "org_id", "day"),
        Index("ix_sched_session_dept_day", "department_id", "day"),
        Index("ix_sched_session_practitioner_day", "practitioner_id", "day"),
        Index("ix_sched_session_release_back", "released_back", "release_back_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("sched_schedule.id"))
    org_id: Mapped[int] = mapped_column(Integer)
    department_id: Mapped[int | None] = mapped_column(Integer)
    practitioner_id: Mapped[int | None] = mapped_column(Integer)
    day: Mapped[date] = mapped_column(Date)
    part: Mapped[str] = mapped_column(String(3))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    public_release_at: Mapped[datetime] = mapped_column(UTCDateTime)
    referral_open_at: Mapped[datetime] = mapped_column(UTCDateTime)
    release_back_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_back: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | stopped
    stop_reason: Mapped[str | None] = mapped_column(String(300))
    capacity: Mapped[int] = mapped_column(Integer)


class Slot(Base):
    """The places of one start time in one quota pool of a session."""

    __tablename__ = "sched_slot"
    __table_args__ = (
        UniqueConstraint("session_id", "starts_at", "pool"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="within_capacity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sched_session.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pool: Mapped[str] = mapped_column(String(10))  # reserved | web | phone | kiosk | window
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)


class Appointment(Base):
    __tablename__ = "sched_appointment"
    __table_args__ = (
        UniqueConstraint("idem_owner", "idempotency_key"),
        # 同一患者同一科室同一天只能预约一次: one live clinic appointment per department and day.
        Index("uq_sched_appointment_patient_dept_day", "patient_id", "department_id", "day", unique=True,
              sqlite_where=text(f"kind = 'clinic' AND {_LIVE_SQL}"),
              postgresql_where=text(f"kind = 'clinic' AND {_LIVE_SQL}")),
        Index("ix_sched_appointment_patient_status", "patient_id", "status"),
        Index("ix_sched_appointment_session", "session_id", "status"),
        Index("ix_sched_appointment_practitioner_day", "practitioner_id", "day"),
        Index("ix_sched_appointment_status_start", "status", "starts_at"),
        Index("ix_sched_appointment_exam_booking", "exam_booking_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("sched_slot.id"), index=True)
    session_id: Mapped[int] = mapped_column(Integer)
    schedule_id: Mapped[int] = mapped_column(Integer, index=True)
    org_id: Mapped[int] = mapped_column(Integer, index=True)
    department_id: Mapped[int | None] = mapped_column(Integer)
    practitioner_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))  # clinic | exam
    day: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"))
    booked_by: Mapped[str] = mapped_column(String(100))  # user name (or system:...)
    channel: Mapped[str] = mapped_column(String(10))
    pool: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12))  # proposed|booked|arrived|fulfilled|cancelled|noshow
    fee_class: Mapped[str] = mapped_column(String(10))
    referral_ref: Mapped[str | None] = mapped_column(String(60))
    exam_code: Mapped[str | None] = mapped_column(String(20))
    exam_booking_id: Mapped[int | None] = mapped_column(Integer)
    idem_owner: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(String(300))
    rebooked_as: Mapped[int | None] = mapped_column(Integer)  # after a stop-clinic notice: the new one
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class WaitlistEntry(Base):
    __tablename__ = "sched_waitlist"
    __table_args__ = (
        Index("uq_sched_waitlist_session_patient", "session_id", "patient_id", unique=True,
              sqlite_where=text("status IN ('waiting', 'offered')"),
              postgresql_where=text("status IN ('waiting', 'offered')")),
        Index("ix_sched_waitlist_session_status", "session_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sched_session.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))  # waiting | offered | booked | expired | withdrawn
    appointment_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PatientLock(Base):
    """One row per patient who has booked: a booking takes this row's lock first, so the
    per-patient rules (pending cap, no-show suspension) are checked one booking at a time."""

    __tablename__ = "sched_patient_lock"

    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), primary_key=True)


class Proxy(Base):
    """A family member a resident books for (就诊人), verified by name and ID number."""

    __tablename__ = "sched_proxy"
    __table_args__ = (UniqueConstraint("user_id", "patient_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("sec_user.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"))
    relationship: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExamBooking(Base):
    """Several exam orders booked in one step by the booking centre (集中式检查预约)."""

    __tablename__ = "sched_exam_booking"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    org_id: Mapped[int] = mapped_column(Integer)
    items: Mapped[list[Any]] = mapped_column(JSON)
    trips: Mapped[int] = mapped_column(SmallInteger)
    booked_by: Mapped[str] = mapped_column(String(100))
    instructions: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuotaPolicy(Base):
    """The quota rules of a hospital, or of one of its departments (§3.6: configurable per
    hospital and department); a new schedule takes the department's, else the hospital's,
    else the platform defaults (``HEALTHGRID_SCHEDULING__*``)."""

    __tablename__ = "sched_quota_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(40), unique=True)  # "org:12" or "org:12/dept:34"
    org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("reg_department.id"))
    reserve_ratio: Mapped[float] = mapped_column(Float)
    reserve_lead_days: Mapped[int] = mapped_column(SmallInteger)
    release_back_hours: Mapped[int] = mapped_column(SmallInteger)
    open_days_ahead: Mapped[int] = mapped_column(SmallInteger)
    release_minute: Mapped[int] = mapped_column(SmallInteger)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
