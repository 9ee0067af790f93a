"""Pure rules of two-way referral (双向转诊): the state machine, directions between levels,
service-level deadlines, and the validation of the form's fields. No I/O.

Source: ../shared/specs/domain-rules.md §3.4 (form fields), §3.5 (state machine and SLAs),
§3.1 (follow-up within two weeks, 基本公卫规范 hypertension/diabetes). The clinical criteria
that warn or block are in ``criteria.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ..errors import Conflict, Invalid


class Direction(StrEnum):
    UP = "up"  # 上转: primary care -> county or city hospital
    DOWN = "down"  # 下转: hospital -> primary care or rehabilitation
    LATERAL = "lateral"  # 平转: same level (another specialty, another county)


class Urgency(StrEnum):
    EMERGENCY = "emergency"  # 紧急: through 120 and the centres; the e-referral documents it
    URGENT = "urgent"
    ROUTINE = "routine"


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"  # a reserved place (预留号源) is bound
    ARRIVED = "arrived"
    IN_CARE = "in_care"
    COMPLETED = "completed"
    BACK_REFERRED = "back_referred"  # 回转单 issued
    RECEIVED_BY_PRIMARY = "received_by_primary"
    FOLLOWED_UP = "followed_up"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    EXPIRED = "expired"


# §3.5, as drawn. Two edges the drawing implies but does not draw, both documented here:
# - ACCEPTED -> ARRIVED: an emergency referral is accepted implicitly and the patient comes
#   by 120 without an appointment ("record the times afterwards"); a receiver that keeps no
#   reserved places (a township health centre taking a down-referral) receives walk-ins.
# - COMPLETED -> CLOSED: care ended where no back-referral is due (a down-referral completed
#   in primary care, a patient who stays in the hospital's care, a death).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.DRAFT: frozenset({Status.SUBMITTED}),
    Status.SUBMITTED: frozenset({Status.ACCEPTED, Status.REJECTED, Status.CANCELLED, Status.EXPIRED}),
    Status.ACCEPTED: frozenset({Status.SCHEDULED, Status.ARRIVED, Status.CANCELLED}),
    Status.SCHEDULED: frozenset({Status.ARRIVED, Status.NO_SHOW, Status.CANCELLED}),
    Status.ARRIVED: frozenset({Status.IN_CARE}),
    Status.IN_CARE: frozenset({Status.COMPLETED}),
    Status.COMPLETED: frozenset({Status.BACK_REFERRED, Status.CLOSED}),
    Status.BACK_REFERRED: frozenset({Status.RECEIVED_BY_PRIMARY}),
    Status.RECEIVED_BY_PRIMARY: frozenset({Status.FOLLOWED_UP}),
    Status.FOLLOWED_UP: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.NO_SHOW: frozenset(),
    Status.EXPIRED: frozenset(),
}
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# Transitions that must say why (§3.4: reject_reason, cancel_reason are required).
NEEDS_REASON = frozenset({Status.REJECTED, Status.CANCELLED})
# Where the patient's place is held; leaving for one of these releases it.
HOLDS_PLACE = frozenset({Status.SCHEDULED})
RELEASES_PLACE = frozenset({Status.REJECTED, Status.CANCELLED, Status.NO_SHOW})
# The referral's own timestamp column for each status it enters.
STAMP = {s: f"{s.value}_at" for s in Status if s is not Status.DRAFT}
# Which side acts: the sending facility, or the receiving one.
SENDER_MOVES = frozenset({Status.SUBMITTED, Status.CANCELLED, Status.RECEIVED_BY_PRIMARY, Status.FOLLOWED_UP,
                          Status.CLOSED})
RECEIVER_MOVES = frozenset({Status.ACCEPTED, Status.REJECTED, Status.SCHEDULED, Status.ARRIVED, Status.IN_CARE,
                            Status.COMPLETED, Status.BACK_REFERRED, Status.NO_SHOW})

STATUS_LABELS: dict[Status, tuple[str, str]] = {
    Status.DRAFT: ("草稿", "Draft"),
    Status.SUBMITTED: ("已提交", "Submitted"),
    Status.ACCEPTED: ("已接收", "Accepted"),
    Status.SCHEDULED: ("已预约", "Scheduled"),
    Status.ARRIVED: ("已到诊", "Arrived"),
    Status.IN_CARE: ("诊治中", "In care"),
    Status.COMPLETED: ("诊治完成", "Completed"),
    Status.BACK_REFERRED: ("已回转", "Referred back"),
    Status.RECEIVED_BY_PRIMARY: ("基层已接收", "Received by primary care"),
    Status.FOLLOWED_UP: ("已随访", "Followed up"),
    Status.CLOSED: ("已结案", "Closed"),
    Status.REJECTED: ("已拒收", "Rejected"),
    Status.CANCELLED: ("已取消", "Cancelled"),
    Status.NO_SHOW: ("未到诊", "No-show"),
    Status.EXPIRED: ("超时未接收", "Expired"),
}
DIRECTION_LABELS = {Direction.UP: ("上转", "Up"), Direction.DOWN: ("下转", "Down"),
                    Direction.LATERAL: ("平转", "Lateral")}
URGENCY_LABELS = {Urgency.EMERGENCY: ("紧急", "Emergency"), Urgency.URGENT: ("加急", "Urgent"),
                  Urgency.ROUTINE: ("普通", "Routine")}


def check_transition(current: str, target: str) -> Status:
    """The target status, or a coded refusal (REF-002)."""
    try:
        cur, tgt = Status(current), Status(target)
    except ValueError as exc:
        raise Invalid("REF-002", f"unknown referral status {target!r}", {"field": "status"}) from exc
    if tgt not in TRANSITIONS[cur]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[cur])) or "none (it is finished)"
        raise Conflict("REF-002", f"a referral that is {cur.value} cannot become {tgt.value}; next may be:"
                       f" {allowed}", {"from": cur.value, "to": tgt.value})
    return tgt


def check_reason(target: Status, reason: str | None) -> str | None:
    """§3.4: rejecting and cancelling need a reason (REF-003)."""
    text = (reason or "").strip()
    if target in NEEDS_REASON and not text:
        what = "rejection" if target is Status.REJECTED else "cancellation"
        raise Invalid("REF-003", f"give the reason for the {what}", {"field": "reason"})
    if len(text) > 500:
        raise Invalid("REF-003", "reason: at most 500 characters", {"field": "reason"})
    return text or None


# -- levels and direction ------------------------------------------------------------------------

LEVELS = ("L0", "L1", "L2", "L3", "L4", "L5")


def direction_between(from_level: str, to_level: str) -> Direction:
    """Up to a higher level, down to a lower one, lateral at the same level (§0.2 levels)."""
    a, b = LEVELS.index(from_level), LEVELS.index(to_level)
    return Direction.UP if b > a else Direction.DOWN if b < a else Direction.LATERAL


# -- service levels (§3.5 SLA parameters [EX], configurable) ---------------------------------------

@dataclass(frozen=True)
class Sla:
    urgent_accept_hours: float = 2
    routine_accept_hours: float = 24
    followup_days: int = 14


def accept_due(submitted_at: datetime, urgency: str, sla: Sla) -> datetime | None:
    """When the receiver must have answered; None for an emergency (accepted implicitly)."""
    if urgency == Urgency.EMERGENCY.value:
        return None
    hours = sla.urgent_accept_hours if urgency == Urgency.URGENT.value else sla.routine_accept_hours
    return submitted_at + timedelta(hours=hours)


def followup_due(back_referred_at: datetime, sla: Sla) -> datetime:
    """§3.1: the primary facility follows up actively within two weeks."""
    return back_referred_at + timedelta(days=sla.followup_days)


def overdue(due_at: datetime | None, now: datetime) -> bool:
    return due_at is not None and now > due_at


# -- the form's fields -----------------------------------------------------------------------------

# ICD-10 as GB/T 14396 and the national clinical edition 2.0 write it: a letter, two digits,
# then an optional extension (I10.x00x002, E11.900).
ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Za-z]{1,10})?$")
TEXT_LIMITS = {"reason_text": 1000, "present_illness": 4000, "past_history": 4000, "treatment": 4000,
               "back_diagnosis": 1000, "back_results": 4000, "back_treatment": 4000, "back_plan": 4000,
               "back_rehab": 4000, "back_inpatient_no": 40, "insurance_type": 40, "insurance_region": 12,
               "reason_code": 40}
INSURANCE_TYPES = ("employee", "resident", "new_rural", "self_pay", "other")  # 职工 / 居民 / 新农合 / 自费


@dataclass(frozen=True)
class Diagnosis:
    code: str
    name: str


def check_diagnoses(items: list[dict]) -> list[Diagnosis]:
    """At least one diagnosis (初步印象), each an ICD-10 code with its name (REF-005)."""
    if not items:
        raise Invalid("REF-005", "diagnoses: give at least one ICD-10 diagnosis (初步印象)", {"field": "diagnoses"})
    if len(items) > 20:
        raise Invalid("REF-005", "diagnoses: at most 20", {"field": "diagnoses"})
    out = []
    for i, item in enumerate(items):
        item = item or {}
        code = str(item.get("code") or "").strip()
        code = code[:1].upper() + code[1:]
        name = str(item.get("name") or "").strip()
        if not ICD10.match(code):
            raise Invalid("REF-005", f"diagnoses[{i}].code: an ICD-10 code such as I10 or E11.900, got"
                          f" {item.get('code')!r}", {"field": f"diagnoses[{i}].code"})
        if not 1 <= len(name) <= 200:
            raise Invalid("REF-005", f"diagnoses[{i}].name: 1 to 200 characters", {"field": f"diagnoses[{i}].name"})
        out.append(Diagnosis(code, name))
    return out


def check_texts(fields: dict[str, str | None], required: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Trim the free-text fields; refuse the missing required ones and the over-long (REF-005)."""
    out: dict[str, str | None] = {}
    for name, value in fields.items():
        text = (value or "").strip()
        if name in required and not text:
            raise Invalid("REF-005", f"{name}: required", {"field": name})
        limit = TEXT_LIMITS.get(name, 1000)
        if len(text) > limit:
            raise Invalid("REF-005", f"{name}: at most {limit} characters", {"field": name})
        out[name] = text or None
    if out.get("insurance_type") and out["insurance_type"] not in INSURANCE_TYPES:
        raise Invalid("REF-005", f"insurance_type: one of {list(INSURANCE_TYPES)}", {"field": "insurance_type"})
    return out


