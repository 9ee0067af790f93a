"""How well each detector finds injected outbreaks (issue 8, "Done when", second bullet):
detection rate, median delay in days and false alarms per 100 series-weeks, per detector.

Synthetic county series (healthgrid.surveillance.outbreaks): negative-binomial counts with an
influenza-like winter season or an HFMD-like spring/summer season, fewer reports at weekends,
and outbreaks of known start, place (series) and size injected after a year of history.
Daily detectors are evaluated over the last 365 days; weekly ones (Farrington, Noufaily)
over the weeks of the same period. A detector that needs more history than the series has
(the CIDARS moving percentile wants 3 past years by design) needs ``--years 4``, Farrington
with b = 5 past years ``--years 6`` (the default).

This measures detection quality, not speed: every detector sees the same data, so each line
is read against the others. The speed of the detectors against R's ``surveillance`` package
on the same input is ``bench/detectors.py``.

Run: python bench/outbreak_detection.py [--series 1000] [--years 6] [--outbreaks 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date

import numpy as np

from healthgrid.surveillance import outbreaks as ob
from healthgrid.surveillance.detectors import cidars, cusum, ears

try:  # the Farrington family lands separately; the bench runs without it
    from healthgrid.surveillance.detectors import farrington
except ImportError:  # pragma: no cover - depends on the checkout
    farrington = None

START = date(2022, 1, 3)  # a Monday


def _cusum_daily(counts: np.ndarray) -> np.ndarray:
    """CUSUM on counts standardised against the mean of the same weekday over the previous
    4 weeks (Poisson scale), with the recursion restarted after each alarm."""
    x = counts
    lagged = np.stack([np.roll(x, 7 * k, axis=1) for k in range(1, 5)])
    expected = lagged.mean(axis=0)
    expected[:, :28] = np.nan
    z = cusum.standardise_counts(x, np.maximum(expected, 0.5))
    return cusum.cusum(z, reset=True).alarm


def daily_detectors(start: date) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    return {
        "EARS C1 (R earsC bound, alpha 0.001)": lambda x: ears.c1_upperbound(x).alarm,
        "EARS C2 (R earsC bound, alpha 0.001)": lambda x: ears.c2_upperbound(x).alarm,
        "EARS C3 (R earsC bound, alpha 0.025)": lambda x: ears.c3_upperbound(x).alarm,
        "EARS C1 classic (C > 3)": lambda x: ears.c1(x).alarm,
        "CIDARS MPM P50 (3 years x 3 weeks)": lambda x: cidars.moving_percentile(x, start).alarm,
        "CIDARS MPM P80 (3 years x 3 weeks)": lambda x: cidars.moving_percentile(x, start, percentile=80).alarm,
        "CUSUM k=1.04 h=2.26 (same-weekday baseline)": _cusum_daily,
    }


def weekly_detectors() -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    if farrington is None:
        return {}
    out = {}
    for name, fn in (("Farrington (1996)", getattr(farrington, "farrington", None)),
                     ("Noufaily (2013)", getattr(farrington, "noufaily", None))):
        if fn is not None:
            out[name] = fn
    return out


def run_weekly(fn, weekly_counts: np.ndarray, n_weeks: int) -> np.ndarray:
    """Alarms [series, week] of a weekly detector over the last ``n_weeks`` weeks."""
    found = fn(weekly_counts, weeks=n_weeks)
    alarm = np.asarray(found.alarm, dtype=bool)
    if alarm.shape[1] != weekly_counts.shape[1]:  # a detector that answers only the evaluated weeks
        full = np.zeros(weekly_counts.shape, dtype=bool)
        full[:, -alarm.shape[1]:] = alarm
        alarm = full
    return alarm


def report(name: str, perf: ob.Performance, seconds: float) -> None:
    rate = f"{perf.detection_rate:6.1%}" if perf.detection_rate is not None else "   n/a"
    delay = f"{perf.median_delay_days:5.1f}" if perf.median_delay_days is not None else "  n/a"
    fa = perf.false_alarms_per_100_series_weeks
    print(f"  {name:<46} {rate}  {delay}  {fa:8.2f}  {seconds:7.2f}")


def scenario(season: str, args: argparse.Namespace) -> None:
    days = 365 * args.years
    sim = ob.simulate(n_series=args.series, n_days=days, start=START, season=season, level=args.level,
                      n_outbreaks=args.outbreaks, burn_in=days - 365 + 7, size=(args.min_size, args.max_size),
                      seed=args.seed)
    first = days - 365
    late = [o for o in sim.outbreaks if o.start >= first]
    print(f"\n{season}: {args.series} county series x {days} days, level {args.level}/day, "
          f"{len(late)} outbreaks of {args.min_size}-{args.max_size} cases in the last 365 days")
    print(f"  {'detector':<46} {'found':>6}  {'delay':>5}  {'FA/100sw':>8}  {'seconds':>7}")
    for name, fn in daily_detectors(START).items():
        began = time.perf_counter()
        alarm = fn(sim.counts)
        report(name, ob.evaluate(alarm, late, first_day=first), time.perf_counter() - began)
    weekly_counts = ob.weekly(sim.counts)
    first_week = weekly_counts.shape[1] - 52
    for name, fn in weekly_detectors().items():
        began = time.perf_counter()
        alarm = run_weekly(fn, weekly_counts, 52)
        report(name + " weekly", ob.evaluate(alarm, late, first_day=first_week, days_per_step=7),
               time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--years", type=int, default=6)
    parser.add_argument("--outbreaks", type=int, default=200)
    parser.add_argument("--level", type=float, default=2.0)
    parser.add_argument("--min-size", type=int, default=15)
    parser.add_argument("--max-size", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print("found = share of outbreaks with an alarm between their start and end; delay = median days from the "
          "start to the first alarm;\nFA/100sw = false signals (the first day of a run of alarms) outside "
          "outbreaks per 100 series-weeks")
    for season in ("influenza", "hfmd"):
        scenario(season, args)
    if farrington is None:
        print("\n(Farrington and Noufaily not in this checkout: weekly detectors skipped)")


if __name__ == "__main__":
    main()
