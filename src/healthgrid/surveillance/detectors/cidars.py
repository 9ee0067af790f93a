"""CIDARS moving percentile method (时间模型, 移动百分位数法), vectorised across series.

Source: ../shared/specs/domain-rules.md §5.4. China CDC's CIDARS has run it daily per county
since 2008-04-21 (Yang W et al., 2011, PubMed 21569720 [V]). For day t:

- current value = cases in the most recent 7 days, t-6..t [spec: M];
- baseline = the 7-day sums ending on the same calendar day in each of the past
  ``years_back`` years, and ``half_width_weeks`` whole weeks either side of it;
- signal when current > P_x of the baseline, and current >= ``min_cases``.

Defaults: 3 past years with the same, previous and next 7-day periods (9 points), the 2008
design as the spec and the issue describe it [M: check against the CIDARS protocol]. The
later published 5-week x 5-year window (Zhang et al., BMC Public Health 2017,
doi:10.1186/s12889-017-4488-0 [V]) is ``years_back=5, half_width_weeks=2`` and matches the
spec's reference ``mpm_signal``. P50 is the common default; P_x is per disease (e.g.
chickenpox P75, mumps P80, HFMD P75, same source): configuration, passed in here.

Conventions of this implementation:
- 29 February maps to 28 February of a non-leap baseline year (as the spec's reference).
- The percentile is NumPy's default "linear" (R's ``quantile`` type 7); which definition
  CIDARS uses is not documented in the spec [M].
- A 7-day sum containing a missing day (NaN) is missing. The threshold needs at least
  ``min_baseline`` valid baseline sums (default: all of them), else statistic and threshold
  are NaN and there is no signal, as when the series is shorter than the baseline years.
  The spec's reference counts missing days as 0; pass zeros for days with no cases.

Only the date arithmetic (a few thousand days) loops in Python; every series-wide step is
NumPy indexing, done in blocks of days to bound memory.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...errors import Invalid
from .threshold import Detection, as_counts, evaluated

WINDOW_DAYS = 7  # CIDARS observation window, moved daily (spec §5.4)
BLOCK_ELEMENTS = 8_000_000  # ~64 MB of float64 per block of gathered baseline values


def same_day_years_ago(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def baseline_ends(start: date, n_days: int, *, years_back: int, half_width_weeks: int) -> np.ndarray:
    """Index of the last day of each baseline window, for every day: shape (n_days, points).

    -1 marks a window that does not lie wholly inside the series.
    """
    anchors = np.empty((n_days, years_back), dtype=np.int64)
    for t in range(n_days):
        day = start + timedelta(days=t)
        for y in range(years_back):
            anchors[t, y] = (same_day_years_ago(day, y + 1) - start).days
    offsets = 7 * np.arange(-half_width_weeks, half_width_weeks + 1)
    ends = (anchors[:, :, None] + offsets[None, None, :]).reshape(n_days, -1)
    ends[(ends < WINDOW_DAYS - 1) | (ends >= n_days)] = -1
    return ends


def window_sums(counts: np.ndarray, days: int = WINDOW_DAYS) -> np.ndarray:
    """Sum of days t-days+1..t for each day t; NaN if incomplete or any day is missing."""
    sums = np.full(counts.shape, np.nan)
    if counts.shape[1] >= days:
        sums[:, days - 1 :] = sliding_window_view(counts, days, axis=1).sum(axis=-1)
    return sums


def percentile_last_axis(values: np.ndarray, pct: float, min_points: int) -> np.ndarray:
    """Linear-interpolation percentile along the last axis, ignoring NaN (NumPy's formula).

    NaN where fewer than ``min_points`` values are present.
    """
    ordered = np.sort(values, axis=-1)  # NaN sort last
    n = np.sum(~np.isnan(values), axis=-1)
    pos = np.maximum(n - 1, 0) * (pct / 100.0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    a = np.take_along_axis(ordered, lo[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(ordered, hi[..., None], axis=-1)[..., 0]
    frac = pos - lo
    diff = b - a
    out = np.where(frac >= 0.5, b - diff * (1 - frac), a + diff * frac)  # NumPy's _lerp
    return np.where(n >= max(min_points, 1), out, np.nan)


def _check(percentile: float, years_back: int, half_width_weeks: int) -> None:
    if not 0 <= percentile <= 100:
        raise Invalid("SURV-108", f"percentile must be in [0, 100]; got {percentile}")
    if years_back < 1 or half_width_weeks < 0:
        raise Invalid(
            "SURV-109", f"need years_back >= 1 and half_width_weeks >= 0; got {years_back}, {half_width_weeks}"
        )


def moving_percentile(
    counts: object,
    start: date,
    *,
    percentile: float = 50.0,
    years_back: int = 3,
    half_width_weeks: int = 1,
    min_cases: float = 1,
    min_baseline: int | None = None,
) -> Detection:
    """CIDARS MPM over daily ``counts[series, day]``, column 0 being ``start``.

    Statistic = current 7-day sum; threshold = P_``percentile`` of the baseline 7-day sums.
    """
    _check(percentile, years_back, half_width_weeks)
    x = as_counts(counts)
    sums = window_sums(x)
    ends = baseline_ends(start, x.shape[1], years_back=years_back, half_width_weeks=half_width_weeks)
    points = ends.shape[1]
    need = points if min_baseline is None else min_baseline
    padded = np.concatenate([sums, np.full((x.shape[0], 1), np.nan)], axis=1)  # index -1 -> NaN
    threshold = np.full(x.shape, np.nan)
    block = max(1, BLOCK_ELEMENTS // max(1, x.shape[0] * points))
    for first in range(0, x.shape[1], block):
        rows = ends[first : first + block]
        threshold[:, first : first + block] = percentile_last_axis(padded[:, rows], percentile, need)
    found = evaluated(sums, threshold)
    return found._replace(alarm=found.alarm & (found.statistic >= min_cases))