ATTACHMENT_KINDS = ("lab_report", "imaging_report", "record_summary", "discharge_summary", "other")


def check_attachments(items: list[dict]) -> list[dict]:
    """Shared results sent with the referral (WS/T 500 documents): what kind, a reference the
    receiver can open (a result id, a DocumentReference, an imaging study UID), a title."""
    if len(items) > 30:
        raise Invalid("REF-005", "attachments: at most 30", {"field": "attachments"})
    out = []
    for i, item in enumerate(items):
        kind, ref, title = (str(item.get(k) or "").strip() for k in ("kind", "ref", "title"))
        if kind not in ATTACHMENT_KINDS:
            raise Invalid("REF-005", f"attachments[{i}].kind: one of {list(ATTACHMENT_KINDS)}",
                          {"field": f"attachments[{i}].kind"})
        if not 1 <= len(ref) <= 200 or not 1 <= len(title) <= 200:
            raise Invalid("REF-005", f"attachments[{i}]: ref and title, 1 to 200 characters each",
                          {"field": f"attachments[{i}]"})
        out.append({"kind": kind, "ref": ref, "title": title, "date": str(item.get("date") or "")[:10] or None})
    return out


REF_CODE = re.compile(r"^ZZ([0-9]{8})$")


def ref_code(referral_id: int) -> str:
    """The number printed on the form and passed to the booking as its referral reference."""
    return f"ZZ{referral_id:08d}"


def parse_ref_code(text: str) -> int | None:
    found = REF_CODE.match((text or "").strip())
    return int(found.group(1)) if found else None
