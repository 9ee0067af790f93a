"""What detection reads from the database, as NumPy matrices ``[series, day]``, and the few
registry facts it needs (county names, centres, data starts).

- Cases: report cards per (disease, county) per local day (Asia/Shanghai by default; cards
  are stored in UTC) — a deleted card counts nowhere. Days before the county's first card
  are NaN (the county was not reporting yet), so the moving percentile never compares with
  years in which nothing could have been reported; after that, a day without a card is 0.
- Feeds: per (feed, metric, county) per day the counts summed over the sources; a day no
  source reported is NaN (missing, not zero). For proportions only rows that carry a total
  count: ``share`` (their counts) over ``totals``.

One aggregate query per matrix; the grouping by local day is done by the database
(``timezone()`` on PostgreSQL, ``date(…, '+480 minutes')`` on SQLite: China has kept UTC+8
without daylight saving since 1991, so a fixed offset is exact there; another zone with DST
would be off by an hour on its change days).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..config import SurveillanceSettings
from ..db import in_transaction, tx_cache
from ..errors import NotFound
from ..registry import queries as registry_queries
from ..security import ALL_SETTINGS_KEY
from .models import Card, FeedCount


def settings_of(session: Session) -> SurveillanceSettings:
    settings = session.info.get(ALL_SETTINGS_KEY)
    return settings.surveillance if settings is not None else SurveillanceSettings()


def zone_of(session: Session) -> ZoneInfo:
    settings = session.info.get(ALL_SETTINGS_KEY)
    return ZoneInfo(settings.web.timezone if settings is not None else "Asia/Shanghai")


def local_day(session: Session, at: datetime) -> date:
    return at.astimezone(zone_of(session)).date()


def local_start(session: Session, day: date) -> datetime:
    """The first instant of a local day, aware."""
    return datetime.combine(day, time(0), tzinfo=zone_of(session))


def _local_date(session: Session, column, day: date):
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(zone_of(session).key, column))
    offset = local_start(session, day).utcoffset() or timedelta(0)
    return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


@dataclass
class Matrix:
    """Series keys, the first day, and the arrays (``share`` and ``totals`` for feeds)."""

    keys: list[tuple[str, ...]]
    start: date
    counts: np.ndarray
    share: np.ndarray | None = None
    totals: np.ndarray | None = None

    @property
    def n_days(self) -> int:
        return self.counts.shape[1]

    def col(self, day: date) -> int:
        return (day - self.start).days

    def day(self, col: int) -> date:
        return self.start + timedelta(days=int(col))

    def rows(self, wanted: Iterable[tuple[str, ...]]) -> list[int]:
        index = {k: i for i, k in enumerate(self.keys)}
        return [index[k] for k in wanted if k in index]


def _fill(keys_days: Sequence[tuple[tuple[str, ...], date, float]], start: date, n_days: int,
          fill: float) -> tuple[list[tuple[str, ...]], np.ndarray]:
    keys = sorted({k for k, _, _ in keys_days})
    index = {k: i for i, k in enumerate(keys)}
    out = np.full((len(keys), n_days), fill, dtype=float)
    if keys_days:
        r = np.fromiter((index[k] for k, _, _ in keys_days), dtype=np.int64, count=len(keys_days))
        c = np.fromiter(((d - start).days for _, d, _ in keys_days), dtype=np.int64, count=len(keys_days))
        out[r, c] = np.fromiter((v for _, _, v in keys_days), dtype=float, count=len(keys_days))
    return keys, out


def county_starts(session: Session) -> dict[str, date]:
    """The local day of each county's first card (any status): when it began reporting."""
    rows = session.execute(select(Card.county_code, func.min(Card.diagnosed_at))
                           .where(Card.county_code.is_not(None)).group_by(Card.county_code)).all()
    return {c: local_day(session, at) for c, at in rows if at is not None}


def case_matrix(session: Session, first: date, last: date, *, diseases: Sequence[str] | None = None,
                counties: Sequence[str] | None = None, subtypes: Sequence[str] | None = None) -> Matrix:
    """Cards per (disease, county) per local day from ``first`` to ``last``; ``subtypes``
    counts only cards of those subtypes (e.g. pulmonary anthrax for the fixed threshold)."""
    n_days = (last - first).days + 1
    day = _local_date(session, Card.diagnosed_at, first).label("d")
    stmt = (select(Card.disease, Card.county_code, day, func.count())
            .where(Card.status != "deleted", Card.county_code.is_not(None),
                   Card.diagnosed_at >= local_start(session, first),
                   Card.diagnosed_at < local_start(session, last + timedelta(days=1)))
            .group_by(Card.disease, Card.county_code, day))
    if diseases is not None:
        stmt = stmt.where(Card.disease.in_(list(diseases)))
    if counties is not None:
        stmt = stmt.where(Card.county_code.in_(list(counties)))
    if subtypes is not None:
        stmt = stmt.where(Card.subtype.in_(list(subtypes)))
    found = [((d, c), _as_date(x), float(n)) for d, c, x, n in session.execute(stmt)]
    keys, counts = _fill([f for f in found if first <= f[1] <= last], first, n_days, 0.0)
    starts = county_starts(session) if keys else {}
    for i, (_disease, county) in enumerate(keys):
        begun = (starts.get(county, first) - first).days
        if begun > 0:
            counts[i, :begun] = np.nan
    return Matrix(keys, first, counts)


