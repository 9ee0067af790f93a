"""Daily detection over the platform's data (CIDARS computes per county, daily; single-case
diseases in real time, ../shared/specs/domain-rules.md §5.4).

``run_day(session, day)`` runs every method once for a day that is over and raises the
signals of its alarms; a ``surv_run`` row makes it idempotent (a second call, or a second
worker, does nothing and answers the first run's report). ``backfill(session, start, end)``
does the same for every day of a range, reading each year of history once and running each
detector once over the whole range — the synthetic history uses it.

Which methods watch what, and "enough baseline": :mod:`.detection_methods`. Counties outside
the region's registry (a patient living in another province) are not detected here: their
own CDC answers for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..config import SurveillanceSettings
from ..db import transaction, utcnow
from ..errors import Conflict, Invalid
from ..security import access
from ..security.domain import Actor, AuditAction, Perm
from . import detection_methods as dm
from .catalogue import load_catalogue
from .detection_data import card_ids, case_matrix, county_names, feed_matrix, local_day, settings_of, zone_of
from .models import DetectorRun
from .signals import raise_signal

CHUNK_DAYS = 366  # backfill reads and detects a year at a time (memory stays bounded)
CATCH_UP_DAYS = 7  # days the worker catches up after being down
AfterDay = Callable[[Session, date, list[int]], None]


def _alarms(session: Session, first: date, last: date, cfg: SurveillanceSettings, *,
            scan: bool) -> tuple[list[dm.Alarm], dict[str, int]]:
    """Every alarm of every method on the days ``first``..``last``, and what was run."""
    catalogue = load_catalogue()
    region = set(county_names(session))
    stats: Counter[str] = Counter()
    start = first - timedelta(days=dm.case_lookback(cfg))
    cases = case_matrix(session, start, last)
    keep = [i for i, k in enumerate(cases.keys) if k[1] in region]
    cases.keys, cases.counts = [cases.keys[i] for i in keep], cases.counts[keep]
    cols = list(range(cases.col(first), cases.col(last) + 1))
    fixed, by_px = dm.split_diseases(catalogue, {k[0] for k in cases.keys}, last)
    alarms = dm.fixed_alarms(cases, fixed, cols) + dm.mpm_alarms(cases, by_px, cols, cfg)
    subtypes = dm.fixed_subtypes(catalogue, last)
    if subtypes:
        sub = case_matrix(session, first, last, subtypes=subtypes, counties=sorted(region))
        alarms += dm.fixed_alarms(sub, {k[0] for k in sub.keys}, list(range(sub.n_days)))
    alarms = [_with_cards(session, a) for a in alarms]
    stats.update(case_series=len(cases.keys), fixed_series=sum(k[0] in fixed for k in cases.keys))
    if scan and cfg.scan_enabled:
        found, runs = dm.scan_alarms(session, cases, {d for codes in by_px.values() for d in codes}, cols, cfg)
        alarms += found
        stats.update(scans=runs)
    feeds = feed_matrix(session, first - timedelta(days=dm.feed_lookback(cfg)), last, counties=sorted(region))
    fcols = list(range(feeds.col(first), feeds.col(last) + 1))
    alarms += dm.ears_alarms(feeds, fcols, cfg) + dm.cusum_alarms(feeds, fcols, cfg)
    stats.update(feed_series=len(feeds.keys))
    return alarms, dict(stats)


def _with_cards(session: Session, alarm: dm.Alarm) -> dm.Alarm:
    """A fixed-threshold alarm names its cards (rare: a query each), so a case already
    signalled in real time is not signalled again by the daily run."""
    if alarm.method != "fixed" or alarm.disease is None:
        return alarm
    ids = card_ids(session, alarm.disease, [alarm.county_code], alarm.day, alarm.day)
    return replace(alarm, detail={**alarm.detail, "card_ids": ids})


def detection_time(session: Session, day: date) -> datetime:
    """When the daily job detects ``day``: the next local morning at ``detection_hour``."""
    hour = settings_of(session).detection_hour
    return datetime.combine(day + timedelta(days=1), time(hour), tzinfo=zone_of(session))


def _claim(session: Session, day: date, now: datetime) -> DetectorRun | None:
    """The day's run row, inserted now; None if the day was (or is being) run already."""
    if session.get(DetectorRun, day) is not None:
        return None
    run = DetectorRun(day=day, started_at=now)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        return None  # another worker claimed it and committed first
    return run


def _raise_all(session: Session, alarms: list[dm.Alarm], now: datetime) -> tuple[dict[str, int], list[int]]:
    outcomes: Counter[str] = Counter()
    created: list[int] = []
    for alarm in sorted(alarms, key=lambda a: (a.day, a.stream, a.county_code, a.method)):
        raised = raise_signal(session, alarm, now=now)
        outcomes[raised.outcome] += 1
        if raised.outcome == "created":
            created.append(raised.signal_id)
    return dict(outcomes), created


