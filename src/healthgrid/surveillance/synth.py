"""Surveillance's share of the synthetic region: several years of notifiable-disease report
cards and multi-point feed counts for the region's counties, with seasons, weekday effects
and a few injected outbreaks whose truth is kept — so detection delay and false alarms can
be measured (issue 8 item 6). Written in bulk, deterministic for a seed and a day.

- Years of history up to yesterday: 3 for ``tiny`` and ``small``, 5 for ``city`` and
  ``province``.
- Daily cases per county and disease come from :func:`.outbreaks.simulate` — the seasonal
  mean of :func:`.outbreaks.seasonal_mean` (influenza's winter peak, HFMD's spring–summer
  peak with a small autumn one, flat for chronic diseases), its weekday effect (fewer
  diagnoses at weekends) and its negative-binomial draw — with a level per disease scaled by
  the county's size (its villages and communities), and its injected outbreaks (a few per
  disease, after the first year so a baseline exists; one of other infectious diarrhoea in
  the last six weeks, so the demo has a live one). :data:`DISEASES` lists each disease's
  season, level, ages and outbreaks; the codes are those of ``catalogue.json``.
- Each case becomes a ``surv_card`` row (:mod:`.synth_cards`): sealed personal fields of a
  synthetic person (name, ID number on the county's code, phone, parent, school or work
  unit, address in a village of the county), realistic clocks (most reported and reviewed
  within 24 h, some late, the last day's partly unreviewed), a few corrections, duplicates
  deleted, events for each step.
- Feed counts (:mod:`.synth_feeds`): fever-clinic ILI visits with all visits, pharmacy
  antipyretic and antidiarrhoeal sales, school absences for fever on school days, laboratory
  influenza A positives with the tests, driven by the same seasons and outbreaks.
- The truth (disease, county, first and last day, cases added) is returned in the counts
  and kept in the synthetic feed batches' ingestion report (``surv_feed_batch.report
  ["synth"]``), where :func:`injected_outbreaks` reads it; :func:`plan` recomputes it from
  the counties, the days and the seed.
- :func:`simulate_responses` walks the signals that detection raised over the history
  through a realistic response (:mod:`.synth_responses`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import Invalid
from . import outbreaks
from .dashboard_counts import CHINA
from .models import FeedBatch

Progress = Callable[[str, int, int], None]
# Four years at least: the moving percentile needs three past years of baseline (the 2008
# CIDARS design, ../shared/specs/domain-rules.md §5.4), so it can run over the last year.
YEARS = {"tiny": 4, "small": 4, "city": 5, "province": 5}
SYNTH_USER = "system:synth"


@dataclass(frozen=True)
class DiseaseSpec:
    code: str
    season: str  # a key of outbreaks.SEASONS
    level: float  # mean cases a day in a county of average size
    outbreaks: int = 0  # injected, at most one per county
    size: tuple[int, int] = (15, 40)  # cases added by an outbreak
    duration: tuple[int, int] = (7, 21)
    recent: bool = False  # place its outbreaks in the last six weeks


# Levels: a county of 300–500 thousand people reports a few influenza and HFMD cases a day,
# tuberculosis and hepatitis B steadily, scarlet fever and mumps rarely (orders of magnitude of
# the national notifiable-disease reports; the shape, not the figure, is what detection needs).
DISEASES = (
    DiseaseSpec("3500", "influenza", 1.6, 1, (30, 60), (10, 21)),  # 流行性感冒: winter
    DiseaseSpec("4000", "hfmd", 1.2, 1, (25, 45), (10, 20)),  # 手足口病: spring-summer, autumn
    DiseaseSpec("3900", "influenza", 0.9, 1, (20, 40), (5, 12), recent=True),  # 其它感染性腹泻 (norovirus): winter
    DiseaseSpec("2600", "flat", 0.35),  # 肺结核
    DiseaseSpec("0300", "flat", 0.4),  # 病毒性肝炎 (乙型)
    DiseaseSpec("L030", "influenza", 0.45, 1, (15, 30), (10, 21)),  # 水痘: winter-spring, schools
    DiseaseSpec("3600", "hfmd", 0.15, 1, (10, 20), (10, 21)),  # 流行性腮腺炎: spring-summer, schools
    DiseaseSpec("1400", "hfmd", 0.15),  # 猩红热
    DiseaseSpec("0800", "flat", 0.25),  # 梅毒
    DiseaseSpec("0400", "hfmd", 0.05),  # 痢疾: summer
)
RECENT_DAYS = 42


@dataclass(frozen=True)
class Injected:
    """One injected outbreak: the truth detection is measured against."""

    disease: str
    county: str
    start: date
    end: date
    size: int  # cases added

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "start": self.start.isoformat(), "end": self.end.isoformat()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Injected:
        return cls(d["disease"], d["county"], date.fromisoformat(d["start"]), date.fromisoformat(d["end"]),
                   int(d["size"]))


@dataclass
class Plan:
    start: date
    end: date
    counties: list[str]
    cases: dict[str, np.ndarray]  # disease -> cases[county, day]
    expected: dict[str, np.ndarray]  # disease -> the seasonal mean without outbreaks
    outbreaks: list[Injected]

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def history(size: str, today: date, years: int | None = None) -> tuple[date, date]:
    """The first and last day of the synthetic history: whole years (the size's, unless
    given) up to yesterday."""
    n, end = years or YEARS[size], today - timedelta(days=1)
    first = end.replace(year=end.year - n) + timedelta(days=1) if (end.month, end.day) != (2, 29) \
        else date(end.year - n, 3, 1)
    return first, end


def plan(counties: list[str], weights: list[float], *, start: date, end: date, seed: int) -> Plan:
    """Daily cases of every disease in every county, and the injected outbreaks (pure)."""
    n_days = (end - start).days + 1
    cases, expected, injected = {}, {}, []
    for i, spec in enumerate(DISEASES):
        k = min(spec.outbreaks, len(counties))
        # Outbreaks fall in the last year, where the moving percentile has its three past
        # years of baseline (one in the last six weeks, for the demo's open signals).
        burn_in = n_days - RECENT_DAYS if spec.recent else max(365, n_days - 365)
        if n_days - burn_in < spec.duration[1]:
            k = 0
        sim = outbreaks.simulate(n_series=len(counties), n_days=n_days, start=start, season=spec.season,
                                 level=np.asarray(weights) * spec.level, n_outbreaks=k, size=spec.size,
                                 duration=spec.duration, burn_in=burn_in, seed=seed * 1009 + i)
        cases[spec.code], expected[spec.code] = sim.counts, sim.baseline_mean
        injected += [Injected(spec.code, counties[o.series], start + timedelta(days=o.start),
                              start + timedelta(days=o.end), o.size) for o in sim.outbreaks]
    return Plan(start, end, list(counties), cases, expected, sorted(injected, key=lambda o: (o.start, o.disease)))


def generate(conn: Connection, *, size: str, seed: int, info: dict[str, Any], progress: Progress | None = None,
             now: datetime | None = None, years: int | None = None) -> dict[str, float]:
    """Cards, their events and feed counts for the generated region: row counts, how many
    outbreaks were injected and the seconds it took (numbers only, for the synth report);
    the outbreaks themselves are :func:`injected_outbreaks`, the days :func:`synthetic_days`.
    ``years`` overrides the size's (1–10)."""
    from . import synth_cards, synth_feeds

    if size not in YEARS:
        raise Invalid("SURV-640", f"size: one of {', '.join(YEARS)}", {"field": "size"})
    if years is not None and not 1 <= years <= 10:
        raise Invalid("SURV-641", "years: from 1 to 10", {"field": "years"})
    started, now = time.perf_counter(), now or utcnow()
    with Session(bind=conn) as session:
        world = synth_cards.World.load(session)
    if not world.counties:
        return {"surv_cards": 0, "surv_feed_counts": 0, "surv_outbreaks_injected": 0}
    first, last = history(size, now.astimezone(CHINA).date(), years)
    p = plan([c.code for c in world.counties], [c.weight for c in world.counties], start=first, end=last, seed=seed)
    out: dict[str, float] = synth_cards.write_cards(conn, world, p, info=info, seed=seed, now=now, progress=progress)
    truth = {"seed": seed, "size": size, "start": first.isoformat(), "end": last.isoformat(),
             "outbreaks": [o.as_dict() for o in p.outbreaks]}
    out.update(synth_feeds.write_feeds(conn, world, p, seed=seed, now=now, truth=truth))
    out["surv_outbreaks_injected"] = len(p.outbreaks)
    out["surv_seconds"] = round(time.perf_counter() - started, 2)
    return out


