"""A realistic response to the signals detection raised over the synthetic history (CIDARS
lifecycle, ../shared/specs/domain-rules.md §5.4; the helpers' agreed statuses), so the
dashboard's response KPIs mean something. Only ``surv_signal`` and ``surv_signal_event``
change; every step is an event, as the signal service records it; nothing passes ``now``.

Each open signal gets a story drawn from its own generator (seed and id), and advances
along it as far as ``now`` allows — so a later run continues where the last one stopped; a
signal someone answered differently is left alone:

- notified by SMS 1–15 minutes after generation (if detection had not already);
- preliminary verification (初步核实) by the county's duty epidemiologist: 93 % within 24 h
  (log-normal, median about 1.2 h, as CIDARS reported ≈1 h), 5 % late (24–72 h), 2 % not
  answered at all;
- verified as a suspected event (疑似事件) for 4 % of the statistical signals and 40 % of the
  fixed-threshold ones (a single case of a class A disease is more often real), otherwise
  excluded (``verified_excluded``) and closed within two days;
- a suspected event goes to field investigation (现场调查) within 12 h, is concluded 1–7 days
  later — confirmed outbreak 60 %, excluded 40 % — and closed 1–14 days after that.

Closing clears ``open_key`` (one open signal per stream and place).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from ..db import transaction
from ..errors import NotFound
from ..registry import queries as registry_queries
from ..security import service as security
from ..security.domain import Role, ScopeKind
from .dashboard_counts import CHINA
from .models import Signal, SignalEvent

ACTOR = "system:synth"
_COLUMNS = ("responsible", "notified_at", "verified_at", "verification", "investigation_at", "concluded_at",
            "conclusion", "closed_at", "open_key")
STAMPS = {"notified": "notified_at", "verified_excluded": "verified_at", "suspected": "verified_at",
          "field_investigation": "investigation_at", "confirmed": "concluded_at", "excluded": "concluded_at",
          "closed": "closed_at"}
NOTES = {"notified": "短信通知值班流调人员", "verified_excluded": "初步核实：病例分散、无流行病学关联，排除",
         "suspected": "初步核实：存在聚集性，判为疑似事件", "field_investigation": "启动现场调查",
         "confirmed": "现场调查确认暴发", "excluded": "现场调查排除暴发", "closed": "信号关闭"}


def timeline(generated: datetime, rng: random.Random, *, fixed: bool) -> list[tuple[str, datetime]]:
    """The statuses a signal passes through after ``generated`` and when, every draw made up
    front (one generator per signal): a later run with a later ``now`` continues the same
    story."""
    notify = timedelta(minutes=rng.uniform(1, 15))
    answer, late, quick = rng.random(), rng.uniform(24, 72), min(rng.lognormvariate(math.log(1.2), 0.9), 23.9)
    suspected = rng.random() < (0.4 if fixed else 0.04)
    investigate, concluded = rng.uniform(1, 12), rng.uniform(24, 168)
    outcome = "confirmed" if rng.random() < 0.6 else "excluded"
    close = rng.uniform(24, 336) if suspected else rng.uniform(0.5, 48)
    steps = [("notified", notify)]
    if answer >= 0.02:  # 2 % never answered: they count against the response rate
        wait = late if answer < 0.07 else quick
        if suspected:
            steps += [("suspected", _hours(wait)), ("field_investigation", _hours(investigate)),
                      (outcome, _hours(concluded))]
        else:
            steps.append(("verified_excluded", _hours(wait)))
        steps.append(("closed", _hours(close)))
    out, at = [], generated
    for status, after in steps:
        at = at + after
        out.append((status, at))
    return out


def _hours(h: float) -> timedelta:
    return timedelta(hours=h)


def _duty_epidemiologist(session: Session, county_code: str) -> str | None:
    """The account answering a county's signals: a CDC epidemiologist whose grant is on the
    county (the demo's), else nobody named (the signal still has its response times)."""
    try:
        county = registry_queries.division_by_code(session, county_code)
    except NotFound:
        return None
    names = security.usernames_with_grant(session, Role.CDC_EPIDEMIOLOGIST, ScopeKind.DIVISION, county.id)
    return names[0] if names else None


def _advance(row, steps: list[tuple[str, datetime]], now: datetime, responsible: str | None):
    """(the row's new values, its events) for the steps after its current status, up to now;
    None when its status is not on this path (someone answered it otherwise)."""
    path = ["generated"] + [s for s, _ in steps]
    if row.status not in path:
        return None
    values = {k: getattr(row, k) for k in _COLUMNS}
    values["responsible"] = row.responsible or responsible
    events, status, version = [], row.status, row.version
    for to, at in steps[path.index(row.status):]:
        if at > now:
            break
        events.append({"signal_id": row.id, "from_status": status, "to_status": to, "actor": ACTOR, "at": at,
                       "note": NOTES[to]})
        values[STAMPS[to]] = at
        if to in ("suspected", "verified_excluded"):
            values["verification"] = "suspected" if to == "suspected" else "excluded"
        elif to in ("confirmed", "excluded"):
            values["conclusion"] = to
        elif to == "closed":
            values["open_key"] = None
        status, version = to, version + 1
    return {"sid": row.id, "status_": status, "version_": version, **{f"{k}_": values[k] for k in _COLUMNS}}, events


def respond(session: Session, *, seed: int, now: datetime) -> dict[str, int]:
    with transaction(session):
        return _respond(session, seed, now)


def responder(*, seed: int, now: datetime) -> Callable[[Session, date, list[int]], None]:
    """For ``detection.backfill(after_day=...)``: after each day's detection, the signals are
    answered as far as the next day's (the midnight before it), so de-duplication and
    suppression see the response as it would have been."""
    def after_day(session: Session, day: date, _new: list[int]) -> None:
        respond(session, seed=seed, now=min(now, datetime.combine(day + timedelta(days=2), time(), CHINA)))
    return after_day


def _respond(session: Session, seed: int, now: datetime) -> dict[str, int]:
    rows = session.execute(select(Signal.id, Signal.status, Signal.method, Signal.county_code, Signal.generated_at,
                                  Signal.version, *[Signal.__table__.c[k] for k in _COLUMNS])
                           .where(Signal.status != "closed").order_by(Signal.id)).all()
    duty: dict[str, str | None] = {}
    updates, events = [], []
    for row in rows:
        if row.county_code not in duty:
            duty[row.county_code] = _duty_epidemiologist(session, row.county_code)
        steps = timeline(row.generated_at, random.Random(f"responses-{seed}-{row.id}"), fixed=row.method == "fixed")
        if row.notified_at is not None:  # detection notified it already: keep its time
            shift = row.notified_at - steps[0][1]
            steps = [(s, at + shift) for s, at in steps]
        found = _advance(row, steps, now, duty[row.county_code])
        if found is not None and found[1]:
            updates.append(found[0])
            events += found[1]
    if updates:
        table = Signal.__table__
        session.execute(table.update().where(table.c.id == bindparam("sid")).values(
            status=bindparam("status_"), version=bindparam("version_"),
            **{k: bindparam(f"{k}_") for k in _COLUMNS}), updates)
        session.execute(insert(SignalEvent.__table__), events)
    session.flush()
    return {"signals_walked": len(updates), "signal_events": len(events),
            "signals_left_open": sum(1 for u in updates if u["open_key_"] is not None)}
