"""Page's one-sided (upper) CUSUM on standardised counts or proportions, many series at once.

Source: Page ES. "Continuous inspection schemes". Biometrika 1954;41:100-115. Recursion, as in
R ``surveillance::algo.cusum`` (R/algo_cusum.R):

    S_0 = 0,   S_t = max(0, S_{t-1} + z_t - k),   alarm when S_t >= h.

The defaults k = 1.04, h = 2.26 are R ``algo.cusum``'s; tune them per feed (for example with
R ``find.kh`` from target run lengths). The standardisation is the caller's choice of expected
value: :func:`standardise_counts` is R's ``trans = "standard"`` (Poisson, (x - m) / sqrt(m));
:func:`standardise_proportion` is the binomial analogue for syndrome visits out of all visits
(多点触发 feeds, ../shared/specs/domain-rules.md §5.5).

Options beyond R: ``reset=True`` restarts the sum at 0 on the day after an alarm (R never
resets). A missing z_t (NaN) leaves the sum unchanged and reports a NaN statistic, no alarm.

The recursion loops over days, each step vectorised across all series; there is no loop over
series.
"""

from __future__ import annotations

import numpy as np

from ...errors import Invalid
from .threshold import Detection, as_counts, evaluated


def standardise_counts(counts: object, expected: object) -> np.ndarray:
    """(x - m) / sqrt(m) for Poisson counts with expected value m (NaN where m <= 0 or missing)."""
    x = as_counts(counts)
    m = np.broadcast_to(np.asarray(expected, dtype=float), x.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - m) / np.sqrt(m)
    return np.where(m > 0, z, np.nan)


def standardise_proportion(cases: object, totals: object, p0: object) -> np.ndarray:
    """(x - n p0) / sqrt(n p0 (1 - p0)) for x cases out of n visits, expected proportion p0.

    NaN where n <= 0, p0 outside (0, 1) or data are missing.
    """
    x = as_counts(cases)
    n = np.broadcast_to(np.asarray(totals, dtype=float), x.shape)
    p = np.broadcast_to(np.asarray(p0, dtype=float), x.shape)
    variance = n * p * (1 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - n * p) / np.sqrt(variance)
    return np.where((n > 0) & (p > 0) & (p < 1), z, np.nan)


def cusum(z: object, *, k: float = 1.04, h: float = 2.26, reset: bool = False) -> Detection:
    """Upper CUSUM of standardised values ``z[series, day]``; alarm when S_t >= h."""
    if k < 0 or not h > 0:
        raise Invalid("SURV-107", f"CUSUM needs k >= 0 and h > 0; got k={k}, h={h}")
    zz = as_counts(z)
    stat = np.full(zz.shape, np.nan)
    s = np.zeros(zz.shape[0])
    for t in range(zz.shape[1]):
        present = ~np.isnan(zz[:, t])
        s = np.where(present, np.maximum(0.0, s + (zz[:, t] - k)), s)
        stat[:, t] = np.where(present, s, np.nan)
        if reset:
            s = np.where(present & (s >= h), 0.0, s)
    return evaluated(stat, np.full(zz.shape, float(h)), inclusive=True)
