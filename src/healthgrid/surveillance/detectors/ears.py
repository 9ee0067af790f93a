"""EARS C1, C2 and C3 (Early Aberration Reporting System), vectorised across series.

Source: Hutwagner L, Thompson W, Seeman GM, Treadwell T. "The bioterrorism preparedness and
response Early Aberration Reporting System (EARS)". J Urban Health 2003;80(2 Suppl 1):i89-96.

For day t with count x_t, mean m and sample standard deviation s (n-1 denominator) of a
baseline of ``baseline`` (7) days:

- C1: baseline t-7..t-1; C1_t = (x_t - m) / s.
- C2: the same with a 2-day guard band, baseline t-9..t-3.
- C3: C3_t = sum over i = t-2, t-1, t of max(0, C2_i - 1).

Two forms of each, and they are different rules:

- Classic (``c1``, ``c2``, ``c3``): the statistic is C, the alarm is C > cut-off, with the
  paper's cut-offs 3 (C1, C2) and 2 (C3).
- R ``surveillance::earsC`` (``c1_upperbound``, ...): the statistic is the observed count and
  the threshold an upper bound in cases, alarm when x_t > bound (read from
  ``R/earsC.R`` of the CRAN ``surveillance`` package; check against the installed version
  when the R comparison tests are written). C1/C2: bound = m + z_{1-alpha} * max(s, minSigma),
  alpha 0.001 by default (z = 3.09, not 3). C3: bound = max(0, x_t + max(s_t, minSigma) *
  (z_{1-alpha} - (P_{t-1} + P_{t-2}))) with P_i = max(0, C2_i - 1) and alpha 0.025 by
  default (z = 1.96). R puts x_t where the C2 cut-off would go, so its C3 alarm reduces to
  "P_{t-1} + P_{t-2} > z and x_t > 0"; it does not depend on day t's own C2. Reproduced
  as is, so alarms can match R.

Zero variance (s = 0, e.g. a run of zero counts): R's ``minSigma`` defaults to 0, and so does
ours. With s = 0 the classic statistic is +inf above the mean, -inf below it and 0 at the
mean (R gives NaN there, and hence no alarm, which is the same outcome for C1 and C2); the
upper bound equals the mean. For the R form of C3 the difference matters: a lagged C2 of
0/0 is NaN in R and leaves that day's bound NA, so ``c3_upperbound`` does the same (found
by the R comparison on ``salmNewport``: 8 of 3,791 such days alarmed before). So with s = 0
any count above the baseline mean alarms in both forms. Pass
``min_sigma`` (e.g. 0.5 or 1) to damp alarms after quiet runs.

Missing data: a baseline containing NaN gives a NaN statistic and no alarm, as R's ``mean``
and ``sd`` do. Days before a full baseline exists are NaN / no alarm.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...errors import Invalid
from .threshold import Detection, as_counts, evaluated

C1_LAG = 1  # baseline ends the day before t (Hutwagner et al. 2003)
C2_LAG = 3  # two guard days: baseline ends at t-3 (Hutwagner et al. 2003)


def baseline_stats(counts: np.ndarray, baseline: int, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample sd of days t-lag-baseline+1 .. t-lag, for every day t (NaN if incomplete)."""
    if baseline < 3:  # R earsC refuses a baseline under 3 too
        raise Invalid("SURV-104", f"baseline must be at least 3 days; got {baseline}")
    mean = np.full(counts.shape, np.nan)
    sd = np.full(counts.shape, np.nan)
    first = lag + baseline - 1  # first day whose baseline lies inside the series
    if counts.shape[1] > first:
        windows = sliding_window_view(counts, baseline, axis=1)[:, : counts.shape[1] - first]
        mean[:, first:] = windows.mean(axis=-1)
        sd[:, first:] = windows.std(axis=-1, ddof=1)
    return mean, sd


def z_score(x: np.ndarray, mean: np.ndarray, sd: np.ndarray, min_sigma: float) -> np.ndarray:
    """(x - mean) / max(sd, min_sigma); with a zero denominator: ±inf, or 0 when x == mean."""
    sigma = np.maximum(sd, min_sigma)
    diff = x - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diff / sigma
    return np.where((sigma == 0) & (diff == 0), 0.0, z)


def _excess(c2: np.ndarray) -> np.ndarray:
    """max(0, C2 - 1), NaN kept: each day's contribution to C3."""
    return np.maximum(c2 - 1.0, 0.0)


