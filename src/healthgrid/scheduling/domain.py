"""Pure rules of scheduling: fee classes, quota pools and how a session's places are split
between them, release times, the appointment state machine, and the booking rules that
need no database. No I/O.

Sources: ../shared/specs/domain-rules.md §3.6 (reserved appointment quota, 预留号源);
国家卫生健康委《关于进一步完善预约诊疗制度加强智慧医院建设的通知》(国卫办医函〔2020〕405号),
which asks hospitals to offer time-slot booking (分时段预约) accurate to 30 minutes and to
keep slots for primary-care referrals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from ..errors import Conflict, Invalid


class FeeClass(StrEnum):
    GENERAL = "general"
    EXPERT = "expert"
    SPECIAL = "special"


FEE_CLASS_LABELS = {
    FeeClass.GENERAL: ("普通号", "General clinic"),
    FeeClass.EXPERT: ("专家号", "Expert clinic"),
    FeeClass.SPECIAL: ("特需号", "Special-needs clinic"),
}


class Pool(StrEnum):
    RESERVED = "reserved"  # 预留号源: for referrals from primary care
    WEB = "web"  # website, app, WeChat / Alipay mini-programs
    PHONE = "phone"  # call centre (114 / 12320)
    KIOSK = "kiosk"  # self-service machines in the hospital
    WINDOW = "window"  # the on-site registration window


PUBLIC_POOLS = (Pool.WEB, Pool.PHONE, Pool.KIOSK, Pool.WINDOW)
POOL_LABELS = {
    Pool.RESERVED: ("转诊预留", "Reserved for referrals"),
    Pool.WEB: ("网站/APP", "Web and app"),
    Pool.PHONE: ("电话", "Phone"),
    Pool.KIOSK: ("自助机", "Kiosk"),
    Pool.WINDOW: ("窗口", "Window"),
}
# A booking comes through a channel and takes a place from that channel's pool; a
# referral takes a reserved place whatever the channel.
CHANNELS = tuple(p.value for p in PUBLIC_POOLS)
DEFAULT_CHANNEL_SHARES = {"web": 0.6, "phone": 0.15, "kiosk": 0.1, "window": 0.15}

PARTS = {"am": ("上午", "Morning"), "pm": ("下午", "Afternoon"), "eve": ("夜间", "Evening")}
KINDS = ("clinic", "exam")


class Status(StrEnum):
    """FHIR Appointment.status values, the subset this workflow uses."""

    PROPOSED = "proposed"  # a waitlist offer holding a place until it expires
    BOOKED = "booked"
    ARRIVED = "arrived"  # checked in (签到)
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    NOSHOW = "noshow"  # 爽约


STATUS_LABELS = {
    Status.PROPOSED: ("候补待确认", "Offered from the waitlist"),
    Status.BOOKED: ("已预约", "Booked"),
    Status.ARRIVED: ("已签到", "Checked in"),
    Status.FULFILLED: ("已就诊", "Seen"),
    Status.CANCELLED: ("已取消", "Cancelled"),
    Status.NOSHOW: ("爽约", "No-show"),
}
LIVE = frozenset({Status.PROPOSED, Status.BOOKED, Status.ARRIVED, Status.FULFILLED})
PENDING = frozenset({Status.PROPOSED, Status.BOOKED})
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PROPOSED: frozenset({Status.BOOKED, Status.CANCELLED}),
    Status.BOOKED: frozenset({Status.ARRIVED, Status.CANCELLED, Status.NOSHOW}),
    Status.ARRIVED: frozenset({Status.FULFILLED}),
    Status.FULFILLED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.NOSHOW: frozenset(),
}


def check_transition(current: str, target: str) -> Status:
    try:
        cur, tgt = Status(current), Status(target)
    except ValueError as exc:
        raise Invalid("SCHED-012", f"unknown appointment status {target!r}", {"field": "status"}) from exc
    if tgt not in TRANSITIONS[cur]:
        raise Conflict("SCHED-012", f"an appointment that is {cur} cannot become {tgt}",
                       {"from": cur.value, "to": tgt.value})
    return tgt


# -- quota: how a session's places are split between pools ------------------------------------

def reserved_places(capacity: int, reserve_ratio: float) -> int:
    """§3.6: reserved = ceil(capacity * reserve_ratio), at least 1 when both are positive."""
    if capacity <= 0 or reserve_ratio <= 0:
        return 0
    return min(capacity, max(1, math.ceil(capacity * reserve_ratio - 1e-9)))


def _spread(n: int, k: int) -> list[bool]:
    """k marks spread evenly over n positions (Bresenham), so reserved places are found in
    every part of a session, not only at its start."""
    return [((i + 1) * k) // n > (i * k) // n for i in range(n)] if n else []


def channel_counts(places: int, shares: Mapping[str, float]) -> dict[str, int]:
    """Split ``places`` between channels by the largest-remainder method."""
    total = sum(max(0.0, float(shares.get(c, 0.0))) for c in CHANNELS)
    if places <= 0:
        return {c: 0 for c in CHANNELS}
    if total <= 0:
        return {c: (places if c == "web" else 0) for c in CHANNELS}
    exact = {c: places * max(0.0, float(shares.get(c, 0.0))) / total for c in CHANNELS}
    counts = {c: int(math.floor(v)) for c, v in exact.items()}
    rest = places - sum(counts.values())
    for c in sorted(CHANNELS, key=lambda c: (-(exact[c] - counts[c]), CHANNELS.index(c)))[:rest]:
        counts[c] += 1
    return counts


def split_pools(positions: int, reserve_ratio: float, shares: Mapping[str, float]) -> list[str]:
    """The pool of each place of a session, in time order."""
    reserved = reserved_places(positions, reserve_ratio)
    marks = _spread(positions, reserved)
    counts = channel_counts(positions - reserved, shares)
    # Interleave the public channels the same way: the channel furthest behind its share
    # takes the next public place.
    public = positions - reserved
    taken = dict.fromkeys(CHANNELS, 0)
    out: list[str] = []
    seen = 0
    for is_reserved in marks:
        if is_reserved:
            out.append(Pool.RESERVED.value)
            continue
        seen += 1
        channel = max((c for c in CHANNELS if taken[c] < counts[c]),
                      key=lambda c: (counts[c] * seen / public - taken[c], -CHANNELS.index(c)))
        taken[channel] += 1
        out.append(channel)
    return out


def check_shares(shares: Mapping[str, float]) -> dict[str, float]:
    unknown = set(shares) - set(CHANNELS)
    if unknown:
        raise Invalid("SCHED-015", f"unknown booking channel(s) {sorted(unknown)}; expected {list(CHANNELS)}",
                      {"field": "channel_shares"})
    values = {c: float(shares.get(c, 0.0)) for c in CHANNELS}
    if any(v < 0 for v in values.values()) or sum(values.values()) <= 0:
        raise Invalid("SCHED-015", "channel shares must be non-negative and not all zero",
                      {"field": "channel_shares"})
    return values


# -- templates and sessions -------------------------------------------------------------------

@dataclass(frozen=True)
class TemplateSpec:
    weekday: int
    part: str
    start_minute: int
    end_minute: int
    slot_minutes: int
    per_slot: int

    def starts(self) -> list[int]:
        return list(range(self.start_minute, self.end_minute - self.slot_minutes + 1, self.slot_minutes))

    @property
    def capacity(self) -> int:
        return len(self.starts()) * self.per_slot


def parse_clock(value: str, field: str) -> int:
    """'08:30' -> 510 (minutes after local midnight)."""
    try:
        hours, minutes = value.strip().split(":")
        h, m = int(hours), int(minutes)
    except (ValueError, AttributeError) as exc:
        raise Invalid("SCHED-016", f"{field}: expected a time of day HH:MM, got {value!r}", {"field": field}) from exc
    if not (0 <= h <= 24 and 0 <= m < 60) or h * 60 + m > 24 * 60:
        raise Invalid("SCHED-016", f"{field}: {value!r} is not a time of day", {"field": field})
    return h * 60 + m


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def check_template(spec: TemplateSpec) -> TemplateSpec:
    if not 0 <= spec.weekday <= 6:
        raise Invalid("SCHED-016", "weekday: 0 (Monday) to 6 (Sunday)", {"field": "weekday"})
    if spec.part not in PARTS:
        raise Invalid("SCHED-016", f"part: one of {list(PARTS)}", {"field": "part"})
    if not 5 <= spec.slot_minutes <= 240:
        raise Invalid("SCHED-016", "slot_minutes: between 5 and 240", {"field": "slot_minutes"})
    if not 1 <= spec.per_slot <= 50:
        raise Invalid("SCHED-016", "per_slot: between 1 and 50 patients", {"field": "per_slot"})
    if spec.end_minute - spec.start_minute < spec.slot_minutes:
        raise Invalid("SCHED-016", "the session must end at least one slot after it starts", {"field": "end"})
    return spec


@dataclass(frozen=True)
class ReleaseRule:
    """When a session's places can be booked (§3.6)."""

    open_days_ahead: int  # public booking opens D days ahead ...
    release_minute: int  # ... at this local time
    reserve_lead_days: int  # referrers may book this many days before the public
    release_back_hours: int  # unbooked reserved places go public this long before the start


