"""Synthetic daily case counts with known outbreaks, and how well a detector finds them.

Pure NumPy, seeded: the same arguments give the same arrays. Used by the benchmark of
detection performance (``bench/outbreak_detection.py``) and by the surveillance synth.

The baseline of a series (one disease in one county) is a negative-binomial count around
a seasonal mean (issue 8 item 6; domain-rules.md §5.4 lists the diseases CIDARS watches):

    mu_t = level * exp(amplitude * cos(2 pi (doy_t - peak) / 365.25)) * dow[weekday_t] * trend^years

- ``influenza``-like: a winter peak (day of year 15, i.e. mid January), strong amplitude;
- ``hfmd``-like (hand, foot and mouth disease): spring–summer peak (day 140, May), with a
  small second autumn peak;
- ``flat``: no season (e.g. many bacterial diseases reported at a steady rate).
- Day-of-week effect: reports follow clinic days, fewer at weekends (Saturday 0.8, Sunday
  0.7 of a weekday), as in notifiable-disease reporting by diagnosis date.
- Over-dispersion: counts are Poisson–Gamma (negative binomial) with dispersion ``k``
  (variance = mu + mu²/k); k = 5 by default.

An outbreak adds cases on top of the baseline over ``duration`` days with a rising then
falling (log-normal-shaped) epidemic curve whose total is ``size`` cases, drawn as Poisson
around that curve. Outbreaks are placed at random series and start days after the first
``burn_in`` days (the detectors need that much history), at most one per series.

Performance (evaluate): an outbreak is detected if an alarm falls on a day from its start
to its end; the delay is the day the first alarm is raised minus the start (for weekly
steps, the last day of the alarming week). A false alarm is a signal
outside every outbreak window, and a signal is the first day of a run of alarming days: a
detector that alarms on ten days in a row raises one signal, as CIDARS does not raise a new
signal for a disease and county while one is open (domain-rules.md §5.4). ``onsets=False``
counts every alarming day instead. The rate is per 100 series-weeks of non-outbreak time
evaluated (the unit the issue asks for).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from ..errors import Invalid

SEASONS = {
    # name: (peak day of year, amplitude, second peak day, second amplitude)
    "influenza": (15.0, 1.1, None, 0.0),
    "hfmd": (140.0, 0.9, 290.0, 0.35),
    "flat": (0.0, 0.0, None, 0.0),
}
DAY_OF_WEEK = np.array([1.05, 1.05, 1.05, 1.05, 1.05, 0.80, 0.70])  # Monday .. Sunday


@dataclass(frozen=True)
class Outbreak:
    series: int
    start: int  # day index
    duration: int
    size: int  # cases added in total (as drawn)

    @property
    def end(self) -> int:
        return self.start + self.duration - 1


@dataclass(frozen=True)
class Simulation:
    counts: np.ndarray  # [series, day] float, baseline + outbreaks
    baseline_mean: np.ndarray  # [series, day] the expected baseline (no outbreaks)
    outbreaks: list[Outbreak]
    start: date


def seasonal_mean(n_days: int, start: date, *, level: np.ndarray, season: str, trend: float = 1.0) -> np.ndarray:
    """Expected daily baseline counts [series, day] for the given per-series ``level``."""
    if season not in SEASONS:
        raise Invalid("SURV-150", f"season: one of {sorted(SEASONS)}", {"field": "season"})
    peak, amp, peak2, amp2 = SEASONS[season]
    days = np.arange(n_days)
    doy = np.array([(start + timedelta(days=int(i))).timetuple().tm_yday for i in days], dtype=float)
    weekday = (start.weekday() + days) % 7
    shape = np.exp(amp * np.cos(2 * np.pi * (doy - peak) / 365.25))
    if peak2 is not None:
        shape = shape + amp2 * np.exp(np.cos(2 * np.pi * (doy - peak2) / 365.25)) / np.e
    shape = shape / shape.mean()
    growth = trend ** (days / 365.25)
    return np.asarray(level, dtype=float)[:, None] * (shape * DAY_OF_WEEK[weekday] * growth)[None, :]


def _epidemic_curve(duration: int) -> np.ndarray:
    """Share of an outbreak's cases on each of its days: a log-normal-shaped rise and fall."""
    t = np.arange(1, duration + 1, dtype=float)
    peak = max(1.0, duration / 3)
    curve = np.exp(-((np.log(t) - np.log(peak)) ** 2) / 0.5)
    return curve / curve.sum()


