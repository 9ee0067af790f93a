"""The platform's detection, end to end, on generated regions with injected outbreaks.

For each seed: a fresh database, ``generate_region`` (registry, residents … and the
surveillance history: years of report cards and feed counts with outbreaks injected at a
known disease, county, start and size), whose last step is the daily detection run over that
history as the worker does it (``detection.backfill``: cards and feeds read from the
database, every detector of the catalogue's rules, signals raised with de-duplication and
suppression, each answered by a simulated duty epidemiologist). Then the signals are judged
against the injected truth:

- found: a signal of that disease and county raised between the outbreak's first and last
  day; covered: none raised, but one was already open then (CIDARS adds no second signal);
- delay: days from the outbreak's start to the first such signal (median over the found);
- false signals: case signals outside every outbreak window of their disease and county,
  per 100 county-weeks of the evaluated period, by detection method.

The timing line sets the backfill (day by day: claim the day, raise and de-duplicate the
signals, answer them) beside one pass of reading the count matrices from the database and
running every detector over the whole history at once, in the same process: the ratio is
what the day-by-day signal handling costs around the detection itself.

Run: ``python bench/surveillance_region.py [--seeds 1 2 3] [--size tiny]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_database  # noqa: E402
from sqlalchemy import delete, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from healthgrid.config import Settings  # noqa: E402
from healthgrid.db import make_engine  # noqa: E402
from healthgrid.migrate import upgrade  # noqa: E402
from healthgrid.security import session_info  # noqa: E402
from healthgrid.surveillance import detection  # noqa: E402
from healthgrid.surveillance import synth as surveillance_synth  # noqa: E402
from healthgrid.surveillance.models import DetectorRun, Signal, SignalEvent  # noqa: E402
from healthgrid.synth import generate_region  # noqa: E402


def judge(signals: list[Signal], truth: list, first, last) -> tuple[list[dict], Counter, int]:
    """Per outbreak (found, covered, delay) and false signals by method."""
    rows = []
    for o in truth:
        same = [s for s in signals if s.stream == f"case:{o.disease}" and s.county_code == o.county]
        new = sorted(s.detected_on for s in same if o.start <= s.detected_on <= o.end)
        open_before = any(s.detected_on < o.start and (s.closed_at is None or s.closed_at.date() >= o.start)
                          for s in same)
        rows.append({"o": o, "found": bool(new), "covered": not new and open_before,
                     "delay": (new[0] - o.start).days if new else None})
    windows = {(o.disease, o.county): [] for o in truth}
    for o in truth:
        windows[(o.disease, o.county)].append((o.start, o.end + timedelta(days=7)))
    false = Counter()
    for s in signals:
        if not s.stream.startswith("case:") or not first <= s.detected_on <= last:
            continue
        inside = any(a <= s.detected_on <= b for a, b in windows.get((s.disease, s.county_code), []))
        if not inside:
            false[s.method] += 1
    return rows, false, (last - first).days + 1


def read_and_detect(session: Session, first, last) -> float:
    """One pass: the count matrices read from the database and every detector run over the
    whole history, no signal raised (best of 3)."""
    from healthgrid.surveillance.detection import _alarms  # the matrix read + detector calls
    from healthgrid.surveillance.detection_data import settings_of

    cfg = settings_of(session)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        _alarms(session, first, last, cfg, scan=False)
        best = min(best, time.perf_counter() - started)
    return best


def one_seed(size: str, seed: int) -> dict:
    url, drop = fresh_database(None, f"surv{seed}")
    engine = make_engine(url)
    try:
        upgrade(url)
        info = session_info(Settings(env="dev", data_dir=tempfile.mkdtemp(prefix="hgsurv-")))
        started = time.perf_counter()
        report = generate_region(engine, size=size, seed=seed, info=info)
        region_s = time.perf_counter() - started
        with Session(bind=engine, info=dict(info)) as session:
            first, last = surveillance_synth.synthetic_days(session)
            truth = surveillance_synth.injected_outbreaks(session)
            signals = list(session.scalars(select(Signal)))
            counties = len({o.county for o in truth} | {s.county_code for s in signals})
            judged = first.replace(year=first.year + 3)  # the moving percentile's 3 years of baseline
            rows, false, days = judge(signals, truth, judged, last)
            # the backfill again, timed alone: clear what it made, run it as the synth does
            for model in (SignalEvent, Signal, DetectorRun):
                session.execute(delete(model))
            session.commit()
            started = time.perf_counter()
            detection.backfill(session, first, last, after_day=surveillance_synth.responder(seed=seed))
            session.commit()
            backfill_s = time.perf_counter() - started
            bare_s = read_and_detect(session, first, last)
        return {"seed": seed, "rows": rows, "false": false, "days": days, "counties": counties,
                "cards": report.counts.get("surv_cards", 0), "region_s": region_s, "backfill_s": backfill_s,
                "bare_s": bare_s, "history_days": (last - first).days + 1}
    finally:
        engine.dispose()
        drop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    args = ap.parse_args()
    runs = [one_seed(args.size, seed) for seed in args.seeds]
    print(f"{len(runs)} generated {args.size} regions (seeds {', '.join(map(str, args.seeds))}),"
          f" {runs[0]['history_days']} days of history each; judged on the last"
          f" {runs[0]['days']} days of each (three years of baseline before: the moving percentile's)")
    print(f"\n{'seed':>4} {'disease':>7} {'county':>7} {'start':>10} {'days':>4} {'cases':>5}  result")
    allrows = []
    for run in runs:
        for r in run["rows"]:
            o = r["o"]
            verdict = (f"found, delay {r['delay']} d" if r["found"] else
                       "covered by an open signal" if r["covered"] else "missed")
            print(f"{run['seed']:>4} {o.disease:>7} {o.county:>7} {o.start.isoformat():>10}"
                  f" {(o.end - o.start).days + 1:>4} {o.size:>5}  {verdict}")
            allrows.append(r)
    found = [r for r in allrows if r["found"]]
    covered = sum(r["covered"] for r in allrows)
    delays = [r["delay"] for r in found]
    print(f"\noutbreaks {len(allrows)}: found {len(found)} ({len(found) / max(1, len(allrows)):.0%}),"
          f" covered by an open signal {covered}, missed {len(allrows) - len(found) - covered};"
          f" median delay {statistics.median(delays) if delays else float('nan'):.1f} days")
    false = sum((run["false"] for run in runs), Counter())
    diseases = len(surveillance_synth.DISEASES)
    weeks = sum(run["days"] / 7 * run["counties"] * diseases for run in runs)
    print("false case signals per 100 county-disease-weeks, by method: "
          + ", ".join(f"{m} {n / weeks * 100:.2f} ({n})" for m, n in sorted(false.items())))
    print(f"\n{'seed':>4} {'cards':>7} {'region s':>9} {'backfill s':>11} {'read+detect s':>14} {'ratio':>6}")
    for run in runs:
        print(f"{run['seed']:>4} {run['cards']:>7,} {run['region_s']:>9.1f} {run['backfill_s']:>11.2f}"
              f" {run['bare_s']:>14.3f} {run['backfill_s'] / run['bare_s']:>6.1f}")


if __name__ == "__main__":
    main()