def _truth(session: Session | Connection) -> dict[str, Any] | None:
    reports = session.execute(select(FeedBatch.report).where(FeedBatch.received_by == SYNTH_USER)
                              .order_by(FeedBatch.id.desc()).limit(1)).scalars().all()
    return (reports[0] or {}).get("synth") if reports else None


def injected_outbreaks(session: Session | Connection) -> list[Injected]:
    """The outbreaks the last synthetic run injected, from its feed batches' report."""
    found = _truth(session)
    return [Injected.from_dict(d) for d in found["outbreaks"]] if found else []


def synthetic_days(session: Session | Connection) -> tuple[date, date] | None:
    """The first and last day of the last synthetic history (for the detection backfill)."""
    found = _truth(session)
    return (date.fromisoformat(found["start"]), date.fromisoformat(found["end"])) if found else None


def simulate_responses(session: Session, *, seed: int, now: datetime | None = None) -> dict[str, int]:
    """Advance every open signal along its drawn response as far as ``now``
    (:mod:`.synth_responses`); run again later, it continues."""
    from . import synth_responses

    return synth_responses.respond(session, seed=seed, now=now or utcnow())


def responder(*, seed: int, now: datetime | None = None):
    """``after_day`` for ``detection.backfill``: the response day by day, as it would have been."""
    from . import synth_responses

    return synth_responses.responder(seed=seed, now=now or utcnow())