def simulate(*, n_series: int, n_days: int, start: date, season: str = "influenza", level: float | np.ndarray = 3.0,
             dispersion: float = 5.0, n_outbreaks: int = 0, size: tuple[int, int] = (10, 40),
             duration: tuple[int, int] = (7, 21), burn_in: int = 365, seed: int = 1) -> Simulation:
    """Baseline counts for ``n_series`` series and ``n_outbreaks`` injected outbreaks."""
    if n_series < 1 or n_days < 1 or dispersion <= 0:
        raise Invalid("SURV-150", "n_series and n_days must be positive, dispersion > 0")
    if n_outbreaks > n_series or (n_outbreaks and n_days - burn_in < duration[1]):
        raise Invalid("SURV-150", "at most one outbreak per series, after the burn-in, fitting in the series")
    rng = np.random.default_rng(seed)
    levels = np.broadcast_to(np.asarray(level, dtype=float), (n_series,))
    mu = seasonal_mean(n_days, start, level=levels, season=season)
    gamma = rng.gamma(shape=dispersion, scale=mu / dispersion)  # Poisson–Gamma = negative binomial
    counts = rng.poisson(gamma).astype(float)
    outbreaks = []
    for series in rng.choice(n_series, size=n_outbreaks, replace=False):
        length = int(rng.integers(duration[0], duration[1] + 1))
        begin = int(rng.integers(burn_in, n_days - length + 1))
        extra = rng.poisson(int(rng.integers(size[0], size[1] + 1)) * _epidemic_curve(length))
        counts[series, begin:begin + length] += extra
        outbreaks.append(Outbreak(int(series), begin, length, int(extra.sum())))
    return Simulation(counts, mu, sorted(outbreaks, key=lambda o: (o.series, o.start)), start)


@dataclass(frozen=True)
class Performance:
    outbreaks: int
    detected: int
    median_delay_days: float | None
    false_alarms: int
    series_weeks: float  # non-outbreak time evaluated, in series-weeks

    @property
    def detection_rate(self) -> float | None:
        return self.detected / self.outbreaks if self.outbreaks else None

    @property
    def false_alarms_per_100_series_weeks(self) -> float | None:
        return 100 * self.false_alarms / self.series_weeks if self.series_weeks else None


def evaluate(alarm: np.ndarray, outbreaks: list[Outbreak], *, first_day: int = 0,
             days_per_step: int = 1, onsets: bool = True) -> Performance:
    """Detection rate, median delay (days) and false alarms of a boolean ``alarm[series, t]``
    over steps ``first_day`` .. end (daily steps, or weekly with ``days_per_step=7`` where
    step t covers days t*7 .. t*7+6 of the outbreak's day indices)."""
    alarm = np.asarray(alarm, dtype=bool)
    inside = np.zeros(alarm.shape, dtype=bool)
    delays, detected = [], 0
    for o in outbreaks:
        lo, hi = o.start // days_per_step, o.end // days_per_step
        inside[o.series, lo:hi + 1] = True
        hits = np.flatnonzero(alarm[o.series, max(lo, first_day):hi + 1])
        if hits.size:
            detected += 1
            # Known at the end of the alarming step: a weekly alarm is raised after its last day.
            step = max(lo, first_day) + int(hits[0])
            delays.append(max(0, (step + 1) * days_per_step - 1 - o.start))
    window = np.zeros(alarm.shape, dtype=bool)
    window[:, first_day:] = True
    quiet = window & ~inside
    if onsets:
        alarm = alarm & ~np.concatenate([np.zeros((alarm.shape[0], 1), dtype=bool), alarm[:, :-1]], axis=1)
    return Performance(outbreaks=len(outbreaks), detected=detected,
                       median_delay_days=float(np.median(delays)) if delays else None,
                       false_alarms=int((alarm & quiet).sum()),
                       series_weeks=float(quiet.sum()) * days_per_step / 7)


def weekly(counts: np.ndarray) -> np.ndarray:
    """Daily counts [series, day] summed into whole weeks [series, week] (a partial last week
    is dropped)."""
    n = counts.shape[1] // 7 * 7
    return counts[:, :n].reshape(counts.shape[0], -1, 7).sum(axis=2)
