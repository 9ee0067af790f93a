"""Tables of the referral context (prefix ``ref_``): the referral with its back-referral
(回转单) fields, the log of its transitions, the follow-up tasks of primary care, and each
receiving department's intake rule (auto-accept routine referrals).

Two doctors accepting one referral at once: the row is read ``FOR UPDATE`` and the mapper
checks ``version``, so the second finds it accepted and is refused (REF-002).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime, utcnow


class Referral(Base):
    """One referral (双向转诊单): the referral-out form, its workflow, and the back-referral."""

    __tablename__ = "ref_referral"
    __table_args__ = (
        Index("ix_ref_referral_to_status", "to_org_id", "status"),
        Index("ix_ref_referral_from_status", "from_org_id", "status"),
        Index("ix_ref_referral_status_due", "status", "accept_due_at"),
        UniqueConstraint("idem_owner", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))  # up | down | lateral
    urgency: Mapped[str] = mapped_column(String(10))  # emergency | urgent | routine
    status: Mapped[str] = mapped_column(String(20), default="draft")
    patient_id: Mapped[int] = mapped_column(ForeignKey("pat_patient.id"), index=True)
    from_org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"))
    from_department_id: Mapped[int | None] = mapped_column(ForeignKey("reg_department.id"))
    from_practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("reg_practitioner.id"), index=True)
    to_org_id: Mapped[int] = mapped_column(ForeignKey("reg_organization.id"))
    to_department_id: Mapped[int | None] = mapped_column(ForeignKey("reg_department.id"), index=True)
    to_practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("reg_practitioner.id"), index=True)
    # The form (§3.4)
    diagnoses: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{code, name}] ICD-10
    reason_code: Mapped[str | None] = mapped_column(String(40))
    reason_text: Mapped[str | None] = mapped_column(Text)  # 主要现病史(转出原因)
    present_illness: Mapped[str | None] = mapped_column(Text)
    past_history: Mapped[str | None] = mapped_column(Text)  # 主要既往史
    treatment: Mapped[str | None] = mapped_column(Text)  # 治疗经过
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    insurance_type: Mapped[str | None] = mapped_column(String(40))
    insurance_region: Mapped[str | None] = mapped_column(String(12))  # 参保地 division code
    clinical: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # criteria facts
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # criteria at submission
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    # The place and the deadlines
    slot_id: Mapped[int | None] = mapped_column(Integer)  # the reserved place the referrer chose
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("sched_appointment.id"), index=True)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accept_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_to_org_id: Mapped[int | None] = mapped_column(Integer)  # the alliance's referral centre
    escalation_note: Mapped[str | None] = mapped_column(String(300))
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("ref_referral.id"))  # redirected from
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    # The back-referral (回转单)
    back_diagnosis: Mapped[str | None] = mapped_column(Text)  # 诊断结果
    back_inpatient_no: Mapped[str | None] = mapped_column(String(40))  # 住院病案号
    back_results: Mapped[str | None] = mapped_column(Text)  # 主要检查结果
    back_treatment: Mapped[str | None] = mapped_column(Text)
    back_plan: Mapped[str | None] = mapped_column(Text)  # 下一步治疗方案
    back_rehab: Mapped[str | None] = mapped_column(Text)  # 康复建议
    back_to_org_id: Mapped[int | None] = mapped_column(Integer)
    back_to_practitioner_id: Mapped[int | None] = mapped_column(Integer)
    followup_note: Mapped[str | None] = mapped_column(Text)
    # Who and when
    created_by: Mapped[str] = mapped_column(String(100))
    idem_owner: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    in_care_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    back_referred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_by_primary_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    followed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    no_show_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class ReferralEvent(Base):
    """Every transition: when, by whom, from what to what, and why."""

    __tablename__ = "ref_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("ref_referral.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500))


class FollowUpTask(Base):
    """Primary care's follow-up of a referred-back patient, due 14 days after (§3.1)."""

    __tablename__ = "ref_task"
    __table_args__ = (
        UniqueConstraint("referral_id", "kind"),
        Index("ix_ref_task_org_open", "org_id", "done_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("ref_referral.id"))
    kind: Mapped[str] = mapped_column(String(12))  # followup
    patient_id: Mapped[int] = mapped_column(Integer, index=True)
    org_id: Mapped[int] = mapped_column(Integer)
    practitioner_id: Mapped[int | None] = mapped_column(Integer, index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IntakeRule(Base):
    """How a receiving department takes referrals: whether routine ones are accepted on
    submission (the referral then books its reserved place at once)."""

    __tablename__ = "ref_intake_rule"

    department_id: Mapped[int] = mapped_column(ForeignKey("reg_department.id"), primary_key=True)
    org_id: Mapped[int] = mapped_column(Integer, index=True)
    auto_accept_routine: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