def _check(min_sigma: float) -> None:
    if min_sigma < 0:
        raise Invalid("SURV-105", f"min_sigma must be >= 0; got {min_sigma}")


def _z_alpha(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise Invalid("SURV-106", f"alpha must be in (0, 1); got {alpha}")
    return NormalDist().inv_cdf(1 - alpha)


def _classic(counts: object, lag: int, baseline: int, cutoff: float, min_sigma: float) -> Detection:
    _check(min_sigma)
    x = as_counts(counts)
    mean, sd = baseline_stats(x, baseline, lag)
    return evaluated(z_score(x, mean, sd, min_sigma), np.full(x.shape, float(cutoff)))


def c1(counts: object, *, baseline: int = 7, cutoff: float = 3.0, min_sigma: float = 0.0) -> Detection:
    """Classic EARS C1: statistic C1, alarm when C1 > ``cutoff`` (3, Hutwagner et al. 2003)."""
    return _classic(counts, C1_LAG, baseline, cutoff, min_sigma)


def c2(counts: object, *, baseline: int = 7, cutoff: float = 3.0, min_sigma: float = 0.0) -> Detection:
    """Classic EARS C2 (2-day guard band): alarm when C2 > ``cutoff`` (3)."""
    return _classic(counts, C2_LAG, baseline, cutoff, min_sigma)


def c3(counts: object, *, baseline: int = 7, cutoff: float = 2.0, min_sigma: float = 0.0) -> Detection:
    """Classic EARS C3 = sum of max(0, C2 - 1) over t-2, t-1, t; alarm when C3 > ``cutoff`` (2)."""
    _check(min_sigma)
    x = as_counts(counts)
    excess = _excess(z_score(x, *baseline_stats(x, baseline, C2_LAG), min_sigma))
    stat = np.full(x.shape, np.nan)
    stat[:, 2:] = excess[:, :-2] + excess[:, 1:-1] + excess[:, 2:]
    return evaluated(stat, np.full(x.shape, float(cutoff)))


def _upper(counts: object, lag: int, baseline: int, alpha: float, min_sigma: float) -> Detection:
    _check(min_sigma)
    x = as_counts(counts)
    mean, sd = baseline_stats(x, baseline, lag)
    return evaluated(x.copy(), mean + _z_alpha(alpha) * np.maximum(sd, min_sigma))


def c1_upperbound(counts: object, *, baseline: int = 7, alpha: float = 0.001, min_sigma: float = 0.0) -> Detection:
    """R ``earsC(method="C1")``: alarm when x_t > mean + z_{1-alpha} * max(sd, minSigma)."""
    return _upper(counts, C1_LAG, baseline, alpha, min_sigma)


def c2_upperbound(counts: object, *, baseline: int = 7, alpha: float = 0.001, min_sigma: float = 0.0) -> Detection:
    """R ``earsC(method="C2")``: as C1 with the baseline t-9..t-3."""
    return _upper(counts, C2_LAG, baseline, alpha, min_sigma)


def c3_upperbound(counts: object, *, baseline: int = 7, alpha: float = 0.025, min_sigma: float = 0.0) -> Detection:
    """R ``earsC(method="C3")``: bound = max(0, x_t + s_t (z - P_{t-2} - P_{t-1})), see the module docstring."""
    _check(min_sigma)
    x = as_counts(counts)
    mean, sd = baseline_stats(x, baseline, C2_LAG)
    # R's C2 of a day at its baseline mean with a zero spread is 0/0 = NaN, and a NaN lagged
    # C2 leaves the bound NA (no alarm); the classic statistic takes it as 0 (no excess).
    zero_over_zero = (np.maximum(sd, min_sigma) == 0) & (x == mean)
    excess = np.where(zero_over_zero, np.nan, _excess(z_score(x, mean, sd, min_sigma)))
    bound = np.full(x.shape, np.nan)
    with np.errstate(invalid="ignore"):  # 0 * inf when s = 0 after an infinite C2: NaN, as in R
        bound[:, 2:] = x[:, 2:] + np.maximum(sd[:, 2:], min_sigma) * (
            _z_alpha(alpha) - (excess[:, :-2] + excess[:, 1:-1])
        )
    return evaluated(x.copy(), np.maximum(bound, 0.0))
