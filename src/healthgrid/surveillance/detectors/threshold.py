"""The fixed-threshold detector and the result type shared by all detectors.

CIDARS fixed-threshold method (固定阈值法): for class A, class-B-managed-as-A and listed rare
or serious diseases, one case is a signal, raised in real time on report
(../shared/specs/domain-rules.md §5.4 [V]; Yang et al. 2011, PubMed 21569720). Which diseases
use it is configuration (the disease catalogue), not code.

:class:`Detection` and :func:`as_counts` live here because every other detector module builds
on them; the fixed threshold is the simplest "statistic against threshold" detector.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...errors import Invalid


class Detection(NamedTuple):
    """Three arrays shaped like the input ``counts[series, day]``.

    ``statistic`` and ``threshold`` are in the same units, so a curve can be drawn with its
    threshold; ``alarm`` is False wherever either is NaN (not evaluable).
    """

    statistic: np.ndarray
    threshold: np.ndarray
    alarm: np.ndarray


def as_counts(counts: object) -> np.ndarray:
    """``counts`` as a 2-D float array ``[series, day]``; coded error otherwise."""
    try:
        arr = np.asarray(counts, dtype=float)
    except (TypeError, ValueError) as exc:
        raise Invalid("SURV-101", "counts must be numeric (NaN for missing days)") from exc
    if arr.ndim != 2:
        raise Invalid("SURV-102", f"counts must be 2-D [series, day]; got {arr.ndim}-D", {"shape": arr.shape})
    return arr


def evaluated(statistic: np.ndarray, threshold: np.ndarray, *, inclusive: bool = False) -> Detection:
    """Blank the statistic where there is no threshold, then compare.

    ``inclusive`` selects ``statistic >= threshold`` (fixed threshold, CUSUM as in R
    ``algo.cusum``) instead of ``statistic > threshold`` (EARS, moving percentile).
    """
    threshold = np.broadcast_to(np.asarray(threshold, dtype=float), statistic.shape).copy()
    missing = np.isnan(statistic) | np.isnan(threshold)
    statistic = np.where(missing, np.nan, statistic)
    threshold[missing] = np.nan
    with np.errstate(invalid="ignore"):
        alarm = statistic >= threshold if inclusive else statistic > threshold
    return Detection(statistic, threshold, alarm & ~missing)


def fixed(counts: object, threshold: float = 1) -> Detection:
    """Signal on every day whose count reaches ``threshold`` (default: one case ⇒ signal).

    NaN (no report received) gives no signal and a NaN statistic.
    """
    if not threshold > 0:
        raise Invalid("SURV-103", f"threshold must be > 0; got {threshold}")
    arr = as_counts(counts)
    return evaluated(arr.copy(), np.full(arr.shape, float(threshold)), inclusive=True)
