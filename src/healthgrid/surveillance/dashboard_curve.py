"""The dashboard's epidemic curve (流行曲线): counts per day or ISO week of one stream — a
notifiable disease, or one feed metric summed over its sources — in one county or all those
in scope, with the threshold of the detector CIDARS applies to that stream, computed by the
pure detectors on the very series drawn, and the days that raised a signal.

Thresholds (sources in :mod:`.dashboard`'s docstring):

- a disease with a moving-percentile P_x (catalogue): ``cidars.moving_percentile`` with the
  settings the daily detection uses (``HEALTHGRID_SURVEILLANCE__MPM_*``: by default the same
  and the two neighbouring weeks on each side in up to five previous years, a threshold
  once three past years are observed), so the line drawn is the one signals were raised
  against; statistic the 7-day sum, threshold P_x of the baseline sums. Days before the
  first card of the counties read are missing, not zero (reporting had not begun). Weekly: the 7-day window ending on
  the week's Sunday is the week itself, so the threshold of that Sunday applies to the
  weekly bar.
- a fixed-threshold disease (class A, SARS, polio …): one case is a signal (threshold 1).
- a feed metric: classic EARS C3 (Hutwagner et al. 2003, cut-off 2) on the daily counts; the
  line is the count at which day t's C3 reaches the cut-off given the two days before,
  mean + sd · (1 + 2 − excess of t−1 and t−2), and 0 when those two alone reach it. No
  threshold on weekly bars (C3 is a daily method); a week alarms if any of its days does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import transaction
from ..security.domain import Actor
from . import dashboard_counts as counts
from .catalogue import load_catalogue
from .dashboard import Scope, Stream, check_period, dashboard_scope, parse_stream
from .detection_data import settings_of
from .detectors import cidars, ears, threshold
from .models import Signal

EARS_BASELINE, EARS_CUTOFF = 7, 2.0


@dataclass(frozen=True)
class CurvePoint:
    start: date
    end: date  # the same day, or the week's Sunday
    count: int
    total: int | None  # the feed's denominator (all visits, all tests), where it sends one
    statistic: float | None  # what the MPM compares, the 7-day sum (None where it is the count)
    threshold: float | None
    alarm: bool  # the detector's alarm on the series drawn
    signals: tuple[int, ...] = ()  # ids of the signals of those days


@dataclass
class Curve:
    stream: str
    county: str | None  # None: all the counties in scope
    counties: list[str]
    since: date
    until: date
    weekly: bool
    method: str  # mpm | fixed | ears_c3
    percentile: int | None
    points: list[CurvePoint]

    @property
    def signal_count(self) -> int:
        return len({i for p in self.points for i in p.signals})


def epidemic_curve(session: Session, actor: Actor, *, stream: str, county: str | None = None, since: date,
                   until: date, weekly: bool = False) -> Curve:
    """Counts, threshold and signals of one stream from ``since`` to ``until`` (whole ISO weeks
    when ``weekly``), in one county or all those in scope; audited as a search."""
    check_period(since, until)
    parsed = parse_stream(stream)
    if weekly:
        since, until = counts.monday(since), counts.monday(until) + timedelta(days=6)
    with transaction(session):
        scope = dashboard_scope(session, actor, county=county, what="curve",
                                detail={"stream": stream, "since": since.isoformat(), "until": until.isoformat()})
        return build_curve(session, scope, parsed, county, since, until, weekly)


def disease_percentile(code: str, on: date) -> int | None:
    """P_x of the disease's version valid on ``on`` (its latest one if none is); None for a
    fixed-threshold disease."""
    cat = load_catalogue()
    entry = cat.find(code, on) or cat.versions(code)[-1]
    if entry.fixed_threshold:
        return None
    return entry.mpm_percentile if entry.mpm_percentile is not None else cat.default_mpm


def build_curve(session: Session, scope: Scope, stream: Stream, county: str | None, since: date, until: date,
                weekly: bool) -> Curve:
    codes, totals, pct = scope.codes, None, None
    if stream.feed is None:
        pct = disease_percentile(stream.code, until)
        cfg = settings_of(session)
        start = since - timedelta(days=cfg.mpm_years * 366 + 7 * cfg.mpm_half_width_weeks + 7 if pct is not None
                                  else 0)
        x = counts.daily_cases(session, disease=stream.code, counties=codes, since=start, until=until)
        began = counts.first_case_day(session, counties=codes)
        if began is not None and began > start:  # no reporting yet is no baseline, not zero cases
            x[:min((began - start).days, len(x))] = np.nan
        if pct is None:
            method, found = "fixed", threshold.fixed(x[None, :])
        else:
            method, found = "mpm", cidars.moving_percentile(
                x[None, :], start, percentile=pct, years_back=cfg.mpm_years,
                half_width_weeks=cfg.mpm_half_width_weeks, min_cases=cfg.mpm_min_cases,
                min_baseline=cfg.mpm_min_years * (2 * cfg.mpm_half_width_weeks + 1))
        stat, limit, alarm = (a[0] for a in found)
        if method == "mpm":  # the 7-day sum is drawn where there is no baseline too
            stat = cidars.window_sums(x[None, :])[0]
    else:
        method, start = "ears_c3", since - timedelta(days=EARS_BASELINE + 5)
        x, totals = counts.daily_feed(session, feed=stream.feed, metric=stream.code, counties=codes, since=start,
                                      until=until)
        stat, limit, alarm = ears_threshold(x)
    skip = (since - start).days
    daily = (x[skip:], None if totals is None else totals[skip:], stat[skip:], limit[skip:], alarm[skip:])
    signals = _signal_days(session, stream.key, codes, since, until)
    points = _weekly_points(since, daily, signals, method) if weekly else _daily_points(since, daily, signals, method)
    return Curve(stream.key, county, codes, since, until, weekly, method, pct, points)


def ears_threshold(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, count threshold, alarm) of classic EARS C3 on one daily series: the alarm is the
    detector's; the threshold the count at which day t's C3 reaches the cut-off."""
    arr = np.asarray(x, dtype=float)[None, :]
    alarm = ears.c3(arr, baseline=EARS_BASELINE, cutoff=EARS_CUTOFF).alarm[0]
    mean, sd = (a[0] for a in ears.baseline_stats(arr, EARS_BASELINE, ears.C2_LAG))
    excess = np.maximum(ears.c2(arr, baseline=EARS_BASELINE).statistic[0] - 1.0, 0.0)
    prior = np.full(arr.shape[1], np.nan)
    prior[2:] = excess[:-2] + excess[1:-1]
    need = EARS_CUTOFF - prior
    with np.errstate(invalid="ignore"):
        limit = np.where(need < 0, 0.0, mean + sd * (1.0 + need))
    return arr[0], limit, alarm