@dataclass(frozen=True)
class SessionTimes:
    starts_at: datetime
    ends_at: datetime
    public_release_at: datetime
    referral_open_at: datetime
    release_back_at: datetime


def local_at(day: date, minute: int, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(minutes=minute)


def session_times(day: date, spec: TemplateSpec, rule: ReleaseRule, tz: ZoneInfo) -> SessionTimes:
    starts = local_at(day, spec.start_minute, tz)
    public = local_at(day - timedelta(days=rule.open_days_ahead), rule.release_minute, tz)
    return SessionTimes(starts_at=starts, ends_at=local_at(day, spec.end_minute, tz), public_release_at=public,
                        referral_open_at=public - timedelta(days=rule.reserve_lead_days),
                        release_back_at=starts - timedelta(hours=rule.release_back_hours))


def check_pool_open(pool: str, now: datetime, times: SessionTimes, *, released_back: bool) -> None:
    """A reserved place opens to referrers ``reserve_lead_days`` before the public release;
    a public place at the release; nothing is booked once the session has started."""
    if now >= times.starts_at:
        raise Conflict("SCHED-004", "this session has already started; it can no longer be booked")
    if pool == Pool.RESERVED.value and not released_back:
        if now < times.referral_open_at:
            raise Conflict("SCHED-003", "reserved places of this session open to referrals at"
                           f" {times.referral_open_at.isoformat()}", {"opens_at": times.referral_open_at.isoformat()})
        return
    if now < times.public_release_at:
        raise Conflict("SCHED-003", f"this session opens for booking at {times.public_release_at.isoformat()}",
                       {"opens_at": times.public_release_at.isoformat()})


REFERRAL_CHANNEL = "referral"  # a referral (referrals/) booking its reserved place


def check_channel(pool: str, channel: str, *, referral: bool) -> None:
    if channel == REFERRAL_CHANNEL and pool == Pool.RESERVED.value and referral:
        return
    if channel not in CHANNELS:
        raise Invalid("SCHED-007", f"channel: one of {list(CHANNELS)}", {"field": "channel"})
    if pool == Pool.RESERVED.value:
        if not referral:
            raise Conflict("SCHED-005", "reserved places are booked only for a referral from primary care"
                           " (预留号源仅限基层转诊)", {"field": "referral"})
        return
    if pool != channel:
        raise Conflict("SCHED-007", f"this place belongs to the {pool} channel; you are booking by {channel}",
                       {"field": "channel"})


def cancel_deadline(starts_at: datetime, hours: float) -> datetime:
    return starts_at - timedelta(hours=hours)


def suspended(noshows: int, limit: int) -> bool:
    """Booking is suspended after ``limit`` no-shows in the look-back window (a common rule
    of Chinese hospitals' real-name booking, e.g. 90 days; configurable)."""
    return limit > 0 and noshows >= limit


# -- rebooking after a stop-clinic notice (停诊改约) ------------------------------------------------

STOP_PREFIX = "stop_clinic: "  # the cancel reason of an appointment a stop-clinic notice cancelled
REBOOK_DAYS = 14  # such an appointment may be rebooked until two weeks after its day


def stop_reason(cancel_reason: str | None) -> str | None:
    """The hospital's reason, when a stop-clinic notice cancelled the appointment."""
    if cancel_reason and cancel_reason.startswith(STOP_PREFIX.strip()):
        return cancel_reason.split(":", 1)[1].strip()
    return None


def rebook_refusal(status: str, cancel_reason: str | None, rebooked_as: int | None, day: date,
                   today: date) -> str | None:
    """Why an appointment cannot be rebooked (改约), or None when it can."""
    if status != Status.CANCELLED.value or stop_reason(cancel_reason) is None:
        return "only an appointment cancelled by a stop-clinic notice is rebooked"
    if rebooked_as is not None:
        return f"this appointment was already rebooked as #{rebooked_as}"
    if today > day + timedelta(days=REBOOK_DAYS):
        return f"rebooking closed {REBOOK_DAYS} days after the stopped day; book anew"
    return None