def feed_matrix(session: Session, first: date, last: date, *, feed: str | None = None, metric: str | None = None,
                counties: Sequence[str] | None = None) -> Matrix:
    """Feed counts per (feed, metric, county) per day, summed over sources; NaN = no report."""
    n_days = (last - first).days + 1
    with_total = FeedCount.total.is_not(None)
    stmt = (select(FeedCount.feed, FeedCount.metric, FeedCount.county_code, FeedCount.day, func.sum(FeedCount.count),
                   func.sum(case((with_total, FeedCount.count), else_=0)), func.sum(FeedCount.total),
                   func.count(FeedCount.total))
            .where(FeedCount.day >= first, FeedCount.day <= last)
            .group_by(FeedCount.feed, FeedCount.metric, FeedCount.county_code, FeedCount.day))
    if feed is not None:
        stmt = stmt.where(FeedCount.feed == feed)
    if metric is not None:
        stmt = stmt.where(FeedCount.metric == metric)
    if counties is not None:
        stmt = stmt.where(FeedCount.county_code.in_(list(counties)))
    rows = [((f, m, c), _as_date(d), float(n), float(s or 0), float(t) if k else np.nan)
            for f, m, c, d, n, s, t, k in session.execute(stmt)]
    keys, counts = _fill([(k, d, n) for k, d, n, _, _ in rows], first, n_days, np.nan)
    share, totals = np.full(counts.shape, np.nan), np.full(counts.shape, np.nan)
    with_totals = [r for r in rows if not np.isnan(r[4])]
    if with_totals:
        index = {k: i for i, k in enumerate(keys)}
        r = np.array([index[x[0]] for x in with_totals])
        c = np.array([(x[1] - first).days for x in with_totals])
        share[r, c] = [x[3] for x in with_totals]
        totals[r, c] = [x[4] for x in with_totals]
    return Matrix(keys, first, counts, share, totals)


def card_ids(session: Session, disease: str, counties: Sequence[str], first: date, last: date,
             limit: int = 500) -> list[int]:
    """Ids of the (not deleted) cards behind a case signal: only ids, the contents are PHI."""
    return list(session.scalars(
        select(Card.id).where(Card.disease == disease, Card.county_code.in_(list(counties)),
                              Card.status != "deleted", Card.diagnosed_at >= local_start(session, first),
                              Card.diagnosed_at < local_start(session, last + timedelta(days=1)))
        .order_by(Card.id).limit(limit)))


# -- registry facts ---------------------------------------------------------------------------------

def _cached(session: Session, key: tuple, compute):
    cache = tx_cache(session) if in_transaction(session) else {}
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def county_divisions(session: Session) -> list:
    """Every county-level division of the region (registry rows: code, name, lineage ids)."""
    return _cached(session, ("surv.counties",), lambda: list(
        registry_queries.search_divisions(session, level="county", limit=100_000).items))


def county_names(session: Session) -> dict[str, str]:
    """Code → name of every county-level division of the region."""
    return {d.code[:6]: d.name for d in county_divisions(session)}


def county_centres(session: Session, counties: Sequence[str]) -> dict[str, tuple[float, float]]:
    """(lon, lat) of each county: the centroid of its active organisations that have
    coordinates (the registry keeps no boundary); a county without any is left out."""
    out: dict[str, tuple[float, float]] = {}
    for county in counties:
        def compute(county: str = county) -> tuple[float, float] | None:
            try:
                page = registry_queries.search_organizations(
                    session, registry_queries.OrgFilter(division_code=county, active=True), limit=5000)
            except NotFound:
                return None
            points = [(o.longitude, o.latitude) for o in page.items
                      if o.longitude is not None and o.latitude is not None]
            return tuple(np.mean(np.array(points), axis=0).tolist()) if points else None
        found = _cached(session, ("surv.centre", county), compute)
        if found is not None:
            out[county] = found
    return out
