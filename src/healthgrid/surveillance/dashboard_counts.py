"""Counting what surveillance counts, for the dashboard (:mod:`.dashboard`) and the FHIR
MeasureReport (:mod:`.fhir.measure_report`): read-only queries over ``surv_card`` and
``surv_feed_count``, no access decisions (the callers make them).

- A case is a report card that is not deleted (a deleted card counts nowhere), counted by
  ``county_code``, ``disease`` and the local day of ``diagnosed_at``. Card times are China
  Standard Time (传染病报告卡 填卡说明) and stored in UTC; China has kept UTC+8 without
  daylight saving since 1991, so the local day is the UTC time plus eight hours on SQLite
  and ``timezone('Asia/Shanghai', …)`` on PostgreSQL. ISO weeks start on Monday.
- A feed count is the sum over the sources of a county of one feed's metric on a day
  (``surv_feed_count.day`` is already a local day); the denominator (``total``: all visits,
  all tests) is summed alike where the feed sends one.
- Dense series: every day of the period has a value, 0 when nothing was reported (the
  CIDARS convention: no card is no case).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from .models import Card, FeedCount

CHINA = ZoneInfo("Asia/Shanghai")  # card times are China Standard Time (no DST since 1991)
COUNTED = ("reported", "reviewed", "returned")  # every status but deleted


def utc_bounds(since: date, until: date) -> tuple[datetime, datetime]:
    """[first local midnight, the midnight after the last day) in UTC."""
    lo = datetime.combine(since, time(), CHINA).astimezone(UTC)
    hi = datetime.combine(until + timedelta(days=1), time(), CHINA).astimezone(UTC)
    return lo, hi


def local_day(session: Session, column) -> ColumnElement:
    """The Asia/Shanghai calendar day of a UTC timestamp column, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("Asia/Shanghai", column), Date)
    return func.date(column, "+8 hours")


def week_start(session: Session, column) -> ColumnElement:
    """The Monday of the ISO week holding the local day of a UTC timestamp column."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("week", func.timezone("Asia/Shanghai", column)), Date)
    # SQLite: forward to the Sunday ending the week ("weekday 0"; a Sunday stays), back 6 days.
    return func.date(column, "+8 hours", "weekday 0", "-6 days")


def as_date(value) -> date:
    """A day from the database: a date on PostgreSQL, 'YYYY-MM-DD' text on SQLite."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def case_filter(*, counties: Sequence[str] | None, diseases: Sequence[str] | None = None) -> list:
    """WHERE clauses of the counted cards of these counties (None: any) and diseases."""
    where = [Card.status.in_(COUNTED)]
    if counties is not None:
        where.append(Card.county_code.in_(sorted(set(counties))))
    if diseases is not None:
        where.append(Card.disease.in_(sorted(set(diseases))))
    return where


def daily_cases(session: Session, *, disease: str, counties: Sequence[str], since: date, until: date) -> np.ndarray:
    """Cases per local day from ``since`` to ``until`` (inclusive) in these counties, summed."""
    lo, hi = utc_bounds(since, until)
    day = local_day(session, Card.diagnosed_at).label("day")
    rows = session.execute(select(day, func.count()).where(
        *case_filter(counties=counties, diseases=[disease]), Card.diagnosed_at >= lo, Card.diagnosed_at < hi)
        .group_by(day)).all()
    return _dense([(as_date(d), n) for d, n in rows], since, until)


def first_case_day(session: Session, *, counties: Sequence[str]) -> date | None:
    """The local day of the earliest counted card in these counties: where reporting began."""
    first = session.scalar(select(func.min(Card.diagnosed_at)).where(*case_filter(counties=counties)))
    return None if first is None else first.astimezone(CHINA).date()


def daily_feed(session: Session, *, feed: str, metric: str, counties: Sequence[str], since: date,
               until: date) -> tuple[np.ndarray, np.ndarray]:
    """(counts, totals) per day of one feed metric in these counties, each summed over sources."""
    rows = session.execute(select(FeedCount.day, func.sum(FeedCount.count), func.sum(FeedCount.total)).where(
        FeedCount.feed == feed, FeedCount.metric == metric, FeedCount.county_code.in_(sorted(set(counties))),
        FeedCount.day >= since, FeedCount.day <= until).group_by(FeedCount.day)).all()
    counts = _dense([(as_date(d), n or 0) for d, n, _t in rows], since, until)
    totals = _dense([(as_date(d), t or 0) for d, _n, t in rows], since, until)
    return counts, totals


