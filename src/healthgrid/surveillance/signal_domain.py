"""Pure rules of early-warning signals (预警信号): the lifecycle and its allowed moves, the
24-hour verification clock, de-duplication and suppression keys, and the response KPIs.
No session, no I/O.

Lifecycle (CIDARS, ../shared/specs/domain-rules.md §5.4 [V]; Yang et al. 2011, PubMed
21569720; the 3 steps signal → preliminary verification (初步核实) → field investigation
(现场调查)):

    generated → notified → verified_excluded → closed
                         → suspected → field_investigation → confirmed → closed
                                                           → excluded  → closed

A signal may be verified before the notification went out (the duty epidemiologist saw it on
the page first). Verification is due 24 hours after generation (response within 24 h is the
KPI CIDARS reports, e.g. 92.44 % in 2016). Codes SURV-400…SURV-419.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from statistics import median

from ..errors import Conflict, Invalid


class Status(StrEnum):
    GENERATED = "generated"
    NOTIFIED = "notified"
    VERIFIED_EXCLUDED = "verified_excluded"
    SUSPECTED = "suspected"
    FIELD_INVESTIGATION = "field_investigation"
    CONFIRMED = "confirmed"
    EXCLUDED = "excluded"
    CLOSED = "closed"


S = Status
NEXT: dict[Status, frozenset[Status]] = {
    S.GENERATED: frozenset({S.NOTIFIED, S.VERIFIED_EXCLUDED, S.SUSPECTED}),
    S.NOTIFIED: frozenset({S.VERIFIED_EXCLUDED, S.SUSPECTED}),
    S.VERIFIED_EXCLUDED: frozenset({S.CLOSED}),
    S.SUSPECTED: frozenset({S.FIELD_INVESTIGATION}),
    S.FIELD_INVESTIGATION: frozenset({S.CONFIRMED, S.EXCLUDED}),
    S.CONFIRMED: frozenset({S.CLOSED}),
    S.EXCLUDED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}
UNVERIFIED = frozenset({S.GENERATED, S.NOTIFIED})
OPEN = frozenset(Status) - {S.CLOSED}
# A warning product goes out on an event the verification found suspected, being investigated
# or confirmed (products.py says why).
WARNABLE = frozenset({S.SUSPECTED, S.FIELD_INVESTIGATION, S.CONFIRMED})

STATUS_LABELS: dict[str, tuple[str, str]] = {
    S.GENERATED: ("已生成", "Generated"),
    S.NOTIFIED: ("已发送", "Notified"),
    S.VERIFIED_EXCLUDED: ("核实排除", "Excluded on verification"),
    S.SUSPECTED: ("疑似事件", "Suspected event"),
    S.FIELD_INVESTIGATION: ("现场调查", "Field investigation"),
    S.CONFIRMED: ("确认暴发", "Confirmed outbreak"),
    S.EXCLUDED: ("调查排除", "Excluded by investigation"),
    S.CLOSED: ("已结案", "Closed"),
}
METHOD_LABELS: dict[str, tuple[str, str]] = {
    "fixed": ("固定阈值法", "Fixed threshold"),
    "mpm": ("移动百分位数法", "Moving percentile"),
    "ears_c3": ("EARS C3", "EARS C3"),
    "cusum": ("累积和控制图（CUSUM）", "CUSUM"),
    "scan": ("时空重排扫描", "Space-time permutation scan"),
}

# action -> the statuses it leads to (an outcome picks one where there are two)
ACTIONS = ("assign", "verify", "investigate", "conclude", "close", "note")
OUTCOMES: dict[str, dict[str | None, Status]] = {
    "verify": {"excluded": S.VERIFIED_EXCLUDED, "suspected": S.SUSPECTED},
    "investigate": {None: S.FIELD_INVESTIGATION},
    "conclude": {"confirmed": S.CONFIRMED, "excluded": S.EXCLUDED},
    "close": {None: S.CLOSED},
}
NOTE_MAX = 2000


def target_of(action: str, outcome: str | None) -> Status:
    """The status an action leads to; SURV-400 for an unknown action or outcome."""
    if action not in OUTCOMES:
        raise Invalid("SURV-400", f"action: one of {list(ACTIONS)}; got {action!r}", {"field": "action"})
    choices = OUTCOMES[action]
    if None in choices:
        return choices[None]
    if outcome not in choices:
        raise Invalid("SURV-400", f"outcome: {action} needs one of {sorted(c for c in choices if c)}; got"
                      f" {outcome!r}", {"field": "outcome"})
    return choices[outcome]


def actions_from(status: str) -> list[str]:
    """What may be done to a signal in this status (besides notes), in workflow order."""
    nexts = NEXT.get(Status(status), frozenset())
    found = [a for a in ("verify", "investigate", "conclude", "close")
             if any(t in nexts for t in OUTCOMES[a].values())]
    return (["assign"] if status != S.CLOSED else []) + found


def check_transition(current: str, target: Status) -> None:
    """SURV-401 naming the allowed next states when ``current`` → ``target`` is not a move."""
    allowed = NEXT.get(Status(current), frozenset())
    if target not in allowed:
        nexts = sorted(s.value for s in allowed)
        raise Conflict("SURV-401", f"a signal that is {current} cannot become {target.value}; allowed next:"
                       f" {nexts or 'none (closed)'}", {"status": current, "allowed": nexts})


def check_note(note: str | None, *, required: bool = False) -> str | None:
    text = (note or "").strip()
    if required and not text:
        raise Invalid("SURV-404", "note: say what was found (1 to 2000 characters)", {"field": "note"})
    if len(text) > NOTE_MAX:
        raise Invalid("SURV-404", f"note: at most {NOTE_MAX} characters", {"field": "note"})
    return text or None


def open_key(stream: str, county_code: str) -> str:
    """The key of the unique constraint that keeps one open signal per stream and place."""
    return f"{stream}|{county_code}"


def verify_due(generated_at: datetime, hours: int) -> datetime:
    return generated_at + timedelta(hours=hours)


def is_overdue(status: str, verify_due_at: datetime | None, now: datetime) -> bool:
    """Not yet verified and past the verification deadline (24 h)."""
    return status in UNVERIFIED and verify_due_at is not None and now > verify_due_at


def suppressed(last_closed_on: date | None, detected_on: date, days: int) -> bool:
    """Within ``days`` after the last signal of the stream and place was closed: no new one
    (§5.4 [EX]: "do not raise a new MPM signal ... within N days of the last one")."""
    return last_closed_on is not None and 0 <= (detected_on - last_closed_on).days <= days


@dataclass(frozen=True)
class Kpis:
    """CIDARS response indicators (§5.4): response rate, response within 24 h, median time."""

    signals: int
    responded: int
    within: int  # verified within the clock
    response_rate: float | None
    within_rate: float | None  # of all signals, as CIDARS reports it
    median_hours: float | None


def response_kpis(pairs: Iterable[tuple[datetime, datetime | None]], *, hours: int = 24) -> Kpis:
    """From (generated_at, verified_at) pairs. Response time = verified − generated; a signal
    not yet verified counts as not responded (and not within the clock)."""
    signals = responded = within = 0
    waits: list[float] = []
    for generated_at, verified_at in pairs:
        signals += 1
        if verified_at is None:
            continue
        responded += 1
        wait = (verified_at - generated_at).total_seconds() / 3600
        waits.append(wait)
        within += wait <= hours
    return Kpis(signals, responded, within, responded / signals if signals else None,
                within / signals if signals else None, median(waits) if waits else None)
