"""The synthetic feed counts of :mod:`.synth` (多点触发, ../shared/specs/domain-rules.md §5.5):
for each county and day of the history, driven by the same seasons and outbreaks as the
cases, drawn negative-binomial (Poisson–Gamma, dispersion 10) like :func:`.outbreaks.simulate`.

- ``fever:ILI`` — influenza-like illness visits at the county hospital's fever clinic, with all
  its visits as ``total`` (weekday pattern of a clinic: busy Monday, quiet Sunday);
- ``pharmacy:antipyretic`` and ``pharmacy:antidiarrhoeal`` — units sold at two or more
  pharmacies per county (more at weekends);
- ``school:fever`` — absences for fever (因病缺课) at two or more schools per county, on school
  days only (no weekends, nor the winter and summer holidays);
- ``lab:influenza_a`` — influenza A positives at the hospital laboratory, with the tests.

Drivers: the expected influenza cases of the county (the seasonal mean) plus the cases an
injected influenza outbreak added; likewise other infectious diarrhoea for antidiarrhoeals,
and for schools influenza, HFMD and chickenpox. So an outbreak shows in the feeds too, a
little before or with the cases. One ``surv_feed_batch`` per feed holds the ingestion report,
and under ``"synth"`` the truth of the injected outbreaks.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, insert, select

from .models import FeedBatch, FeedCount

DISPERSION = 10.0
CLINIC_DOW = np.array([1.2, 1.05, 1.0, 1.0, 1.0, 0.9, 0.85])  # Monday .. Sunday
PHARMACY_DOW = np.array([0.95, 0.95, 0.95, 0.95, 1.0, 1.12, 1.12])
HOLIDAYS = (((1, 15), (2, 20)), ((7, 5), (8, 31)))  # 寒假, 暑假 (approximate; schools set their own)
BATCH = 20_000


def school_day(day: date) -> bool:
    if day.weekday() >= 5:
        return False
    return not any(first <= (day.month, day.day) <= last for first, last in HOLIDAYS)


def _nb(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    mean = np.maximum(mean, 1e-9)
    return rng.poisson(rng.gamma(DISPERSION, mean / DISPERSION)).astype(int)


def drivers(plan) -> dict[str, np.ndarray]:
    """Expected cases plus the cases outbreaks added, [county, day], per driving disease."""
    index = {code: i for i, code in enumerate(plan.counties)}
    out = {}
    for disease in ("3500", "3900", "4000", "L030"):
        extra = np.zeros_like(plan.expected[disease])
        for o in plan.outbreaks:
            if o.disease == disease:
                c, lo, hi = index[o.county], (o.start - plan.start).days, (o.end - plan.start).days + 1
                extra[c, lo:hi] = np.clip(plan.cases[disease][c, lo:hi] - plan.expected[disease][c, lo:hi], 0, None)
        out[disease] = plan.expected[disease] + extra
    return out


class _Rows:
    def __init__(self, plan, batches: dict[str, int], now: datetime):
        self.plan, self.batches, self.now = plan, batches, now
        self.rows: list[dict[str, Any]] = []
        self.counts: dict[str, int] = dict.fromkeys(batches, 0)

    def add(self, feed: str, source: str, division: str, county: str, metric: str, counts: np.ndarray,
            totals: np.ndarray | None = None, days: np.ndarray | None = None) -> None:
        for t in range(self.plan.days):
            if days is not None and not days[t]:
                continue
            self.rows.append({"feed": feed, "source": source, "division_code": division, "county_code": county,
                              "day": self.plan.start + timedelta(days=t), "metric": metric, "count": int(counts[t]),
                              "total": None if totals is None else int(totals[t]), "batch_id": self.batches[feed],
                              "updated_at": self.now})
            self.counts[feed] += 1


def write_feeds(conn: Connection, world, plan, *, seed: int, now: datetime, truth: dict[str, Any]) -> dict[str, int]:
    rng = np.random.default_rng(seed * 31 + 5)
    days = [plan.start + timedelta(days=t) for t in range(plan.days)]
    dow = np.array([d.weekday() for d in days])
    open_school = np.array([school_day(d) for d in days])
    drive = drivers(plan)
    batches = _batches(conn, now, truth)
    rows = _Rows(plan, batches, now)
    for c, county in enumerate(world.counties):
        if county.hospital is None:
            continue
        w, flu = county.weight, drive["3500"][c]
        code, division = county.hospital
        ili = _nb(rng, 6 * w * CLINIC_DOW[dow] + 5 * flu)
        rows.add("fever", code, division, county.code, "ILI", ili, ili + _nb(rng, 160 * w * CLINIC_DOW[dow]))
        tests = _nb(rng, 10 * w + 4 * flu)
        rows.add("lab", code, division, county.code, "influenza_a", np.minimum(_nb(rng, 0.2 + 0.9 * flu), tests),
                 tests)
        towns = sorted({v[0][:9] + "000" for v in county.villages})
        n = max(2, round(2 * w))
        for k in range(n):
            town = towns[k % len(towns)]
            rows.add("pharmacy", f"YD{county.code}{k + 1:02d}", town, county.code, "antipyretic",
                     _nb(rng, (25 * w + 8 * flu) / n * PHARMACY_DOW[dow] * 2))
            rows.add("pharmacy", f"YD{county.code}{k + 1:02d}", town, county.code, "antidiarrhoeal",
                     _nb(rng, (8 * w + 5 * drive["3900"][c]) / n * PHARMACY_DOW[dow] * 2))
            kids = 0.4 * flu + drive["4000"][c] + 1.5 * drive["L030"][c]
            rows.add("school", f"XX{county.code}{k + 1:02d}", town, county.code, "fever",
                     _nb(rng, 1.0 * w + 1.6 * kids / n), days=open_school)
    for start in range(0, len(rows.rows), BATCH):
        conn.execute(insert(FeedCount.__table__), rows.rows[start:start + BATCH])
    for feed, batch in batches.items():
        conn.execute(FeedBatch.__table__.update().where(FeedBatch.__table__.c.id == batch).values(
            report={"created": rows.counts[feed], "updated": 0, "ignored": 0, "errors": {}, "synth": truth}))
    return {"surv_feed_counts": len(rows.rows), "surv_feed_batches": len(batches)}


def _batches(conn: Connection, now: datetime, truth: dict[str, Any]) -> dict[str, int]:
    """One batch per feed, its report filled in once the counts are written."""
    out = {}
    for feed in ("fever", "pharmacy", "school", "lab"):
        conn.execute(insert(FeedBatch.__table__).values(feed=feed, received_at=now, received_by="system:synth",
                                                        filename=f"synth-{feed}-{truth['seed']}.csv", report={}))
        out[feed] = conn.scalar(select(FeedBatch.id).where(FeedBatch.feed == feed)
                                .order_by(FeedBatch.id.desc()).limit(1))
    return out