def _dense(pairs: list[tuple[date, float]], since: date, until: date) -> np.ndarray:
    out = np.zeros((until - since).days + 1)
    for day, n in pairs:
        if since <= day <= until:
            out[(day - since).days] += float(n)
    return out


def weekly_sums(daily: np.ndarray, since: date) -> np.ndarray:
    """Whole ISO weeks of a daily series that starts on a Monday (a partial last week is kept)."""
    if since.weekday() != 0:
        raise ValueError("a weekly series starts on a Monday")
    weeks = -(-len(daily) // 7)
    padded = np.zeros(weeks * 7)
    padded[:len(daily)] = daily
    return padded.reshape(weeks, 7).sum(axis=1)


def cases_by(session: Session, *, by: str, counties: Sequence[str] | None, since: date, until: date,
             diseases: Sequence[str] | None = None) -> dict[str, int]:
    """Cases of the period grouped by ``county_code`` or ``disease``."""
    column = {"county": Card.county_code, "disease": Card.disease}[by]
    lo, hi = utc_bounds(since, until)
    rows = session.execute(select(column, func.count()).where(
        *case_filter(counties=counties, diseases=diseases), Card.diagnosed_at >= lo, Card.diagnosed_at < hi)
        .group_by(column)).all()
    return {key: n for key, n in rows if key is not None}


@dataclass(frozen=True)
class CaseCount:
    """Cases of one disease in one county in one period (a day, or the ISO week from ``start``)."""

    disease: str
    county_code: str
    start: date
    end: date
    count: int


def grouped_cases(session: Session, *, weekly: bool, counties: Sequence[str], since: date, until: date,
                  diseases: Sequence[str] | None, offset: int, limit: int) -> tuple[list[CaseCount], int]:
    """Non-zero counts per disease x county x day (or ISO week) whose period overlaps
    ``since`` .. ``until`` (a week counts all its days), ordered by period, county, disease;
    one page and the total."""
    if weekly:
        since, until = monday(since), monday(until) + timedelta(days=6)
    if until < since or not counties:
        return [], 0
    lo, hi = utc_bounds(since, until)
    period = (week_start if weekly else local_day)(session, Card.diagnosed_at).label("period")
    inner = (select(period, Card.county_code.label("county"), Card.disease.label("disease"))
             .where(*case_filter(counties=counties, diseases=diseases), Card.diagnosed_at >= lo,
                    Card.diagnosed_at < hi).subquery())
    grouped = (select(inner.c.period, inner.c.county, inner.c.disease, func.count().label("n"))
               .group_by(inner.c.period, inner.c.county, inner.c.disease))
    total = session.scalar(select(func.count()).select_from(grouped.subquery())) or 0
    rows = session.execute(grouped.order_by(inner.c.period, inner.c.county, inner.c.disease)
                           .offset(offset).limit(limit)).all() if limit else []
    span = timedelta(days=6 if weekly else 0)
    return [CaseCount(disease, county, as_date(p), as_date(p) + span, n) for p, county, disease, n in rows], total


def one_count(session: Session, *, disease: str, county: str, start: date, end: date) -> int:
    """Cases of one disease in one county from ``start`` to ``end`` (local days, inclusive)."""
    lo, hi = utc_bounds(start, end)
    return session.scalar(select(func.count()).select_from(Card).where(
        *case_filter(counties=[county], diseases=[disease]), Card.diagnosed_at >= lo, Card.diagnosed_at < hi)) or 0


def feed_streams(session: Session, *, counties: Sequence[str], since: date) -> list[tuple[str, str]]:
    """The (feed, metric) pairs reported in these counties since a day."""
    if not counties:
        return []
    rows = session.execute(select(FeedCount.feed, FeedCount.metric).where(
        FeedCount.county_code.in_(sorted(set(counties))), FeedCount.day >= since).distinct()).all()
    return sorted((f, m) for f, m in rows)