def _finish(run: DetectorRun, day: date, alarms: list[dm.Alarm], stats: dict, outcomes: dict,
            created: list[int], now: datetime) -> dict:
    by_method = Counter(a.method for a in alarms if a.day == day)
    run.finished_at = now
    run.report = {"day": day.isoformat(), **stats, "alarms": dict(sorted(by_method.items())), "signals": outcomes,
                  "signal_ids": created}
    return dict(run.report)


def run_day(session: Session, day: date, *, now: datetime | None = None) -> dict:
    """Detect one day that is over (SURV-481 otherwise), once: a second call answers the
    report of the first with ``"skipped": true``."""
    now = now or utcnow()
    cfg = settings_of(session)
    if not cfg.detection_enabled:
        raise Conflict("SURV-480", "detection is switched off (HEALTHGRID_SURVEILLANCE__DETECTION_ENABLED)")
    if day >= local_day(session, now):
        raise Invalid("SURV-481", f"day {day.isoformat()} is not over yet; detection runs on a past day",
                      {"field": "day"})
    with transaction(session):
        run = _claim(session, day, now)
        if run is None:
            done = session.get(DetectorRun, day)
            return {**(done.report if done is not None else {"day": day.isoformat()}), "skipped": True}
        alarms, stats = _alarms(session, day, day, cfg, scan=True)
        outcomes, created = _raise_all(session, alarms, now)
        return _finish(run, day, alarms, stats, outcomes, created, now)


def run_detection(session: Session, actor: Actor, day: date, *, now: datetime | None = None) -> dict:
    """A CDC runs a past day's detection by hand (the worker does it every morning): the
    same idempotent :func:`run_day`, audited."""
    with transaction(session):
        access.check(session, actor, Perm.SIGNAL_MANAGE, AuditAction.CREATE, resource_type="DetectorRun",
                     resource_id=day.isoformat())
        return run_day(session, day, now=now)


def backfill(session: Session, start: date, end: date, *, scan: bool = False, after_day: AfterDay | None = None,
             now: datetime | None = None) -> dict:
    """Detect every day from ``start`` to ``end`` (both past) in order, skipping days already
    run. Signals of a day are raised as at ``detection_time(day)``; ``after_day(session, day,
    new_signal_ids)`` runs after each day (the synth answers signals there, so that
    de-duplication and suppression see the response as it would have been). The scan is
    off unless asked (its Monte Carlo replicates per disease and day dominate the cost)."""
    now = now or utcnow()
    cfg = settings_of(session)
    if end < start or end >= local_day(session, now):
        raise Invalid("SURV-482", f"backfill needs start <= end < today; got {start} .. {end}", {"field": "end"})
    totals: Counter[str] = Counter()
    first = start
    while first <= end:
        last = min(end, first + timedelta(days=CHUNK_DAYS - 1))
        with transaction(session):
            alarms, stats = _alarms(session, first, last, cfg, scan=scan)
        by_day: dict[date, list[dm.Alarm]] = {}
        for alarm in alarms:
            by_day.setdefault(alarm.day, []).append(alarm)
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            totals.update(_backfill_day(session, day, by_day.get(day, []), stats, after_day))
        first = last + timedelta(days=1)
    return {"start": start.isoformat(), "end": end.isoformat(), **dict(sorted(totals.items()))}


def _backfill_day(session: Session, day: date, alarms: list[dm.Alarm], stats: dict,
                  after_day: AfterDay | None) -> Counter:
    at = detection_time(session, day)
    with transaction(session):
        run = _claim(session, day, at)
        if run is None:
            return Counter(days_skipped=1)
        outcomes, created = _raise_all(session, alarms, at)
        _finish(run, day, alarms, stats, outcomes, created, at)
    if after_day is not None:
        after_day(session, day, created)
    return Counter(days=1, alarms=len(alarms), **{f"signals_{k}": v for k, v in outcomes.items()})


def due_days(session: Session, now: datetime) -> list[date]:
    """The days the worker should detect now: yesterday once the local clock has passed
    ``detection_hour``, and any of the ``CATCH_UP_DAYS`` before it missed since the last
    run (the worker was down); none already run."""
    cfg = settings_of(session)
    local = now.astimezone(zone_of(session))
    if not cfg.detection_enabled or local.hour < cfg.detection_hour:
        return []
    yesterday = local.date() - timedelta(days=1)
    last = session.scalar(select(func.max(DetectorRun.day)))
    first = yesterday if last is None else max(last + timedelta(days=1), yesterday - timedelta(days=CATCH_UP_DAYS - 1))
    return [first + timedelta(days=i) for i in range((yesterday - first).days + 1)]
