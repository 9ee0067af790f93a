"""Response and reporting KPIs of the CDC dashboard, over the counties in scope and a period
(local days, inclusive); counts and durations only, no patient data.

Signal response (CIDARS performance measures, ../shared/specs/domain-rules.md §5.4: response
rate ≈ 99 %, within 24 h 92.44 % in 2016, median ≈ 1 h, suspected events ≈ 1–5 % — sources
§5.6: the 2016 report, jbjc.org article 9126; Yang et al. 2011, PubMed 21569720). Over the
signals detected in the period (``detected_on``), with response time = ``verified_at`` −
``generated_at`` (the preliminary verification, 初步核实):

- ``due``: signals whose 24-hour verification clock has run out (``verify_due_at`` ≤ now)
  or that were verified anyway; a signal still inside its clock and unanswered is not yet
  due and counts nowhere.
- **response rate** (信号响应率) = verified ÷ due.
- **within 24 h** (24小时内响应率) = verified with a response time ≤ 24 h ÷ due.
- **median response time** (响应时间中位数, hours) over the verified signals: NumPy's linear
  quantile (R type 7), so the median of 1 h and 3 h is 2 h.
- **suspected-event rate** (疑似事件比例) = verified as a suspected event ÷ verified.

Report cards (《传染病信息报告管理规范》 2015 [V]: network report within 2 h / 24 h of the
diagnosis, county CDC review within 2 h / 24 h [M]; ``report_due_at`` / ``review_due_at``
hold each card's limit). Over the cards not deleted whose local day of diagnosis is in the
period:

- **report timeliness** (报告及时率) = reported at or before ``report_due_at`` ÷ cards.
- **review timeliness** (审核及时率) = reviewed at or before ``review_due_at`` ÷ cards whose
  review was due by now or that were reviewed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from ..db import transaction, utcnow
from ..security.domain import Actor
from . import dashboard_counts as counts
from .dashboard import Scope, check_period, dashboard_scope
from .models import Card, Signal

WITHIN = timedelta(hours=24)


@dataclass(frozen=True)
class Ratio:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass
class Kpis:
    since: date
    until: date
    signals: int = 0  # detected in the period
    due: int = 0
    verified: int = 0
    within_24h: int = 0
    suspected: int = 0
    median_response_hours: float | None = None
    cards: int = 0  # not deleted, diagnosed in the period
    reported_in_time: int = 0
    review_due: int = 0
    reviewed_in_time: int = 0

    @property
    def response_rate(self) -> Ratio:
        return Ratio(self.verified, self.due)

    @property
    def within_24h_rate(self) -> Ratio:
        return Ratio(self.within_24h, self.due)

    @property
    def suspected_rate(self) -> Ratio:
        return Ratio(self.suspected, self.verified)

    @property
    def report_timeliness(self) -> Ratio:
        return Ratio(self.reported_in_time, self.cards)

    @property
    def review_timeliness(self) -> Ratio:
        return Ratio(self.reviewed_in_time, self.review_due)


def response_kpis(session: Session, actor: Actor, *, county: str | None = None, since: date, until: date,
                  now: datetime | None = None) -> Kpis:
    check_period(since, until)
    with transaction(session):
        scope = dashboard_scope(session, actor, county=county, what="kpis",
                                detail={"since": since.isoformat(), "until": until.isoformat()})
        return compute_kpis(session, scope, since, until, now or utcnow())


def compute_kpis(session: Session, scope: Scope, since: date, until: date, now: datetime) -> Kpis:
    out = Kpis(since, until)
    if scope.codes:
        _signals(session, out, scope.codes, now)
        _cards(session, out, scope.codes, now)
    return out


def _signals(session: Session, out: Kpis, codes: list[str], now: datetime) -> None:
    s = Signal
    rows = session.execute(select(s.generated_at, s.verify_due_at, s.verified_at, s.verification).where(
        s.county_code.in_(codes), s.detected_on >= out.since, s.detected_on <= out.until)).all()
    hours = []
    for generated, due_at, verified, verification in rows:
        out.signals += 1
        if verified is None and due_at > now:
            continue  # still inside its 24-hour clock
        out.due += 1
        if verified is None:
            continue
        out.verified += 1
        out.within_24h += verified - generated <= WITHIN
        out.suspected += verification == "suspected"
        hours.append((verified - generated).total_seconds() / 3600)
    if hours:
        out.median_response_hours = round(float(np.percentile(hours, 50)), 2)


def _cards(session: Session, out: Kpis, codes: list[str], now: datetime) -> None:
    c = Card
    lo, hi = counts.utc_bounds(out.since, out.until)
    due = or_(c.reviewed_at.is_not(None), c.review_due_at <= now)
    row = session.execute(select(
        func.count(),
        func.sum(case((c.reported_at <= c.report_due_at, 1), else_=0)),
        func.sum(case((due, 1), else_=0)),
        func.sum(case((and_(c.reviewed_at.is_not(None), c.reviewed_at <= c.review_due_at), 1), else_=0)),
    ).where(*counts.case_filter(counties=codes), c.diagnosed_at >= lo, c.diagnosed_at < hi)).one()
    out.cards, out.reported_in_time, out.review_due, out.reviewed_in_time = (int(v or 0) for v in row)