def _signal_days(session: Session, stream: str, codes: list[str], since: date, until: date) -> dict[date, list[int]]:
    out: dict[date, list[int]] = {}
    if not codes:
        return out
    for sid, day in session.execute(select(Signal.id, Signal.detected_on).where(
            Signal.stream == stream, Signal.county_code.in_(codes), Signal.detected_on >= since,
            Signal.detected_on <= until).order_by(Signal.id)):
        out.setdefault(day, []).append(sid)
    return out


def _num(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 2)


def _daily_points(since: date, daily: tuple, signals: dict[date, list[int]], method: str) -> list[CurvePoint]:
    x, totals, stat, limit, alarm = daily
    out = []
    for i in range(len(x)):
        day = since + timedelta(days=i)
        out.append(CurvePoint(day, day, 0 if np.isnan(x[i]) else int(x[i]), None if totals is None else int(totals[i]),
                              _num(stat[i]) if method == "mpm" else None, _num(limit[i]), bool(alarm[i]),
                              tuple(signals.get(day, ()))))
    return out


def _weekly_points(since: date, daily: tuple, signals: dict[date, list[int]], method: str) -> list[CurvePoint]:
    x, totals, _stat, limit, alarm = daily
    weeks = counts.weekly_sums(np.nan_to_num(x), since)
    sums = None if totals is None else counts.weekly_sums(totals, since)
    out = []
    for w, n in enumerate(weeks):
        first, days = since + timedelta(days=7 * w), slice(7 * w, 7 * w + 7)
        ids = tuple(i for k in range(7) for i in signals.get(first + timedelta(days=k), ()))
        if method == "mpm":
            limit_w, hit = _num(limit[7 * w + 6]), bool(alarm[7 * w + 6])
        else:
            limit_w, hit = (1.0 if method == "fixed" else None), bool(alarm[days].any())
        out.append(CurvePoint(first, first + timedelta(days=6), int(n), None if sums is None else int(sums[w]),
                              None, limit_w, hit, ids))
    return out
